/**
 * The BullMQ edge: one processor runs every step of every pipeline. It asks PostgreSQL whether
 * the step may run (cancelled? fenced? already done?), runs the handler with an AbortSignal,
 * records the outcome (which also ends the run on the last or a failed step) and publishes the
 * events. BullMQ only decides retries and hands steps to workers.
 */
import { performance } from 'node:perf_hooks';
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { isNornError, toError } from '../shared/errors.js';
import { runCommand } from '../shared/exec.js';
import type { Logger } from '../shared/logger.js';
import type { RunStore, Transition } from '../shared/store/runs.js';
import { FINALIZE_JOB, type StepJobData } from '../queues/flow.js';
import { StepSkipped, type PipelineRegistry, type StepContext } from '../queues/pipeline.js';
import type { RunService } from '../queues/runs.js';

export type AbortReason = 'cancelled' | 'shutdown' | 'lease-lost';

/** Steps running in this process, by run id: how cancel broadcasts and shutdown reach them. */
export class ActiveSteps {
  private readonly byRun = new Map<string, AbortController>();
  add(runId: string, c: AbortController) { this.byRun.set(runId, c); }
  delete(runId: string) { this.byRun.delete(runId); }
  abort(runId: string, reason: AbortReason): boolean {
    const c = this.byRun.get(runId);
    if (!c || c.signal.aborted) return false;
    c.abort(reason);
    return true;
  }
  abortAll(reason: AbortReason) { for (const id of this.byRun.keys()) this.abort(id, reason); }
  get size() { return this.byRun.size; }
}

export interface ProcessorDeps<S> {
  store: RunStore;
  runs: RunService;
  registry: PipelineRegistry<S>;
  services: S;
  active: ActiveSteps;
  workerId: string;
  heartbeatMs: number;
  cancelGraceMs: number;
  log: Logger;
}

export function createProcessor<S>(deps: ProcessorDeps<S>) {
  const { store, runs, log } = deps;

  // Three declared parameters: BullMQ passes the AbortSignal only to processors with length >= 3.
  return async function processStep(job: Job<StepJobData>, token: string | undefined, bullSignal?: AbortSignal): Promise<null> {
    const d = job.data;
    if (job.name === FINALIZE_JOB) return runFinalizer(job, bullSignal);
    const begin = await store.stepStart(d.runId, d.step, deps.workerId);
    switch (begin.action) {
      case 'run':
        break;
      case 'done':
        return null; // completed before a crash: BullMQ re-delivered it, nothing to redo
      case 'skip': {
        await runs.apply(await store.stepFinish(d.runId, d.step, 'skipped', null, 0, await summary(d, undefined)));
        return null;
      }
      case 'cancel': {
        await runs.apply(await store.stepFail(d.runId, d.step, 'cancelled', { final: true, cancelled: true }), d.runId);
        throw new UnrecoverableError('CANCELLED: run cancelled before this step started');
      }
      default:
        // finished / fenced / missing: this run is not ours to continue; fail the rest of the flow.
        throw new UnrecoverableError(`LEASE_LOST: run ${d.runId} is ${begin.status ?? begin.action}; step not run`);
    }
    await runs.apply(begin);

    const controller = new AbortController();
    const onBullAbort = () => controller.abort(bullSignal?.reason === 'shutdown' ? 'shutdown' : 'cancelled');
    bullSignal?.addEventListener('abort', onBullAbort, { once: true });
    deps.active.add(d.runId, controller);
    const heartbeat = setInterval(() => {
      store.heartbeat(d.runId, deps.workerId)
        .then((held) => { if (!held) controller.abort('lease-lost'); })
        .catch((err) => log.warn({ err, runId: d.runId }, 'lease heartbeat failed'));
    }, deps.heartbeatMs);
    const started = performance.now();
    let output: unknown;
    try {
      const def = deps.registry.get(d.pipeline, d.version);
      const stepDef = def.steps[d.index];
      if (!stepDef || stepDef.name !== d.step) throw new UnrecoverableError(`PIPELINE_UNKNOWN: ${d.pipeline}@${d.version} has no step ${d.step} at ${d.index}`);
      const ctx = makeContext(job, begin, controller.signal);
      output = await untilAborted(stepDef.run(ctx, deps.services), controller.signal, deps.cancelGraceMs);
    } catch (err) {
      const durationMs = performance.now() - started;
      const reason = controller.signal.aborted ? (controller.signal.reason as AbortReason) : undefined;
      if (reason === 'shutdown' && token) {
        // Hand the step back without spending an attempt; another worker re-runs it.
        await job.moveToDelayed(Date.now(), token);
        throw new DelayedError('handed back on worker shutdown');
      }
      if (reason === 'lease-lost') throw new UnrecoverableError('LEASE_LOST: the run lost its app lease');
      const cancelled = reason === 'cancelled';
      const error = cancelled ? 'cancelled' : describe(err);
      const final = cancelled || err instanceof UnrecoverableError || (isNornError(err) && !err.retryable) ||
        job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      await runs.apply(await store.stepFail(d.runId, d.step, error, { final, cancelled, durationMs }), d.runId);
      if (final) throw new UnrecoverableError(cancelled ? 'CANCELLED' : error);
      throw toError(err);
    } finally {
      clearInterval(heartbeat);
      bullSignal?.removeEventListener('abort', onBullAbort);
      deps.active.delete(d.runId);
    }

    const t = output instanceof StepSkipped
      ? await store.stepFinish(d.runId, d.step, 'skipped', { skipped: output.reason }, performance.now() - started, await summary(d, undefined))
      : await store.stepFinish(d.runId, d.step, 'complete', output, performance.now() - started, await summary(d, output));
    await runs.apply(t);
    if (t.action !== 'ok') throw new UnrecoverableError(`LEASE_LOST: run ${d.runId} is ${t.status ?? t.action}; step result discarded`);
    return null;
  };

  /** The `<prefix>.completed` payload, computed by the last step from every output including its own. */
  /** Runs a finalizer (e.g. cleanup) for a run that already ended; BullMQ retries it on failure. */
  async function runFinalizer(job: Job<StepJobData>, bullSignal?: AbortSignal): Promise<null> {
    const d = job.data;
    const ctx = await store.runContext(d.runId);
    if (!ctx) return null;
    const stepDef = deps.registry.get(d.pipeline, d.version).steps.find((s) => s.name === d.step);
    if (!stepDef) throw new UnrecoverableError(`PIPELINE_UNKNOWN: ${d.pipeline}@${d.version} has no step ${d.step}`);
    const controller = new AbortController();
    bullSignal?.addEventListener('abort', () => controller.abort('shutdown'), { once: true });
    const started = performance.now();
    const begin: Transition = { action: 'run', params: ctx.params, spec: ctx.spec, sagaId: ctx.sagaId, attempt: job.attemptsMade + 1 };
    try {
      const output = await stepDef.run(makeContext(job, begin, controller.signal), deps.services);
      await runs.apply(await store.finalizerDone(d.runId, d.step, 'complete', output instanceof StepSkipped ? { skipped: output.reason } : output, null, performance.now() - started));
    } catch (err) {
      if (job.attemptsMade + 1 < (job.opts.attempts ?? 1)) throw toError(err);
      await runs.apply(await store.finalizerDone(d.runId, d.step, 'failed', null, describe(err), performance.now() - started));
      throw new UnrecoverableError(describe(err));
    }
    return null;
  }

  async function summary(d: StepJobData, own: unknown): Promise<Record<string, unknown> | undefined> {
    if (d.index !== d.total - 1) return undefined;
    const def = deps.registry.get(d.pipeline, d.version);
    if (!def.summarize) return undefined;
    const outputs = await store.outputs(d.runId);
    return def.summarize(own === undefined ? outputs : { ...outputs, [d.step]: own });
  }

  function makeContext(job: Job<StepJobData>, begin: Transition, signal: AbortSignal): StepContext {
    const d = job.data;
    let cached: Promise<Record<string, unknown>> | undefined;
    const outputs = () => (cached ??= store.outputs(d.runId));
    return {
      run: {
        id: d.runId, appId: d.appId, sagaId: begin.sagaId ?? '', pipeline: d.pipeline, version: d.version,
        params: begin.params ?? {}, spec: begin.spec ?? {},
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
      timer = setTimeout(() => reject(new Error(`step did not stop within ${graceMs} ms of ${String(signal.reason)}`)), graceMs);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => { clearTimeout(timer); signal.removeEventListener('abort', onAbort); if (signal.aborted) reject(new Error(String(signal.reason))); else resolve(v); },
      (e) => { clearTimeout(timer); signal.removeEventListener('abort', onAbort); reject(e); },
    );
  });
}

function describe(err: unknown): string {
  const e = toError(err);
  return isNornError(e) ? `${e.code}: ${e.message}` : e.message;
}
