/**
 * A run as one BullMQ flow. BullMQ runs children before parents, so the first step is the deepest
 * child and the last step is the root. Pure: the caller does `flowProducer.add(buildFlow(run))`.
 */
import type { FlowJob } from 'bullmq';
import { z } from 'zod';
import type { RunRef } from '../shared/store/runs.js';
import type { PipelineDefinition } from './pipeline.js';

/** The data of every step job (and of a finalizer job: index -1, total 0). */
export const StepJobData = z.object({
  runId: z.string().min(1),
  appId: z.string().min(1),
  pipeline: z.string().min(1),
  version: z.string().min(1),
  /** The run's scope (for its log lines; jobs added before it was carried have none). */
  scope: z.string().min(1).optional(),
  step: z.string().min(1),
  index: z.int().min(-1),
  total: z.int().nonnegative(),
  /** The step before this one: it must have finished before this one starts. */
  previous: z.string().min(1).optional(),
});
export type StepJobData = z.output<typeof StepJobData>;

/** Name of the standalone job that runs a pipeline's finalizer after a failed or cancelled run. */
export const FINALIZE_JOB = '__finalize';

/** Job ids derive from the run id, so adding the same run twice is a no-op. No ':' allowed. */
export const stepJobId = (runId: string, step: string) => `${runId}.${step}`;
export const rootJobId = (run: Pick<RunRef, 'id' | 'steps'>) =>
  stepJobId(run.id, run.steps[run.steps.length - 1]!);

const KEEP = {
  removeOnComplete: { age: 24 * 3600, count: 5000 },
  removeOnFail: { age: 7 * 24 * 3600, count: 5000 },
};

export function buildFlow(run: RunRef, def?: Pick<PipelineDefinition<unknown>, 'steps'>): FlowJob {
  const total = run.steps.length;
  let node: FlowJob | undefined;
  run.steps.forEach((step, index) => {
    const stepDef = def?.steps.find((s) => s.name === step);
    const attempts = stepDef?.attempts ?? 1;
    const data: StepJobData = {
      runId: run.id,
      appId: run.appId,
      pipeline: run.pipeline,
      version: run.version,
      scope: run.scope,
      step,
      index,
      total,
      ...(index > 0 ? { previous: run.steps[index - 1] } : {}),
    };
    const job: FlowJob = {
      name: step,
      queueName: run.queue,
      data,
      opts: {
        jobId: stepJobId(run.id, step),
        attempts,
        ...(attempts > 1
          ? { backoff: { type: 'exponential', delay: stepDef?.backoffMs ?? 1_000 } }
          : {}),
        // A step that fails for good fails every step above it (BullMQ would otherwise leave them
        // in waiting-children forever); the run itself is ended in PostgreSQL by the processor.
        ...(index < total - 1 ? { failParentOnFailure: true } : {}),
        ...KEEP,
      },
      ...(node ? { children: [node] } : {}),
    };
    node = job;
  });
  return node!;
}
