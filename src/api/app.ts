/**
 * The HTTP api as a function of its dependencies (tests call `app.request()` without a port).
 * /healthz, /readyz, the OpenAPI document (/api/openapi.json) and login/logout (/api/session) are
 * open; the rest of /api/*, /metrics and /admin/queues need the bearer token or a dashboard
 * session's cookie (src/api/auth.ts); the dashboard's files answer every other GET (ui.ts); /webhooks/* check their own signatures (and have their own
 * body limit, whose refusals they count). Every /api route is defined in src/shared/api and
 * described in the document, which is generated from the routes registered here.
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { HonoAdapter } from '@bull-board/hono';
import { serveStatic } from '@hono/node-server/serve-static';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { ApiDeps } from './deps.js';
import { requireToken } from './auth.js';
import { createMetrics } from './metrics.js';
import { limitBody, refuseNul } from './edge.js';
import { RETRY_AFTER_S, toErrorResponse } from './http-errors.js';
import { alertRoutes } from './routes/alerts.js';
import { appRoutes } from './routes/apps.js';
import { deploymentRoutes, runRoutes, sagaRoutes } from './routes/runs.js';
import { router } from './routes/util.js';
import { serveOpenApiDocument } from './openapi.js';
import { OPENAPI_PATH } from '../shared/api/document.js';
import { scopeRoutes } from './routes/scopes.js';
import { snapshotRoutes } from './routes/snapshots.js';
import { webhookReceiver, webhookRoutes } from './routes/webhooks.js';
import { planRoutes, stackRoutes } from './routes/stacks.js';
import { sessionRoutes } from './routes/session.js';
import { SessionStore } from '../shared/store/sessions.js';
import { serveUi } from './ui.js';

export type { ApiDeps };

const SESSION_PATH = '/api/session';

/** /readyz answers within this, whatever PostgreSQL or Redis do (a load balancer waits for it). */
const READY_CHECK_MS = 1_500;

function withinMs<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export function createApi(deps: ApiDeps): OpenAPIHono {
  const app = router();
  app.onError((err, c) => toErrorResponse(err, c, deps.log));
  // What no route answers: the dashboard's files and views (ui.ts), else the api's 404.
  const ui = deps.uiDir ? serveUi(deps.uiDir) : undefined;
  app.notFound(
    async (c) =>
      (await ui?.(c)) ??
      c.json(
        { error: { code: 'NOT_FOUND', message: `no route ${c.req.method} ${c.req.path}` } },
        404,
      ),
  );

  // Authentication reads headers only; then, before anything reads a body, the limit, so no
  // route ever holds more than it.
  // The bearer token or a dashboard session's cookie opens everything below.
  const sessions = new SessionStore(deps.db);
  const token = requireToken(deps.apiToken, { sessions });
  const open = (method: string, path: string) =>
    // The document is public (client generators fetch it); logging in needs no session yet, and
    // logging out always works (it clears the cookie whatever it holds).
    (method === 'GET' && path === OPENAPI_PATH) ||
    (path === SESSION_PATH && (method === 'POST' || method === 'DELETE'));
  app.use('/api/*', (c, next) => (open(c.req.method, c.req.path) ? next() : token(c, next)));
  if (!deps.metricsPublic) app.use('/metrics', token);
  const board = requireToken(deps.apiToken, { basicRealm: 'norn', sessions });
  app.use('/admin/queues', board);
  app.use('/admin/queues/*', board);
  // Before the limit and NUL check below: the receiver applies both itself, counting refusals.
  app.route('/webhooks', webhookReceiver(deps));
  app.use('*', limitBody(deps.maxBodyBytes));
  app.use('*', refuseNul());

  const metrics = createMetrics({
    db: deps.db,
    queues: deps.queues,
    ...(deps.ws ? { ws: deps.ws } : {}),
  });
  app.get('/metrics', async (c) =>
    c.body(await metrics.metrics(), 200, { 'content-type': metrics.contentType }),
  );

  app.get('/healthz', (c) => c.json({ ok: true }));
  app.get('/readyz', async (c) => {
    const checks = await Promise.allSettled([
      withinMs(READY_CHECK_MS, deps.db.query('SELECT 1')),
      withinMs(READY_CHECK_MS, deps.redis.ping()),
    ]);
    const [db, redis] = checks.map((r) => (r.status === 'fulfilled' ? 'ok' : 'unavailable'));
    const ok = db === 'ok' && redis === 'ok';
    if (!ok) c.header('Retry-After', String(RETRY_AFTER_S));
    return c.json({ ok, postgres: db, redis }, ok ? 200 : 503);
  });
  app.route('/api/apps', appRoutes(deps));
  app.route('/api/apps', snapshotRoutes(deps));
  app.route('/api/stacks', stackRoutes(deps));
  app.route('/api/plans', planRoutes(deps));
  app.route('/api/runs', runRoutes(deps));
  app.route('/api/scopes', scopeRoutes(deps));
  app.route('/api/deployments', deploymentRoutes(deps));
  app.route('/api/sagas', sagaRoutes(deps));
  app.route('/api/alerts', alertRoutes(deps));
  app.route('/api/webhooks', webhookRoutes(deps));
  app.route(
    SESSION_PATH,
    sessionRoutes({ apiToken: deps.apiToken, sessions, ttlS: deps.sessionTtlS ?? 43_200 }),
  );
  serveOpenApiDocument(app);

  const bullBoard = new HonoAdapter(serveStatic);
  createBullBoard({
    queues: deps.queues.map((q) => new BullMQAdapter(q)),
    serverAdapter: bullBoard,
  });
  bullBoard.setBasePath('/admin/queues');
  app.route('/admin/queues', bullBoard.registerPlugin());
  return app;
}
