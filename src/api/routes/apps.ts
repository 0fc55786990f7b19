/**
 * /api/apps: register apps from their infraspec, read them, delete them, request runs, read their
 * events. The routes are defined (and documented) in src/shared/api/apps.ts.
 */
import { notFound } from '../../shared/errors.js';
import { parseInfraspec } from '../../shared/spec/infraspec.js';
import { assertPortsFreeAmong } from '../../pipelines/deploy/ports.js';
import * as routes from '../../shared/api/apps.js';
import { DeployBody } from '../../shared/api/schemas.js';
import type { ApiDeps } from '../deps.js';
import { requestDriftCheck } from '../stack-request.js';
import { driftSubject } from '../../shared/store/drift-state.js';
import { deleteApp } from './app-delete.js';
import { deleteForge, postForge } from './forge.js';
import { readForgeState } from '../../pipelines/forge/state.js';
import {
  bodyReadByHandler,
  jsonBody,
  publicSpec,
  requireRedis,
  router,
  specInvalid,
} from './util.js';
import { requestDeploy } from '../deploy-request.js';
import { splitWebhookSecret } from '../../gitops/app-secret.js';

export function appRoutes(deps: ApiDeps) {
  const { apps, store, events } = deps;
  const app = router();
  const find = async (id: string) => {
    const found = await apps.get(id);
    if (!found) throw notFound(`app ${id}`);
    return found;
  };
  // The infraspec is parsed here from the text (YAML or JSON), so a bad one is SPEC_INVALID with
  // its problems whatever the content type claimed.
  app.openapi(bodyReadByHandler(app, routes.registerApp), async (c) => {
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
    const { app: saved, created } = await apps.upsert(
      kept.spec.name,
      kept.spec,
      kept.source,
      format,
      kept.webhookSecret,
    );
    const body = { app: { ...saved, spec: publicSpec(saved.spec) as { name: string } } };
    return created ? c.json(body, 201) : c.json(body, 200);
  });
  app.openapi(routes.listApps, async (c) => c.json({ apps: await apps.list() }, 200));
  app.openapi(routes.deleteApp, async (c) =>
    c.json(await deleteApp(deps, c.req.valid('param').id), 200),
  );
  app.openapi(routes.getApp, async (c) => {
    const found = await find(c.req.valid('param').id);
    // lease: the app's own scope (deploys, restores); scopes: every scope of the app in use.
    // forge: where the app's forge stands (kubernetes apps; others stay unforged).
    const [lease, scopes, forge] = await Promise.all([
      store.scopeView(`app:${found.id}`),
      store.appScopes(found.id),
      readForgeState(deps.db, found.id),
    ]);
    const spec = publicSpec(found.spec) as { name: string };
    return c.json({ app: { ...found, spec }, lease, scopes, forge }, 200);
  });
  app.openapi(routes.getAppLease, async (c) => {
    const found = await find(c.req.valid('param').id);
    return c.json(await store.scopeView(`app:${found.id}`), 200);
  });
  app.openapi(routes.listAppRuns, async (c) => {
    const { limit } = c.req.valid('query');
    return c.json({ runs: await store.listRuns(c.req.valid('param').id, limit) }, 200);
  });
  app.openapi(routes.listAppDeployments, async (c) => {
    const { limit } = c.req.valid('query');
    return c.json({ deployments: await store.listRuns(c.req.valid('param').id, limit) }, 200);
  });
  app.openapi(bodyReadByHandler(app, routes.deployApp), async (c) => {
    const found = await find(c.req.valid('param').id);
    const body = await jsonBody(c, DeployBody);
    return c.json(await requestDeploy(deps, found, { ref: body.ref, requestedBy: 'api' }), 202);
  });
  app.openapi(routes.checkAppDrift, async (c) => {
    const found = await find(c.req.valid('param').id);
    requireRedis(deps.redis);
    return c.json(await requestDriftCheck(deps.runs, { kind: 'app', app: found }, 'api'), 202);
  });
  app.openapi(routes.getAppDrift, async (c) => {
    const found = await find(c.req.valid('param').id);
    const subject = driftSubject('app', found.id);
    const drift = (await deps.drift.get(subject)) ?? { subject, status: 'unknown' as const };
    return c.json({ drift }, 200);
  });
  app.openapi(bodyReadByHandler(app, routes.forgeApp), async (c) =>
    c.json(await postForge(deps, c.req.valid('param').id, c), 202),
  );
  app.openapi(routes.teardownApp, async (c) =>
    c.json(await deleteForge(deps, c.req.valid('param').id), 202),
  );
  app.openapi(routes.listAppEvents, async (c) => {
    const { limit, before } = c.req.valid('query');
    const page = await events.byAppNewestFirst(c.req.valid('param').id, before, limit);
    const last = page[page.length - 1];
    return c.json(
      { events: page, next: page.length === limit && last ? { before: last.id } : null },
      200,
    );
  });
  return app;
}
