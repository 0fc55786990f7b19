/**
 * /api/runs: a run's record with its steps, its events, a step's log, cancel and resume.
 * /api/deployments and /api/sagas are the same routes under their earlier names (a run's id is its
 * saga id), answering in their earlier shapes, so clients written against them keep working. The
 * routes are defined (and documented) in src/shared/api/runs.ts.
 */
import { notFound } from '../../shared/errors.js';
import { deploymentOps, listSagaEvents, runOps } from '../../shared/api/runs.js';
import type { ApiDeps } from '../deps.js';
import { stepJobId } from '../../queues/flow.js';
import { requireRedis, router } from './util.js';

/** What both names answer, before the run is named in the answer. */
function runReads({ runs, store, redis, events }: ApiDeps, noun: 'run' | 'deployment') {
  const find = async (id: string) => {
    const run = await store.getRun(id);
    if (!run) throw notFound(`${noun} ${id}`);
    return run;
  };
  return {
    find,
    detail: async (id: string) => {
      const run = await find(id);
      const [steps, hooks] = await Promise.all([store.steps(run.id), store.hooks(run.id)]);
      return { run, steps, hooks };
    },
    events: async (id: string) => {
      const run = await find(id);
      return { id: run.id, events: await events.bySaga(run.id) };
    },
    // What a step wrote while it ran (e.g. docker build output), kept as long as its job:
    // a day after the run succeeded, a week after it failed.
    log: async (id: string, step: string) => {
      const run = await find(id);
      if (!run.steps.includes(step)) throw notFound(`step ${step} of ${noun} ${run.id}`);
      const { logs, count } = await runs
        .queue(run.queue)
        .getJobLogs(stepJobId(run.id, step), 0, -1);
      return { id: run.id, step, lines: logs, count };
    },
    cancel: async (id: string) => {
      const run = await find(id);
      requireRedis(redis);
      const { status } = await runs.cancel(run.id, 'cancelled by request');
      return { id: run.id, status };
    },
    resume: async (id: string) => {
      const run = await find(id);
      requireRedis(redis);
      return { ...(await runs.resume(run.id, 'api')), resumedFrom: run.id };
    },
  };
}

/** /api/runs. */
export function runRoutes(deps: ApiDeps) {
  const r = runReads(deps, 'run');
  const ids = (id: string) => ({ runId: id, sagaId: id });
  return router()
    .openapi(runOps.get, async (c) => c.json(await r.detail(c.req.valid('param').id), 200))
    .openapi(runOps.events, async (c) => {
      const { id, events } = await r.events(c.req.valid('param').id);
      return c.json({ ...ids(id), events }, 200);
    })
    .openapi(runOps.log, async (c) => {
      const { id, ...log } = await r.log(c.req.valid('param').id, c.req.valid('param').step);
      return c.json({ ...ids(id), ...log }, 200);
    })
    .openapi(runOps.cancel, async (c) => {
      const { id, status } = await r.cancel(c.req.valid('param').id);
      return c.json({ ...ids(id), status }, 202);
    })
    .openapi(runOps.resume, async (c) => c.json(await r.resume(c.req.valid('param').id), 202));
}

/** /api/deployments: the same, answering `deployment` and `deploymentId`. */
export function deploymentRoutes(deps: ApiDeps) {
  const r = runReads(deps, 'deployment');
  const ids = (id: string) => ({ deploymentId: id, sagaId: id });
  return router()
    .openapi(deploymentOps.get, async (c) => {
      const { run, ...rest } = await r.detail(c.req.valid('param').id);
      return c.json({ deployment: run, ...rest }, 200);
    })
    .openapi(deploymentOps.events, async (c) => {
      const { id, events } = await r.events(c.req.valid('param').id);
      return c.json({ ...ids(id), events }, 200);
    })
    .openapi(deploymentOps.log, async (c) => {
      const { id, ...log } = await r.log(c.req.valid('param').id, c.req.valid('param').step);
      return c.json({ ...ids(id), ...log }, 200);
    })
    .openapi(deploymentOps.cancel, async (c) => {
      const { id, status } = await r.cancel(c.req.valid('param').id);
      return c.json({ ...ids(id), status }, 202);
    })
    .openapi(deploymentOps.resume, async (c) =>
      c.json(await r.resume(c.req.valid('param').id), 202),
    );
}

/** /api/sagas/:id/events, the events route's earlier name. */
export function sagaRoutes({ store, events }: ApiDeps) {
  return router().openapi(listSagaEvents, async (c) => {
    const run = await store.getRunBySaga(c.req.valid('param').id);
    if (!run) throw notFound(`saga ${c.req.valid('param').id}`);
    return c.json(
      { sagaId: run.id, runId: run.id, deploymentId: run.id, events: await events.bySaga(run.id) },
      200,
    );
  });
}
