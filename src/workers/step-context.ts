/** What a step handler gets (its StepContext), built from its BullMQ job and the run it belongs to. */
import type { Job } from 'bullmq';
import { isNornError, NornError, toError, zodProblems } from '../shared/errors.js';
import { runCommand } from '../shared/exec.js';
import type { Logger } from '../shared/logger.js';
import type { StepJobData } from '../queues/flow.js';
import type { StepContext, StepDefinition, StepProgress } from '../queues/pipeline.js';

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
  begin: StepBegin & { checked: Record<string, unknown> },
  signal: AbortSignal,
  load: () => Promise<Record<string, unknown>>,
  log: Logger,
  progress: (p: StepProgress) => void = () => {},
): StepContext {
  const d = job.data;
  let cached: Promise<Record<string, unknown>> | undefined;
  const outputs = () => (cached ??= load());
  // The last report per group (one group for targets that report none): a repeat is dropped.
  const last = new Map<string, string>();
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
    params: begin.checked,
    step: { name: d.step, index: d.index, total: d.total, attempt: begin.attempt ?? 1 },
    signal,
    log: (line) => {
      jobLog(job)(line);
      log.debug(line); // `log` is the step's child logger: run, scope, pipeline, step, attempt
    },
    progress: (p) => {
      const said = JSON.stringify([p.ready, p.desired, p.placed, p.healthy, p.unhealthy]);
      const group = p.group ?? '';
      if (said === last.get(group) || signal.aborted) return;
      last.set(group, said);
      progress(p);
    },
    outputs,
    output: async (name) => (await outputs())[name],
    exec: (argv, options) => runCommand(argv, { ...options, signal }),
  };
}

/** A step's params or output refused by its schema: final, another attempt cannot help. */
export class StepContractError extends NornError {}

/**
 * The run's params as the step's `params` schema reads them (unchecked without one). Refused
 * params fail the step for good, as a bad request: running it again cannot help.
 */
export function stepParams(
  def: StepDefinition<never>,
  params: Record<string, unknown>,
): Record<string, unknown> {
  if (!def.params) return params;
  const parsed = def.params.safeParse(params);
  if (parsed.success) return parsed.data;
  throw new StepContractError(
    'BAD_REQUEST',
    `step ${def.name} refused the run's params: ${zodProblems(parsed.error).join('; ')}`,
    { details: { step: def.name, problems: zodProblems(parsed.error) } },
  );
}

/**
 * What the step returned, as its `output` schema parses it (as returned without one): what is
 * recorded and what later steps read. An output its schema refuses is a bug in the step, so it
 * fails the step for good (INTERNAL, not retryable), naming the step and the problems.
 */
export function stepOutput(def: StepDefinition<never>, output: unknown): unknown {
  if (!def.output) return output;
  const parsed = def.output.safeParse(output);
  if (parsed.success) return parsed.data;
  throw new StepContractError(
    'INTERNAL',
    `step ${def.name} returned an output its schema refuses: ${zodProblems(parsed.error).join('; ')}`,
    { details: { step: def.name, problems: zodProblems(parsed.error) } },
  );
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
