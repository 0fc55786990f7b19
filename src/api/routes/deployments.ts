/** /api/deployments and /api/sagas: a run's record, cancel, resume, and its saga's events. */
import { Hono } from 'hono';
import { notFound } from '../../shared/errors.js';
import type { ApiDeps } from '../deps.js';
import { stepJobId } from '../../queues/flow.js';
import { requireRedis } from './util.js';

export function deploymentRoutes({ runs, store, redis }: ApiDeps) {
  return (
    new Hono()
      .get('/:id', async (c) => {
        const run = await store.getRun(c.req.param('id'));
        if (!run) throw notFound(`deployment ${c.req.param('id')}`);
        return c.json({ deployment: run, steps: await store.steps(run.id) });
      })
      // What a step wrote while it ran (e.g. docker build output), kept as long as its job:
      // a day after the run succeeded, a week after it failed.
      .get('/:id/steps/:step/log', async (c) => {
        const run = await store.getRun(c.req.param('id'));
        if (!run) throw notFound(`deployment ${c.req.param('id')}`);
        const step = c.req.param('step');
        if (!run.steps.includes(step)) throw notFound(`step ${step} of deployment ${run.id}`);
        const { logs, count } = await runs
          .queue(run.queue)
          .getJobLogs(stepJobId(run.id, step), 0, -1);
        return c.json({ deploymentId: run.id, step, lines: logs, count });
      })
      .post('/:id/cancel', async (c) => {
        const run = await store.getRun(c.req.param('id'));
        if (!run) throw notFound(`deployment ${c.req.param('id')}`);
        requireRedis(redis);
        const { status } = await runs.cancel(run.id, 'cancelled by request');
        return c.json({ deploymentId: run.id, status }, 202);
      })
      .post('/:id/resume', async (c) => {
        const run = await store.getRun(c.req.param('id'));
        if (!run) throw notFound(`deployment ${c.req.param('id')}`);
        requireRedis(redis);
        return c.json({ ...(await runs.resume(run.id, 'api')), resumedFrom: run.id }, 202);
      })
  );
}

export function sagaRoutes({ store, events }: ApiDeps) {
  return new Hono().get('/:id/events', async (c) => {
    const run = await store.getRunBySaga(c.req.param('id'));
    if (!run) throw notFound(`saga ${c.req.param('id')}`);
    return c.json({
      sagaId: run.sagaId,
      deploymentId: run.id,
      events: await events.bySaga(run.sagaId),
    });
  });
}
