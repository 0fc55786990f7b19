/** The pipeline engine on real Redis and PostgreSQL: flows, failures, outputs, versions, retries. */
import { readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { registerApp, testEnv, testSystem, waitForRun } from '../support/norn.js';
import { chain9 } from '../support/pipelines.js';
import { rootJobId } from '../../src/queues/flow.js';

let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => {
  await tdb.drop();
});

const traceFile = () => join(mkdtempSync(join(tmpdir(), 'norn-trace-')), 'trace');
const lines = (file: string) =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(' '));

async function started(pipelines = undefined as Parameters<typeof testSystem>[1]) {
  const system = testSystem(testEnv(tdb.url), pipelines);
  onTestFinished(() => system.close());
  await system.startWorker();
  return system;
}

describe('pipeline engine', () => {
  it('step.finish: runs every step as a child job in order, deepest first, and records outputs and events', async () => {
    const system = await started();
    await registerApp(system, 'alpha');
    const trace = traceFile();
    const run = await system.runs.request({ appId: 'alpha', pipeline: 'chain', params: { trace } });
    const done = await waitForRun(system, run.deploymentId);
    expect(done.status).toBe('succeeded');
    expect(done.pipelineVersion).toBe('1');

    const starts = lines(trace)
      .filter((l) => l[2] === 'start')
      .map((l) => l[1]);
    expect(starts).toEqual(['s1', 's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9']);

    // The flow: root is the last step, its child the one before, job ids derived from the run id.
    const queue = system.runs.queue('steps');
    const root = await queue.getJob(
      rootJobId({ id: run.deploymentId, steps: chain9.steps.map((s) => s.name) }),
    );
    expect(root?.id).toBe(`${run.deploymentId}.s9`);
    expect(root?.name).toBe('s9');

    // A step reads the outputs of all earlier steps.
    const outputs = await system.store.outputs(run.deploymentId);
    expect((outputs.s3 as { seen: string[] }).seen).toEqual(['s1', 's2']);
    expect((outputs.s9 as { seen: string[] }).seen).toEqual([
      's1',
      's2',
      's3',
      's4',
      's5',
      's6',
      's7',
      's8',
    ]);

    const events = await system.events.bySaga(run.sagaId);
    const types = events.map((e) => `${e.type}${e.payload.status ? ':' + e.payload.status : ''}`);
    expect(types[0]).toBe('deploy.queued');
    expect(types.filter((t) => t === 'deploy.step:running')).toHaveLength(9);
    expect(types.filter((t) => t === 'deploy.step:complete')).toHaveLength(9);
    expect(types.at(-1)).toBe('deploy.completed');
    expect(events.at(-1)!.payload).toEqual({ sagaId: run.sagaId, imageTag: 'test:9' });
    const complete3 = events.find(
      (e) => e.payload.step === 's3' && e.payload.status === 'complete',
    )!;
    expect(complete3.payload).toMatchObject({ step: 's3', sagaId: run.sagaId, index: 3, total: 9 });
    expect(typeof complete3.payload.durationMs).toBe('number');
    // Envelope ids grow; per-app sequence is gapless.
    const seqs = events.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(seqs.at(-1)! - seqs[0]! + 1).toBe(seqs.length);
    expect(events.every((e, i) => i === 0 || e.id > events[i - 1]!.id)).toBe(true);
  });

  it('run.fail: fails the run at a failing step; later steps are recorded not run, never left waiting', async () => {
    const system = await started();
    await registerApp(system, 'beta');
    const trace = traceFile();
    const run = await system.runs.request({
      appId: 'beta',
      pipeline: 'chain',
      params: { trace, fail: { s3: 'boom at s3' } },
    });
    const done = await waitForRun(system, run.deploymentId);
    expect(done).toMatchObject({ status: 'failed', failedStep: 's3' });
    expect(done.error).toContain('boom at s3');
    const steps = await system.store.steps(run.deploymentId);
    expect(steps.map((s) => s.status)).toEqual([
      'complete',
      'complete',
      'failed',
      ...Array(6).fill('not_run'),
    ]);
    expect(lines(trace).map((l) => l[1])).not.toContain('s4');
    const events = await system.events.bySaga(run.sagaId);
    expect(events.at(-1)).toMatchObject({
      type: 'deploy.failed',
      payload: { sagaId: run.sagaId, step: 's3' },
    });
    // The app is free again: the next run starts.
    const next = await system.runs.request({ appId: 'beta', pipeline: 'chain', params: {} });
    expect((await waitForRun(system, next.deploymentId)).status).toBe('succeeded');
    // BullMQ: the root job ended failed rather than waiting for ever.
    const root = await system.runs.queue('steps').getJob(`${run.deploymentId}.s9`);
    await expect.poll(() => root?.getState()).toBe('failed');
  });

  it('keeps error codes as codes, on the run, its step and its failure event', async () => {
    const system = await started();
    await registerApp(system, 'coded');
    const failed = await system.runs.request({
      appId: 'coded',
      pipeline: 'short',
      params: { fail: { s2: 'the disk is full' } },
    });
    const cancelled = await system.runs.request({
      appId: 'coded',
      pipeline: 'short',
      params: { sleepMs: { s1: 10_000 } },
    });
    const queued = await system.runs.request({ appId: 'coded', pipeline: 'short' });
    await waitForRun(system, failed.runId);
    await system.runs.cancel(queued.runId);
    await system.runs.cancel(cancelled.runId);
    expect(await waitForRun(system, failed.runId)).toMatchObject({
      status: 'failed',
      error: 'STEP_FAILED: the disk is full',
      errorCode: 'STEP_FAILED',
    });
    const steps = await system.store.steps(failed.runId);
    expect(steps[1]).toMatchObject({ name: 's2', status: 'failed', errorCode: 'STEP_FAILED' });
    const events = await system.events.bySaga(failed.runId);
    expect(events.at(-1)).toMatchObject({
      type: 'forge.failed',
      payload: { code: 'STEP_FAILED', step: 's2' },
    });
    for (const id of [cancelled.runId, queued.runId])
      expect(await waitForRun(system, id)).toMatchObject({
        status: 'cancelled',
        errorCode: 'CANCELLED',
      });
  });

  it('step.retry: retries a retryable step within its attempts and the run completes', async () => {
    const system = await started();
    await registerApp(system, 'gamma');
    const run = await system.runs.request({
      appId: 'gamma',
      pipeline: 'chain',
      params: { flaky: { s4: 2 } },
    });
    expect((await waitForRun(system, run.deploymentId)).status).toBe('succeeded');
    const s4 = (await system.store.steps(run.deploymentId)).find((s) => s.name === 's4')!;
    expect(s4.attempts).toBe(3);
    const events = await system.events.bySaga(run.sagaId);
    const retries = events.filter((e) => e.payload.step === 's4' && e.payload.status === 'failed');
    expect(retries).toHaveLength(2);
    expect(retries.every((e) => e.payload.willRetry === true)).toBe(true);
  });

  it('runs the pipeline version a run started with, even after a newer one is registered', async () => {
    const v2 = { ...chain9, version: '2', steps: chain9.steps.slice(0, 2) };
    const system = await started([chain9, v2, { ...chain9, version: '1-old', name: 'other' }]);
    await registerApp(system, 'delta');
    const run = await system.runs.request({ appId: 'delta', pipeline: 'chain', params: {} });
    const done = await waitForRun(system, run.deploymentId);
    expect(done.pipelineVersion).toBe('2');
    expect(done.steps).toEqual(['s1', 's2']);
    // A failed v1 run resumed after v2 exists still runs v1's nine steps.
    const system1 = testSystem(testEnv(tdb.url), [chain9]);
    onTestFinished(() => system1.close());
    await system1.startWorker();
    await registerApp(system1, 'epsilon');
    const failed = await system1.runs.request({
      appId: 'epsilon',
      pipeline: 'chain',
      params: { fail: { s2: 'x' } },
    });
    expect((await waitForRun(system1, failed.deploymentId)).status).toBe('failed');
    const resumed = await system.runs.resume(failed.deploymentId);
    // `system` has both versions; the resumed run pins v1 (but s2 still fails with the same params).
    const r = await waitForRun(system, resumed.deploymentId);
    expect(r.pipelineVersion).toBe('1');
    expect(r.steps).toHaveLength(9);
  });

  it("step.progress: a step's progress events follow its start, in order, before its completion (which carries its output)", async () => {
    const system = await started();
    await registerApp(system, 'kappa');
    const run = await system.runs.request({
      appId: 'kappa',
      pipeline: 'chain',
      params: { progress: { step: 's3', desired: 2 } },
    });
    expect((await waitForRun(system, run.deploymentId)).status).toBe('succeeded');
    const events = await system.events.bySaga(run.sagaId);
    const s3 = events.filter((e) => e.payload.step === 's3');
    expect(
      s3.map((e) => `${e.type}:${e.payload.status ?? `${e.payload.ready}/${e.payload.desired}`}`),
    ).toEqual([
      'deploy.step:running',
      'deploy.progress:0/2',
      'deploy.progress:1/2',
      'deploy.progress:2/2',
      'deploy.step:complete',
    ]);
    expect(s3[1]!.payload).toEqual({ step: 's3', sagaId: run.sagaId, ready: 0, desired: 2 });
    // Gapless per app, in commit order: a progress event is numbered like every other.
    const seqs = events.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(s3.at(-1)!.payload.output).toMatchObject({ step: 's3', seen: ['s1', 's2'] });
  });

  it('step.self-skip: a step can report itself skipped, with its reason', async () => {
    const system = await started();
    await registerApp(system, 'zeta');
    const run = await system.runs.request({
      appId: 'zeta',
      pipeline: 'tidy',
      params: { skip: 'no build.test configured' },
    });
    expect((await waitForRun(system, run.deploymentId)).status).toBe('succeeded');
    const steps = await system.store.steps(run.deploymentId);
    expect(steps.map((s) => s.status)).toEqual(['complete', 'skipped', 'complete']);
    const events = await system.events.bySaga(run.sagaId);
    expect(
      events.find((e) => e.payload.step === 'work' && e.payload.status === 'skipped')?.payload
        .reason,
    ).toBe('no build.test configured');
  });

  it('finalizer.run: runs the finalizer after a failed run, with the pinned spec, and records it', async () => {
    const system = await started();
    await registerApp(system, 'eta');
    const trace = traceFile();
    const run = await system.runs.request({
      appId: 'eta',
      pipeline: 'tidy',
      spec: { name: 'eta-pinned' },
      params: { trace, fail: { work: 'nope' } },
    });
    expect((await waitForRun(system, run.deploymentId)).status).toBe('failed');
    await expect
      .poll(async () => (await system.store.steps(run.deploymentId))[2]?.status, {
        timeout: 10_000,
      })
      .toBe('complete');
    expect(lines(trace).map((l) => l[1])).toEqual(['prepare', 'prepare', 'work', 'cleanup']);
    expect((await system.store.outputs(run.deploymentId)).cleanup).toEqual({
      cleaned: true,
      appName: 'eta-pinned',
    });
    const last = (await system.events.bySaga(run.sagaId)).at(-1)!;
    expect(last.payload).toMatchObject({
      step: 'cleanup',
      status: 'complete',
      afterRunEnded: true,
    });
    expect((await system.store.getRun(run.deploymentId))!.status).toBe('failed');
  });
});
