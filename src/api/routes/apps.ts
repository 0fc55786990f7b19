/**
 * /api/apps: register apps from their infraspec, read them, delete them, request runs, read their
 * events.
 */
import { Hono } from 'hono';
import { NornError, notFound } from '../../shared/errors.js';
import { deployRefProblem, parseInfraspec } from '../../shared/spec/infraspec.js';
import { assertPortsFreeAmong } from '../../pipelines/deploy/ports.js';
import type { ApiDeps } from '../deps.js';
import { deleteApp } from './app-delete.js';
import { deleteForge, postForge } from './forge.js';
import { readForgeState } from '../../pipelines/forge/state.js';
import { clampInt, publicSpec, readJson, requireRedis, specInvalid } from './util.js';

export function appRoutes(deps: ApiDeps) {
  const { apps, runs, store, events } = deps;
  return new Hono()
    .post('/', async (c) => {
      const text = await c.req.text();
      const type = c.req.header('content-type') ?? '';
      const format = type.includes('json') || /^\s*[{[]/.test(text) ? 'json' : 'yaml';
      const parsed = parseInfraspec(text);
      if (!parsed.ok)
        return c.json(
          specInvalid(`the infraspec has ${parsed.problems.length} problem(s)`, parsed),
          400,
        );
      assertPortsFreeAmong(parsed.spec, await apps.specs()); // 409 naming the other app and port
      const { app, created } = await apps.upsert(parsed.spec.name, parsed.spec, text, format);
      return c.json({ app: { ...app, spec: publicSpec(app.spec) } }, created ? 201 : 200);
    })
    .get('/', async (c) => c.json({ apps: await apps.list() }))
    .delete('/:id', (c) => deleteApp(deps, c))
    .get('/:id', async (c) => {
      const app = await apps.get(c.req.param('id'));
      if (!app) throw notFound(`app ${c.req.param('id')}`);
      // lease: the app's own scope (deploys, restores); scopes: every scope of the app in use.
      // forge: where the app's forge stands (kubernetes apps; others stay unforged).
      const [lease, scopes, forge] = await Promise.all([
        store.scopeView(`app:${app.id}`),
        store.appScopes(app.id),
        readForgeState(deps.db, app.id),
      ]);
      return c.json({ app: { ...app, spec: publicSpec(app.spec) }, lease, scopes, forge });
    })
    .get('/:id/lease', async (c) => {
      const app = await apps.get(c.req.param('id'));
      if (!app) throw notFound(`app ${c.req.param('id')}`);
      return c.json(await store.scopeView(`app:${app.id}`));
    })
    .get('/:id/runs', async (c) => {
      const limit = clampInt(c.req.query('limit'), 20, 1, 200);
      return c.json({ runs: await store.listRuns(c.req.param('id'), limit) });
    })
    .get('/:id/deployments', async (c) => {
      const limit = clampInt(c.req.query('limit'), 20, 1, 200);
      return c.json({ deployments: await store.listRuns(c.req.param('id'), limit) });
    })
    .post('/:id/deploy', async (c) => {
      const app = await apps.get(c.req.param('id'));
      if (!app) throw notFound(`app ${c.req.param('id')}`);
      const body = await readJson(c, { optional: true });
      requireRedis(deps.redis);
      // A spec stored before a rule was added may fail it: say so now, not after clone, build and test.
      const parsed = parseInfraspec(app.spec);
      if (!parsed.ok) {
        const message = `the stored infraspec of app ${app.id} has ${parsed.problems.length} problem(s); register it again`;
        return c.json(specInvalid(message, parsed), 400);
      }
      const spec = parsed.spec;
      // On kubernetes the app's objects and routing come from its forge: deploy a forged app only.
      if (spec.target === 'kubernetes') {
        const forge = await readForgeState(deps.db, app.id);
        if (forge.state !== 'forged')
          throw new NornError(
            'CONFLICT',
            `app ${app.id} is not forged (its forge state is ${forge.state}): forge it first (norn forge ${app.id}, POST /api/apps/${app.id}/forge)`,
            { details: { forgeState: forge.state } },
          );
      }
      const ref = body.ref ?? spec.repo?.branch ?? 'main';
      // The same rule as repo.branch in the infraspec, so a registered branch is always deployable.
      const refProblem = typeof ref === 'string' ? deployRefProblem(ref) : 'must be a string';
      if (refProblem) throw new NornError('BAD_REQUEST', `ref ${refProblem}`);
      const accepted = await runs.request({
        appId: app.id,
        pipeline: deps.deployPipeline,
        params: { ref },
        policy: spec.deployPolicy.concurrency,
        requestedBy: 'api',
        spec: app.spec,
      });
      return c.json(accepted, 202);
    })
    .post('/:id/forge', (c) => postForge(deps, c))
    .delete('/:id/forge', (c) => deleteForge(deps, c))
    .get('/:id/events', async (c) => {
      const limit = clampInt(c.req.query('limit'), 50, 1, 500);
      const before =
        c.req.query('before') === undefined
          ? undefined
          : clampInt(c.req.query('before'), 0, 1, Number.MAX_SAFE_INTEGER);
      const page = await events.byAppNewestFirst(c.req.param('id'), before, limit);
      const last = page[page.length - 1];
      return c.json({
        events: page,
        next: page.length === limit && last ? { before: last.id } : null,
      });
    });
}
