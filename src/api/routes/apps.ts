/**
 * /api/apps: register apps from their infraspec, read them, delete them, request runs, read their
 * events.
 */
import { Hono } from 'hono';
import { notFound } from '../../shared/errors.js';
import { parseInfraspec } from '../../shared/spec/infraspec.js';
import { assertPortsFreeAmong } from '../../pipelines/deploy/ports.js';
import type { ApiDeps } from '../deps.js';
import { requestDriftCheck } from '../stack-request.js';
import { driftSubject } from '../../shared/store/drift-state.js';
import { deleteApp } from './app-delete.js';
import { deleteForge, postForge } from './forge.js';
import { readForgeState } from '../../pipelines/forge/state.js';
import { clampInt, publicSpec, readJson, requireRedis, specInvalid } from './util.js';
import { requestDeploy } from '../deploy-request.js';
import { splitWebhookSecret } from '../../gitops/app-secret.js';

export function appRoutes(deps: ApiDeps) {
  const { apps, store, events } = deps;
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
      // repo.webhookSecret is write-only: out of the spec and source, into a column of its own.
      const kept = splitWebhookSecret(parsed.spec, text, format);
      const { app, created } = await apps.upsert(
        kept.spec.name,
        kept.spec,
        kept.source,
        format,
        kept.webhookSecret,
      );
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
      const accepted = await requestDeploy(deps, app, {
        ref: body.ref,
        requestedBy: 'api',
      });
      return c.json(accepted, 202);
    })
    .post('/:id/drift-check', async (c) => {
      const app = await apps.get(c.req.param('id'));
      if (!app) throw notFound(`app ${c.req.param('id')}`);
      requireRedis(deps.redis);
      const accepted = await requestDriftCheck(deps.runs, { kind: 'app', app }, 'api');
      return c.json(accepted, 202);
    })
    .get('/:id/drift', async (c) => {
      const app = await apps.get(c.req.param('id'));
      if (!app) throw notFound(`app ${c.req.param('id')}`);
      const subject = driftSubject('app', app.id);
      return c.json({ drift: (await deps.drift.get(subject)) ?? { subject, status: 'unknown' } });
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
