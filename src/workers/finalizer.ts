/**
 * A pipeline's finalizer (e.g. cleanup) runs as a standalone job once a run ended failed or
 * cancelled (RunService.scheduleFinalizer), outside the flow; BullMQ retries it on failure.
 */
import { UnrecoverableError, type Job } from 'bullmq';
import type { Clock } from '../shared/clock.js';
import { toError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { RunStore } from '../shared/store/runs.js';
import type { StepJobData } from '../queues/flow.js';
import { StepSkipped, type PipelineRegistry } from '../queues/pipeline.js';
import type { RunService } from '../queues/runs.js';
import {
  describe,
  makeContext,
  StepContractError,
  stepOutput,
  stepParams,
} from './step-context.js';

export interface FinalizerDeps<S> {
  store: Pick<RunStore, 'runContext' | 'outputs' | 'finalizerDone'>;
  runs: Pick<RunService, 'apply'>;
  registry: PipelineRegistry<S>;
  services: S;
  log: Logger;
  /** Retries a PostgreSQL call through an outage (the processor's). */
  pg: <T>(fn: () => Promise<T>) => Promise<T>;
  /** Milliseconds since the epoch (the finalizer's duration). */
  clock: Clock;
}

export function createFinalizer<S>(deps: FinalizerDeps<S>) {
  const { store, runs, registry, services, log, pg, clock } = deps;
  /** Runs the finalizer step of the job's run; a run that no longer exists has nothing to clean. */
  return async function runFinalizer(
    job: Job<StepJobData>,
    bullSignal?: AbortSignal,
  ): Promise<null> {
    const d = job.data;
    const ctx = await pg(() => store.runContext(d.runId));
    if (!ctx) return null;
    const stepDef = registry.get(d.pipeline, d.version).steps.find((s) => s.name === d.step);
    if (!stepDef)
      throw new UnrecoverableError(
        `PIPELINE_UNKNOWN: ${d.pipeline}@${d.version} has no step ${d.step}`,
      );
    const controller = new AbortController();
    bullSignal?.addEventListener('abort', () => controller.abort('shutdown'), { once: true });
    const started = clock();
    const begin = {
      params: ctx.params,
      spec: ctx.spec,
      sagaId: ctx.sagaId,
      attempt: job.attemptsMade + 1,
    };
    try {
      const checked = stepParams(stepDef, begin.params);
      const output = await stepDef.run(
        makeContext(
          job,
          { ...begin, checked },
          controller.signal,
          () => store.outputs(d.runId),
          log.child({
            runId: d.runId,
            scope: d.scope,
            pipeline: d.pipeline,
            step: d.step,
            attempt: begin.attempt,
            finalizer: true,
          }),
        ),
        services,
      );
      const result =
        output instanceof StepSkipped ? { skipped: output.reason } : stepOutput(stepDef, output);
      const ms = clock() - started;
      await runs.apply(
        await pg(() => store.finalizerDone(d.runId, d.step, 'complete', result, null, ms)),
      );
    } catch (err) {
      // Another attempt may help, unless the step broke its schemas (bad params, a wrong output).
      const again = !(err instanceof StepContractError);
      if (again && job.attemptsMade + 1 < (job.opts.attempts ?? 1)) throw toError(err);
      const ms = clock() - started;
      await runs.apply(
        await pg(() => store.finalizerDone(d.runId, d.step, 'failed', null, describe(err), ms)),
      );
      throw new UnrecoverableError(describe(err));
    }
    return null;
  };
}
