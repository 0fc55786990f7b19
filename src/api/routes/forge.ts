/**
 * `POST /api/apps/:id/forge {force?}` and `DELETE /api/apps/:id/forge`: request the forge and
 * teardown pipelines for a kubernetes app, as its forge state allows (src/pipelines/forge/state.ts).
 * The state itself moves only in those runs' hooks; what is requested here is decided from it and
 * from the app's forge and teardown runs still queued or running (the state lags a run's start).
 */
import type { Context } from 'hono';
import { NornError, notFound } from '../../shared/errors.js';
import { readForgeState } from '../../pipelines/forge/state.js';
import type { RunAccepted } from '../../queues/runs.js';
import type { ApiDeps } from '../deps.js';
import { ForgeBody, type ForgeAccepted } from '../../shared/api/schemas.js';
import { jsonBody, requireRedis, storedSpec } from './util.js';

const ACTIVE = new Set(['queued', 'running', 'cancelling']);

/**
 * The app, its spec checked and on the kubernetes or nomad target (nomad's forge only routes and
 * its teardown deregisters the jobs); the forge or teardown run under way.
 */
async function forgeable(deps: ApiDeps, id: string) {
  const app = await deps.apps.get(id);
  if (!app) throw notFound(`app ${id}`);
  requireRedis(deps.redis);
  const target = storedSpec(app).target ?? 'docker';
  if (target !== 'kubernetes' && target !== 'nomad')
    throw new NornError(
      'CONFLICT',
      `app ${app.id} runs on the ${target} target; forge and teardown are for apps with target: kubernetes or nomad (a ${target} app is set up by its deploy)`,
      { details: { target } },
    );
  const busy = (await deps.store.listRuns(app.id, 50)).find(
    (r) => (r.pipeline === 'forge' || r.pipeline === 'teardown') && ACTIVE.has(r.status),
  );
  if (busy)
    throw new NornError(
      'CONFLICT',
      `app ${app.id} has ${busy.pipeline} run ${busy.id} ${busy.status}; wait for it (norn runs show ${busy.id}) or cancel it`,
      { details: { runId: busy.id, pipeline: busy.pipeline, status: busy.status } },
    );
  const state = await readForgeState(deps.db, app.id);
  if (state.state === 'forging' || state.state === 'tearing_down')
    throw new NornError(
      'CONFLICT',
      `app ${app.id} is ${state.state} (run ${state.runId}); wait for it to finish`,
      { details: { runId: state.runId, state: state.state } },
    );
  return { app, state };
}

const request = (
  deps: ApiDeps,
  app: { id: string; spec: Record<string, unknown> },
  pipeline: string,
) => deps.runs.request({ appId: app.id, pipeline, requestedBy: 'api', spec: app.spec });

export async function postForge(deps: ApiDeps, id: string, c: Context): Promise<ForgeAccepted> {
  const force = (await jsonBody(c, ForgeBody)).force ?? false;
  const { app, state } = await forgeable(deps, id);
  let accepted: ForgeAccepted;
  if (state.state === 'forged') {
    if (!force)
      throw new NornError(
        'CONFLICT',
        `app ${app.id} is already forged; use force ({"force": true}, norn forge ${app.id} --force) to tear it down and forge it again`,
        { details: { state: state.state } },
      );
    // One request, two runs in the app's scope: the forge waits behind the teardown.
    const teardown = await request(deps, app, 'teardown');
    accepted = { ...(await request(deps, app, 'forge')), teardown };
  } else if (state.state === 'forge_failed' && state.runId) {
    const last = await deps.store.getRun(state.runId);
    accepted =
      last?.pipeline === 'forge' && last.status === 'failed'
        ? { ...(await deps.runs.resume(last.id, 'api')), resumedFrom: last.id }
        : await request(deps, app, 'forge');
  } else {
    accepted = await request(deps, app, 'forge');
  }
  return accepted;
}

export async function deleteForge(deps: ApiDeps, id: string): Promise<RunAccepted> {
  const { app, state } = await forgeable(deps, id);
  if (state.state === 'unforged')
    throw new NornError('CONFLICT', `app ${app.id} is not forged: there is nothing to tear down`, {
      details: { state: state.state },
    });
  return request(deps, app, 'teardown');
}
