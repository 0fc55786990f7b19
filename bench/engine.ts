/**
 * `npm run bench:engine`: what the engine costs over raw BullMQ, measured in one run on this
 * machine. Both run the same 9-step no-op chain with worker processes of the same concurrency, with
 * 1 and with 2 worker processes; the result is the engine/raw ratio (absolute times depend on the
 * machine). Uses a throwaway database and a random queue prefix, and removes both at the end.
 *
 * Env: REDIS_URL, DATABASE_URL (the bench database is created next to it), BENCH_LATENCY_RUNS,
 * BENCH_LATENCY_WARMUP, BENCH_THROUGHPUT_RUNS, BENCH_THROUGHPUT_WARMUP, BENCH_APPS,
 * BENCH_CONCURRENCY (default: the engine's NORN_WORKER_CONCURRENCY default), BENCH_WORKERS ("1,2"),
 * BENCH_RUN_TIMEOUT_MS, BENCH_PG_SYNCHRONOUS_COMMIT (diagnostic: "off" shows what commit fsyncs cost).
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { EnvSchema } from '../src/shared/config.js';
import { isNornError, NornError } from '../src/shared/errors.js';
import { createRedis } from '../src/shared/redis.js';
import { EngineHarness, RawHarness, type Harness } from './harness.js';
import { BENCH_STEPS } from './pipelines.js';
import {
  checkPostgres,
  checkRedis,
  createBenchDatabase,
  environment,
  removeKeys,
  type BenchDatabase,
} from './services.js';
import { childPids, cpuAccountingAvailable, localPids, withCpu, type PidGroups } from './cpu.js';
import { printTable, summarize, type Measured, type Row } from './report.js';
import { stopAllPools } from './workers.js';
import { silentLogger } from '../src/shared/logger.js';

const count = (dflt: number) => z.coerce.number().int().min(1).max(100_000).default(dflt);
const Options = z.object({
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  DATABASE_URL: z.string().url().default('postgres://postgres@127.0.0.1:5432/test'),
  BENCH_LATENCY_RUNS: count(200),
  BENCH_LATENCY_WARMUP: count(20),
  // Raw BullMQ completions are observed through QueueEvents, whose stream BullMQ trims at ~10,000
  // entries; a 9-step chain writes 45, so more than ~200 chains in flight can lose completions.
  BENCH_THROUGHPUT_RUNS: count(200).pipe(
    z
      .number()
      .max(
        200,
        'at most 200: raw BullMQ completion events beyond that can be trimmed from the QueueEvents stream before they are read',
      ),
  ),
  BENCH_THROUGHPUT_WARMUP: count(40).pipe(
    z.number().max(200, 'at most 200 (see BENCH_THROUGHPUT_RUNS)'),
  ),
  BENCH_APPS: count(20),
  BENCH_CONCURRENCY: count(EnvSchema.shape.NORN_WORKER_CONCURRENCY.parse(undefined)),
  BENCH_WORKERS: z
    .string()
    .regex(
      /^([1-9]|1[0-6])(,([1-9]|1[0-6]))*$/,
      'comma-separated worker process counts of 1-16, e.g. "1,2"',
    )
    .default('1,2'),
  BENCH_RUN_TIMEOUT_MS: count(60_000),
  /** Diagnostic: synchronous_commit for the bench database (default: the server's setting). */
  BENCH_PG_SYNCHRONOUS_COMMIT: z
    .enum(['on', 'off', 'local', 'remote_write', 'remote_apply'])
    .optional(),
});
type Options = z.output<typeof Options>;

const STEPS = BENCH_STEPS.length;

async function latency(h: Harness, o: Options): Promise<number[]> {
  for (let i = 0; i < o.BENCH_LATENCY_WARMUP; i++) await h.once(i);
  const samples: number[] = [];
  for (let i = 0; i < o.BENCH_LATENCY_RUNS; i++) samples.push(await h.once(i));
  return samples;
}

/** Steps per second with BENCH_THROUGHPUT_RUNS runs in flight, after one warm-up batch; and its CPU. */
async function throughput(h: Harness, o: Options, groups: () => Promise<PidGroups>) {
  await h.batch(o.BENCH_THROUGHPUT_WARMUP);
  const work = () => h.batch(o.BENCH_THROUGHPUT_RUNS);
  const { result: ms, cpu } = cpuAccountingAvailable()
    ? await withCpu(groups, work)
    : { result: await work(), cpu: undefined };
  return { stepsPerSec: (STEPS * o.BENCH_THROUGHPUT_RUNS) / (ms / 1000), cpu };
}

async function measure(
  h: Harness,
  workers: number,
  o: Options,
  groups: () => Promise<PidGroups>,
): Promise<Measured> {
  const t0 = Date.now();
  await h.startWorkers(workers);
  try {
    const samples = await latency(h, o);
    const { stepsPerSec, cpu } = await throughput(h, o, groups);
    const s = summarize(samples);
    console.error(
      `  ${h.label.padEnd(10)} ${workers} worker(s): p50 ${s.p50.toFixed(1)} ms, p99 ${s.p99.toFixed(1)} ms, ` +
        `${stepsPerSec.toFixed(0)} steps/s (${((Date.now() - t0) / 1000).toFixed(1)} s)`,
    );
    return { ...s, stepsPerSec, cpu };
  } finally {
    await h.stopWorkers();
  }
}

async function main(o: Options, cleanup: Array<() => Promise<unknown>>) {
  const [redisVersion, pgVersion] = await Promise.all([
    checkRedis(o.REDIS_URL),
    checkPostgres(o.DATABASE_URL),
  ]);
  const suffix = randomBytes(5).toString('hex');
  const prefix = `bench${suffix}`;
  const dbName = `norn_bench_${suffix}`;
  const workerCounts = o.BENCH_WORKERS.split(',').map(Number);
  const syncCommit = o.BENCH_PG_SYNCHRONOUS_COMMIT
    ? `, synchronous_commit=${o.BENCH_PG_SYNCHRONOUS_COMMIT} (diagnostic)`
    : '';
  console.error(
    `norn engine bench: database ${dbName}, queue prefix ${prefix}, concurrency ${o.BENCH_CONCURRENCY} per worker process${syncCommit}`,
  );

  const db: BenchDatabase = await createBenchDatabase(
    o.DATABASE_URL,
    dbName,
    o.BENCH_PG_SYNCHRONOUS_COMMIT,
  );
  cleanup.push(() => db.drop());
  cleanup.push(async () => {
    const redis = createRedis(o.REDIS_URL, 'client', silentLogger);
    await removeKeys(redis, prefix).finally(() => redis.quit());
  });
  const common = {
    redisUrl: o.REDIS_URL,
    prefix,
    concurrency: o.BENCH_CONCURRENCY,
    runTimeoutMs: o.BENCH_RUN_TIMEOUT_MS,
  };
  const raw = new RawHarness(common);
  cleanup.push(() => raw.close());
  const engine = new EngineHarness({ ...common, databaseUrl: db.url, apps: o.BENCH_APPS });
  cleanup.push(() => engine.close());
  await engine.prepare();
  const groups = await pidGroups(o.REDIS_URL, engine);

  const rows: Row[] = [];
  for (const workers of workerCounts) {
    // Raw first, then the engine, per configuration: drift over the run hits both alike.
    const r = await measure(raw, workers, o, groups);
    const e = await measure(engine, workers, o, groups);
    rows.push({ workers, raw: r, engine: e });
  }
  printTable(rows, {
    environment: environment(redisVersion, pgVersion) + syncCommit,
    concurrency: o.BENCH_CONCURRENCY,
    latency: `${o.BENCH_LATENCY_RUNS} runs one at a time after ${o.BENCH_LATENCY_WARMUP} warm-up`,
    throughput:
      `${o.BENCH_THROUGHPUT_RUNS} runs in flight after a warm-up batch of ${o.BENCH_THROUGHPUT_WARMUP}; ` +
      `engine runs spread over ${o.BENCH_APPS} apps (the engine runs one run per app at a time, so at most ` +
      `${Math.min(o.BENCH_APPS, o.BENCH_THROUGHPUT_RUNS)} engine runs progress at once; raw BullMQ has all ${o.BENCH_THROUGHPUT_RUNS} chains in flight)`,
  });
}

/**
 * Processes whose CPU the throughput phase accounts for: this process, its worker processes, the
 * local Redis server, and the bench database's PostgreSQL backends plus the WAL writer.
 */
async function pidGroups(
  redisUrl: string,
  engine: EngineHarness,
): Promise<() => Promise<PidGroups>> {
  const redis = createRedis(redisUrl, 'client', silentLogger);
  const info = await redis.info('server').finally(() => redis.quit());
  const redisPids = localPids([Number(/process_id:(\d+)/.exec(info)?.[1] ?? 0)], 'redis');
  return async () => {
    const { rows } = await engine.system.db.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE datname = current_database() OR backend_type = 'walwriter'",
    );
    return {
      bench: [process.pid],
      workers: localPids(childPids(), 'node'),
      redis: redisPids,
      postgres: localPids(
        rows.map((r) => r.pid),
        'postgres',
      ),
    };
  };
}

/** Runs the cleanups newest first, each bounded, each allowed to fail on its own; only once. */
let cleaning: Promise<void> | undefined;
function runCleanup(cleanup: Array<() => Promise<unknown>>): Promise<void> {
  cleaning ??= (async () => {
    await stopAllPools().catch(() => {});
    for (const c of [...cleanup].reverse()) {
      await Promise.race([c(), new Promise((r) => setTimeout(r, 15_000))]).catch((err) =>
        console.error(`cleanup: ${(err as Error).message}`),
      );
    }
  })();
  return cleaning;
}

const parsed = Options.safeParse(
  Object.fromEntries(Object.entries(process.env).filter(([, v]) => v)),
);
if (!parsed.success) {
  console.error(
    `invalid bench settings:\n  ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n  ')}`,
  );
  process.exit(2);
}
const cleanup: Array<() => Promise<unknown>> = [];
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${sig}: stopping workers and removing the bench database and queues…`);
    runCleanup(cleanup).finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  });
}
// A backstop on top of the per-run timeouts: the default settings finish in about a minute.
const deadline = setTimeout(() => {
  console.error('bench exceeded 10 minutes; giving up');
  process.kill(process.pid, 'SIGTERM');
}, 10 * 60_000);
deadline.unref();

main(parsed.data, cleanup).then(
  // A missed target is a result, not a failure: exit 0 whenever the bench ran to the end.
  async () => {
    await runCleanup(cleanup);
    process.exit(0);
  },
  async (err: unknown) => {
    console.error(
      `bench failed: ${isNornError(err) ? `${err.code}: ${err.message}` : err instanceof Error ? err.stack : String(err)}`,
    );
    await runCleanup(cleanup);
    process.exit(err instanceof NornError && err.code === 'UNAVAILABLE' ? 3 : 2);
  },
);
