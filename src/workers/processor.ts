/**
 * The BullMQ edge: one processor runs every step of every pipeline. It asks the run's live state
 * in Redis whether the step may run (cancelled? ended? already done? did the step before it
 * finish?), runs the handler with an AbortSignal and records the finish there; the recorder takes
 * the transitions to PostgreSQL. The last step, a failure and a cancel end the run in PostgreSQL
 * (which records what the live log still holds first). BullMQ only decides retries and hands
 * steps to workers.
 */
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { setTimeout as sleep } from 'node:timers/promises';
import { systemClock, type Clock } from '../shared/clock.js';
import { retryDb, withStepLog } from '../shared/db-retry.js';
import {
  isNornError,
  NornError,
  toError,
  unreachable,
  zodProblems,
  type ErrorCode,
} from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { RunStore } from '../shared/store/runs.js';
import { FINALIZE_JOB, StepJobData } from '../queues/flow.js';
import type { LiveRuns, StartResult } from '../queues/live.js';
import type { Recorder } from '../queues/recorder.js';
import { StepSkipped, type PipelineRegistry } from '../queues/pipeline.js';
import type { RunService } from '../queues/runs.js';
import { startHeartbeat, untilAborted, type AbortReason, type ActiveSteps } from './active.js';
import { createFinalizer } from './finalizer.js';
import { describe, jobLog, makeContext, stepOutput, stepParams } from './step-context.js';

/** The RunStore calls the processor (and the finalizer, the heartbeat) make. */
export type ProcessorStore = Pick<
  RunStore,
  | 'stepFail'
  | 'runSucceeded'
  | 'leasedRun'
  | 'heartbeat'
  | 'runContext'
  | 'outputs'
  | 'finalizerDone'
>;

export interface ProcessorDeps<S> {
  store: ProcessorStore;
  runs: Pick<RunService, 'apply' | 'start'>;
  live: LiveRuns;
  recorder: Pick<Recorder, 'push' | 'forget' | 'progress' | 'settled'>;
  registry: PipelineRegistry<S>;
  services: S;
  active: ActiveSteps;
  workerId: string;
  heartbeatMs: number;
  cancelGraceMs: number;
  /** NORN_DB_RETRY_MS: how long the engine's own PostgreSQL calls around a step are retried. */
  dbRetryMs: number;
  log: Logger;
  /** Milliseconds since the epoch: step durations, a hand-back's due time (Date.now by default). */
  clock?: Clock;
}

export function createProcessor<S>(deps: ProcessorDeps<S>) {
  const { store, runs, live, recorder, log } = deps;
  const clock = deps.clock ?? systemClock;
  /** The engine's PostgreSQL calls ride out an outage (retries go to the step's log). */
  const pg = <T>(fn: () => Promise<T>) => retryDb(fn, { budgetMs: deps.dbRetryMs, log });
  const runFinalizer = createFinalizer({ ...deps, pg, clock });

  // Three declared parameters: BullMQ passes the AbortSignal only to processors with length >= 3.
  return async function processStep(
    job: Job<StepJobData>,
    token: string | undefined,
    bullSignal?: AbortSignal,
  ): Promise<null> {
    checkJobData(job);
    // Whatever retries a database call inside, the step itself or the engine, says so in its log.
    return withStepLog(jobLog(job), () => runStep(job, token, bullSignal));
  };

  async function runStep(
    job: Job<StepJobData>,
    token: string | undefined,
    bullSignal?: AbortSignal,
  ): Promise<null> {
    const d = job.data;
    if (job.name === FINALIZE_JOB) return runFinalizer(job, bullSignal);
    const begin = await startStep(d);
    // Every line about this step carries its run, scope, pipeline, step and attempt.
    const stepLog = log.child({
      runId: d.runId,
      scope: d.scope,
      pipeline: d.pipeline,
      step: d.step,
      attempt: job.attemptsMade + 1,
    });
    switch (begin.action) {
      case 'run':
        recorder.push(d.runId, begin.log);
        break;
      case 'done':
        // Finished before a crash and BullMQ re-delivered it: nothing to redo, but a last step must
        // still end its run (the crash may have come between its finish and the run's end).
        if (isLast(d)) await endRun(d, await live.pending(d.runId));
        return null;
      case 'skip':
        await finish(d, 'skipped', undefined, 0, undefined);
        return null;
      case 'cancel': {
        const pending = await live.pending(d.runId);
        await runs.apply(
          await pg(() =>
            store.stepFail(d.runId, d.step, 'cancelled', { final: true, cancelled: true }, pending),
          ),
          d.runId,
        );
        throw new UnrecoverableError('CANCELLED: run cancelled before this step started');
      }
      case 'finished':
      case 'missing':
        // This run is not ours to continue; fail the rest of the flow.
        throw new UnrecoverableError(`LEASE_LOST: run ${d.runId} is ${begin.action}; step not run`);
      default:
        return unreachable(begin, 'live start action');
    }

    const controller = new AbortController();
    const onBullAbort = () =>
      controller.abort(bullSignal?.reason === 'shutdown' ? 'shutdown' : 'cancelled');
    bullSignal?.addEventListener('abort', onBullAbort, { once: true });
    deps.active.add(d.runId, controller);
    const heartbeat = startHeartbeat({
      store,
      runId: d.runId,
      workerId: deps.workerId,
      everyMs: deps.heartbeatMs,
      controller,
      note: jobLog(job),
      log: stepLog,
    });
    const started = clock();
    let output: unknown;
    try {
      const def = deps.registry.get(d.pipeline, d.version);
      const stepDef = def.steps[d.index];
      if (!stepDef || stepDef.name !== d.step)
        throw new UnrecoverableError(
          `PIPELINE_UNKNOWN: ${d.pipeline}@${d.version} has no step ${d.step} at ${d.index}`,
        );
      const checked = stepParams(stepDef, begin.params);
      const before = def.steps.slice(0, d.index).map((s) => s.name);
      const load = () => live.outputs(d.runId, before);
      const ctx = makeContext(job, { ...begin, checked }, controller.signal, load, stepLog, (p) => {
        void recorder.progress(d.runId, d.step, { ...p });
      });
      output = await untilAborted(
        stepDef.run(ctx, deps.services),
        controller.signal,
        deps.cancelGraceMs,
      );
      if (!(output instanceof StepSkipped)) output = stepOutput(stepDef, output);
    } catch (err) {
      const durationMs = clock() - started;
      const reason = controller.signal.aborted
        ? (controller.signal.reason as AbortReason)
        : undefined;
      if (reason === 'shutdown' && token) {
        // Hand the step back without spending an attempt; another worker re-runs it.
        await job.moveToDelayed(clock(), token);
        throw new DelayedError('handed back on worker shutdown');
      }
      if (reason === 'lease-lost')
        throw new UnrecoverableError('LEASE_LOST: the run lost its scope lease');
      const cancelled = reason === 'cancelled';
      const error = cancelled ? 'cancelled' : describe(err);
      const final =
        cancelled ||
        err instanceof UnrecoverableError ||
        (isNornError(err) && !err.retryable) ||
        job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      const code = cancelled ? 'CANCELLED' : isNornError(err) ? err.code : 'STEP_FAILED';
      await recorder.settled(d.runId);
      await recordFailure(job, err, error, { final, cancelled, durationMs, code });
      if (final) throw new UnrecoverableError(cancelled ? 'CANCELLED' : error);
      throw toError(err);
    } finally {
      clearInterval(heartbeat);
      bullSignal?.removeEventListener('abort', onBullAbort);
      deps.active.delete(d.runId);
    }

    // The step's progress events go first: its completion is the last word on it.
    await recorder.settled(d.runId);
    if (output instanceof StepSkipped)
      await finish(d, 'skipped', undefined, clock() - started, output.reason);
    else await finish(d, 'complete', output, clock() - started, undefined);
    return null;
  }

  /**
   * Writes a step's failure to its log and to PostgreSQL. When PostgreSQL cannot take it (retried
   * for NORN_DB_RETRY_MS), the BullMQ job fails with both causes, so the sweeper that ends the run
   * once PostgreSQL answers again records them as the run's error.
   */
  async function recordFailure(
    job: Job<StepJobData>,
    err: unknown,
    error: string,
    opts: { final: boolean; cancelled: boolean; durationMs: number; code: ErrorCode },
  ): Promise<void> {
    const d = job.data;
    jobLog(job)(
      opts.cancelled ? 'cancelled' : `failed${opts.final ? '' : ' (to be tried again)'}: ${error}`,
    );
    const pending = await live.pending(d.runId);
    let t;
    try {
      t = await pg(() => store.stepFail(d.runId, d.step, error, opts, pending));
    } catch (dbErr) {
      const both = `${error} (and PostgreSQL could not record it: ${describe(dbErr)})`;
      jobLog(job)(both);
      throw opts.final ? new UnrecoverableError(both) : toError(err);
    }
    await runs.apply(t, d.runId);
  }

  /**
   * Bad job data (not a job norn added, or one from an incompatible norn) fails its job for good
   * with the problems; the worker goes on with the next job.
   */
  function checkJobData(job: Job<unknown>): void {
    const parsed = StepJobData.safeParse(job.data);
    if (parsed.success) return;
    const message = `BAD_REQUEST: job ${job.id ?? '?'} (${job.name}) has no step job data, so nothing ran: ${zodProblems(parsed.error).join('; ')}`;
    jobLog(job)(message);
    log.warn({ jobId: job.id, name: job.name }, message);
    throw new UnrecoverableError(message);
  }

  function isLast(d: StepJobData): boolean {
    return d.index === d.total - 1;
  }

  /**
   * Asks the live state whether the step may start. A step taken before its predecessor's finish
   * reached Redis (see finish) is 'early': it asks again shortly, for about two seconds at most.
   */
  async function startStep(d: StepJobData): Promise<Exclude<StartResult, { action: 'early' }>> {
    for (let waitMs = 2; ; waitMs *= 2) {
      let begin = await live.start(d.runId, d.step, deps.workerId, d.previous);
      if (begin.action === 'missing' && (await reopen(d.runId)))
        begin = await live.start(d.runId, d.step, deps.workerId, d.previous);
      if (begin.action !== 'early') return begin;
      log.debug(
        { runId: d.runId, step: d.step, previous: d.previous },
        'step taken before its predecessor finished; asking again',
      );
      if (waitMs > 1_000) {
        throw new NornError(
          'INTERNAL',
          `step ${d.previous} of run ${d.runId} has not finished in the live state, so ${d.step} cannot start`,
        );
      }
      await sleep(waitMs);
    }
  }

  /**
   * Records a step's finish in the live state; the last step also ends the run in PostgreSQL.
   * Other steps do not wait for the answer: `live` shares its connection with the BullMQ worker,
   * so Redis applies the finish before the moveToFinished that makes the next step available, and
   * the next step's start checks that it did (above). A finish refused because the run ended is
   * the fence doing its job; the next step will not start.
   */
  async function finish(
    d: StepJobData,
    status: 'complete' | 'skipped',
    output: unknown,
    durationMs: number,
    reason: string | undefined,
  ): Promise<void> {
    const recorded = (async () => {
      let r = await live.finish(d.runId, d.step, status, output, durationMs, reason);
      if (r.action === 'missing' && (await reopen(d.runId)))
        r = await live.finish(d.runId, d.step, status, output, durationMs, reason);
      if (r.action === 'ok' && !isLast(d)) recorder.push(d.runId, r.log);
      return r;
    })();
    if (!isLast(d)) {
      deps.active.track(
        recorded.then(
          (r) => {
            switch (r.action) {
              case 'ok':
              case 'done': // finished before (a re-delivered job): the first finish stands
                return;
              case 'finished':
              case 'missing':
                log.info(
                  { runId: d.runId, step: d.step },
                  `step result discarded: run is ${r.action}`,
                );
                return;
              default:
                unreachable(r, 'live finish action');
            }
          },
          (err) =>
            log.warn({ err, runId: d.runId, step: d.step }, 'recording a step finish failed'),
        ),
      );
      return;
    }
    const r = await recorded;
    switch (r.action) {
      case 'ok':
        return endRun(d, r.log);
      case 'done':
        return endRun(d, await live.pending(d.runId));
      case 'finished':
      case 'missing':
        throw new UnrecoverableError(
          `LEASE_LOST: run ${d.runId} is ${r.action}; step result discarded`,
        );
      default:
        return unreachable(r, 'live finish action');
    }
  }

  /** The last step is done: PostgreSQL records the live log and ends the run (then admits the next). */
  async function endRun(d: StepJobData, entries: readonly string[]): Promise<void> {
    const done = await summary(d);
    const t = await pg(() => store.runSucceeded(d.runId, entries, done)).catch((err: unknown) => {
      // Thrown as an ordinary failure: another attempt of this step finds it done and ends the run.
      throw new NornError('UNAVAILABLE', `the run could not be ended: ${describe(err)}`, {
        retryable: true,
      });
    });
    recorder.forget(d.runId);
    // The run has ended; publishing, closing its live state and starting the next run admitted
    // need not hold this step's worker slot. If this process dies first, the sweeper adds the next
    // run's flow once its lease expires.
    deps.active.track(
      runs
        .apply(t, d.runId)
        .catch((err) => log.warn({ err, runId: d.runId }, 'after the end of a run')),
    );
    switch (t.action) {
      case 'ended':
      case 'finished': // ended already (another attempt of this step got there first)
        return;
      case 'missing':
      case 'fenced':
      case 'incomplete':
        throw new UnrecoverableError(
          `LEASE_LOST: run ${d.runId} could not end (${t.action}); step result discarded`,
        );
      default:
        return unreachable(t, 'norn_run_succeed action');
    }
  }

  /**
   * A step of a run without live state (Redis lost it, or it was started by an older norn): if
   * PostgreSQL still has the run running and holding its app, its live state is rebuilt from what
   * PostgreSQL recorded.
   */
  async function reopen(runId: string): Promise<boolean> {
    const run = await pg(() => store.leasedRun(runId));
    if (!run) return false;
    await runs.start(run, true);
    log.warn({ runId }, 'run had no live state; rebuilt it from PostgreSQL');
    return true;
  }

  /** The `<prefix>.completed` payload, from every step's output (the last one's included). */
  async function summary(d: StepJobData): Promise<Record<string, unknown> | undefined> {
    const def = deps.registry.get(d.pipeline, d.version);
    if (!def.summarize) return undefined;
    return def.summarize(
      await live.outputs(
        d.runId,
        def.steps.map((s) => s.name),
      ),
    );
  }
}
