/**
 * A graphile-worker peer's worker process, written as its docs recommend: `run()` with a task
 * list and `concurrency`; each step is a job whose task, in one transaction on the worker's own
 * pool (`helpers.withPgClient`), records the step's start and finish events and adds the next job
 * with `graphile_worker.add_job` (so the next step exists only if this one's events committed).
 * The 9th step marks the run done instead. Env: DATABASE_URL, BENCH_CONCURRENCY.
 */
import './parent-watch.js';
import { Logger, run, type Task } from 'graphile-worker';
import { z } from 'zod';
import { GRAPHILE_TASK, MARK_DONE, RECORD_STEP, STEP_COUNT, StepPayload } from './step-events.js';
import { READY_LINE } from './workers.js';

const env = z
  .object({ DATABASE_URL: z.string().url(), BENCH_CONCURRENCY: z.coerce.number().int().min(1) })
  .parse(process.env);

const step: Task = async (payload, helpers) => {
  const { runId, step } = StepPayload.parse(payload);
  await helpers.withPgClient(async (client) => {
    await client.query('BEGIN');
    try {
      await client.query(RECORD_STEP, [runId, step]);
      if (step < STEP_COUNT)
        await client.query(
          `SELECT graphile_worker.add_job($1, json_build_object('runId', $2::text, 'step', $3::int))`,
          [GRAPHILE_TASK, runId, step + 1],
        );
      else await client.query(MARK_DONE, [runId]);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  });
};

// Warnings and errors only: anything graphile-worker says at those levels is worth seeing.
const logger = new Logger(() => (level, message) => {
  if (level === 'error' || level === 'warning')
    console.error(`graphile-worker ${level}: ${message}`);
});

const runner = await run({
  connectionString: env.DATABASE_URL,
  concurrency: env.BENCH_CONCURRENCY,
  noHandleSignals: true,
  logger,
  taskList: { [GRAPHILE_TASK]: step },
});

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    runner.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
console.log(READY_LINE);
