/** The recorder's batching and its timing, with time moved by hand and PostgreSQL faked. */
import { beforeEach, describe, expect, it } from 'vitest';
import { LiveRuns } from '../../src/queues/live.js';
import { Recorder } from '../../src/queues/recorder.js';
import type { RecordResult, RunStore } from '../../src/shared/store/runs.js';
import { FakeLiveRedis } from './support/fake-live.js';
import { recordingLogger } from './support/log.js';
import { manualTime, settle } from './support/manual-time.js';

const entry = (t: number, step = 's') => `{"t":${t},"k":"start","step":"${step}"}`;
type Batch = Parameters<RunStore['record']>[0];

/** A store whose record() answers from `answer` (default: all recorded, no gaps). */
function fakeStore() {
  const batches: Batch[] = [];
  /** stepProgress calls, in the order they reached the store. */
  const progressed: { runId: string; log: string[]; step: string; payload: unknown }[] = [];
  let answer: (batch: Batch) => Promise<RecordResult> = async (batch) => ({
    events: batch.map((b) => `{"run":"${b.runId}"}`),
    recorded: Object.fromEntries(
      batch.map((b) => [b.runId, Math.max(...b.log.map((e) => Number(/\d+/.exec(e)![0])))]),
    ),
    gaps: {},
  });
  let progressAnswer = async (step: string, payload: Record<string, unknown>) => [
    JSON.stringify({ step, ...payload }),
  ];
  return {
    batches,
    progressed,
    answerWith(fn: typeof answer) {
      answer = fn;
    },
    progressWith(fn: typeof progressAnswer) {
      progressAnswer = fn;
    },
    store: {
      record: (batch: Batch) => {
        batches.push(batch.map((b) => ({ runId: b.runId, log: [...b.log] })));
        return answer(batch);
      },
      stepProgress: (
        runId: string,
        log: readonly string[],
        step: string,
        payload: Record<string, unknown>,
      ) => {
        progressed.push({ runId, log: [...log], step, payload });
        return progressAnswer(step, payload);
      },
    },
  };
}

describe('Recorder', () => {
  let time: ReturnType<typeof manualTime>;
  let redis: FakeLiveRedis;
  let db: ReturnType<typeof fakeStore>;
  let published: string[][];
  let logged: ReturnType<typeof recordingLogger>;
  let recorder: Recorder;

  beforeEach(() => {
    time = manualTime();
    redis = new FakeLiveRedis();
    db = fakeStore();
    published = [];
    logged = recordingLogger();
    recorder = new Recorder({
      store: db.store,
      live: new LiveRuns(redis, 'pfx', time.clock),
      bus: { publishText: async (events) => void published.push([...events]) },
      log: logged.log,
      delayMs: 50,
      clock: time.clock,
      timer: time.timer,
    });
  });

  it('gathers the transitions of the delay into one write, one entry per transition number', async () => {
    recorder.push('run-a', [entry(1)]);
    await time.advance(20);
    recorder.push('run-a', [entry(1), entry(2)]); // a later live log repeats what it had
    recorder.push('run-b', [entry(1)]);
    recorder.push('run-c', []); // nothing to record: no write of its own
    await time.advance(29);
    expect(db.batches).toEqual([]); // 49 ms: still gathering

    await time.advance(1);
    expect(db.batches).toEqual([
      [
        { runId: 'run-a', log: [entry(1), entry(2)] },
        { runId: 'run-b', log: [entry(1)] },
      ],
    ]);
    // After the commit: the events are published and what was recorded is trimmed from Redis.
    expect(published).toEqual([['{"run":"run-a"}', '{"run":"run-b"}']]);
    expect(redis.calls).toEqual([
      {
        kind: 'pipeline',
        calls: [
          { name: 'nornTrim', keys: ['pfx:norn:run:run-a:log'], args: [2] },
          { name: 'nornTrim', keys: ['pfx:norn:run:run-b:log'], args: [1] },
        ],
      },
    ]);
    expect(time.timers()).toEqual([]);
  });

  it('keeps one write in flight: what arrives meanwhile goes in the next, a delay later', async () => {
    let commit!: () => void;
    db.answerWith(
      (batch) =>
        new Promise((resolve) => {
          commit = () => resolve({ events: [], recorded: { [batch[0]!.runId]: 1 }, gaps: {} });
        }),
    );
    recorder.push('run-a', [entry(1)]);
    await time.advance(50);
    expect(db.batches).toHaveLength(1);

    recorder.push('run-a', [entry(2)]);
    await time.advance(500);
    expect(db.batches).toHaveLength(1); // the first write has not committed

    db.answerWith(async () => ({ events: [], recorded: {}, gaps: {} }));
    commit();
    await settle();
    expect(db.batches).toHaveLength(1); // the next write gathers for its own delay first
    await time.advance(50);
    expect(db.batches).toEqual([
      [{ runId: 'run-a', log: [entry(1)] }],
      [{ runId: 'run-a', log: [entry(2)] }],
    ]);
  });

  it('after a failed write keeps the entries and retries after 1 s, doubling to 10 s', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), {
      code: 'ECONNREFUSED',
    });
    db.answerWith(() => Promise.reject(refused));
    const t0 = time.clock();
    recorder.push('run-a', [entry(1)]);
    await time.advance(50);
    expect(db.batches).toHaveLength(1);
    expect(time.timers()).toEqual([{ inMs: 1_000, unref: true }]);

    recorder.push('run-a', [entry(2)]); // waits for the retry, joins the failed batch
    await time.advance(999);
    expect(db.batches).toHaveLength(1);
    await time.advance(1 + 50); // the retry, then its gathering delay
    expect(db.batches).toHaveLength(2);
    expect(db.batches[1]).toEqual([{ runId: 'run-a', log: [entry(1), entry(2)] }]);

    // Retry delays: 1 s, 2 s, 4 s, 8 s, then 10 s at most.
    const delays = logged.lines
      .filter((l) => l.msg.startsWith('recording step transitions failed'))
      .map((l) => l.retryInMs);
    expect(delays).toEqual([1_000, 2_000]);
    for (const ms of [2_000, 4_000, 8_000, 10_000]) await time.advance(ms + 50);
    expect(
      logged.lines
        .filter((l) => l.msg.startsWith('recording step transitions failed'))
        .map((l) => l.retryInMs),
    ).toEqual([1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
    expect(logged.lines[0]?.msg).toBe(
      'recording step transitions failed (PostgreSQL unreachable: connect ECONNREFUSED 127.0.0.1:5432); retrying',
    );

    // PostgreSQL is back: the next write takes everything and says how long the outage lasted.
    db.answerWith(async () => ({ events: ['e'], recorded: { 'run-a': 2 }, gaps: {} }));
    await time.advance(10_050);
    expect(db.batches.at(-1)).toEqual([{ runId: 'run-a', log: [entry(1), entry(2)] }]);
    const back = logged.lines.find((l) => l.msg === 'recording step transitions again');
    expect(back).toMatchObject({ failures: 6, outageMs: time.clock() - (t0 + 50) });
    expect(published).toEqual([['e']]);
    expect(time.timers()).toEqual([]);
  });

  it('refills a run whose batch had a gap from its whole live log', async () => {
    redis.lists.set('pfx:norn:run:run-a:log', [entry(1), entry(2), entry(3)]);
    db.answerWith(async () => ({ events: [], recorded: { 'run-a': 0 }, gaps: { 'run-a': 1 } }));
    recorder.push('run-a', [entry(2), entry(3)]); // entry 1 is another worker's, not here yet
    await time.advance(50);
    expect(redis.calls).toContainEqual({ kind: 'list', key: 'pfx:norn:run:run-a:log' });
    db.answerWith(async () => ({ events: [], recorded: { 'run-a': 3 }, gaps: {} }));
    await time.advance(50);
    expect(db.batches[1]).toEqual([{ runId: 'run-a', log: [entry(1), entry(2), entry(3)] }]);
  });

  it('close writes what is pending once, cancels a waiting retry and takes no more', async () => {
    db.answerWith(() => Promise.reject(new Error('Connection terminated unexpectedly')));
    recorder.push('run-a', [entry(1)]);
    await time.advance(50);
    expect(time.timers()).toHaveLength(1); // the retry
    const closing = recorder.close();
    await time.advance(50); // the final attempt's gathering delay
    await closing;
    expect(db.batches).toHaveLength(2);
    expect(time.timers()).toEqual([]); // its own retry was cancelled too
    recorder.push('run-b', [entry(1)]);
    await time.advance(60_000);
    expect(db.batches).toHaveLength(2);
  });

  it("records a progress event with the run's live log, in order per run, and only logs a failure", async () => {
    redis.lists.set('pfx:norn:run:run-a:log', [entry(1)]);
    let release!: () => void;
    const slow = new Promise<void>((r) => (release = r));
    let calls = 0;
    db.progressWith(async (step, payload) => {
      if (calls++ === 0) await slow; // the first write is slow: the second must wait for it
      return [JSON.stringify({ step, ...payload })];
    });
    const first = recorder.progress('run-a', 'healthy', { ready: 0, desired: 2 });
    const second = recorder.progress('run-a', 'healthy', { ready: 1, desired: 2 });
    await Promise.resolve();
    await Promise.resolve();
    expect(db.progressed).toHaveLength(1); // the second has not reached the store
    release();
    await Promise.all([first, second]);
    expect(db.progressed).toEqual([
      { runId: 'run-a', log: [entry(1)], step: 'healthy', payload: { ready: 0, desired: 2 } },
      { runId: 'run-a', log: [entry(1)], step: 'healthy', payload: { ready: 1, desired: 2 } },
    ]);
    expect(published).toEqual([
      ['{"step":"healthy","ready":0,"desired":2}'],
      ['{"step":"healthy","ready":1,"desired":2}'],
    ]);

    db.progressWith(() => Promise.reject(new Error('Connection terminated unexpectedly')));
    await expect(
      recorder.progress('run-a', 'healthy', { ready: 2, desired: 2 }),
    ).resolves.toBeUndefined();
    expect(logged.lines.some((l) => /recording a progress event failed/.test(l.msg))).toBe(true);
  });
});
