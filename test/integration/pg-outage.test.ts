/**
 * PostgreSQL going away while runs are in their steps: a cluster of this file's own is stopped and
 * started again. The engine's calls around a step, and step services' queries, ride an outage out
 * for NORN_DB_RETRY_MS; past that, the step fails naming the real cause, and the run says so.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { createStepServices } from '../../src/pipelines/index.js';
import { stepJobId } from '../../src/queues/flow.js';
import { silentLogger } from '../../src/shared/logger.js';
import type { NornSystem } from '../../src/system.js';
import { registerApp, testEnv, testSystem, waitFor, waitForRun } from '../support/norn.js';
import { startPgCluster, type PgCluster } from '../support/pg-cluster.js';

let cluster: PgCluster;
beforeAll(async () => {
  cluster = await startPgCluster();
}, 120_000);
afterAll(() => cluster?.destroy());

const REFUSED = String.raw`PostgreSQL unreachable: connect ECONNREFUSED 127\.0\.0\.1:\d+`;

/** A worker on the cluster, and the deploy services main.ts builds for its steps. */
async function start(env: Record<string, string> = {}) {
  const system = testSystem(testEnv(cluster.url, env));
  const step = createStepServices(system.config, process.env, system.stepDb, silentLogger);
  system.setServices(step.services, step.extraQueues);
  system.onClose(() => step.close());
  await system.startWorker();
  onTestFinished(async () => {
    await cluster.start().catch(() => {}); // running already, unless the test failed mid-outage
    await system.close();
  });
  return { system, services: step.services };
}

/** Runs of the 3-step test pipeline `short`; resolves once every one of them is in its s1. */
async function inFirstStep(system: NornSystem, runs: Record<string, Record<string, unknown>>) {
  const ids: string[] = [];
  for (const [appId, params] of Object.entries(runs)) {
    await registerApp(system, appId);
    const run = await system.runs.request({ appId, pipeline: 'short', params });
    ids.push(run.deploymentId);
  }
  const inS1 = async (id: string) => (await system.store.steps(id))[0]?.status === 'running';
  await waitFor(async () => (await Promise.all(ids.map(inS1))).every(Boolean), 'every s1 running');
  return ids;
}

const stepLog = async (system: NornSystem, runId: string, step: string) =>
  (await system.runs.queue('steps').getJobLogs(stepJobId(runId, step))).logs;

describe('a PostgreSQL outage during runs', () => {
  it('of 15 s: runs end as they would have, every transition recorded, and the step logs say what happened', async () => {
    const { system, services } = await start(); // NORN_DB_RETRY_MS: its default, 30 s
    const [ok, boom] = await inFirstStep(system, {
      'pg-ok': { sleepMs: { s1: 4_000 } },
      'pg-boom': { sleepMs: { s1: 4_000 }, fail: { s2: 'boom' } },
    });
    await cluster.stop();
    const downAt = Date.now();
    // A deploy step's own query (the releases store, on the services' pool) waits it out too.
    const releases = services.releases.list('pg-ok');
    await sleep(15_000);
    await cluster.start();
    expect(Date.now() - downAt).toBeGreaterThanOrEqual(15_000);
    expect(await releases).toEqual([]);

    const okRun = await waitForRun(system, ok!, undefined, 60_000);
    expect(okRun).toMatchObject({ status: 'succeeded', error: null });
    const events = await system.events.bySaga(okRun.sagaId);
    expect(
      events.map(
        (e) => `${e.type}${e.payload.step ? ` ${e.payload.step}` : ''}:${e.payload.status ?? ''}`,
      ),
    ).toEqual([
      'forge.queued:',
      ...['s1', 's2', 's3'].flatMap((s) => [`forge.step ${s}:running`, `forge.step ${s}:complete`]),
      'forge.completed:',
    ]);
    const boomRun = await waitForRun(system, boom!, undefined, 60_000);
    expect(boomRun).toMatchObject({
      status: 'failed',
      failedStep: 's2',
      error: 'STEP_FAILED: boom',
    });

    // s1 ran through the outage; s3 (the last step) ended its run once PostgreSQL was back.
    // (A heartbeat in flight when the server stopped meets a reset instead of a refusal.)
    expect((await stepLog(system, ok!, 's1')).join('\n')).toMatch(
      /lease heartbeat failed: PostgreSQL unreachable: .+; the step goes on/,
    );
    const s3 = await stepLog(system, ok!, 's3');
    expect(s3.join('\n')).toMatch(new RegExp(`${REFUSED}; trying again \\(attempt 2,`));
    expect(s3.at(-1)).toMatch(/^PostgreSQL answered again after \d+ failed tries$/);
    const s2 = await stepLog(system, boom!, 's2');
    expect(s2[1]).toBe('failed: STEP_FAILED: boom');
    expect(s2.at(-1)).toMatch(/^PostgreSQL answered again after \d+ failed tries$/);
  }, 120_000);

  it('run.lease-expired-flow-ended: longer than NORN_DB_RETRY_MS: the step fails naming the cause, and the run records it once PostgreSQL is back', async () => {
    const { system, services } = await start({ NORN_DB_RETRY_MS: '2000' });
    const [boom] = await inFirstStep(system, {
      'pg-long': { sleepMs: { s1: 1_000 }, fail: { s2: 'boom' } },
    });
    await cluster.stop();
    const refused = await services.releases.list('pg-long').catch((e: unknown) => e);
    expect(refused).toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringMatching(new RegExp(`^${REFUSED} \\(tried for 2 s\\)$`)),
    });
    // s2 fails while PostgreSQL is down, and recording that fails too, after 2 s of tries.
    const job = () => system.runs.queue('steps').getJob(stepJobId(boom!, 's2'));
    await waitFor(async () => (await (await job())?.getState()) === 'failed', 's2 failed', 30_000);
    const cause = `STEP_FAILED: boom \\(and PostgreSQL could not record it: UNAVAILABLE: ${REFUSED} \\(tried for 2 s\\)\\)`;
    expect((await job())!.failedReason).toMatch(new RegExp(`^${cause}$`));
    await cluster.start();

    const run = await waitForRun(system, boom!, undefined, 60_000);
    expect(run).toMatchObject({ status: 'failed', failedStep: 's2' });
    expect(run.error).toMatch(
      new RegExp(`^lease expired after the flow ended \\(failed\\): step s2 failed: ${cause}$`),
    );
    const log = (await stepLog(system, boom!, 's2')).join('\n');
    expect(log).toContain('failed: STEP_FAILED: boom');
    expect(log).toMatch(new RegExp(`${REFUSED}; trying again`));
    expect(log).toContain(
      'the run was ended after its lease expired: lease expired after the flow ended (failed): step s2 failed: STEP_FAILED: boom',
    );
  }, 120_000);
});
