/**
 * Scheduled drift checks: one BullMQ job scheduler per stack on the `drift-schedules` queue,
 * keyed by the stack's id (`upsertJobScheduler` is idempotent by id, so any number of api
 * processes may upsert it), on the stack's `drift.schedule` in its `drift.timezone`. Each tick
 * requests a drift-check run with the coalesce policy: a check already waiting for the stack is
 * that tick's check, so checks never pile up behind a slow or stuck one.
 */
import type { Job, Processor, Queue } from 'bullmq';
import type { Logger } from '../shared/logger.js';
import { schedulerRepeat } from '../shared/spec/schedule.js';
import type { StackRecord, StackStore } from '../shared/store/stacks.js';
import type { RunService } from '../queues/runs.js';
import { requestDriftCheck } from '../api/stack-request.js';

export const DRIFT_QUEUE = 'drift-schedules';
const JOB_NAME = 'drift-check';
const PREFIX = 'drift:stack:';
export const driftSchedulerId = (stack: string) => `${PREFIX}${stack}`;

export class DriftScheduler {
  constructor(private readonly queue: Queue) {}

  /** Creates or updates the stack's scheduler (its schedule may have changed). */
  async upsert(stack: StackRecord): Promise<string> {
    const id = driftSchedulerId(stack.id);
    await this.queue.upsertJobScheduler(
      id,
      schedulerRepeat(stack.spec.drift.schedule, stack.spec.drift.timezone),
      {
        name: JOB_NAME,
        data: { stack: stack.id },
        opts: {
          attempts: 3,
          backoff: { type: 'exponential', delay: 5_000 },
          removeOnComplete: { count: 100 },
          removeOnFail: { count: 500 },
        },
      },
    );
    return id;
  }

  async remove(stackId: string): Promise<boolean> {
    return this.queue.removeJobScheduler(driftSchedulerId(stackId));
  }

  /** The stacks' schedulers made to match `stacks`: each upserted, any other stack's removed. */
  async reconcile(
    stacks: readonly StackRecord[],
  ): Promise<{ upserted: string[]; removed: string[] }> {
    const upserted = await Promise.all(stacks.map((s) => this.upsert(s)));
    const removed: string[] = [];
    for (const s of await this.queue.getJobSchedulers(0, -1)) {
      const id = s.id ?? s.key;
      if (id.startsWith(PREFIX) && !upserted.includes(id)) {
        await this.queue.removeJobScheduler(id);
        removed.push(id);
      }
    }
    return { upserted, removed };
  }

  /** The ids of the stacks' schedulers and when each next runs. */
  async list(): Promise<Array<{ id: string; next: number | undefined }>> {
    return (await this.queue.getJobSchedulers(0, -1))
      .map((s) => ({ id: s.id ?? s.key, next: s.next }))
      .filter((s) => s.id.startsWith(PREFIX));
  }
}

/** A tick: the stack's drift-check requested (coalesced), or its scheduler removed if the stack is gone. */
export function createDriftTickProcessor(deps: {
  runs: Pick<RunService, 'request'>;
  stacks: Pick<StackStore, 'get'>;
  scheduler: Pick<DriftScheduler, 'remove'>;
  log: Logger;
}): Processor {
  return async (job: Job<{ stack?: unknown }>) => {
    const id = typeof job.data.stack === 'string' ? job.data.stack : undefined;
    if (!id) return { skipped: 'the tick names no stack' };
    const stack = await deps.stacks.get(id);
    if (!stack) {
      await deps.scheduler.remove(id);
      return { skipped: `stack ${id} is gone; its scheduler was removed` };
    }
    const accepted = await requestDriftCheck(
      deps.runs,
      { kind: 'stack', stack },
      `schedule:${job.id ?? id}`,
    );
    deps.log.debug(
      { stack: id, runId: accepted.runId, coalesced: accepted.coalesced },
      'drift check requested',
    );
    return { runId: accepted.runId, coalesced: accepted.coalesced ?? false };
  };
}
