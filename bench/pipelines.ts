/**
 * The benchmark pipeline: nine no-op steps, so a run measures only what the engine adds around a
 * step (live-state calls in Redis, PostgreSQL records, event publishing, BullMQ hand-offs). Loaded
 * by engine worker processes through NORN_PIPELINES_MODULE=bench/pipelines.ts and by the bench.
 */
import type { PipelineDefinition } from '../src/queues/pipeline.js';

export const BENCH_STEPS: readonly string[] = Array.from({ length: 9 }, (_, i) => `s${i + 1}`);

export const bench: PipelineDefinition = {
  name: 'bench',
  version: '1',
  steps: BENCH_STEPS.map((name) => ({ name, run: async () => null })),
};

export const pipelines = [bench];
