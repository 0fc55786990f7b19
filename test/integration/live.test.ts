/**
 * Live step transitions (Redis) and their recording in PostgreSQL: order, idempotence, gaps,
 * fencing, a recorder that fails, live state lost mid-run, and several workers recording one run.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { Recorder } from '../../src/queues/recorder.js';
import { silentLogger } from '../../src/shared/logger.js';
import { RunStore, type LogEntry } from '../../src/shared/store/runs.js';
import type { EventEnvelope } from '../../src/shared/events.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { registerApp, testEnv, testSystem, waitFor, waitForRun } from '../support/norn.js';

let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => {
  await tdb.drop();
});

/** A system without workers and a run of `short` (s1, s2, s3) admitted and live on app `appId`. */
async function liveRun(appId: string) {
  const system = testSystem(testEnv(tdb.url));
  onTestFinished(() => system.close());
  await registerApp(system, appId);
  const accepted = await system.runs.request({ appId, pipeline: 'short', params: { n: 1 } });
  expect(accepted.status).toBe('running');
  return { system, runId: accepted.deploymentId, sagaId: accepted.sagaId };
}

const stepEvents = (events: EventEnvelope[]) =>
  events
    .filter((e) => e.type.endsWith('.step'))
    .map((e) => `${String(e.payload.step)}:${String(e.payload.status)}`);

describe('live step transitions', () => {
  it('step.record: records a live log in order, each transition once; a gap waits for what is missing', async () => {
    const { system, runId, sagaId } = await liveRun('rec-order');
    const { live, store } = system;
    const s1 = await live.start(runId, 's1', 'w1');
    expect(s1).toMatchObject({ action: 'run', attempt: 1, params: { n: 1 } });
    const f1 = await live.finish(runId, 's1', 'complete', { out: 1 }, 12);
    const s2 = await live.start(runId, 's2', 'w2');
    expect(f1.action === 'ok' && s2.action === 'run').toBe(true);
    const log = s2.action === 'run' ? s2.log : [];
    expect(log).toHaveLength(3);
    // s3 cannot start while s2, the step before it, has not finished.
    expect(await live.start(runId, 's3', 'w3', 's2')).toEqual({ action: 'early' });

    // Only the third transition: nothing may be recorded before the first two.
    const gap = await store.record([{ runId, log: [log[2]!] }]);
    expect(gap.gaps).toEqual({ [runId]: 1 });
    expect(gap.events).toEqual([]);
    expect((await store.steps(runId)).map((s) => s.status)).toEqual([
      'pending',
      'pending',
      'pending',
    ]);

    const all = await store.record([{ runId, log: [log[2]!, log[0]!, log[1]!] }]);
    expect(all.recorded).toEqual({ [runId]: 3 });
    expect(all.gaps).toEqual({});
    expect(
      all.events
        .map((e) => JSON.parse(e) as EventEnvelope)
        .map((e) => `${e.payload.step}:${e.payload.status}`),
    ).toEqual(['s1:running', 's1:complete', 's2:running']);
    const steps = await store.steps(runId);
    expect(steps.map((s) => [s.name, s.status, s.attempts, s.worker])).toEqual([
      ['s1', 'complete', 1, 'w1'],
      ['s2', 'running', 1, 'w2'],
      ['s3', 'pending', 0, null],
    ]);
    expect(steps[0]!.durationMs).toBe(12);
    expect(await store.outputs(runId)).toEqual({ s1: { out: 1 } });

    // Recording the same entries again changes nothing and appends no event.
    const again = await store.record([{ runId, log }]);
    expect(again.events).toEqual([]);
    const events = await system.events.bySaga(sagaId);
    expect(stepEvents(events)).toEqual(['s1:running', 's1:complete', 's2:running']);
    const seqs = events.map((e) => e.seq);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i));

    // What PostgreSQL recorded can be trimmed from Redis; the rest stays.
    await live.trim(runId, 2);
    expect((await live.pending(runId)).length).toBe(1);
  });

  it('step.fenced: a run that ended is fenced: nothing of it starts or finishes, and late entries are dropped', async () => {
    const { system, runId, sagaId } = await liveRun('rec-fence');
    const { live, store } = system;
    const s1 = await live.start(runId, 's1', 'w1');
    const late = s1.action === 'run' ? s1.log : [];
    // Another process ends the run (as the sweeper would after its lease expired).
    const t = await store.stepFail(
      runId,
      null,
      'lease expired',
      { final: true, cancelled: false },
      [],
    );
    await system.runs.apply(t, runId);
    expect(await live.finish(runId, 's1', 'complete', null, 1)).toEqual({ action: 'finished' });
    expect(await live.start(runId, 's2', 'w1')).toEqual({ action: 'finished' });
    // A transition that slipped through before the live state closed is not recorded.
    expect((await store.record([{ runId, log: late }])).events).toEqual([]);
    expect(stepEvents(await system.events.bySaga(sagaId))).toEqual([]);
    expect((await store.steps(runId)).map((s) => s.status)).toEqual([
      'not_run',
      'not_run',
      'not_run',
    ]);
  });

  it('run.cancel-running: a cancelled run starts no further step, but the running one may still finish', async () => {
    const { system, runId } = await liveRun('rec-cancel');
    const { live, store } = system;
    await live.start(runId, 's1', 'w1');
    await store.requestCancel(runId, 'test');
    await live.cancel(runId);
    expect((await live.finish(runId, 's1', 'complete', null, 1)).action).toBe('ok');
    expect(await live.start(runId, 's2', 'w1')).toEqual({ action: 'cancel' });
  });

  it('the recorder keeps what a failed write carried and writes it again', async () => {
    const { system, runId, sagaId } = await liveRun('rec-retry');
    let failures = 1;
    class FlakyStore extends RunStore {
      override record(batch: ReadonlyArray<{ runId: string; log: readonly LogEntry[] }>) {
        if (failures-- > 0) return Promise.reject(new Error('connection reset'));
        return super.record(batch);
      }
    }
    const store = new FlakyStore(system.db, 'flaky', 30_000);
    const recorder = new Recorder({
      store,
      live: system.live,
      bus: system.bus,
      log: silentLogger,
      delayMs: 0,
      retryMs: 50,
    });
    onTestFinished(() => recorder.close());
    const s1 = await system.live.start(runId, 's1', 'w1');
    recorder.push(runId, s1.action === 'run' ? s1.log : []);
    await waitFor(
      async () => stepEvents(await system.events.bySaga(sagaId)).length === 1,
      'the start to be recorded',
      5_000,
    );
    expect(failures).toBe(-1);
    // Recorded, so trimmed from the live log.
    await waitFor(
      async () => (await system.live.pending(runId)).length === 0,
      'the live log to be trimmed',
      5_000,
    );
  });
});

describe('runs through workers', () => {
  it('run.reopen: a run whose live state Redis lost is rebuilt from PostgreSQL and completes', async () => {
    const system = testSystem(testEnv(tdb.url));
    onTestFinished(() => system.close());
    await system.startWorker();
    await registerApp(system, 'rec-lost');
    const run = await system.runs.request({
      appId: 'rec-lost',
      pipeline: 'short',
      params: { sleepMs: { s2: 700 } },
    });
    // s1 done and recorded, s2 running: then the live state vanishes.
    await waitFor(
      async () => (await system.store.steps(run.deploymentId))[1]?.status === 'running',
      's2 to be recorded running',
    );
    await system.redis.del(
      system.live.key(run.deploymentId),
      `${system.live.key(run.deploymentId)}:log`,
    );
    const done = await waitForRun(system, run.deploymentId);
    expect(done.error).toBeNull();
    expect(done.status).toBe('succeeded');
    expect((await system.store.steps(run.deploymentId)).map((s) => s.status)).toEqual([
      'complete',
      'complete',
      'complete',
    ]);
  });

  it('without the recorder, the end of a run records every transition, in order', async () => {
    // A recorder that waits longer than the run lasts: the last step's end records the whole log.
    const system = testSystem(testEnv(tdb.url, { NORN_RECORD_DELAY_MS: '1000' }));
    onTestFinished(() => system.close());
    await system.startWorker();
    await registerApp(system, 'rec-end');
    const run = await system.runs.request({ appId: 'rec-end', pipeline: 'chain', params: {} });
    expect((await waitForRun(system, run.deploymentId)).status).toBe('succeeded');
    const events = await system.events.bySaga(run.sagaId);
    const steps = Array.from({ length: 9 }, (_, i) => `s${i + 1}`);
    expect(stepEvents(events)).toEqual(steps.flatMap((s) => [`${s}:running`, `${s}:complete`]));
    expect(events.at(-1)!.type).toBe('deploy.completed');
    expect(events.map((e) => e.seq)).toEqual(
      Array.from({ length: events.length }, (_, i) => events[0]!.seq + i),
    );
  });

  it('two workers recording the same runs keep every saga in order and every app gapless', async () => {
    const env = testEnv(tdb.url);
    const systems = [testSystem(env), testSystem(env)];
    onTestFinished(async () => {
      for (const s of systems) await s.close();
    });
    for (const s of systems) await s.startWorker();
    const [a] = systems;
    const apps = ['rec-two-a', 'rec-two-b', 'rec-two-c'];
    for (const app of apps) await registerApp(a!, app);
    const runs = [];
    for (let i = 0; i < 3; i++)
      for (const app of apps)
        runs.push(await a!.runs.request({ appId: app, pipeline: 'chain', params: {} }));
    for (const r of runs)
      expect((await waitForRun(a!, r.deploymentId, undefined, 30_000)).status).toBe('succeeded');
    const steps = Array.from({ length: 9 }, (_, i) => `s${i + 1}`);
    for (const r of runs) {
      const events = await a!.events.bySaga(r.sagaId);
      expect(events[0]!.type).toBe('deploy.queued');
      expect(stepEvents(events)).toEqual(steps.flatMap((s) => [`${s}:running`, `${s}:complete`]));
      expect(events.at(-1)!.type).toBe('deploy.completed');
    }
    for (const app of apps) {
      const { rows } = await a!.db.query<{ seq: string }>(
        'SELECT seq FROM events WHERE app_id = $1 ORDER BY id',
        [app],
      );
      const seqs = rows.map((r) => Number(r.seq));
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
    }
  });
});

it('keeps the live state of each run under its own key', () => {
  const system = testSystem(testEnv('postgres://unused@127.0.0.1:1/none'));
  onTestFinished(() => system.close());
  const id = randomUUID();
  expect(system.live.key(id)).toBe(`${system.config.queuePrefix}:norn:run:${id}`);
});
