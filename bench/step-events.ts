/**
 * What the durable peers (graphile-worker, pg-boss, BullMQ+INSERT) write for each step, shared by
 * their worker processes and the bench: a step's start and finish events in bench_events, and the
 * end of a run in bench_runs_done, announced after commit on DONE_CHANNEL (the bench LISTENs).
 */
import { z } from 'zod';
import { BENCH_STEPS } from './pipelines.js';

export const STEP_COUNT = BENCH_STEPS.length;

export const EVENTS_SCHEMA = `
  CREATE TABLE IF NOT EXISTS bench_events (
    id bigserial PRIMARY KEY,
    run_id text NOT NULL,
    step int NOT NULL,
    kind text NOT NULL,
    at timestamptz NOT NULL DEFAULT now()
  );
  CREATE TABLE IF NOT EXISTS bench_runs_done (
    run_id text PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now()
  )`;

/** graphile-worker's task identifier for a step. */
export const GRAPHILE_TASK = 'bench_step';

export const DONE_CHANNEL = 'bench_done';

/** One INSERT for both events of a step (graphile-worker, pg-boss: inside the step's transaction). */
export const RECORD_STEP =
  "INSERT INTO bench_events (run_id, step, kind) VALUES ($1, $2, 'start'), ($1, $2, 'finish')";

/** One event, committed on its own (BullMQ+INSERT: one per transition). */
export const RECORD_EVENT = 'INSERT INTO bench_events (run_id, step, kind) VALUES ($1, $2, $3)';

/** The last step marks the run done; the notification is delivered when the transaction commits. */
export const MARK_DONE = `WITH done AS (INSERT INTO bench_runs_done (run_id) VALUES ($1))
  SELECT pg_notify('${DONE_CHANNEL}', $1)`;

/** Steps finished by these runs (the throughput batch that ran out of time counts these). */
export const COUNT_FINISHED =
  "SELECT count(*)::int AS n FROM bench_events WHERE kind = 'finish' AND run_id = ANY($1)";

export const StepPayload = z.object({
  runId: z.string().min(1),
  step: z.number().int().min(1).max(STEP_COUNT),
});
export type StepPayload = z.output<typeof StepPayload>;
