/**
 * `npm run bench:engine`: what the engine costs, measured in one run on this machine against raw
 * BullMQ (the ceiling) and against durable peers doing the same durable work, each written as its
 * docs recommend: graphile-worker, pg-boss (polling at its minimum; and with notifyWorker) and a
 * BullMQ chain whose steps INSERT their events (bench/peers.ts, bench/*-worker.ts). The work is a
 * 9-step no-op chain whose every step start and finish is committed to PostgreSQL before the next
 * step may start (the engine: as it records them), with 1 and 2 worker processes of the same
 * concurrency. It prints p50/p99 latency, steps/s, CPU µs per step, every engine ratio and issue
 * 8's speed targets (bench/verdicts.ts). Throwaway databases (the engine's and one per peer) and a
 * random queue prefix, all removed at the end. A system that fails fails the bench (exit 2).
 *
 * Env: REDIS_URL, DATABASE_URL (the bench databases are created next to it),
 * BENCH_SYSTEMS (default "raw,engine,bullmq-insert,graphile,pg-boss,pg-boss-notify"),
 * BENCH_WORKERS ("1,2"), BENCH_LATENCY_RUNS (200), BENCH_LATENCY_WARMUP (20),
 * BENCH_THROUGHPUT_RUNS (300), BENCH_THROUGHPUT_WARMUP (40), BENCH_PHASE_BUDGET_S (45: a latency
 * phase or throughput batch still going then stops and reports what it measured; only pg-boss's
 * 0.5 s polling gets there), BENCH_APPS, BENCH_CONCURRENCY (default: the engine's
 * NORN_WORKER_CONCURRENCY default), BENCH_RUN_TIMEOUT_MS,
 * BENCH_PG_SYNCHRONOUS_COMMIT (diagnostic: "off" shows what commit fsyncs cost).
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import { EnvSchema } from '../src/shared/config.js';
import { isNornError, NornError } from '../src/shared/errors.js';
import { createRedis } from '../src/shared/redis.js';
import { EngineHarness, RawHarness, type Harness } from './harness.js';
import { createEventsTables, GraphileHarness, PgBossHarness } from './peers.js';
import {
  checkPostgres,
  checkRedis,
  createBenchDatabase,
  createThrowawayDatabase,
  environment,
  removeKeys,
} from './services.js';
import { childPids, cpuAccountingAvailable, localPids, withCpu, type PidGroups } from './cpu.js';
import { printTable, summarize, type Measured, type Row } from './report.js';
import { SYSTEMS, SYSTEM_LABELS, type SystemId } from './verdicts.js';
import { stopAllPools } from './workers.js';
import { silentLogger } from '../src/shared/logger.js';

const count = (dflt: number) => z.coerce.number().int().min(1).max(100_000).default(dflt);
const Options = z.object({
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  DATABASE_URL: z.string().url().default('postgres://postgres@127.0.0.1:5432/test'),
  BENCH_SYSTEMS: z
    .string()
    .default(SYSTEMS.join(','))
    .transform((v) => v.split(',').map((s) => s.trim()))
    .pipe(z.array(z.enum(SYSTEMS)).min(1))
    .transform((v) => SYSTEMS.filter((s) => v.includes(s))),
  BENCH_LATENCY_RUNS: count(200),
  BENCH_LATENCY_WARMUP: count(20),
  // Raw BullMQ completions are observed through QueueEvents; its stream is sized for these runs
  // (eventsMaxLen in harness.ts), so any number in flight is observed.
  BENCH_THROUGHPUT_RUNS: count(300),
  BENCH_THROUGHPUT_WARMUP: count(40),
  BENCH_PHASE_BUDGET_S: count(45),
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
  /** Diagnostic: synchronous_commit for the bench databases (default: the server's setting). */
  BENCH_PG_SYNCHRONOUS_COMMIT: z
    .enum(['on', 'off', 'local', 'remote_write', 'remote_apply'])
    .optional(),
});
type Options = z.output<typeof Options>;

/** Warm-up gets at most this share of a phase's budget. */
const WARMUP_SHARE = 0.2;

/** Latency samples, one run at a time, until BENCH_LATENCY_RUNS or the phase budget. */
async function latency(h: Harness, o: Options): Promise<number[]> {
  const budget = o.BENCH_PHASE_BUDGET_S * 1000;
  const w0 = performance.now();
  for (let i = 0; i < o.BENCH_LATENCY_WARMUP; i++) {
    await h.once(i);
    if (performance.now() - w0 > budget * WARMUP_SHARE) break;
  }
  const samples: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < o.BENCH_LATENCY_RUNS; i++) {
    samples.push(await h.once(i));
    if (performance.now() - t0 > budget) break;
  }
  return samples;
}

/** Steps per second with BENCH_THROUGHPUT_RUNS runs in flight, after one warm-up batch; and its CPU. */
async function throughput(
  h: Harness,
  workers: number,
  o: Options,
  groups: () => Promise<PidGroups>,
) {
  const budget = o.BENCH_PHASE_BUDGET_S * 1000;
  const warm = await h.batch(o.BENCH_THROUGHPUT_WARMUP, budget * WARMUP_SHARE);
  // A warm-up cut short leaves jobs queued: stopping the workers removes them, so the batch starts clean.
  if (warm.partial) {
    await h.stopWorkers();
    await h.startWorkers(workers);
  }
  const work = () => h.batch(o.BENCH_THROUGHPUT_RUNS, budget);
  const { result, cpu } = cpuAccountingAvailable()
    ? await withCpu(groups, work)
    : { result: await work(), cpu: undefined };
  return { stepsPerSec: result.steps / (result.ms / 1000), partial: result.partial, cpu };
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
    const { stepsPerSec, partial, cpu } = await throughput(h, workers, o, groups);
    const s = summarize(samples);
    console.error(
      `  ${h.label.padEnd(16)} ${workers} worker(s): p50 ${s.p50.toFixed(1)} ms, p99 ${s.p99.toFixed(1)} ms ` +
        `(${samples.length} runs), ${stepsPerSec.toFixed(0)} steps/s${partial ? ' (budget ran out)' : ''} ` +
        `(${((Date.now() - t0) / 1000).toFixed(1)} s)`,
    );
    return { ...s, samples: samples.length, stepsPerSec, partial, cpu };
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
    `norn engine bench: ${o.BENCH_SYSTEMS.join(', ')}; databases ${dbName}[_peer], queue prefix ${prefix}, ` +
      `concurrency ${o.BENCH_CONCURRENCY} per worker process${syncCommit}`,
  );

  // The engine's database always exists: the CPU accounting lists PostgreSQL backends through it.
  const db = await createBenchDatabase(o.DATABASE_URL, dbName, o.BENCH_PG_SYNCHRONOUS_COMMIT);
  cleanup.push(() => db.drop());
  const databases = [dbName];
  const peerDatabase = async (peer: string) => {
    const name = `${dbName}_${peer}`;
    const peerDb = await createThrowawayDatabase(
      o.DATABASE_URL,
      name,
      o.BENCH_PG_SYNCHRONOUS_COMMIT,
    );
    cleanup.push(() => peerDb.drop());
    databases.push(name);
    return peerDb.url;
  };
  cleanup.push(async () => {
    const redis = createRedis(o.REDIS_URL, 'client', silentLogger);
    await removeKeys(redis, prefix).finally(() => redis.quit());
  });
  const common = {
    redisUrl: o.REDIS_URL,
    prefix,
    concurrency: o.BENCH_CONCURRENCY,
    runTimeoutMs: o.BENCH_RUN_TIMEOUT_MS,
    maxRunsInFlight: Math.max(o.BENCH_THROUGHPUT_RUNS, o.BENCH_THROUGHPUT_WARMUP),
  };
  const engine = new EngineHarness({ ...common, databaseUrl: db.url, apps: o.BENCH_APPS });
  cleanup.push(() => engine.close());
  const peer = (databaseUrl: string) => ({
    databaseUrl,
    concurrency: o.BENCH_CONCURRENCY,
    runTimeoutMs: o.BENCH_RUN_TIMEOUT_MS,
  });
  const harnesses = new Map<SystemId, Harness>();
  for (const s of o.BENCH_SYSTEMS) {
    let h: Harness;
    if (s === 'engine') {
      await engine.prepare();
      h = engine;
    } else if (s === 'raw') {
      const raw = new RawHarness(common);
      cleanup.push(() => raw.close());
      await raw.prepare();
      h = raw;
    } else if (s === 'bullmq-insert') {
      const url = await peerDatabase('insert');
      const ins = new RawHarness(common, {
        label: SYSTEM_LABELS[s],
        queue: 'insert',
        env: { BENCH_INSERT_DATABASE_URL: url },
      });
      cleanup.push(() => ins.close());
      await createEventsTables(url);
      await ins.prepare();
      h = ins;
    } else {
      const url = await peerDatabase(
        s === 'graphile' ? 'graphile' : s === 'pg-boss' ? 'pgboss' : 'pgbossnotify',
      );
      const p =
        s === 'graphile'
          ? new GraphileHarness(peer(url))
          : new PgBossHarness(peer(url), s === 'pg-boss-notify');
      cleanup.push(() => p.close());
      await p.prepare().catch((err: unknown) => {
        throw new NornError('INTERNAL', `${p.label}: setup failed: ${(err as Error).message}`, {
          cause: err,
        });
      });
      h = p;
    }
    harnesses.set(s, h);
  }
  const groups = await pidGroups(o.REDIS_URL, engine, databases);

  const rows: Row[] = [];
  for (const workers of workerCounts) {
    // Every system per configuration, one after another: drift over the run hits all alike.
    for (const [system, h] of harnesses) {
      const m = await measure(h, workers, o, groups).catch((err: unknown) => {
        throw new NornError(
          isNornError(err) ? err.code : 'INTERNAL',
          `${h.label} with ${workers} worker process(es) failed: ${(err as Error).message}`,
          { cause: err },
        );
      });
      rows.push({ workers, system, m });
    }
  }
  printTable(rows, {
    environment: `${environment(redisVersion, pgVersion)}${syncCommit}`,
    concurrency: o.BENCH_CONCURRENCY,
    systems: systemNotes(o),
    latency:
      `${o.BENCH_LATENCY_RUNS} runs one at a time after ${o.BENCH_LATENCY_WARMUP} warm-up ` +
      `(each phase stops after ${o.BENCH_PHASE_BUDGET_S} s: "latency runs" says how many were taken)`,
    throughput:
      `${o.BENCH_THROUGHPUT_RUNS} runs in flight after a warm-up batch of ${o.BENCH_THROUGHPUT_WARMUP}; ` +
      `engine runs spread over ${o.BENCH_APPS} apps (the engine runs one run per app at a time, so at most ` +
      `${Math.min(o.BENCH_APPS, o.BENCH_THROUGHPUT_RUNS)} engine runs progress at once; the others have all ${o.BENCH_THROUGHPUT_RUNS} in flight)`,
  });
}

/** How each selected system does the work, for the report's header. */
function systemNotes(o: Options): string[] {
  const notes: Record<SystemId, string> = {
    raw: "raw BullMQ: the engine's flow, no-op steps, nothing written to PostgreSQL (the ceiling)",
    engine:
      "engine: steps start and finish in Redis, recorded to PostgreSQL in batches; the run's end is a PostgreSQL transaction",
    'bullmq-insert':
      'BullMQ+INSERT: that flow, each step INSERTs its start and its finish (each committed) before the next is released',
    graphile: `graphile-worker: concurrency ${o.BENCH_CONCURRENCY}; per step one transaction: INSERT start+finish, add_job(next)`,
    'pg-boss': `pg-boss: work() with batchSize ${o.BENCH_CONCURRENCY}, pollingIntervalSeconds 0.5; per job one transaction: INSERT start+finish, send(next, { db })`,
    'pg-boss-notify':
      'pg-boss+notify: the same, plus notifyWorker() after each batch to skip the polling wait',
  };
  return o.BENCH_SYSTEMS.map((s) => notes[s]);
}

/**
 * Processes whose CPU the throughput phase accounts for: this process, its worker processes, the
 * local Redis server, and the bench databases' PostgreSQL backends plus the WAL writer.
 */
async function pidGroups(
  redisUrl: string,
  engine: EngineHarness,
  databases: string[],
): Promise<() => Promise<PidGroups>> {
  const redis = createRedis(redisUrl, 'client', silentLogger);
  const info = await redis.info('server').finally(() => redis.quit());
  const redisPids = localPids([Number(/process_id:(\d+)/.exec(info)?.[1] ?? 0)], 'redis');
  return async () => {
    const { rows } = await engine.system.db.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE datname = ANY($1) OR backend_type = 'walwriter'",
      [databases],
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
// A backstop on top of the per-run timeouts and phase budgets: the defaults take about 10 minutes.
const deadline = setTimeout(() => {
  console.error('bench exceeded 30 minutes; giving up');
  process.kill(process.pid, 'SIGTERM');
}, 30 * 60_000);
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
