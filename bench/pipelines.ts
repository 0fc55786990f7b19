/**
 * The benchmark pipeline: nine no-op steps, so a run measures only what the engine adds around a
 * step (live-state calls in Redis, PostgreSQL records, event publishing, BullMQ hand-offs). Loaded
 * by engine worker processes through NORN_PIPELINES_MODULE=bench/pipelines.ts and by the bench.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { PipelineDefinition } from '../src/queues/pipeline.js';

export const BENCH_STEPS: readonly string[] = Array.from({ length: 9 }, (_, i) => `s${i + 1}`);

export const bench: PipelineDefinition = {
  name: 'bench',
  version: '1',
  steps: BENCH_STEPS.map((name) => ({ name, run: async () => null })),
};

/**
 * The same nine steps, each taking about `params.stepMs` (100 ms unless given), as real steps do while
 * they wait on a build, a rollout or a health check: events come at a deploy's pace rather than
 * as fast as the engine can go (bench/ws-fanout.ts measures the relay under both).
 */
export const paced: PipelineDefinition = {
  name: 'bench-paced',
  version: '1',
  steps: BENCH_STEPS.map((name) => ({
    name,
    run: async (ctx) => {
      // Half to one and a half times stepMs: runs started together do not stay in lockstep.
      const ms = Number(ctx.params.stepMs ?? 100) * (0.5 + Math.random());
      await sleep(ms, undefined, { signal: ctx.signal });
      return null;
    },
  })),
};

export const pipelines = [bench, paced];
