/**
 * /api/stacks: register stacks from their spec (YAML or JSON), read, list and delete them, and read
 * their runs (scope `stack:<id>`), drift state and plans. /api/plans/:id: one plan artifact, the
 * "full plan" a pull request comment links to. A stack's webhook secret is never answered.
 */
import { NornError, notFound } from '../../shared/errors.js';
import { parseStack } from '../../shared/spec/stack.js';
import { driftSubject } from '../../shared/store/drift-state.js';
import type { PlanArtifact } from '../../shared/store/plan-artifacts.js';
import { stackScope } from '../../shared/store/stacks.js';
import * as routes from '../../shared/api/stacks.js';
import { ReleaseBody } from '../../shared/api/schemas.js';
import type { ApiDeps } from '../deps.js';
import { bodyReadByHandler, jsonBody, requireRedis, router, specInvalid } from './util.js';
import { requestDriftCheck, requestRelease } from '../stack-request.js';

export function stackRoutes(deps: ApiDeps) {
  const { stacks, store, drift, plans } = deps;
  const find = async (id: string) => {
    const stack = await stacks.get(id);
    if (!stack) throw notFound(`stack ${id}`);
    return stack;
  };
  const app = router();
  // The spec is parsed here from the text (YAML or JSON), so a bad one is SPEC_INVALID.
  app.openapi(bodyReadByHandler(app, routes.registerStack), async (c) => {
    const parsed = parseStack(await c.req.text());
    if (!parsed.ok)
      return c.json(specInvalid(`the stack has ${parsed.problems.length} problem(s)`, parsed), 400);
    const { stack, created } = await stacks.upsert(
      parsed.spec.name,
      parsed.spec,
      parsed.webhookSecret,
    );
    // The stack is stored either way; a scheduler Redis refused is set when the api next starts.
    const warnings: string[] = [];
    await deps.driftSchedules?.upsert(stack).catch((err: Error) => {
      deps.log.warn({ err, stack: stack.id }, 'drift schedule not set');
      warnings.push(
        `its drift schedule is not set yet (${err.message}); the api sets it when it next starts`,
      );
    });
    const body = { stack, ...(warnings.length ? { warnings } : {}) };
    return created ? c.json(body, 201) : c.json(body, 200);
  });
  app.openapi(routes.listStacks, async (c) => c.json({ stacks: await stacks.list() }, 200));
  app.openapi(routes.getStack, async (c) =>
    c.json({ stack: await find(c.req.valid('param').id) }, 200),
  );
  app.openapi(routes.deleteStack, async (c) => {
    const { id } = c.req.valid('param');
    const result = await stacks.delete(id);
    if (result.action === 'missing') throw notFound(`stack ${id}`);
    if (result.action === 'blocked')
      throw new NornError(
        'CONFLICT',
        `stack ${id} has ${result.runs.length} run(s) queued or running; cancel them or wait, then delete it`,
        { details: { runs: result.runs } },
      );
    await deps.driftSchedules?.remove(id).catch((err: Error) => {
      deps.log.warn({ err, stack: id }, 'drift schedule not removed (its next tick removes it)');
    });
    return c.json({ deleted: id }, 200);
  });
  app.openapi(routes.listStackRuns, async (c) => {
    const stack = await find(c.req.valid('param').id);
    const { limit } = c.req.valid('query');
    return c.json({ runs: await store.listRunsInScope(stackScope(stack.id), limit) }, 200);
  });
  app.openapi(routes.checkStackDrift, async (c) => {
    const stack = await find(c.req.valid('param').id);
    requireRedis(deps.redis);
    return c.json(await requestDriftCheck(deps.runs, { kind: 'stack', stack }, 'api'), 202);
  });
  app.openapi(bodyReadByHandler(app, routes.releaseStack), async (c) => {
    const stack = await find(c.req.valid('param').id);
    const { commitSha } = await jsonBody(c, ReleaseBody);
    requireRedis(deps.redis);
    return c.json(await requestRelease(deps.runs, stack, commitSha, 'api'), 202);
  });
  app.openapi(routes.getStackDrift, async (c) => {
    const stack = await find(c.req.valid('param').id);
    const subject = driftSubject('stack', stack.id);
    const state = (await drift.get(subject)) ?? { subject, status: 'unknown' as const };
    return c.json({ drift: state }, 200);
  });
  app.openapi(routes.listStackPlans, async (c) => {
    const stack = await find(c.req.valid('param').id);
    const { limit, kind, pullRequest } = c.req.valid('query');
    const list = await plans.listByStack(stack.id, {
      limit,
      ...(kind ? { kind } : {}),
      ...(pullRequest !== undefined ? { pullRequest } : {}),
    });
    return c.json({ plans: list }, 200);
  });
  return app;
}

/** A plan as answered: its commits together, never the file's bytes. */
const planView = ({ baseSha, headSha, ...plan }: PlanArtifact) => ({
  ...plan,
  commits: { base: baseSha, head: headSha },
});

export function planRoutes({ plans }: ApiDeps) {
  return router().openapi(routes.getPlan, async (c) => {
    const { id } = c.req.valid('param');
    const { format } = c.req.valid('query');
    const plan = await plans.get(id);
    if (!plan) throw notFound(`plan ${id}`);
    if (format === 'json') return c.json({ plan: planView(plan) }, 200);
    const file = await plans.file(plan.id);
    if (!file) throw notFound(`the plan file of plan ${id}`);
    return c.body(new Uint8Array(file.planFile), 200, {
      'content-type': 'application/octet-stream',
      'content-disposition': `attachment; filename="plan-${plan.id}.tfplan"`,
      'x-norn-sha256': file.sha256,
    });
  });
}
