/** Routes under /api/apps (paths relative to it): apps, their runs, drift, events, forge, snapshots. */
import { createRoute, z } from '@hono/zod-openapi';
import { errors, IdParam, intQuery, json } from './http.js';
import {
  AppDeleted,
  AppDetail,
  AppList,
  AppSaved,
  DeployBody,
  DeploymentList,
  DriftView,
  EventPage,
  ForgeAccepted,
  ForgeBody,
  InfraspecView,
  RunAccepted,
  RunList,
  ScopeView,
  ReleaseList,
  SnapshotList,
} from './schemas.js';

const params = IdParam('The app (its infraspec `name`).');
const limit = (max: number, fallback: number) =>
  z.object({
    limit: intQuery(1, max, `At most this many, newest first (default ${fallback}).`, fallback),
  });

export const registerApp = createRoute({
  method: 'post',
  path: '/',
  tags: ['apps'],
  operationId: 'registerApp',
  summary: 'Register an app from its infraspec, or replace its spec',
  description:
    'The body is the infraspec as YAML or JSON text (whatever the content type says, JSON is recognised by its first character). `repo.webhookSecret` is stored apart and never answered; env values read back as "[hidden]".',
  request: {
    body: {
      required: true,
      content: {
        'application/yaml': {
          schema: z.string().openapi({ description: 'The infraspec as YAML.' }),
        },
        'application/json': { schema: InfraspecView },
      },
    },
  },
  responses: {
    200: json(AppSaved, 'The app existed; its spec is replaced.'),
    201: json(AppSaved, 'The app is registered.'),
    ...errors(409),
  },
});

export const listApps = createRoute({
  method: 'get',
  path: '/',
  tags: ['apps'],
  operationId: 'listApps',
  summary: 'List the apps (summaries: no env, no source)',
  responses: {
    200: json(
      AppList,
      'Every registered app, by id, with where it stands (forge, latest run, lease holder, queue).',
    ),
    ...errors(),
  },
});

export const getApp = createRoute({
  method: 'get',
  path: '/{id}',
  tags: ['apps'],
  operationId: 'getApp',
  summary: 'An app with its lease, the scopes it uses and its forge state',
  request: { params },
  responses: { 200: json(AppDetail, 'The app.'), ...errors(404) },
});

export const deleteApp = createRoute({
  method: 'delete',
  path: '/{id}',
  tags: ['apps'],
  operationId: 'deleteApp',
  summary: 'Delete an app (soft: its history stays)',
  description:
    'Refused (409, naming them) while the app has runs queued or running, a release active or deploying, or containers on the target. Nothing is removed from the target.',
  request: { params },
  responses: { 200: json(AppDeleted, 'The app is deleted.'), ...errors(404, 409) },
});

export const getAppLease = createRoute({
  method: 'get',
  path: '/{id}/lease',
  tags: ['apps'],
  operationId: 'getAppLease',
  summary: "Who holds the app's scope and what waits there",
  request: { params },
  responses: { 200: json(ScopeView, 'The scope `app:<id>`.'), ...errors(404) },
});

export const listAppRuns = createRoute({
  method: 'get',
  path: '/{id}/runs',
  tags: ['apps'],
  operationId: 'listAppRuns',
  summary: "The app's runs, newest first",
  request: { params, query: limit(200, 20) },
  responses: { 200: json(RunList, 'The runs (none for an unknown app).'), ...errors() },
});

export const listAppDeployments = createRoute({
  method: 'get',
  path: '/{id}/deployments',
  tags: ['apps', 'deployments'],
  operationId: 'listAppDeployments',
  summary: "The app's runs under their earlier name",
  deprecated: true,
  request: { params, query: limit(200, 20) },
  responses: { 200: json(DeploymentList, 'The runs (none for an unknown app).'), ...errors() },
});

export const deployApp = createRoute({
  method: 'post',
  path: '/{id}/deploy',
  tags: ['apps'],
  operationId: 'deployApp',
  summary: 'Request a deploy',
  request: {
    params,
    body: { required: false, content: { 'application/json': { schema: DeployBody } } },
  },
  responses: {
    202: json(RunAccepted, 'The deploy run is queued (or running).'),
    ...errors(404, 409, 422),
  },
});

export const checkAppDrift = createRoute({
  method: 'post',
  path: '/{id}/drift-check',
  tags: ['apps'],
  operationId: 'checkAppDrift',
  summary: 'Request a drift check (one already waiting answers instead)',
  request: { params },
  responses: {
    202: json(RunAccepted, 'The drift-check run.'),
    ...errors(404, 409, 422),
  },
});

export const getAppDrift = createRoute({
  method: 'get',
  path: '/{id}/drift',
  tags: ['apps'],
  operationId: 'getAppDrift',
  summary: "The app's last drift check",
  request: { params },
  responses: {
    200: json(DriftView, 'Its drift state (`unknown` when never checked).'),
    ...errors(404),
  },
});

export const listAppEvents = createRoute({
  method: 'get',
  path: '/{id}/events',
  tags: ['apps'],
  operationId: 'listAppEvents',
  summary: "The app's events, newest first, paged",
  request: {
    params,
    query: z.object({
      limit: intQuery(1, 500, 'At most this many (default 50).', 50),
      before: intQuery(
        1,
        Number.MAX_SAFE_INTEGER,
        'Only events older than this event id (`next.before`).',
      ),
    }),
  },
  responses: { 200: json(EventPage, 'A page of events.'), ...errors() },
});

export const forgeApp = createRoute({
  method: 'post',
  path: '/{id}/forge',
  tags: ['forge'],
  operationId: 'forgeApp',
  summary: 'Forge a kubernetes or nomad app (force: tear it down and forge it again)',
  description:
    'A forged app is refused (409) without force; with it the teardown is queued first and answered in `teardown`. A failed forge is resumed (`resumedFrom`).',
  request: {
    params,
    body: { required: false, content: { 'application/json': { schema: ForgeBody } } },
  },
  responses: { 202: json(ForgeAccepted, 'The forge run.'), ...errors(404, 409, 422) },
});

export const teardownApp = createRoute({
  method: 'delete',
  path: '/{id}/forge',
  tags: ['forge'],
  operationId: 'teardownApp',
  summary: 'Tear a forged app down',
  request: { params },
  responses: { 202: json(RunAccepted, 'The teardown run.'), ...errors(404, 409, 422) },
});

export const listReleases = createRoute({
  method: 'get',
  path: '/{id}/releases',
  tags: ['apps'],
  operationId: 'listReleases',
  summary: "The app's releases, newest first: image, commit, migrations applied, snapshot taken",
  request: {
    params,
    query: z.object({ limit: intQuery(1, 200, 'How many (default 20).', 20) }),
  },
  responses: { 200: json(ReleaseList, 'Its releases.'), ...errors(404) },
});

export const listSnapshots = createRoute({
  method: 'get',
  path: '/{id}/snapshots',
  tags: ['snapshots'],
  operationId: 'listSnapshots',
  summary: "The app's database snapshots, newest first",
  request: { params },
  responses: { 200: json(SnapshotList, 'The snapshots kept.'), ...errors(404) },
});

export const restoreSnapshot = createRoute({
  method: 'post',
  path: '/{id}/snapshots/{ts}/restore',
  tags: ['snapshots'],
  operationId: 'restoreSnapshot',
  summary: 'Restore a snapshot (a restore run, queued behind the app’s deploys)',
  request: {
    params: params.extend({
      ts: z.string().openapi({
        param: { name: 'ts', in: 'path' },
        description: 'The snapshot, e.g. 20261123T004501123Z.',
      }),
    }),
  },
  responses: { 202: json(RunAccepted, 'The restore run.'), ...errors(404, 409, 422) },
});
