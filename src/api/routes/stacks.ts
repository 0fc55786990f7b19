/**
 * /api/stacks: register stacks from their spec (YAML or JSON), read, list and delete them, and read
 * their runs (scope `stack:<id>`), drift state and plans. /api/plans/:id: one plan artifact, the
 * "full plan" a pull request comment links to. A stack's webhook secret is never answered.
 */
import { Hono } from 'hono';
import { NornError, notFound } from '../../shared/errors.js';
import { parseStack } from '../../shared/spec/stack.js';
import { driftSubject } from '../../shared/store/drift-state.js';
import type { PlanArtifact, PlanKind } from '../../shared/store/plan-artifacts.js';
import { stackScope } from '../../shared/store/stacks.js';
import type { ApiDeps } from '../deps.js';
import { clampInt, readJson, requireRedis, specInvalid } from './util.js';
import { requestDriftCheck, requestRelease } from '../stack-request.js';

const SHA = /^[0-9a-f]{7,64}$/;

const PLAN_KINDS: readonly PlanKind[] = ['review', 'release', 'drift'];

export function stackRoutes(deps: ApiDeps) {
  const { stacks, store, drift, plans } = deps;
  const find = async (id: string) => {
    const stack = await stacks.get(id);
    if (!stack) throw notFound(`stack ${id}`);
    return stack;
  };
  return new Hono()
    .post('/', async (c) => {
      const parsed = parseStack(await c.req.text());
      if (!parsed.ok)
        return c.json(
          specInvalid(`the stack has ${parsed.problems.length} problem(s)`, parsed),
          400,
        );
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
      return c.json({ stack, ...(warnings.length ? { warnings } : {}) }, created ? 201 : 200);
    })
    .get('/', async (c) => c.json({ stacks: await stacks.list() }))
    .get('/:id', async (c) => c.json({ stack: await find(c.req.param('id')) }))
    .delete('/:id', async (c) => {
      const id = c.req.param('id');
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
      return c.json({ deleted: id });
    })
    .get('/:id/runs', async (c) => {
      const stack = await find(c.req.param('id'));
      const limit = clampInt(c.req.query('limit'), 20, 1, 200);
      return c.json({ runs: await store.listRunsInScope(stackScope(stack.id), limit) });
    })
    .post('/:id/drift-check', async (c) => {
      const stack = await find(c.req.param('id'));
      requireRedis(deps.redis);
      return c.json(await requestDriftCheck(deps.runs, { kind: 'stack', stack }, 'api'), 202);
    })
    .post('/:id/release', async (c) => {
      const stack = await find(c.req.param('id'));
      const body = await readJson(c, { optional: true });
      if (
        body.commitSha !== undefined &&
        (typeof body.commitSha !== 'string' || !SHA.test(body.commitSha))
      )
        throw new NornError('BAD_REQUEST', 'commitSha must be a commit SHA (7-64 hex digits)');
      requireRedis(deps.redis);
      const accepted = await requestRelease(
        deps.runs,
        stack,
        body.commitSha as string | undefined,
        'api',
      );
      return c.json(accepted, 202);
    })
    .get('/:id/drift', async (c) => {
      const stack = await find(c.req.param('id'));
      const subject = driftSubject('stack', stack.id);
      return c.json({ drift: (await drift.get(subject)) ?? { subject, status: 'unknown' } });
    })
    .get('/:id/plans', async (c) => {
      const stack = await find(c.req.param('id'));
      const kind = c.req.query('kind');
      if (kind !== undefined && !PLAN_KINDS.includes(kind as PlanKind))
        throw new NornError('BAD_REQUEST', `kind must be one of ${PLAN_KINDS.join(', ')}`);
      const pull = c.req.query('pullRequest');
      const list = await plans.listByStack(stack.id, {
        limit: clampInt(c.req.query('limit'), 20, 1, 200),
        ...(kind ? { kind: kind as PlanKind } : {}),
        ...(pull !== undefined ? { pullRequest: clampInt(pull, 0, 1, 2 ** 31 - 1) } : {}),
      });
      return c.json({ plans: list });
    });
}

/** A plan as answered: its commits together, never the file's bytes. */
const planView = ({ baseSha, headSha, ...plan }: PlanArtifact) => ({
  ...plan,
  commits: { base: baseSha, head: headSha },
});

export function planRoutes({ plans }: ApiDeps) {
  return new Hono().get('/:id', async (c) => {
    const id = c.req.param('id');
    const format = c.req.query('format') ?? 'json';
    if (format !== 'json' && format !== 'file')
      throw new NornError('BAD_REQUEST', 'format must be json or file');
    const plan = await plans.get(id);
    if (!plan) throw notFound(`plan ${id}`);
    if (format === 'json') return c.json({ plan: planView(plan) });
    const file = await plans.file(plan.id);
    if (!file) throw notFound(`the plan file of plan ${id}`);
    return c.body(new Uint8Array(file.planFile), 200, {
      'content-type': 'application/octet-stream',
      'content-disposition': `attachment; filename="plan-${plan.id}.tfplan"`,
      'x-norn-sha256': file.sha256,
    });
  });
}
