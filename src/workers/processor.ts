/**
 * The BullMQ edge: one processor runs every step of every pipeline. It asks the run's live state
 * in Redis whether the step may run (cancelled? ended? already done? did the step before it
 * finish?), runs the handler with an AbortSignal and records the finish there; the recorder takes
 * the transitions to PostgreSQL. The last step, a failure and a cancel end the run in PostgreSQL
 * (which records what the live log still holds first). BullMQ only decides retries and hands
 * steps to workers.
 */
import { performance } from 'node:perf_hooks';
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { setTimeout as sleep } from 'node:timers/promises';
import { isNornError, NornError, toError } from '../shared/errors.js';
import { runCommand } from '../shared/exec.js';
import type { Logger } from '../shared/logger.js';
import type { RunStore } from '../shared/store/runs.js';
import { FINALIZE_JOB, type StepJobData } from '../queues/flow.js';
import type { LiveRuns, StartResult } from '../queues/live.js';
import type { Recorder } from '../queues/recorder.js';
import { StepSkipped, type PipelineRegistry, type StepContext } from '../queues/pipeline.js';
import type { RunService } from '../queues/runs.js';

export type AbortReason = 'cancelled' | 'shutdown' | 'lease-lost';

/** What a step runs with: the run's params, pinned spec and saga, and this attempt's number. */
interface StepBegin {
  params: Record<string, unknown>;
  spec: Record<string, unknown>;
  sagaId: string;
  attempt: number;
}

/** Steps running in this process, by run id: how cancel broadcasts and shutdown reach them. */
export class ActiveSteps {
  private readonly byRun = new Map<string, AbortController>();
  add(runId: string, c: AbortController) {
    this.byRun.set(runId, c);
  }
  delete(runId: string) {
    this.byRun.delete(runId);
  }
  abort(runId: string, reason: AbortReason): boolean {
    const c = this.byRun.get(runId);
    if (!c || c.signal.aborted) return false;
    c.abort(reason);
    return true;
  }
  abortAll(reason: AbortReason) {
    for (const id of this.byRun.keys()) this.abort(id, reason);
  }
  get size() {
    return this.byRun.size;
  }

  /** Work that goes on after a step returned (the end of a run); shutdown waits for it. */
  private readonly trailing = new Set<Promise<unknown>>();
  track(work: Promise<unknown>): void {
    const p = work.finally(() => this.trailing.delete(p));
    this.trailing.add(p);
  }
  async settled(): Promise<void> {
    while (this.trailing.size) await Promise.allSettled([...this.trailing]);
  }
}

export interface ProcessorDeps<S> {
  store: RunStore;
  runs: RunService;
  live: LiveRuns;
  recorder: Recorder;
  registry: PipelineRegistry<S>;
  services: S;
  active: ActiveSteps;
  workerId: string;
  heartbeatMs: number;
  cancelGraceMs: number;
  log: Logger;
}

export function createProcessor<S>(deps: ProcessorDeps<S>) {
  const { store, runs, live, recorder, log } = deps;

  // Three declared parameters: BullMQ passes the AbortSignal only to processors with length >= 3.
  return async function processStep(
    job: Job<StepJobData>,
    token: string | undefined,
    bullSignal?: AbortSignal,
  ): Promise<null> {
    const d = job.data;
    if (job.name === FINALIZE_JOB) return runFinalizer(job, bullSignal);
    const begin = await startStep(d);
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
        await runs.apply(
          await store.stepFail(
            d.runId,
            d.step,
            'cancelled',
            { final: true, cancelled: true },
            await live.pending(d.runId),
          ),
          d.runId,
        );
        throw new UnrecoverableError('CANCELLED: run cancelled before this step started');
      }
      default:
        // finished / missing: this run is not ours to continue; fail the rest of the flow.
        throw new UnrecoverableError(`LEASE_LOST: run ${d.runId} is ${begin.action}; step not run`);
    }

    const controller = new AbortController();
    const onBullAbort = () =>
      controller.abort(bullSignal?.reason === 'shutdown' ? 'shutdown' : 'cancelled');
    bullSignal?.addEventListener('abort', onBullAbort, { once: true });
    deps.active.add(d.runId, controller);
    const heartbeat = setInterval(() => {
      store
        .heartbeat(d.runId, deps.workerId)
        .then((held) => {
          if (!held) controller.abort('lease-lost');
        })
        .catch((err) => log.warn({ err, runId: d.runId }, 'lease heartbeat failed'));
    }, deps.heartbeatMs);
    const started = performance.now();
    let output: unknown;
    try {
      const def = deps.registry.get(d.pipeline, d.version);
      const stepDef = def.steps[d.index];
      if (!stepDef || stepDef.name !== d.step)
        throw new UnrecoverableError(
          `PIPELINE_UNKNOWN: ${d.pipeline}@${d.version} has no step ${d.step} at ${d.index}`,
        );
      const ctx = makeContext(job, begin, controller.signal, () =>
        live.outputs(
          d.runId,
          def.steps.slice(0, d.index).map((s) => s.name),
        ),
      );
      output = await untilAborted(
        stepDef.run(ctx, deps.services),
        controller.signal,
        deps.cancelGraceMs,
      );
    } catch (err) {
      const durationMs = performance.now() - started;
      const reason = controller.signal.aborted
        ? (controller.signal.reason as AbortReason)
        : undefined;
      if (reason === 'shutdown' && token) {
        // Hand the step back without spending an attempt; another worker re-runs it.
        await job.moveToDelayed(Date.now(), token);
        throw new DelayedError('handed back on worker shutdown');
      }
      if (reason === 'lease-lost')
        throw new UnrecoverableError('LEASE_LOST: the run lost its app lease');
      const cancelled = reason === 'cancelled';
      const error = cancelled ? 'cancelled' : describe(err);
      const final =
        cancelled ||
        err instanceof UnrecoverableError ||
        (isNornError(err) && !err.retryable) ||
        job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      await runs.apply(
        await store.stepFail(
          d.runId,
          d.step,
          error,
          { final, cancelled, durationMs },
          await live.pending(d.runId),
        ),
        d.runId,
      );
      if (final) throw new UnrecoverableError(cancelled ? 'CANCELLED' : error);
      throw toError(err);
    } finally {
      clearInterval(heartbeat);
      bullSignal?.removeEventListener('abort', onBullAbort);
      deps.active.delete(d.runId);
    }

    if (output instanceof StepSkipped)
      await finish(d, 'skipped', undefined, performance.now() - started, output.reason);
    else await finish(d, 'complete', output, performance.now() - started, undefined);
    return null;
  };

  function isLast(d: StepJobData): boolean {
    return d.index === d.total - 1;
  }

  /**
   * Asks the live state whether the step may start. A step taken before its predecessor's finish
   * reached Redis (see finish) is 'early': it asks again shortly, for about two seconds at most.
   */
  async function startStep(d: StepJobData): Promise<StartResult> {
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
            if (r.action === 'finished' || r.action === 'missing')
              log.info(
                { runId: d.runId, step: d.step },
                `step result discarded: run is ${r.action}`,
              );
          },
          (err) =>
            log.warn({ err, runId: d.runId, step: d.step }, 'recording a step finish failed'),
        ),
      );
      return;
    }
    const r = await recorded;
    if (r.action === 'finished' || r.action === 'missing') {
      throw new UnrecoverableError(
        `LEASE_LOST: run ${d.runId} is ${r.action}; step result discarded`,
      );
    }
    await endRun(d, r.action === 'ok' ? r.log : await live.pending(d.runId));
  }

  /** The last step is done: PostgreSQL records the live log and ends the run (then admits the next). */
  async function endRun(d: StepJobData, entries: readonly string[]): Promise<void> {
    const t = await store.runSucceeded(d.runId, entries, await summary(d));
    recorder.forget(d.runId);
    // The run has ended; publishing, closing its live state and starting the next run admitted
    // need not hold this step's worker slot. If this process dies first, the sweeper adds the next
    // run's flow once its lease expires.
    deps.active.track(
      runs
        .apply(t, d.runId)
        .catch((err) => log.warn({ err, runId: d.runId }, 'after the end of a run')),
    );
    if (t.action !== 'ended' && t.action !== 'finished') {
      throw new UnrecoverableError(
        `LEASE_LOST: run ${d.runId} could not end (${t.status ?? t.action}); step result discarded`,
      );
    }
  }

  /**
   * A step of a run without live state (Redis lost it, or it was started by an older norn): if
   * PostgreSQL still has the run running and holding its app, its live state is rebuilt from what
   * PostgreSQL recorded.
   */
  async function reopen(runId: string): Promise<boolean> {
    const run = await store.leasedRun(runId);
    if (!run) return false;
    await runs.start(run, true);
    log.warn({ runId }, 'run had no live state; rebuilt it from PostgreSQL');
    return true;
  }

  /** Runs a finalizer (e.g. cleanup) for a run that already ended; BullMQ retries it on failure. */
  async function runFinalizer(job: Job<StepJobData>, bullSignal?: AbortSignal): Promise<null> {
    const d = job.data;
    const ctx = await store.runContext(d.runId);
    if (!ctx) return null;
    const stepDef = deps.registry.get(d.pipeline, d.version).steps.find((s) => s.name === d.step);
    if (!stepDef)
      throw new UnrecoverableError(
        `PIPELINE_UNKNOWN: ${d.pipeline}@${d.version} has no step ${d.step}`,
      );
    const controller = new AbortController();
    bullSignal?.addEventListener('abort', () => controller.abort('shutdown'), { once: true });
    const started = performance.now();
    const begin = {
      params: ctx.params,
      spec: ctx.spec,
      sagaId: ctx.sagaId,
      attempt: job.attemptsMade + 1,
    };
    try {
      const output = await stepDef.run(
        makeContext(job, begin, controller.signal, () => store.outputs(d.runId)),
        deps.services,
      );
      await runs.apply(
        await store.finalizerDone(
          d.runId,
          d.step,
          'complete',
          output instanceof StepSkipped ? { skipped: output.reason } : output,
          null,
          performance.now() - started,
        ),
      );
    } catch (err) {
      if (job.attemptsMade + 1 < (job.opts.attempts ?? 1)) throw toError(err);
      await runs.apply(
        await store.finalizerDone(
          d.runId,
          d.step,
          'failed',
          null,
          describe(err),
          performance.now() - started,
        ),
      );
      throw new UnrecoverableError(describe(err));
    }
    return null;
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

  function makeContext(
    job: Job<StepJobData>,
    begin: StepBegin,
    signal: AbortSignal,
    load: () => Promise<Record<string, unknown>>,
  ): StepContext {
    const d = job.data;
    let cached: Promise<Record<string, unknown>> | undefined;
    const outputs = () => (cached ??= load());
    return {
      run: {
        id: d.runId,
        appId: d.appId,
        sagaId: begin.sagaId ?? '',
        pipeline: d.pipeline,
        version: d.version,
        params: begin.params ?? {},
        spec: begin.spec ?? {},
      },
      step: { name: d.step, index: d.index, total: d.total, attempt: begin.attempt ?? 1 },
      signal,
      log: (line) => {
        job.log(line).catch(() => {});
        log.debug({ runId: d.runId, step: d.step }, line);
      },
      outputs,
      output: async <T>(name: string) => (await outputs())[name] as T | undefined,
      exec: (argv, options) => runCommand(argv, { ...options, signal }),
    };
  }
}

/**
 * Resolves with the handler's result, or, once `signal` aborts, waits at most `graceMs` for the
 * handler to stop and then rejects anyway: a handler that ignores its signal cannot hold a cancel.
 */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal, graceMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      timer = setTimeout(
        () =>
          reject(new Error(`step did not stop within ${graceMs} ms of ${String(signal.reason)}`)),
        graceMs,
      );
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) reject(new Error(String(signal.reason)));
        else resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function describe(err: unknown): string {
  const e = toError(err);
  return isNornError(e) ? `${e.code}: ${e.message}` : e.message;
}
