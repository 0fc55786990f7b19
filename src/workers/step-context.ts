/** What a step handler gets (its StepContext), built from its BullMQ job and the run it belongs to. */
import type { Job } from 'bullmq';
import { isNornError, toError } from '../shared/errors.js';
import { runCommand } from '../shared/exec.js';
import type { Logger } from '../shared/logger.js';
import type { StepJobData } from '../queues/flow.js';
import type { StepContext } from '../queues/pipeline.js';

/** What a step runs with: the run's params, pinned spec and saga, and this attempt's number. */
export interface StepBegin {
  params: Record<string, unknown>;
  spec: Record<string, unknown>;
  sagaId: string;
  attempt: number;
}

/** The step's view of its run; `load` reads the outputs of the steps before it (once). */
export function makeContext(
  job: Job<StepJobData>,
  begin: StepBegin,
  signal: AbortSignal,
  load: () => Promise<Record<string, unknown>>,
  log: Logger,
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
      jobLog(job)(line);
      log.debug({ runId: d.runId, step: d.step }, line);
    },
    outputs,
    output: async <T>(name: string) => (await outputs())[name] as T | undefined,
    exec: (argv, options) => runCommand(argv, { ...options, signal }),
  };
}

/** Appends to a step's job log (what the api's step log serves); never throws. */
export const jobLog = (job: Job) => (line: string) => {
  job.log(line).catch(() => {});
};

/** A failure as a step record and an event show it: `CODE: message` for norn's own errors. */
export function describe(err: unknown): string {
  const e = toError(err);
  return isNornError(e) ? `${e.code}: ${e.message}` : e.message;
}
