/** norn as real processes: a worker killed mid-step, graceful SIGTERM, two api processes, start-up checks. */
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { registerApp, testEnv, testSystem, waitFor, waitForRun } from '../support/norn.js';
import { spawnNorn, TEST_PIPELINES } from '../support/processes.js';
import { connectWs } from '../support/ws.js';

let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => {
  await tdb.drop();
});

const traceFile = () => join(mkdtempSync(join(tmpdir(), 'norn-trace-')), 'trace');
const traceLines = (file: string) =>
  existsSync(file)
    ? readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(' '))
    : [];

function setup(extra: Record<string, string> = {}) {
  const env = testEnv(tdb.url, {
    NORN_PIPELINES_MODULE: TEST_PIPELINES,
    LOG_LEVEL: 'info',
    ...extra,
  });
  const system = testSystem(env);
  onTestFinished(() => system.close());
  return { env, system };
}

describe('workers as processes', () => {
  it('step.restart: a worker SIGKILLed mid-step: the step re-runs on another worker and every later step runs once', async () => {
    const { env, system } = setup({ NORN_WORKER_CONCURRENCY: '1' });
    await registerApp(system, 'kill-app');
    const victim = spawnNorn('worker', env);
    await victim.waitForLog('worker started');
    const trace = traceFile();
    const run = await system.runs.request({
      appId: 'kill-app',
      pipeline: 'chain',
      params: { trace, sleepMs: { s5: 1_500 } },
    });
    await waitFor(
      async () => traceLines(trace).some((l) => l[1] === 's5' && l[2] === 'start'),
      's5 to start in the victim',
    );
    victim.kill('SIGKILL');
    await victim.exited;
    await system.startWorker(); // the survivor
    const done = await waitForRun(system, run.deploymentId, undefined, 30_000);
    expect(done.status).toBe('succeeded');

    const starts = traceLines(trace).filter((l) => l[2] === 'start');
    const count = (step: string) => starts.filter((l) => l[1] === step).length;
    expect(count('s5')).toBe(2);
    const s5pids = starts.filter((l) => l[1] === 's5').map((l) => l[3]);
    expect(s5pids[0]).toBe(String(victim.child.pid));
    expect(s5pids[1]).not.toBe(String(victim.child.pid));
    for (const s of ['s1', 's2', 's3', 's4', 's6', 's7', 's8', 's9']) expect(count(s)).toBe(1);
    const s5 = (await system.store.steps(run.deploymentId)).find((s) => s.name === 's5')!;
    expect(s5.attempts).toBe(2);
  }, 60_000);

  it('SIGTERM lets a running step finish within the grace period, then the process exits', async () => {
    const { env, system } = setup({
      NORN_WORKER_CONCURRENCY: '1',
      NORN_SHUTDOWN_GRACE_MS: '10000',
    });
    await registerApp(system, 'term-app');
    const worker = spawnNorn('worker', env);
    await worker.waitForLog('worker started');
    const trace = traceFile();
    const run = await system.runs.request({
      appId: 'term-app',
      pipeline: 'short',
      params: { trace, sleepMs: { s2: 1_500 } },
    });
    await waitFor(
      async () => traceLines(trace).some((l) => l[1] === 's2' && l[2] === 'start'),
      's2 to start',
    );
    worker.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    // s2 finished in the terminating worker; s3 waits for a worker that is still running.
    const s2 = traceLines(trace).filter((l) => l[1] === 's2');
    expect(s2.map((l) => l[2])).toEqual(['start', 'end']);
    await system.startWorker();
    expect((await waitForRun(system, run.deploymentId)).status).toBe('succeeded');
    expect(traceLines(trace).filter((l) => l[1] === 's2' && l[2] === 'start')).toHaveLength(1);
  }, 60_000);

  it('SIGTERM hands a step that outlives the grace period back to the queue without spending an attempt', async () => {
    const { env, system } = setup({ NORN_WORKER_CONCURRENCY: '1', NORN_SHUTDOWN_GRACE_MS: '300' });
    await registerApp(system, 'term2-app');
    const worker = spawnNorn('worker', env);
    await worker.waitForLog('worker started');
    const trace = traceFile();
    const run = await system.runs.request({
      appId: 'term2-app',
      pipeline: 'short',
      params: { trace, sleepMs: { s2: 4_000 } },
    });
    await waitFor(
      async () => traceLines(trace).some((l) => l[1] === 's2' && l[2] === 'start'),
      's2 to start',
    );
    const t0 = Date.now();
    worker.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(3_000);
    await system.startWorker();
    expect((await waitForRun(system, run.deploymentId)).status).toBe('succeeded');
    const s2 = traceLines(trace).filter((l) => l[1] === 's2' && l[2] === 'start');
    expect(s2).toHaveLength(2);
    expect(s2[0]![3]).toBe(String(worker.child.pid));
    expect(s2[1]![3]).not.toBe(String(worker.child.pid));
  }, 60_000);
});

describe('api processes', () => {
  it('two api processes each relay the events of a worker running in a third process', async () => {
    const token = 'two-apis-token-0123456789';
    const { env, system } = setup({ NORN_API_TOKEN: token });
    await registerApp(system, 'two-api-app');
    const worker = spawnNorn('worker', env);
    const api1 = spawnNorn('api', { ...env, PORT: '0' });
    const api2 = spawnNorn('api', { ...env, PORT: '0' });
    await Promise.all([
      worker.waitForLog('worker started'),
      api1.waitForLog('api listening'),
      api2.waitForLog('api listening'),
    ]);
    const urlOf = (p: ReturnType<typeof spawnNorn>) =>
      /"url":"(http:\/\/[^"]+)"/.exec(p.output())![1]!;
    const c1 = await connectWs(urlOf(api1), { app: 'two-api-app' }, { token });
    const c2 = await connectWs(urlOf(api2), { app: 'two-api-app' }, { token });
    const res = await fetch(`${urlOf(api1)}/api/apps/two-api-app/deploy`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(res.status).toBe(202);
    const { sagaId } = await res.json();
    await Promise.all([c1.waitForType('deploy.completed'), c2.waitForType('deploy.completed')]);
    const stored = (await system.events.bySaga(sagaId)).map((e) => e.id);
    expect(c1.events.map((e) => e.id)).toEqual(stored);
    expect(c2.events.map((e) => e.id)).toEqual(stored);
    c1.close();
    c2.close();
  }, 60_000);

  it('refuses to start without a token unless bound to loopback, and lists every config problem at once', async () => {
    const { env } = setup();
    const open = spawnNorn('api', { ...env, HOST: '0.0.0.0', NORN_API_TOKEN: '' });
    expect(await open.exited).toBe(1);
    expect(open.output()).toMatch(/NORN_API_TOKEN: required when HOST is not loopback/);
    const bad = spawnNorn('api', {
      ...env,
      PORT: 'eighty',
      REDIS_URL: 'not a url',
      NORN_WORKER_CONCURRENCY: '0',
    });
    expect(await bad.exited).toBe(1);
    for (const v of ['PORT', 'REDIS_URL', 'NORN_WORKER_CONCURRENCY'])
      expect(bad.output()).toContain(v);
  }, 30_000);
});
