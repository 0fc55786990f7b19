/**
 * /api/runs: a run's record with its steps, its events, a step's log, cancel and resume.
 * /api/deployments and /api/sagas are the same routes under their earlier names (a run's id is its
 * saga id), answering in their earlier shapes, so clients written against them keep working.
 */
import { Hono } from 'hono';
import { notFound } from '../../shared/errors.js';
import type { ApiDeps } from '../deps.js';
import { stepJobId } from '../../queues/flow.js';
import { requireRedis } from './util.js';

/** `noun` names the run in answers and errors: 'run' under /api/runs, 'deployment' under the alias. */
export function runRoutes({ runs, store, redis, events }: ApiDeps, noun: 'run' | 'deployment') {
  const find = async (id: string) => {
    const run = await store.getRun(id);
    if (!run) throw notFound(`${noun} ${id}`);
    return run;
  };
  const ids = (id: string) =>
    noun === 'run' ? { runId: id, sagaId: id } : { deploymentId: id, sagaId: id };
  return (
    new Hono()
      .get('/:id', async (c) => {
        const run = await find(c.req.param('id'));
        const [steps, hooks] = await Promise.all([store.steps(run.id), store.hooks(run.id)]);
        return c.json({ [noun]: run, steps, hooks });
      })
      .get('/:id/events', async (c) => {
        const run = await find(c.req.param('id'));
        return c.json({ ...ids(run.id), events: await events.bySaga(run.id) });
      })
      // What a step wrote while it ran (e.g. docker build output), kept as long as its job:
      // a day after the run succeeded, a week after it failed.
      .get('/:id/steps/:step/log', async (c) => {
        const run = await find(c.req.param('id'));
        const step = c.req.param('step');
        if (!run.steps.includes(step)) throw notFound(`step ${step} of ${noun} ${run.id}`);
        const { logs, count } = await runs
          .queue(run.queue)
          .getJobLogs(stepJobId(run.id, step), 0, -1);
        return c.json({ ...ids(run.id), step, lines: logs, count });
      })
      .post('/:id/cancel', async (c) => {
        const run = await find(c.req.param('id'));
        requireRedis(redis);
        const { status } = await runs.cancel(run.id, 'cancelled by request');
        return c.json({ ...ids(run.id), status }, 202);
      })
      .post('/:id/resume', async (c) => {
        const run = await find(c.req.param('id'));
        requireRedis(redis);
        return c.json({ ...(await runs.resume(run.id, 'api')), resumedFrom: run.id }, 202);
      })
  );
}

/** /api/sagas/:id/events, the events route's earlier name. */
export function sagaRoutes({ store, events }: ApiDeps) {
  return new Hono().get('/:id/events', async (c) => {
    const run = await store.getRunBySaga(c.req.param('id'));
    if (!run) throw notFound(`saga ${c.req.param('id')}`);
    return c.json({
      sagaId: run.id,
      runId: run.id,
      deploymentId: run.id,
      events: await events.bySaga(run.id),
    });
  });
}
