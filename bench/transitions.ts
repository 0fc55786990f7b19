/**
 * `npx tsx bench/transitions.ts`: where an engine run's time goes, without BullMQ. Runs the bench
 * pipeline's transitions one at a time as a worker makes them: norn_request_run, the live state's
 * open, start and finish per step (Redis Lua), the recorder's writes (norn_record, here after the
 * 2nd and 5th step) with their publish and trim, and the end of the run (norn_run_succeed). Reports
 * the time of each call next to a plain `SELECT 1` and a Redis PUBLISH round trip. Run once with
 * the server's synchronous_commit and once with it off (for the bench database only), so commit
 * fsync time shows separately from the functions' own work. CPU use (Linux /proc) of this process
 * and of its PostgreSQL backends is reported per step.
 *
 * Env: REDIS_URL, DATABASE_URL (as for bench/engine.ts), BENCH_TRANSITION_RUNS (default 100).
 */
import { performance } from 'node:perf_hooks';
import { randomBytes, randomUUID } from 'node:crypto';
import { EventBus } from '../src/queues/bus.js';
import { LiveRuns, redisLiveCommands } from '../src/queues/live.js';
import { createDb, type Db } from '../src/shared/db.js';
import { AppStore } from '../src/shared/store/apps.js';
import { RunStore } from '../src/shared/store/runs.js';
import { createRedis, type Redis } from '../src/shared/redis.js';
import { bench, BENCH_STEPS } from './pipelines.js';
import { checkPostgres, checkRedis, createBenchDatabase, removeKeys } from './services.js';
import { summarize } from './report.js';
import { localPids, withCpu } from './cpu.js';
import { silentLogger } from '../src/shared/logger.js';

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const RUNS = Number(process.env.BENCH_TRANSITION_RUNS || 100);

type Timings = Record<string, number[]>;

async function timed<T>(t: Timings, name: string, f: () => Promise<T>): Promise<T> {
  const start = performance.now();
  const v = await f();
  (t[name] ??= []).push(performance.now() - start);
  return v;
}

/** One run's transitions, in the order the engine makes them (without the BullMQ hand-offs). */
async function oneRun(
  t: Timings,
  store: RunStore,
  bus: EventBus,
  live: LiveRuns,
  db: Db,
  redis: Redis,
  channel: string,
) {
  await timed(t, 'SELECT 1 (round trip)', () => db.query('SELECT 1'));
  await timed(t, 'Redis PUBLISH (round trip)', () => redis.publish(channel, 'x'));
  const id = randomUUID();
  const requested = await timed(t, 'norn_request_run', () =>
    store.requestRun({
      id,
      appId: 'probe',
      scope: 'app:probe',
      pipeline: bench.name,
      version: bench.version,
      eventPrefix: bench.name,
      queue: 'steps',
      steps: [...BENCH_STEPS],
      params: {},
      policy: 'queue',
    }),
  );
  if (requested.action !== 'queued') throw new Error(`probe run ${id}: ${requested.action}`);
  const admitted = requested.next;
  await timed(t, 'publish request events', () => bus.publish(requested.events));
  if (admitted?.id !== id)
    throw new Error(`probe run ${id} was not admitted (${JSON.stringify(admitted)})`);
  await timed(t, 'live open (Redis)', () => live.open(admitted));
  for (const step of BENCH_STEPS) {
    const begin = await timed(t, 'live start (Redis)', () => live.start(id, step, store.holder));
    if (begin.action !== 'run') throw new Error(`step ${step}: ${begin.action}`);
    const done = await timed(t, 'live finish (Redis)', () =>
      live.finish(id, step, 'complete', null, 0),
    );
    if (done.action !== 'ok') throw new Error(`step ${step}: ${done.action}`);
    if (step === BENCH_STEPS.at(-1)) {
      // The last step ends the run, recording what the recorder has not.
      const end = await timed(t, 'norn_run_succeed', () => store.runSucceeded(id, done.log));
      if (end.action !== 'ended') throw new Error(`run end: ${end.action}`);
      await timed(t, 'publish end events', () => bus.publish(end.events));
      await timed(t, 'live close (Redis)', () => live.close(id));
    } else if (step.endsWith('2') || step.endsWith('5')) {
      // The recorder, as it runs when idle: a write every few transitions.
      const rec = await timed(t, 'norn_record (batch)', () =>
        store.record([{ runId: id, log: done.log }]),
      );
      await timed(t, 'publish recorded events', () => bus.publishText(rec.events));
      await timed(t, 'live trim (Redis)', () => live.trim(id, rec.recorded[id] ?? 0));
    }
  }
}

async function probe(synchronousCommit: 'on' | 'off') {
  const suffix = randomBytes(5).toString('hex');
  const bdb = await createBenchDatabase(DATABASE_URL, `norn_bench_${suffix}`, synchronousCommit);
  const db = createDb(bdb.url, { log: silentLogger, max: 2 });
  const redis = createRedis(REDIS_URL, 'client', silentLogger);
  const prefix = `probe${suffix}`;
  try {
    const store = new RunStore(db, 'probe', 30_000);
    const bus = new EventBus(redis, prefix);
    const live = new LiveRuns(redisLiveCommands(redis), prefix);
    await new AppStore(db).upsert('probe', { name: 'probe' }, '{}', 'json');
    const t: Timings = {};
    for (let i = 0; i < 10; i++) await oneRun({}, store, bus, live, db, redis, `${prefix}:x`); // warm-up
    const groups = async () => {
      const { rows } = await db.query<{ pid: number }>(
        'SELECT pid FROM pg_stat_activity WHERE datname = current_database()',
      );
      return {
        node: [process.pid],
        postgres: localPids(
          rows.map((r) => r.pid),
          'postgres',
        ),
      };
    };
    const run = async () => {
      for (let i = 0; i < RUNS; i++) await oneRun(t, store, bus, live, db, redis, `${prefix}:x`);
    };
    const { cpu } = await withCpu(groups, run);
    const perStep = (ms: number | undefined) =>
      `${(((ms ?? 0) * 1000) / (RUNS * BENCH_STEPS.length)).toFixed(0)} µs`;
    console.log(
      `\nsynchronous_commit=${synchronousCommit}: ${RUNS} runs, ${(cpu.wallMs / RUNS).toFixed(1)} ms per run of 9 steps ` +
        '(incl. one SELECT 1 and one PUBLISH reference call per run); CPU per step: ' +
        `this Node process ${perStep(cpu.ms.node)}, PostgreSQL backends ${perStep(cpu.ms.postgres)}`,
    );
    console.log('| call | count per run | p50 ms | p99 ms | mean ms | ms per run |');
    console.log('|---|---|---|---|---|---|');
    for (const [name, samples] of Object.entries(t)) {
      const s = summarize(samples);
      const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
      console.log(
        `| ${name} | ${samples.length / RUNS} | ${s.p50.toFixed(2)} | ${s.p99.toFixed(2)} | ${mean.toFixed(2)} | ${((mean * samples.length) / RUNS).toFixed(1)} |`,
      );
    }
  } finally {
    await removeKeys(redis, prefix).catch(() => {});
    await redis.quit().catch(() => {});
    await db.end();
    await bdb.drop();
  }
}

await checkRedis(REDIS_URL);
await checkPostgres(DATABASE_URL);
await probe('on');
await probe('off');
