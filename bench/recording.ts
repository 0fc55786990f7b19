/**
 * `npx tsx bench/recording.ts`: the least PostgreSQL CPU a run of the 9-step bench pipeline can
 * cost, whatever the rest of the engine does. It makes the PostgreSQL calls of BENCH_RUNS runs the
 * cheapest way the engine can: each run requested on a free app of its own (admitted in the same
 * statement), all 18 step transitions of a run recorded in writes of 20 runs each (norn_record; a
 * worker never batches better), and each run ended with nothing left to record (norn_run_succeed).
 * It prints the CPU the PostgreSQL backends (and the WAL writer) used, per run and per step.
 *
 * Compare it with the CPU per step of raw BullMQ that `npm run bench:engine` prints: the engine's
 * throughput can reach at most raw × rawCpu / (rawCpu + this), before Node and Redis do any of the
 * engine's work.
 *
 * Env: DATABASE_URL (the bench database is created next to it), BENCH_RUNS (default 200),
 * BENCH_ROUNDS (default 3).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createDb } from '../src/shared/db.js';
import { AppStore } from '../src/shared/store/apps.js';
import { RunStore } from '../src/shared/store/runs.js';
import { BENCH_STEPS } from './pipelines.js';
import { checkPostgres, createBenchDatabase } from './services.js';
import { cpuAccountingAvailable, localPids, withCpu } from './cpu.js';
import { silentLogger } from '../src/shared/logger.js';

const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const RUNS = Number(process.env.BENCH_RUNS || 200);
const ROUNDS = Number(process.env.BENCH_ROUNDS || 3);
const PER_WRITE = 20;

/** A run's live log as the Lua scripts write it: start and finish of every step, in order. */
function liveLog(ts: string): string[] {
  return BENCH_STEPS.flatMap((step, i) => [
    `{"t":${2 * i + 1},"k":"start","step":"${step}","w":"bench","a":1,"ts":"${ts}"}`,
    `{"t":${2 * i + 2},"k":"finish","step":"${step}","status":"complete","d":0,"ts":"${ts}"}`,
  ]);
}

async function main() {
  if (!cpuAccountingAvailable()) throw new Error('CPU accounting needs Linux /proc');
  await checkPostgres(DATABASE_URL);
  const bdb = await createBenchDatabase(
    DATABASE_URL,
    `norn_bench_${randomBytes(5).toString('hex')}`,
  );
  const db = createDb(bdb.url, { log: silentLogger, max: 1, applicationName: 'norn-bench' });
  try {
    const store = new RunStore(db, 'bench', 30_000);
    const apps = Array.from({ length: RUNS }, (_, i) => `r${i}`);
    for (const app of apps) await new AppStore(db).upsert(app, { name: app }, '{}', 'json');
    const groups = async () => {
      const { rows } = await db.query<{ pid: number }>(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() OR backend_type = 'walwriter'",
      );
      return {
        postgres: localPids(
          rows.map((r) => r.pid),
          'postgres',
        ),
      };
    };
    console.log(
      `PostgreSQL CPU of ${RUNS} runs of ${BENCH_STEPS.length} steps, batched as well as the engine can (${ROUNDS} rounds):`,
    );
    console.log('| round | request µs/run | record µs/run | end µs/run | total µs/step |');
    console.log('|---|---|---|---|---|');
    for (let round = 1; round <= ROUNDS; round++) {
      const ids = apps.map(() => randomUUID());
      const request = await withCpu(groups, async () => {
        for (let i = 0; i < RUNS; i++) {
          await store.requestRun({
            id: ids[i]!,
            appId: apps[i]!,
            scope: `app:${apps[i]!}`,
            pipeline: 'bench',
            version: '1',
            eventPrefix: 'bench',
            queue: 'steps',
            steps: [...BENCH_STEPS],
            params: {},
            policy: 'queue',
          });
        }
      });
      const log = liveLog(new Date().toISOString());
      const record = await withCpu(groups, async () => {
        for (let i = 0; i < RUNS; i += PER_WRITE)
          await store.record(ids.slice(i, i + PER_WRITE).map((runId) => ({ runId, log })));
      });
      const end = await withCpu(groups, async () => {
        for (const id of ids) {
          const t = await store.runSucceeded(id, []);
          if (t.action !== 'ended') throw new Error(`run ${id} did not end: ${t.action}`);
        }
      });
      const perRun = (ms: number) => (ms * 1000) / RUNS;
      const total = request.cpu.ms.postgres! + record.cpu.ms.postgres! + end.cpu.ms.postgres!;
      console.log(
        `| ${round} | ${perRun(request.cpu.ms.postgres!).toFixed(0)} | ${perRun(record.cpu.ms.postgres!).toFixed(0)} | ` +
          `${perRun(end.cpu.ms.postgres!).toFixed(0)} | ${(perRun(total) / BENCH_STEPS.length).toFixed(0)} |`,
      );
    }
  } finally {
    await db.end();
    await bdb.drop();
  }
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(2);
});
