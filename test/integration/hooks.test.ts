/**
 * Life-cycle hooks (issue 8, point 3): onStart, onSucceed, onFail and onCancel run exactly once
 * per run, durably: after a worker is killed mid-hook the hook still commits once; a hook that
 * throws is retried and then reported, never lost.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NornSystem } from '../../src/system.js';
import type { WorkerFleet } from '../../src/workers/fleet.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { registerApp, testEnv, testSystem, waitFor, waitForRun } from '../support/norn.js';
import { spawnNorn, TEST_PIPELINES } from '../support/processes.js';

let tdb: TestDatabase;
let env: Record<string, string>;
let sys: NornSystem;
let fleet: WorkerFleet;

beforeAll(async () => {
  tdb = await createTestDatabase();
  await tdb.db.query(`CREATE TABLE hook_effects (
    run_id uuid, hook text, attempt int, pid int, started boolean, at timestamptz DEFAULT clock_timestamp())`);
  env = testEnv(tdb.url, {
    NORN_HOOK_POLL_MS: '50',
    NORN_HOOK_BACKOFF_MS: '50',
    NORN_HOOK_ATTEMPTS: '3',
    NORN_PIPELINES_MODULE: TEST_PIPELINES,
  });
  sys = testSystem(env);
  fleet = await sys.startWorker();
  await registerApp(sys, 'hk-app');
});
afterAll(async () => {
  await sys.close();
  await tdb.drop();
});

const traceFile = () => {
  const f = join(tmpdir(), `norn-hooks-${randomBytes(4).toString('hex')}.log`);
  writeFileSync(f, '');
  return f;
};
const tries = (file: string) =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' '));
const effects = async (runId: string) =>
  (
    await tdb.db.query<{ hook: string; attempt: number; pid: number; started: boolean }>(
      'SELECT hook, attempt, pid, started FROM hook_effects WHERE run_id = $1 ORDER BY at',
      [runId],
    )
  ).rows;
const hooksOf = (runId: string) => sys.store.hooks(runId);
const settled = (runId: string, n: number) =>
  waitFor(async () => {
    const h = await hooksOf(runId);
    return h.length === n && h.every((x) => x.status !== 'pending') ? h : undefined;
  }, `${n} hooks of ${runId} to settle`);
const request = (params: Record<string, unknown> = {}, system = sys) =>
  system.runs.request({ appId: 'hk-app', pipeline: 'hooked', params });

describe('life-cycle hooks', () => {
  it('hook.done: runs onStart, then onSucceed, once each', async () => {
    const run = await request();
    expect((await waitForRun(sys, run.runId)).status).toBe('succeeded');
    const hooks = await settled(run.runId, 2);
    expect(hooks.map((h) => [h.hook, h.status, h.attempts])).toEqual([
      ['onStart', 'done', 1],
      ['onSucceed', 'done', 1],
    ]);
    expect((await effects(run.runId)).map((e) => e.hook)).toEqual(['onStart', 'onSucceed']);
  });

  it('hook.due: runs onFail for a failed run and onCancel for a cancelled one; a run cancelled while queued gets onCancel only', async () => {
    const failed = await request({ fail: { s2: 'no' } });
    const running = await request({ sleepMs: { s1: 10_000 } });
    const queued = await request();
    await waitFor(
      async () => (await sys.store.getRun(running.runId))?.status === 'running',
      'the second run to start',
    );
    await sys.runs.cancel(queued.runId);
    await sys.runs.cancel(running.runId);
    for (const r of [failed, running, queued]) await waitForRun(sys, r.runId);
    await settled(failed.runId, 2);
    await settled(running.runId, 2);
    await settled(queued.runId, 1);
    expect((await effects(failed.runId)).map((e) => e.hook)).toEqual(['onStart', 'onFail']);
    expect((await effects(running.runId)).map((e) => e.hook)).toEqual(['onStart', 'onCancel']);
    expect(await effects(queued.runId)).toEqual([
      expect.objectContaining({ hook: 'onCancel', started: false }),
    ]);
  }, 30_000);

  it('hook.retry: retries a hook that throws; only the try that succeeded leaves its database writes', async () => {
    const trace = traceFile();
    const run = await request({ hookTrace: trace, hookFails: { onSucceed: 2 } });
    await waitForRun(sys, run.runId);
    const hooks = await settled(run.runId, 2);
    expect(hooks[1]).toMatchObject({ hook: 'onSucceed', status: 'done', attempts: 3, error: null });
    // Three tries ran (the file outside the database shows each); one committed.
    expect(
      tries(trace)
        .filter((t) => t[1] === 'onSucceed')
        .map((t) => t[2]),
    ).toEqual(['1', '2', '3']);
    expect((await effects(run.runId)).filter((e) => e.hook === 'onSucceed')).toEqual([
      expect.objectContaining({ attempt: 3 }),
    ]);
    // What the hook emitted is in the saga log exactly as its writes are: once, from try 3.
    const { rows } = await tdb.db.query<{ payload: Record<string, unknown> }>(
      `SELECT payload FROM events WHERE run_id = $1 AND type = 'hooked.effect' ORDER BY seq`,
      [run.runId],
    );
    expect(rows.map((r) => r.payload)).toEqual([
      { hook: 'onStart', attempt: 1 },
      { hook: 'onSucceed', attempt: 3 },
    ]);
  });

  it('hook.failed: reports a hook that fails every try, as a hook_failed event and on the run', async () => {
    const run = await request({ hookFails: { onSucceed: 99 } });
    await waitForRun(sys, run.runId);
    const hooks = await settled(run.runId, 2);
    expect(hooks[1]).toMatchObject({
      hook: 'onSucceed',
      status: 'failed',
      attempts: 3,
      error: 'onSucceed fails on try 3',
    });
    const events = await sys.events.bySaga(run.runId);
    expect(events.at(-1)).toMatchObject({
      type: 'hooked.hook_failed',
      payload: { hook: 'onSucceed', attempts: 3, error: 'onSucceed fails on try 3' },
    });
    // The run itself stays succeeded: a hook reports, it does not rewrite the run.
    expect((await sys.store.getRun(run.runId))?.status).toBe('succeeded');
    const api = sys.createApi();
    const detail = await (await api.request(`/api/runs/${run.runId}`)).json();
    expect(detail.hooks.map((h: { status: string }) => h.status)).toEqual(['done', 'failed']);
  });

  it('a worker killed mid-hook: another runs the hook, and it commits exactly once', async () => {
    // Only the subprocess runs hooks until it is killed.
    await fleet.hooks.close();
    const trace = traceFile();
    const worker = spawnNorn('worker', { ...env, LOG_LEVEL: 'info' });
    await worker.waitForLog('worker started', 60_000);
    const run = await request({ hookTrace: trace, hookSleepMs: { onSucceed: 30_000 } });
    await waitFor(
      async () => tries(trace).some((t) => t[1] === 'onSucceed'),
      'onSucceed to begin in the subprocess',
    );
    expect(tries(trace).find((t) => t[1] === 'onSucceed')![3]).toBe(String(worker.child.pid));
    worker.kill('SIGKILL');
    await worker.exited;
    // A new worker picks the hook up (its row came back when the killed one's transaction died).
    const sys2 = testSystem({ ...env });
    await sys2.startWorker();
    try {
      const hooks = await waitFor(
        async () => {
          const h = await hooksOf(run.runId);
          return h.find((x) => x.hook === 'onSucceed')?.status === 'done' ? h : undefined;
        },
        'onSucceed to be done after the kill',
        45_000,
      );
      expect(hooks.find((h) => h.hook === 'onSucceed')!.attempts).toBe(1);
      const onSucceed = (await effects(run.runId)).filter((e) => e.hook === 'onSucceed');
      expect(onSucceed).toEqual([expect.objectContaining({ pid: process.pid })]);
      expect(tries(trace).filter((t) => t[1] === 'onSucceed')).toHaveLength(2);
    } finally {
      await sys2.close();
    }
  }, 90_000);
});
