/**
 * The engine's state machine, written down once: every status of a run, a step and a life-cycle
 * hook, and every transition between them, with who performs it (a norn_* function of
 * 001_baseline.sql, a Lua script of live.ts, TypeScript), what it needs, what it appends, what a
 * worker that dies just before or just after it leaves, and the test that shows it.
 * `npm run docs:engine` writes docs/engine.md from this table; unit tests check that the doc is
 * current and that every `test` names an existing test whose title starts with the id.
 * Data only: nothing here is read by the engine.
 */
import type { RunStatus } from '../shared/store/runs.js';

/** A run_steps row's status (the CHECK in 001_baseline.sql); a step without a row is pending. */
export type StepStatus =
  'pending' | 'running' | 'complete' | 'failed' | 'skipped' | 'cancelled' | 'not_run';

/** A run_hooks row's status (the CHECK in 001_baseline.sql). */
export type HookStatus = 'pending' | 'done' | 'failed';

/** Who performs a transition: a PostgreSQL function, a live-layer Lua script, TypeScript. */
export type Performer =
  | { sql: `norn_${string}` }
  | { lua: 'OPEN' | 'START' | 'FINISH' | 'TRIM' | 'CANCEL' | 'CLOSE' }
  | { ts: string };

interface Spec<Subject extends string, S extends string> {
  /** `<subject>.<verb>`, named by the title of the test in `test`. */
  id: `${Subject}.${string}`;
  subject: Subject;
  /** null: no row yet (a run not requested, a hook not due). */
  from: readonly (S | null)[];
  /**
   * 'same': the status does not change (the transition is in Redis, BullMQ or the lease); null:
   * nothing is recorded (the request is answered without a run); a list: one of them.
   */
  to: S | readonly S[] | 'same' | null;
  /** Left out of the state diagram (it records what other transitions decided). */
  diagram?: false;
  /** In the order they act. */
  by: readonly Performer[];
  /** What it does, in one sentence. */
  what: string;
  pre: readonly string[];
  /** Event types it appends (`<prefix>` is the pipeline's event prefix). */
  events: readonly string[];
  crashBefore: string;
  crashAfter: string;
  /** The exact title of the test that shows it (it starts with `<id>:`). */
  test: string;
}

export type TransitionSpec =
  | Spec<'run', RunStatus>
  | Spec<'step', StepStatus>
  | Spec<'finalizer', StepStatus>
  | Spec<'hook', HookStatus>;

export const RUN_STATUSES = {
  queued: 'recorded, waiting for its scope (another run holds the lease, or older runs wait)',
  running: 'admitted: holds its scope’s lease; its live state is open and its flow added',
  cancelling:
    'a cancel (or a superseding request) was recorded: its step is aborted, no other starts',
  succeeded: 'its last step finished; the lease is released',
  failed: 'a step failed for good, or the sweeper ended it after its lease expired',
  cancelled: 'cancelled while queued, superseded, or stopped after a cancel',
} as const satisfies Record<RunStatus, string>;

export const STEP_STATUSES = {
  pending: 'no row yet (or a row created to be skipped): the step has not started',
  running: 'its start is recorded (a step whose worker died stays running until it starts again)',
  complete: 'its finish is recorded, with its output',
  failed: 'an attempt failed (to be retried), or the last one did and the run failed',
  skipped: 'reported skipped: completed by the run this one resumes, or skipped by its handler',
  cancelled: 'the step that was running (or about to start) when the run was cancelled',
  not_run: 'the run ended before the step ran (rows without one are shown not_run too)',
} as const satisfies Record<StepStatus, string>;

export const HOOK_STATUSES = {
  pending: 'due (its row was written by the transition that made it due), or due again later',
  done: 'ran and committed, in the transaction that marked it done',
  failed: 'threw on every attempt; reported as `<prefix>.hook_failed`',
} as const satisfies Record<HookStatus, string>;

const SWEEP = { ts: 'RunService.sweep' } as const;
const STALL =
  'BullMQ re-delivers the job once its lock expires (NORN_LOCK_DURATION_MS + NORN_STALLED_INTERVAL_MS, up to NORN_MAX_STALLED_COUNT times): step.restart.';
const NEXT_BY_SWEEPER =
  'the run it admitted has a lease but no flow: the sweeper adds the flow once that lease expires (run.flow-readded)';

export const TRANSITIONS = [
  // ---- requests ----------------------------------------------------------------------------
  {
    id: 'run.request',
    subject: 'run',
    from: [null],
    to: 'queued',
    by: [{ ts: 'RunService.request (or resume)' }, { sql: 'norn_request_run' }],
    what: 'Records a run for a busy scope; it waits behind the runs ahead of it (position).',
    pre: [
      'the app exists and is not deleted (trigger runs_of_live_apps_only, NRN01)',
      'the scope has no runs of another app (NRN02)',
      'the scope is held or has queued runs; policy queue or supersede, or coalesce finding no queued run of its pipeline',
      'a resume: the old run failed or was cancelled; rows of its completed steps are copied (skip, with outputs)',
    ],
    events: ['<prefix>.queued'],
    crashBefore: 'Nothing is recorded; the caller gets an error and may ask again.',
    crashAfter:
      'The run is queued in PostgreSQL; it is admitted when the scope frees (run.admit), whatever became of the requester.',
    test: "run.request: takes the pipeline's policy, which a request may override",
  },
  {
    id: 'run.request-free',
    subject: 'run',
    from: [null],
    to: 'running',
    by: [{ ts: 'RunService.request' }, { sql: 'norn_request_run' }, { lua: 'OPEN' }],
    what: 'A request for a free scope is admitted in the statement that records it: lease taken, onStart due; then the live state is opened and the flow added.',
    pre: ['as run.request, and no lease and no queued run in the scope'],
    events: ['<prefix>.queued'],
    crashBefore: 'Nothing is recorded.',
    crashAfter:
      'Committed before OPEN and the flow: the run has a lease but no flow; the sweeper adds it once the lease expires (run.flow-readded).',
    test: 'run.request-free: a request for a free scope is admitted at once and holds the lease',
  },
  {
    id: 'run.reject',
    subject: 'run',
    from: [null],
    to: null,
    by: [{ ts: 'RunService.request' }, { sql: 'norn_request_run' }],
    what: 'Policy reject and the scope busy: no run is recorded; RunService throws CONFLICT (409) naming the busy run.',
    pre: ['policy reject', 'a run of the scope is running, cancelling or queued'],
    events: [],
    crashBefore: 'Nothing is recorded.',
    crashAfter: 'Nothing was recorded.',
    test: "run.reject: a request while the app is busy is refused with the running run's id",
  },
  {
    id: 'run.coalesce',
    subject: 'run',
    from: [null],
    to: null,
    by: [{ ts: 'RunService.request' }, { sql: 'norn_request_run' }],
    what: 'Policy coalesce: the run of the same pipeline already queued in the scope is the answer (coalesced: true); nothing is recorded.',
    pre: [
      'policy coalesce',
      'a queued run of the same pipeline in the scope (with none, the request is queued or admitted as usual)',
    ],
    events: [],
    crashBefore: 'Nothing is recorded.',
    crashAfter: 'Nothing was recorded.',
    test: 'run.coalesce: a request finds the run of its pipeline already waiting and returns it',
  },
  {
    id: 'run.supersede',
    subject: 'run',
    from: ['running', 'cancelling'],
    to: 'cancelling',
    by: [
      { ts: 'RunService.request' },
      { sql: 'norn_request_run' },
      { lua: 'CANCEL' },
      { ts: 'RunService.stopRunning' },
    ],
    what: 'A superseding request marks the scope’s active run cancelling (reason "superseded by <id>"), then the live state is marked cancelling and the run stopped (run.cancelled or run.cancel-idle); the new run is queued behind it.',
    pre: ['policy supersede', 'a run of the scope is running or cancelling'],
    events: ['<prefix>.queued (of the new run)'],
    crashBefore: 'Nothing is recorded.',
    crashAfter:
      'Committed but the live state not marked and no cancel broadcast: steps go on starting; the sweeper stops the run once the cancel is older than NORN_CANCEL_GRACE_MS (stuckCancels → stopRunning).',
    test: 'run.supersede: a newer request cancels the running run and the queued ones; the newest runs',
  },
  {
    id: 'run.supersede-queued',
    subject: 'run',
    from: ['queued'],
    to: 'cancelled',
    by: [{ ts: 'RunService.request' }, { sql: 'norn_request_run' }, { sql: 'norn_cancel_queued' }],
    what: 'A superseding request ends every queued run of the scope cancelled ("superseded by <id>"), onCancel due.',
    pre: ['policy supersede', 'queued runs in the scope'],
    events: ['<prefix>.failed {step: null, cancelled: true}', '<prefix>.queued (of the new run)'],
    crashBefore: 'Nothing is recorded.',
    crashAfter: 'All of it is one transaction; only the publishing of its events may be lost.',
    test: 'run.supersede-queued: a superseding request ends the queued runs of its scope cancelled at once',
  },
  // ---- admission ---------------------------------------------------------------------------
  {
    id: 'run.admit',
    subject: 'run',
    from: ['queued'],
    to: 'running',
    by: [
      { sql: 'norn_admit' },
      { ts: 'RunService.apply' },
      { ts: 'RunService.start' },
      { lua: 'OPEN' },
    ],
    what: 'The oldest queued run of a scope without a lease is admitted (lease, started_at, onStart due), in the transaction that freed the scope; the caller then opens its live state and adds its flow.',
    pre: [
      'no lease on the scope',
      'called by norn_run_succeed, norn_step_fail and norn_request_run, and by the sweeper for a scope with queued runs and no lease (norn_admit_scope)',
    ],
    events: [],
    crashBefore: 'The ending transition has not committed: the run stays queued.',
    crashAfter:
      'Committed before OPEN and the flow: the run has a lease but no flow; the sweeper adds it once the lease expires (run.flow-readded).',
    test: 'run.admit: requests for one app run one after another, in request order, across two workers; other apps run in parallel',
  },
  // ---- steps (decided in Redis, recorded by norn_record or the run's end) ------------------
  {
    id: 'step.start',
    subject: 'step',
    from: ['pending', 'failed'],
    to: 'running',
    by: [{ ts: 'createProcessor (startStep)' }, { lua: 'START' }],
    what: 'START counts the attempt (a:<step>), numbers the transition (t), marks the step running and appends a start entry to the live log, which the worker hands to its recorder.',
    pre: [
      'the live state is running (ended: finished, cancelling: cancel, none: missing → run.reopen)',
      'the step is not complete or skipped (step.done) and not seeded skip (step.skip)',
      'the step before it is complete or skipped (else step.early)',
    ],
    events: ['<prefix>.step {status: running, attempt} (when recorded)'],
    crashBefore: `Nothing changed. ${STALL}`,
    crashAfter: `The start stays in the live log (the next transition or the run’s end records it); the step is running and its lease is no longer renewed. ${STALL}`,
    test: 'step.start: starts a step, records its finish, and lets the next step start only after it',
  },
  {
    id: 'step.restart',
    subject: 'step',
    from: ['running'],
    to: 'same',
    by: [{ ts: 'BullMQ Worker (stalled-job check)' }, { lua: 'START' }],
    what: 'A step whose worker died is re-delivered and started again: START counts a new attempt and logs a second start; every later step runs once.',
    pre: ['the job’s lock expired (its worker died)', 'as step.start'],
    events: ['<prefix>.step {status: running, attempt: n + 1}'],
    crashBefore:
      'Another stall: past NORN_MAX_STALLED_COUNT stalls the job fails, its flow with it, and the sweeper ends the run (run.lease-expired-flow-ended).',
    crashAfter: 'As step.start.',
    test: 'step.restart: a worker SIGKILLed mid-step: the step re-runs on another worker and every later step runs once',
  },
  {
    id: 'step.early',
    subject: 'step',
    from: ['pending'],
    to: 'same',
    by: [{ ts: 'createProcessor (startStep)' }, { lua: 'START' }],
    what: 'START answers early (nothing changes) while the step before has not finished in Redis; the processor asks again after 2, 4 … 512 ms (ten tries, about a second), then throws INTERNAL outside the handler: nothing is recorded, BullMQ counts a failed attempt and retries the job if it has attempts left (else the flow fails and the sweeper ends the run: run.lease-expired-flow-ended).',
    pre: ['the previous step is not complete or skipped in the live state'],
    events: [],
    crashBefore: STALL,
    crashAfter: STALL,
    test: 'step.early: a step whose predecessor never finishes asks again for about a second, then fails without recording anything',
  },
  {
    id: 'step.finish',
    subject: 'step',
    from: ['running'],
    to: 'complete',
    by: [{ ts: 'createProcessor (finish)' }, { lua: 'FINISH' }],
    what: 'FINISH marks the step complete with its output (o:<step>) and logs a finish entry; a middle step does not wait for it (the BullMQ completion on the same connection follows it); the last step’s finish goes on to run.succeed.',
    pre: [
      'the live state is running or cancelling (ended: finished → step.fenced)',
      'the step is not complete or skipped already (done: nothing again)',
    ],
    events: ['<prefix>.step {status: complete, durationMs} (when recorded)'],
    crashBefore: `The handler’s work is done but not recorded: ${STALL} The handler runs again.`,
    crashAfter:
      'Finished in Redis but the job not completed: the re-delivered job finds it done (step.done); the finish entry is recorded by the next transition or the run’s end.',
    test: 'step.finish: runs every step as a child job in order, deepest first, and records outputs and events',
  },
  {
    id: 'step.done',
    subject: 'step',
    from: ['complete', 'skipped'],
    to: 'same',
    by: [{ ts: 'createProcessor' }, { lua: 'START' }],
    what: 'START answers done for a step re-delivered after it finished: nothing runs again; a last step still ends its run (the crash may have come before the run’s end).',
    pre: ['the step is complete or skipped in the live state'],
    events: ['those of run.succeed, for a last step'],
    crashBefore: STALL,
    crashAfter: 'Nothing to redo.',
    test: 'step.done: a re-delivered finished step does nothing again',
  },
  {
    id: 'step.skip',
    subject: 'step',
    from: ['pending'],
    to: 'skipped',
    by: [{ ts: 'createProcessor' }, { lua: 'START' }, { lua: 'FINISH' }],
    what: 'In a resumed run, a step the earlier run completed was seeded skip (OPEN from liveSeed): START answers skip and FINISH records it skipped; its output is the earlier run’s.',
    pre: ['the run resumes another (RunService.resume)', 'the step was complete or skipped there'],
    events: ['<prefix>.step {status: skipped, reason: "completed by run <id>"}'],
    crashBefore: STALL,
    crashAfter: 'As step.finish.',
    test: 'step.skip: resume starts a new run in which steps completed earlier are reported skipped',
  },
  {
    id: 'step.self-skip',
    subject: 'step',
    from: ['running'],
    to: 'skipped',
    by: [{ ts: 'createProcessor (finish)' }, { lua: 'FINISH' }],
    what: 'A handler returned skipStep(reason): FINISH records the step skipped with that reason and no output.',
    pre: ['as step.finish'],
    events: ['<prefix>.step {status: skipped, reason}'],
    crashBefore: `${STALL} The handler runs again.`,
    crashAfter: 'As step.finish.',
    test: 'step.self-skip: a step can report itself skipped, with its reason',
  },
  {
    id: 'step.record',
    subject: 'step',
    from: ['pending', 'running', 'failed'],
    to: ['running', 'complete', 'skipped'],
    diagram: false,
    by: [{ ts: 'Recorder' }, { sql: 'norn_record' }, { lua: 'TRIM' }],
    what: 'Writes live log entries to run_steps and events in batches: per run in t order from runs.recorded_tseq, each once, up to the first missing number (a gap waits: the recorder re-reads the whole live log, 20 times in a row at most); a recorded start renews the lease. Then publishes the events and trims what it recorded.',
    pre: [
      'the run is running or cancelling (entries of an ended run are dropped)',
      'the entry’s t follows the recorded ones without a gap',
    ],
    events: ['<prefix>.step, one per entry (running / complete / skipped)'],
    crashBefore:
      'Nothing is lost: the entries stay in the live log; the run’s next transition hands them to a recorder again, and the run’s end records them itself.',
    crashAfter:
      'Committed but not trimmed: the entries are sent again and ignored (t ≤ recorded_tseq), trimmed by a later write; events not yet published are read from PostgreSQL by the relay.',
    test: 'step.record: records a live log in order, each transition once; a gap waits for what is missing',
  },
  {
    id: 'step.progress',
    subject: 'step',
    from: ['running'],
    to: 'same',
    diagram: false,
    by: [
      { ts: 'StepContext.progress' },
      { ts: 'Recorder.progress' },
      { sql: 'norn_record' },
      { sql: 'norn_append_event' },
    ],
    what: 'A running step reports how far it is (a rollout’s ready of desired replicas): in one transaction the run’s live log is recorded (so the step’s start comes first) and a progress event appended, then published; a repeat of the step’s last progress is dropped, and one run’s progress events are written one at a time, in order.',
    pre: ['the run is running (else nothing is appended)'],
    events: ['<prefix>.progress {step, sagaId, ready, desired}'],
    crashBefore:
      'The event is not written; the step’s next progress (or none) follows. Informational only.',
    crashAfter: 'Committed: the relay reads it from PostgreSQL if the publish was lost.',
    test: "step.progress: a step's progress events follow its start, in order, before its completion (which carries its output)",
  },
  {
    id: 'step.retry',
    subject: 'step',
    from: ['running'],
    to: 'failed',
    by: [{ ts: 'createProcessor (recordFailure)' }, { sql: 'norn_step_fail' }],
    what: 'An attempt failed with attempts left: the live log is recorded, the step row failed with its error, and BullMQ retries the job after its backoff (the live state stays running; the next START counts the attempt).',
    pre: [
      'a retryable error (not UnrecoverableError, not a NornError with retryable false) and attempts left',
      'the run holds its lease (else fenced: nothing recorded)',
    ],
    events: ['<prefix>.step {status: failed, willRetry: true, attempt, error}'],
    crashBefore: `The failure is not recorded and no attempt is spent: ${STALL}`,
    crashAfter: `Recorded, but BullMQ never got the error: ${STALL} Its start clears the error.`,
    test: 'step.retry: retries a retryable step within its attempts and the run completes',
  },
  {
    id: 'step.fenced',
    subject: 'step',
    from: ['running'],
    to: 'same',
    by: [
      { lua: 'START' },
      { lua: 'FINISH' },
      { sql: 'norn_record' },
      { sql: 'norn_run_succeed' },
      { sql: 'norn_step_fail' },
    ],
    what: 'A step of a run that ended (or lost its lease) cannot start or finish: START/FINISH answer finished (missing when no live state and no lease), the processor fails the job LEASE_LOST, PostgreSQL drops late entries, and norn_run_succeed/norn_step_fail answer fenced without the lease.',
    pre: ['the run ended (CLOSE marked the live state ended) or does not hold its lease'],
    events: [],
    crashBefore: 'Nothing to record.',
    crashAfter: 'Nothing was recorded.',
    test: 'step.fenced: a run that ended is fenced: nothing of it starts or finishes, and late entries are dropped',
  },
  {
    id: 'step.lease-lost',
    subject: 'step',
    from: ['running'],
    to: 'same',
    by: [{ ts: 'startHeartbeat' }, { ts: 'createProcessor' }],
    what: 'A heartbeat (every NORN_LEASE_HEARTBEAT_MS) finds no lease of the run: the step is aborted and its job failed LEASE_LOST (unrecoverable); nothing is recorded in PostgreSQL.',
    pre: ['the run has ended elsewhere: its lease row is gone'],
    events: [],
    crashBefore: STALL,
    crashAfter: 'The job was failed already; nothing was recorded.',
    test: 'step.lease-lost: a heartbeat that finds no lease aborts the step and fails its job without recording it',
  },
  {
    id: 'step.handback',
    subject: 'step',
    from: ['running'],
    to: 'same',
    by: [
      { ts: 'startWorkerFleet (close)' },
      { ts: 'ActiveSteps.abortAll' },
      { ts: 'createProcessor' },
    ],
    what: 'On SIGTERM a step still running after NORN_SHUTDOWN_GRACE_MS is aborted and moved back to the queue (moveToDelayed, DelayedError) without spending a BullMQ attempt; another worker starts it again (START counts a new attempt).',
    pre: ['the worker is shutting down', 'the step has a job token'],
    events: [],
    crashBefore: STALL,
    crashAfter: 'The job waits in the queue for another worker.',
    test: 'step.handback: a worker shutdown hands the step back at the injected time without spending an attempt',
  },
  {
    id: 'step.cancel',
    subject: 'step',
    from: ['pending'],
    to: 'cancelled',
    by: [{ ts: 'createProcessor' }, { lua: 'START' }, { sql: 'norn_step_fail' }],
    what: 'START answers cancel (the live state is cancelling): the step does not run; norn_step_fail records the live log, the step cancelled, later steps not_run and the run cancelled; the job fails CANCELLED.',
    pre: ['the live state is cancelling'],
    events: ['<prefix>.step {status: cancelled}', '<prefix>.failed {step, cancelled: true}'],
    crashBefore: `${STALL} START answers cancel again.`,
    crashAfter: `The run ended cancelled but its live state was not closed and the finalizer not scheduled; ${NEXT_BY_SWEEPER}.`,
    test: 'step.cancel: a run cancelled before the step starts fails the step as cancelled without running it',
  },
  // ---- the end of a run --------------------------------------------------------------------
  {
    id: 'run.succeed',
    subject: 'run',
    from: ['running', 'cancelling'],
    to: 'succeeded',
    by: [{ ts: 'createProcessor (endRun)' }, { sql: 'norn_run_succeed' }, { lua: 'CLOSE' }],
    what: 'The last step finished: the whole live log is recorded, the run succeeded, the lease released, onSucceed due, the next queued run admitted; then the live state is closed. A cancelling run whose last step finished succeeds too.',
    pre: [
      'the run holds its lease (else fenced)',
      'the log holds the last step’s finish (else incomplete: what it held is recorded)',
    ],
    events: ['<prefix>.step (what the log still held)', '<prefix>.completed {summary}'],
    crashBefore:
      'The last step is finished in Redis but the run not ended: the re-delivered job finds it done and ends the run (step.done). (PostgreSQL down past NORN_DB_RETRY_MS instead fails the job UNAVAILABLE: an attempt left ends the run the same way; with none the flow has failed and the sweeper ends the run failed, run.lease-expired-flow-ended.)',
    crashAfter: `The live state stays open (harmless: every step is done); ${NEXT_BY_SWEEPER}.`,
    test: 'run.succeed: the last step ends the run in PostgreSQL with the whole live log',
  },
  {
    id: 'run.fail',
    subject: 'run',
    from: ['running', 'cancelling'],
    to: 'failed',
    by: [{ ts: 'createProcessor (recordFailure)' }, { sql: 'norn_step_fail' }, { lua: 'CLOSE' }],
    what: 'A step failed for good: the live log is recorded, the step failed, later step rows not_run, the run failed (error, failed_step), the lease released, onFail due, the next run admitted; then the live state is closed, the finalizer scheduled, and the job fails unrecoverably (its parents fail too).',
    pre: [
      'not retryable, or the last attempt',
      'the run holds its lease (else fenced: the run is not ours)',
    ],
    events: [
      '<prefix>.step {status: failed, error}',
      '<prefix>.failed {step, error, cancelled: false}',
    ],
    crashBefore: `Not recorded: ${STALL}`,
    crashAfter: `The run has ended but its live state was not closed: the re-delivered job runs the step again (PostgreSQL drops its transitions; a heartbeat that finds no lease aborts it, step.lease-lost); the finalizer is not scheduled; ${NEXT_BY_SWEEPER}.`,
    test: 'run.fail: fails the run at a failing step; later steps are recorded not run, never left waiting',
  },
  {
    id: 'run.cancel-queued',
    subject: 'run',
    from: ['queued'],
    to: 'cancelled',
    by: [
      { ts: 'RunService.cancel' },
      { sql: 'norn_request_cancel' },
      { sql: 'norn_cancel_queued' },
    ],
    what: 'A queued run is cancelled at once (cancel_reason, finished_at), onCancel due; no finalizer (nothing ran).',
    pre: ['the run is queued'],
    events: ['<prefix>.failed {step: null, error: "cancelled: <reason>", cancelled: true}'],
    crashBefore: 'Nothing is recorded.',
    crashAfter: 'One transaction; only the publishing of its event may be lost.',
    test: 'run.cancel-queued: cancels a queued run at once, and a run whose step ignores its signal after the grace period',
  },
  {
    id: 'run.cancel-running',
    subject: 'run',
    from: ['running', 'cancelling'],
    to: 'cancelling',
    by: [
      { ts: 'RunService.cancel' },
      { sql: 'norn_request_cancel' },
      { lua: 'CANCEL' },
      { ts: 'RunService.stopRunning' },
    ],
    what: 'A running run is marked cancelling (reason, cancel_requested_at kept from the first cancel); the live state is marked cancelling so no further step starts (a running step may still finish), and the run is stopped (run.cancelled or run.cancel-idle).',
    pre: ['the run is running or cancelling'],
    events: [],
    crashBefore: 'Nothing is recorded.',
    crashAfter:
      'Committed but the live state not marked and no broadcast: steps go on starting; the sweeper stops the run once the cancel is older than NORN_CANCEL_GRACE_MS.',
    test: 'run.cancel-running: a cancelled run starts no further step, but the running one may still finish',
  },
  {
    id: 'run.cancelled',
    subject: 'run',
    from: ['cancelling'],
    to: 'cancelled',
    by: [
      { ts: 'RunService.stopRunning' },
      { ts: 'EventBus.broadcastCancel' },
      { ts: 'ActiveSteps.abort' },
      { ts: 'createProcessor (recordFailure)' },
      { sql: 'norn_step_fail' },
      { lua: 'CLOSE' },
    ],
    what: 'The cancel broadcast aborts the running step (a handler that ignores its signal is abandoned after NORN_CANCEL_GRACE_MS): the step cancelled, later steps not_run, the run cancelled, lease released, onCancel due, next run admitted; then the live state is closed and the finalizer scheduled.',
    pre: [
      'a worker runs a step of the run',
      'no lease needed: a cancel ends the run whoever holds it',
    ],
    events: [
      '<prefix>.step {status: cancelled}',
      '<prefix>.failed {step, error: "cancelled", cancelled: true}',
    ],
    crashBefore:
      'The run stays cancelling; the sweeper stops it once the cancel is older than NORN_CANCEL_GRACE_MS (run.cancel-idle, after the dead worker’s job is stalled and removable), or the re-delivered step finds it cancelling (step.cancel).',
    crashAfter: `The finalizer is not scheduled and the live state stays cancelling (no step starts); ${NEXT_BY_SWEEPER}.`,
    test: 'run.cancelled: cancels a running step, kills its child processes, and ends the run cancelled within seconds',
  },
  {
    id: 'run.cancel-idle',
    subject: 'run',
    from: ['cancelling'],
    to: 'cancelled',
    by: [{ ts: 'RunService.stopRunning' }, { sql: 'norn_step_fail' }, { lua: 'CLOSE' }],
    what: 'No step is active (waiting between steps, or no worker alive): the flow is removed and the run ended cancelled, the step last running or failed marked cancelled. Run by RunService.cancel, by a superseding request and by the sweeper for cancels older than NORN_CANCEL_GRACE_MS.',
    pre: ['the flow’s root is gone or could be removed (no step of it is locked by a worker)'],
    events: [
      '<prefix>.step {status: cancelled} (the step running or failed last, if any)',
      '<prefix>.failed {cancelled: true}',
    ],
    crashBefore: 'The run stays cancelling until the sweeper’s next look (stuckCancels).',
    crashAfter: `The finalizer is not scheduled; ${NEXT_BY_SWEEPER}.`,
    test: 'run.cancel-idle: cancels a run that waits between steps even when no worker is alive',
  },
  // ---- recovery ----------------------------------------------------------------------------
  {
    id: 'run.reopen',
    subject: 'run',
    from: ['running'],
    to: 'same',
    by: [{ ts: 'createProcessor (reopen)' }, { ts: 'RunService.start' }, { lua: 'OPEN' }],
    what: 'START or FINISH found no live state (Redis lost it): if PostgreSQL has the run running and holding its lease, the live state is rebuilt from what it recorded (liveSeed: completed steps and outputs, t from recorded_tseq) and the call made again.',
    pre: ['the live state is missing', 'the run is running (not cancelling) and holds its lease'],
    events: [],
    crashBefore: STALL,
    crashAfter: 'Opening is idempotent: the next step finds the live state.',
    test: 'run.reopen: a run whose live state Redis lost is rebuilt from PostgreSQL and completes',
  },
  {
    id: 'run.flow-readded',
    subject: 'run',
    from: ['running', 'cancelling'],
    to: 'same',
    by: [SWEEP, { ts: 'RunService.start' }, { lua: 'OPEN' }],
    what: 'An expired lease whose flow is gone and of which no step started (nor any transition in the live state): the sweeper opens its live state and adds its flow, then renews the lease.',
    pre: [
      'the lease expired',
      'the root job is unknown to BullMQ',
      'no step row other than pending, no live transition',
    ],
    events: [],
    crashBefore: 'The next sweep (any process) does it.',
    crashAfter: 'Idempotent (job ids derive from the run); the next sweep finds the flow alive.',
    test: 'run.flow-readded: the sweeper adds the flow of an admitted run that never got one, and the run completes',
  },
  {
    id: 'run.lease-renewed',
    subject: 'run',
    from: ['running', 'cancelling'],
    to: 'same',
    by: [SWEEP],
    what: 'An expired lease whose flow is still alive in BullMQ (waiting, active, recovering from a stall): the sweeper renews it.',
    pre: ['the lease expired', 'the root job is neither unknown, failed nor completed'],
    events: [],
    crashBefore: 'The next sweep does it.',
    crashAfter: 'Nothing more to do.',
    test: 'run.lease-renewed: the sweeper renews an expired lease whose flow is still in the queue',
  },
  {
    id: 'run.lease-expired',
    subject: 'run',
    from: ['running', 'cancelling'],
    to: 'failed',
    by: [SWEEP, { sql: 'norn_step_fail' }, { lua: 'CLOSE' }],
    what: 'An expired lease whose flow is gone though the run had started: the live log is recorded and the run failed ("lease expired and the run has no jobs left in the queue"), the lease released, onFail due, the next run admitted; then the live state is closed and the finalizer scheduled.',
    pre: [
      'the lease expired',
      'the root job is unknown',
      'a step row that is not pending, or transitions in the live state',
    ],
    events: [
      '<prefix>.step {status: failed} (the step running or failed last, if any)',
      '<prefix>.failed',
    ],
    crashBefore: 'The next sweep does it.',
    crashAfter: `The finalizer is not scheduled; ${NEXT_BY_SWEEPER}.`,
    test: 'run.lease-expired: a lease whose holder died expires; the sweeper frees the app when the run has no jobs left',
  },
  {
    id: 'run.lease-expired-flow-ended',
    subject: 'run',
    from: ['running', 'cancelling'],
    to: 'failed',
    by: [SWEEP, { sql: 'norn_step_fail' }, { lua: 'CLOSE' }],
    what: 'An expired lease whose flow ended in BullMQ (the processor could not end the run: PostgreSQL was down, or the worker died): the run failed with the failed job’s reason ("lease expired after the flow ended (failed): step <s> failed: …"), also written to that job’s log.',
    pre: ['the lease expired', 'the root job is failed or completed'],
    events: ['<prefix>.step {status: failed}', '<prefix>.failed'],
    crashBefore: 'The next sweep does it.',
    crashAfter: `The finalizer is not scheduled; ${NEXT_BY_SWEEPER}.`,
    test: 'run.lease-expired-flow-ended: longer than NORN_DB_RETRY_MS: the step fails naming the cause, and the run records it once PostgreSQL is back',
  },
  // ---- the finalizer -----------------------------------------------------------------------
  {
    id: 'finalizer.run',
    subject: 'finalizer',
    from: ['pending', 'not_run', 'cancelled', 'skipped'],
    to: 'complete',
    by: [
      { ts: 'RunService.scheduleFinalizer' },
      { ts: 'createFinalizer' },
      { sql: 'norn_finalizer_done' },
    ],
    what: 'After a run that had started ended failed or cancelled, its pipeline’s finalizer runs as the job <run>.finally (3 attempts, backoff) with the pinned spec and the recorded outputs; its step row (created if missing) becomes complete. The run’s status stays.',
    pre: [
      'the pipeline has a finalizer and the run started',
      'the step row is not complete or failed already (else done: nothing recorded)',
    ],
    events: ['<prefix>.step {status: complete, afterRunEnded: true}'],
    crashBefore:
      'Scheduling: a process that dies between the end of the run and scheduleFinalizer leaves no finalizer (nothing schedules it later). Running: the job is re-delivered after its lock expires and the finalizer runs again.',
    crashAfter:
      'Recorded but the job not completed: the re-delivered job runs the finalizer again and norn_finalizer_done answers done.',
    test: 'finalizer.run: runs the finalizer after a failed run, with the pinned spec, and records it',
  },
  {
    id: 'finalizer.fail',
    subject: 'finalizer',
    from: ['pending', 'not_run', 'cancelled', 'skipped'],
    to: 'failed',
    by: [{ ts: 'createFinalizer' }, { sql: 'norn_finalizer_done' }],
    what: 'The finalizer threw on its last attempt (earlier attempts are only retried by BullMQ): its step row becomes failed with the error; the job fails unrecoverably.',
    pre: ['the last attempt of the <run>.finally job'],
    events: ['<prefix>.step {status: failed, error, afterRunEnded: true}'],
    crashBefore: 'The job is re-delivered after its lock expires and tried again.',
    crashAfter: 'The re-delivered job runs the finalizer again; norn_finalizer_done answers done.',
    test: 'finalizer.fail: a finalizer that throws on its last attempt is recorded failed',
  },
  // ---- life-cycle hooks --------------------------------------------------------------------
  {
    id: 'hook.due',
    subject: 'hook',
    from: [null],
    to: 'pending',
    by: [{ sql: 'norn_hook_due' }],
    what: 'The transition that reaches a hook’s moment writes its row (onStart: admission; onSucceed: run.succeed; onFail: a failed end; onCancel: a cancelled end, queued runs included), once, if the pipeline declares it.',
    pre: ['the hook is in runs.hooks', 'no row for it yet'],
    events: [],
    crashBefore: 'Part of the transition’s transaction: both or neither.',
    crashAfter: 'The row is durable; a worker’s hook runner finds it.',
    test: 'hook.due: runs onFail for a failed run and onCancel for a cancelled one; a run cancelled while queued gets onCancel only',
  },
  {
    id: 'hook.done',
    subject: 'hook',
    from: ['pending'],
    to: 'done',
    by: [{ ts: 'HookRunner.runOne' }],
    what: 'A worker claims a due row (FOR UPDATE SKIP LOCKED; an end hook only once onStart is not pending), runs the hook inside that transaction and marks it done there: its database work commits exactly once.',
    pre: [
      'status pending and due_at reached',
      'an end hook: the run’s onStart is not pending (done, failed, or never due)',
    ],
    events: [],
    crashBefore:
      'A worker killed mid-hook: PostgreSQL rolls its transaction back and frees the row; the next worker runs the hook again (no attempt counted).',
    crashAfter: 'Committed with the hook’s own writes; nothing runs it again.',
    test: 'hook.done: runs onStart, then onSucceed, once each',
  },
  {
    id: 'hook.retry',
    subject: 'hook',
    from: ['pending'],
    to: 'same',
    by: [{ ts: 'HookRunner.runOne' }, { sql: 'norn_hook_failed' }],
    what: 'The hook threw, timed out (NORN_HOOK_TIMEOUT_MS) or is missing from this worker’s pipeline version: its transaction is rolled back, the attempt counted and the row due again after NORN_HOOK_BACKOFF_MS × 2^attempts (60 s at most).',
    pre: [
      'attempts left (NORN_HOOK_ATTEMPTS)',
      'the runner is not shutting down (then the row stays due, uncounted)',
    ],
    events: [],
    crashBefore: 'Rolled back but not counted: the row is due at once again.',
    crashAfter: 'Due again after the backoff.',
    test: 'hook.retry: retries a hook that throws; only the try that succeeded leaves its database writes',
  },
  {
    id: 'hook.failed',
    subject: 'hook',
    from: ['pending'],
    to: 'failed',
    by: [{ ts: 'HookRunner.runOne' }, { sql: 'norn_hook_failed' }],
    what: 'The last attempt failed: the row is marked failed and reported; the run’s status stays.',
    pre: ['the attempt was the last (NORN_HOOK_ATTEMPTS)'],
    events: ['<prefix>.hook_failed {hook, error, attempts}'],
    crashBefore: 'Rolled back but not counted: the last attempt is made again.',
    crashAfter: 'Failed and reported; nothing runs it again.',
    test: 'hook.failed: reports a hook that fails every try, as a hook_failed event and on the run',
  },
] as const satisfies readonly TransitionSpec[];

export type TransitionId = (typeof TRANSITIONS)[number]['id'];
