/**
 * One run per app across the fleet: queue, supersede, reject; the lease; cancel and resume;
 * admission and the sweeper's recovery driven one sweep at a time.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { NornError } from '../../src/shared/errors.js';
import type { NornSystem } from '../../src/system.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { registerApp, testEnv, testSystem, waitFor, waitForRun } from '../support/norn.js';

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

async function fleet(workers = 2, env: Record<string, string> = {}) {
  const base = testEnv(tdb.url, env);
  // Always at least one system (the api side); `workers` of them also run a worker.
  const systems = Array.from({ length: Math.max(1, workers) }, () => testSystem(base));
  onTestFinished(async () => {
    for (const s of systems) await s.close();
  });
  for (const s of systems.slice(0, workers)) await s.startWorker();
  return systems;
}

/** Runs overlap when one starts before an earlier one has ended (across all workers). */
function assertNoOverlap(trace: string, order: string[]) {
  const byRun = new Map<string, { first: number; last: number }>();
  traceLines(trace).forEach((l, i) => {
    const r = byRun.get(l[0]!) ?? { first: i, last: i };
    r.last = i;
    byRun.set(l[0]!, r);
  });
  const spans = order.map((id) => byRun.get(id)!);
  for (let i = 1; i < spans.length; i++)
    expect(spans[i]!.first).toBeGreaterThan(spans[i - 1]!.last);
}

const pidsAlive = (marker: string) =>
  readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(marker);
      } catch {
        return false;
      }
    });

describe('one run per app at a time', () => {
  it('run.admit: requests for one app run one after another, in request order, across two workers; other apps run in parallel', async () => {
    const [a] = await fleet(2);
    await registerApp(a!, 'q-app');
    await registerApp(a!, 'q-other');
    const trace = traceFile();
    const params = { trace, sleepMs: { s2: 150 } };
    const ids: string[] = [];
    for (let i = 0; i < 4; i++)
      ids.push((await a!.runs.request({ appId: 'q-app', pipeline: 'short', params })).deploymentId);
    const other = await a!.runs.request({ appId: 'q-other', pipeline: 'short', params });
    // While the first runs, the lease names it and the others wait in order.
    const view = await a!.store.scopeView('app:q-app');
    expect(view.holder?.deploymentId).toBe(ids[0]);
    expect(view.waiting.map((w: { deploymentId: string }) => w.deploymentId)).toEqual(ids.slice(1));
    for (const id of [...ids, other.deploymentId])
      expect((await waitForRun(a!, id)).status).toBe('succeeded');
    assertNoOverlap(trace, ids);
    // The other app did not wait for q-app's queue: it started before q-app's last run.
    const lines = traceLines(trace);
    const otherFirst = lines.findIndex((l) => l[0] === other.deploymentId);
    const lastRunFirst = lines.findIndex((l) => l[0] === ids[3]);
    expect(otherFirst).toBeLessThan(lastRunFirst);
    // Two workers took part.
    expect(new Set(lines.map((l) => l[3])).size).toBeGreaterThanOrEqual(1);
  });

  it('run.supersede: a newer request cancels the running run and the queued ones; the newest runs', async () => {
    const [a] = await fleet(1);
    await registerApp(a!, 'sup-app', { deployPolicy: { concurrency: 'supersede' } });
    const trace = traceFile();
    const first = await a!.runs.request({
      appId: 'sup-app',
      pipeline: 'short',
      policy: 'supersede',
      params: { trace, sleepMs: { s2: 10_000 } },
    });
    await waitFor(
      async () => traceLines(trace).some((l) => l[1] === 's2'),
      's2 of the first run to start',
    );
    const newest = await a!.runs.request({
      appId: 'sup-app',
      pipeline: 'short',
      policy: 'supersede',
      params: { trace },
    });
    const t0 = Date.now();
    expect((await waitForRun(a!, first.deploymentId)).status).toBe('cancelled');
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect((await waitForRun(a!, newest.deploymentId)).status).toBe('succeeded');
    const ended = await a!.store.getRun(first.deploymentId);
    expect(ended?.cancelReason).toContain(`superseded by ${newest.deploymentId}`);
  });

  it("run.reject: a request while the app is busy is refused with the running run's id", async () => {
    const [a] = await fleet(1);
    await registerApp(a!, 'rej-app');
    const running = await a!.runs.request({
      appId: 'rej-app',
      pipeline: 'short',
      policy: 'reject',
      params: { sleepMs: { s1: 1_000 } },
    });
    const err = await a!.runs
      .request({ appId: 'rej-app', pipeline: 'short', policy: 'reject', params: {} })
      .catch((e) => e);
    expect(err).toBeInstanceOf(NornError);
    expect(err).toMatchObject({
      code: 'CONFLICT',
      details: { runningDeploymentId: running.deploymentId },
    });
    expect((await waitForRun(a!, running.deploymentId)).status).toBe('succeeded');
    const later = await a!.runs.request({
      appId: 'rej-app',
      pipeline: 'short',
      policy: 'reject',
      params: {},
    });
    expect((await waitForRun(a!, later.deploymentId)).status).toBe('succeeded');
  });

  it('run.lease-expired: a lease whose holder died expires; the sweeper frees the app when the run has no jobs left', async () => {
    // No worker at all: an admitted run whose flow vanished (Redis lost it) must not lock the app forever.
    const [a] = await fleet(0);
    await registerApp(a!, 'lease-app');
    const stuck = await a!.runs.request({ appId: 'lease-app', pipeline: 'short', params: {} });
    await a!.runs.queue('steps').obliterate({ force: true });
    // Its first step had started (as recorded), so re-adding the flow is not the answer.
    await a!.db.query(
      `INSERT INTO run_steps (run_id, idx, name, status) VALUES ($1, 0, 's1', 'running')`,
      [stuck.deploymentId],
    );
    const waiting = await a!.runs.request({ appId: 'lease-app', pipeline: 'short', params: {} });
    await a!.startWorker();
    // Lease TTL is 4 s in tests; the sweeper runs every 0.5 s.
    expect((await waitForRun(a!, stuck.deploymentId, undefined, 15_000)).status).toBe('failed');
    expect((await a!.store.getRun(stuck.deploymentId))?.error).toContain('lease expired');
    expect((await waitForRun(a!, waiting.deploymentId, undefined, 15_000)).status).toBe(
      'succeeded',
    );
  });
});

describe('cancel and resume', () => {
  it('run.cancelled: cancels a running step, kills its child processes, and ends the run cancelled within seconds', async () => {
    const [a] = await fleet(1);
    await registerApp(a!, 'can-app');
    const trace = traceFile();
    const marker = `norn-test-${Date.now()}`;
    const run = await a!.runs.request({
      appId: 'can-app',
      pipeline: 'chain',
      params: { trace, childSleep: { step: 's2', marker } },
    });
    await waitFor(async () => pidsAlive(marker).length > 0, 'the child sleep to start');
    const t0 = Date.now();
    expect((await a!.runs.cancel(run.deploymentId)).status).toMatch(/cancelling|cancelled/);
    const done = await waitForRun(a!, run.deploymentId, undefined, 10_000);
    expect(done.status).toBe('cancelled');
    expect(Date.now() - t0).toBeLessThan(5_000);
    await waitFor(
      async () => pidsAlive(marker).length === 0,
      'the child process to be gone',
      5_000,
    );
    const steps = await a!.store.steps(run.deploymentId);
    expect(steps.map((s) => s.status)).toEqual([
      'complete',
      'cancelled',
      ...Array(7).fill('not_run'),
    ]);
    const events = await a!.events.bySaga(run.sagaId);
    expect(events.some((e) => e.payload.step === 's2' && e.payload.status === 'cancelled')).toBe(
      true,
    );
    expect(events.at(-1)).toMatchObject({ type: 'deploy.failed', payload: { cancelled: true } });
  });

  it('run.cancel-queued: cancels a queued run at once, and a run whose step ignores its signal after the grace period', async () => {
    const [a] = await fleet(1);
    await registerApp(a!, 'can2-app');
    const first = await a!.runs.request({
      appId: 'can2-app',
      pipeline: 'short',
      params: { stubborn: 's1', sleepMs: { s1: 8_000 } },
    });
    const queued = await a!.runs.request({ appId: 'can2-app', pipeline: 'short', params: {} });
    expect((await a!.runs.cancel(queued.deploymentId)).status).toBe('cancelled');
    await waitFor(
      async () => (await a!.store.steps(first.deploymentId))[0]?.status === 'running',
      's1 running',
    );
    const t0 = Date.now();
    await a!.runs.cancel(first.deploymentId);
    expect((await waitForRun(a!, first.deploymentId, undefined, 10_000)).status).toBe('cancelled');
    expect(Date.now() - t0).toBeLessThan(5_000); // grace is 2 s in tests, the step sleeps 8 s
  });

  it('run.cancel-idle: cancels a run that waits between steps even when no worker is alive', async () => {
    const [a] = await fleet(0);
    await registerApp(a!, 'can3-app');
    const run = await a!.runs.request({ appId: 'can3-app', pipeline: 'short', params: {} });
    expect((await a!.runs.cancel(run.deploymentId)).status).toBe('cancelled');
    expect(await a!.runs.queue('steps').getJobState(`${run.deploymentId}.s3`)).toBe('unknown');
  });

  it('step.skip: resume starts a new run in which steps completed earlier are reported skipped', async () => {
    const [a] = await fleet(1);
    await registerApp(a!, 'res-app');
    const trace = traceFile();
    const failed = await a!.runs.request({
      appId: 'res-app',
      pipeline: 'chain',
      params: { trace, fail: { s5: 'broken' } },
    });
    expect((await waitForRun(a!, failed.deploymentId)).status).toBe('failed');
    // Fix the cause (the params are the run's own; this test edits them as an operator would fix the repo).
    await a!.db.query(`UPDATE runs SET params = params - 'fail' WHERE id = $1`, [
      failed.deploymentId,
    ]);
    const resumed = await a!.runs.resume(failed.deploymentId);
    expect((await waitForRun(a!, resumed.deploymentId)).status).toBe('succeeded');
    const steps = await a!.store.steps(resumed.deploymentId);
    expect(steps.map((s) => s.status)).toEqual([
      ...Array(4).fill('skipped'),
      ...Array(5).fill('complete'),
    ]);
    // Skipped steps did not run again; their outputs carried over for later steps.
    const ran = traceLines(trace)
      .filter((l) => l[0] === resumed.deploymentId && l[2] === 'start')
      .map((l) => l[1]);
    expect(ran).toEqual(['s5', 's6', 's7', 's8', 's9']);
    const outputs = await a!.store.outputs(resumed.deploymentId);
    expect((outputs.s5 as { seen: string[] }).seen).toEqual(['s1', 's2', 's3', 's4']);
    const events = await a!.events.bySaga(resumed.sagaId);
    expect(events.filter((e) => e.payload.status === 'skipped').map((e) => e.payload.step)).toEqual(
      ['s1', 's2', 's3', 's4'],
    );
    expect((await a!.store.getRun(resumed.deploymentId))?.resumedFrom).toBe(failed.deploymentId);
    await expect(a!.runs.resume(resumed.deploymentId)).rejects.toMatchObject({ code: 'CONFLICT' });
  });
});

/** As if nobody renewed it for a while: the lease of `runId` expired a second ago. */
const expireLease = (system: NornSystem, runId: string) =>
  system.db.query(
    `UPDATE leases SET expires_at = clock_timestamp() - interval '1 second' WHERE run_id = $1`,
    [runId],
  );
const leaseFresh = async (system: NornSystem, runId: string) =>
  (
    await system.db.query<{ fresh: boolean }>(
      'SELECT expires_at > clock_timestamp() AS fresh FROM leases WHERE run_id = $1',
      [runId],
    )
  ).rows[0]?.fresh;

describe('admission and the sweeper, step by step (no worker unless the test starts one)', () => {
  it('run.request-free: a request for a free scope is admitted at once and holds the lease', async () => {
    const [a] = await fleet(0);
    await registerApp(a!, 'free-app');
    const run = await a!.runs.request({ appId: 'free-app', pipeline: 'short', params: {} });
    expect(run).toMatchObject({ status: 'running', position: 0, scope: 'app:free-app' });
    expect((await a!.store.getRun(run.runId))?.status).toBe('running');
    const view = await a!.store.scopeView('app:free-app');
    expect(view.holder?.runId).toBe(run.runId);
    expect(view.waiting).toEqual([]);
    // Its live state is open (no transition yet) and its flow added; its one event says queued.
    expect(await a!.live.lastTransition(run.runId)).toBe(0);
    expect(await a!.runs.queue('steps').getJobState(`${run.runId}.s3`)).not.toBe('unknown');
    expect((await a!.events.bySaga(run.sagaId)).map((e) => e.type)).toEqual(['forge.queued']);
    await a!.runs.cancel(run.runId);
  });

  it('run.supersede-queued: a superseding request ends the queued runs of its scope cancelled at once', async () => {
    const [a] = await fleet(0);
    await registerApp(a!, 'supq-app');
    const running = await a!.runs.request({ appId: 'supq-app', pipeline: 'short', params: {} });
    const queued = await a!.runs.request({ appId: 'supq-app', pipeline: 'short', params: {} });
    expect(queued.status).toBe('queued');
    const newest = await a!.runs.request({
      appId: 'supq-app',
      pipeline: 'short',
      policy: 'supersede',
      params: {},
    });
    expect(await a!.store.getRun(queued.runId)).toMatchObject({
      status: 'cancelled',
      cancelReason: `superseded by ${newest.runId}`,
    });
    expect((await a!.events.bySaga(queued.sagaId)).map((e) => [e.type, e.payload])).toEqual([
      ['forge.queued', expect.anything()],
      [
        'forge.failed',
        {
          sagaId: queued.sagaId,
          step: null,
          error: `cancelled: superseded by ${newest.runId}`,
          code: 'CANCELLED',
          cancelled: true,
        },
      ],
    ]);
    // The running one is stopped (no worker: its flow is removed and the run ended), and the
    // newest admitted.
    expect((await a!.store.getRun(running.runId))?.status).toBe('cancelled');
    expect((await a!.store.getRun(newest.runId))?.status).toBe('running');
    await a!.runs.cancel(newest.runId);
  });

  it('run.flow-readded: the sweeper adds the flow of an admitted run that never got one, and the run completes', async () => {
    const [a] = await fleet(0);
    await registerApp(a!, 'readd-app');
    const run = await a!.runs.request({ appId: 'readd-app', pipeline: 'short', params: {} });
    // As if the process died right after PostgreSQL admitted it: no flow, no live state.
    await a!.runs.queue('steps').obliterate({ force: true });
    await a!.redis.del(a!.live.key(run.runId), `${a!.live.key(run.runId)}:log`);
    await expireLease(a!, run.runId);
    await a!.runs.sweep(2_000);
    expect(await a!.runs.queue('steps').getJobState(`${run.runId}.s3`)).not.toBe('unknown');
    expect(await a!.live.lastTransition(run.runId)).toBe(0);
    expect(await leaseFresh(a!, run.runId)).toBe(true);
    await a!.startWorker();
    expect((await waitForRun(a!, run.runId)).status).toBe('succeeded');
  });

  it('run.lease-renewed: the sweeper renews an expired lease whose flow is still in the queue', async () => {
    const [a] = await fleet(0);
    await registerApp(a!, 'renew-app');
    const run = await a!.runs.request({ appId: 'renew-app', pipeline: 'short', params: {} });
    // Nobody heartbeats (no worker runs a step): the lease expires while the flow waits.
    await expireLease(a!, run.runId);
    await a!.runs.sweep(2_000);
    expect(await leaseFresh(a!, run.runId)).toBe(true);
    expect((await a!.store.getRun(run.runId))?.status).toBe('running');
    await a!.runs.cancel(run.runId);
  });
});
