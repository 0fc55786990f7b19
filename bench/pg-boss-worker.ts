/**
 * A pg-boss peer's worker process, written as its docs recommend: one `work()` per process with
 * `batchSize` = the bench's concurrency (pg-boss 10 has no per-worker concurrency; a batch is how it
 * takes several jobs at once) and `pollingIntervalSeconds` at its minimum, 0.5. Each job of a batch,
 * in its own transaction, records the step's start and finish events and sends the next job through
 * that transaction (`send(…, { db })`, pg-boss's custom executor for transactional sends); the 9th
 * step marks the run done instead. With BENCH_PGBOSS_NOTIFY=1 the handler also calls
 * `notifyWorker(id)`, the documented way to skip the polling wait for the next fetch.
 * Env: DATABASE_URL, BENCH_CONCURRENCY, BENCH_PGBOSS_QUEUE, BENCH_PGBOSS_NOTIFY.
 */
import './parent-watch.js';
import PgBoss from 'pg-boss';
import pg from 'pg';
import { z } from 'zod';
import { MARK_DONE, RECORD_STEP, STEP_COUNT, StepPayload } from './step-events.js';
import { READY_LINE } from './workers.js';

const env = z
  .object({
    DATABASE_URL: z.string().url(),
    BENCH_CONCURRENCY: z.coerce.number().int().min(1),
    BENCH_PGBOSS_QUEUE: z.string().min(1),
    BENCH_PGBOSS_NOTIFY: z.enum(['0', '1']).default('0'),
  })
  .parse(process.env);

const boss = new PgBoss({ connectionString: env.DATABASE_URL });
boss.on('error', (err: Error) => console.error(`pg-boss error: ${err.message}`));
await boss.start();
// The handler's transactions: one client per job of a batch.
const pool = new pg.Pool({ connectionString: env.DATABASE_URL, max: env.BENCH_CONCURRENCY });
pool.on('error', () => {});

async function step(data: unknown): Promise<void> {
  const { runId, step } = StepPayload.parse(data);
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query(RECORD_STEP, [runId, step]);
    if (step < STEP_COUNT) {
      const db = { executeSql: (text: string, values: unknown[]) => client.query(text, values) };
      await boss.send(env.BENCH_PGBOSS_QUEUE, { runId, step: step + 1 }, { db });
    } else await client.query(MARK_DONE, [runId]);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

const notify = env.BENCH_PGBOSS_NOTIFY === '1';
let workerId = '';
workerId = await boss.work(
  env.BENCH_PGBOSS_QUEUE,
  { batchSize: env.BENCH_CONCURRENCY, pollingIntervalSeconds: 0.5 },
  async (jobs) => {
    await Promise.all(jobs.map((job) => step(job.data)));
    if (notify) boss.notifyWorker(workerId);
  },
);

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    boss
      .stop({ graceful: true, wait: true, timeout: 5_000 })
      .then(() => pool.end())
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  });
}
console.log(READY_LINE);
