/**
 * Where typed steps and run data are checked: a step's params when it starts, its output before
 * it is recorded, a job's data on entry, and a run request before anything is recorded. The
 * processor runs here against in-memory stand-ins for the live state and the run store (what it
 * asks of them is small), so no Redis or PostgreSQL is needed.
 */
import { UnrecoverableError, type Job } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { StepJobData } from '../../src/queues/flow.js';
import type { LiveRuns } from '../../src/queues/live.js';
import {
  defineStep,
  definePipeline,
  PipelineRegistry,
  skipStep,
  type StepDefinition,
} from '../../src/queues/pipeline.js';
import type { Recorder } from '../../src/queues/recorder.js';
import { parseRunRequest, type RunService } from '../../src/queues/runs.js';
import { deployPipeline } from '../../src/pipelines/deploy/index.js';
import { clone } from '../../src/pipelines/deploy/steps/clone.js';
import { build } from '../../src/pipelines/deploy/steps/build.js';
import { restoreStep } from '../../src/pipelines/restore.js';
import { isNornError } from '../../src/shared/errors.js';
import { silentLogger } from '../../src/shared/logger.js';
import type { RunStore, StepFailResult } from '../../src/shared/store/runs.js';
import { ActiveSteps } from '../../src/workers/active.js';
import { createProcessor } from '../../src/workers/processor.js';
import { stepOutput, stepParams } from '../../src/workers/step-context.js';

const RUN = '0b7c2d1e-1111-4222-8333-444455556666';

describe('stepOutput', () => {
  it('returns what the schema parsed', () => {
    expect(stepOutput(build, { imageRef: 'r/a:1', digest: null, reused: true })).toEqual({
      imageRef: 'r/a:1',
      digest: null,
      reused: true,
    });
  });

  it('refuses a wrong shape for good, naming the step and every zod problem', () => {
    let err: unknown;
    try {
      stepOutput(build, { imageRef: 42, reused: 'yes' });
    } catch (e) {
      err = e;
    }
    expect(isNornError(err)).toBe(true);
    if (!isNornError(err)) return;
    expect(err.code).toBe('INTERNAL');
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/^step build returned an output its schema refuses: /);
    expect(err.message).toContain('imageRef:');
    expect(err.message).toContain('digest:');
    expect(err.message).toContain('reused:');
    expect(err.details).toMatchObject({ step: 'build' });
  });

  it('leaves a step without an output schema as it was', () => {
    const free: StepDefinition = { name: 'free', run: async () => ({ any: 1 }) };
    expect(stepOutput(free, { any: 1, more: [2] })).toEqual({ any: 1, more: [2] });
  });
});

describe('stepParams', () => {
  it('gives the step its params as its schema parsed them', () => {
    expect(stepParams(clone, { ref: 'v1.2', other: true })).toEqual({ ref: 'v1.2' });
    expect(stepParams(clone, {})).toEqual({});
    expect(stepParams(restoreStep, { ts: '20261123T004501123Z' })).toEqual({
      ts: '20261123T004501123Z',
    });
  });

  it('refuses bad params as a bad request naming the step and the param', () => {
    expect(() => stepParams(clone, { ref: 7 })).toThrow(
      expect.objectContaining({
        code: 'BAD_REQUEST',
        retryable: false,
        message: expect.stringMatching(
          /^step clone refused the run's params: ref: the deploy parameter "ref" must be a non-empty/,
        ),
      }),
    );
    expect(() => stepParams(clone, { ref: '' })).toThrow(/ref: the deploy parameter "ref"/);
    expect(() => stepParams(restoreStep, {})).toThrow(
      /^step restore refused the run's params: ts: the restore parameter "ts" must be a snapshot timestamp/,
    );
  });
});

describe('a pipeline of steps that read earlier outputs', () => {
  const Made = z.object({ id: z.string() });
  const make = defineStep<unknown>()({
    name: 'make',
    output: Made,
    run: async () => ({ id: 'x' }),
  });
  const use = defineStep<unknown>()({
    name: 'use',
    reads: { make: Made },
    output: z.object({ used: z.string() }),
    run: async (ctx) => ({ used: (await ctx.output('make'))?.id ?? '' }),
  });
  const pipeline = (steps: StepDefinition[]) =>
    new PipelineRegistry([{ name: 'reads', version: '1', steps }]);

  it('is registered when what a step reads comes before it, with the schema it expects', () => {
    expect(() => pipeline([make, use])).not.toThrow();
    // Not in the pipeline at all: the step reads it as undefined.
    expect(() => pipeline([use])).not.toThrow();
  });

  it('is refused when a step reads one that runs after it, or one with another schema', () => {
    expect(() => pipeline([use, make])).toThrow(/step "use" reads "make", which runs after it/);
    const other = { ...make, output: z.object({ id: z.number() }) };
    expect(() => pipeline([other, use])).toThrow(
      /step "use" reads "make" with another output schema than "make" declares/,
    );
  });

  it('holds for the deploy pipeline as shipped', () => {
    expect(() => new PipelineRegistry([deployPipeline])).not.toThrow();
  });
});

describe('parseRunRequest', () => {
  it('accepts a request and keeps what it says', () => {
    const req = {
      appId: 'web',
      pipeline: 'deploy',
      params: { ref: 'main', n: 1, nested: { list: [true, null] } },
      policy: 'supersede' as const,
      requestedBy: 'api',
      spec: { name: 'web' },
    };
    expect(parseRunRequest(req)).toEqual(req);
    expect(parseRunRequest({ appId: 'web', pipeline: 'deploy' })).toEqual({
      appId: 'web',
      pipeline: 'deploy',
    });
  });

  it('refuses a bad request with BAD_REQUEST listing every problem', () => {
    let err: unknown;
    try {
      parseRunRequest({ appId: '', pipeline: 3, params: ['ref'], policy: 'sometimes' });
    } catch (e) {
      err = e;
    }
    expect(isNornError(err)).toBe(true);
    if (!isNornError(err)) return;
    expect(err.code).toBe('BAD_REQUEST');
    expect(err.message).toMatch(/^run request refused: /);
    const problems = err.details?.problems as string[];
    expect(problems.map((p) => p.split(':')[0])).toEqual(['appId', 'pipeline', 'params', 'policy']);
    expect(err.message).toContain('appId: must be an app id');
  });

  it('lets a key be undefined, as JSON leaves it out', () => {
    expect(parseRunRequest({ appId: 'a', pipeline: 'p', params: { ref: undefined } })).toEqual({
      appId: 'a',
      pipeline: 'p',
      params: { ref: undefined },
    });
  });

  it('refuses params that are not JSON', () => {
    expect(() => parseRunRequest({ appId: 'a', pipeline: 'p', params: { n: NaN } })).toThrow(
      /params\.n: /,
    );
    expect(() => parseRunRequest({ appId: 'a', pipeline: 'p', params: { f: () => 1 } })).toThrow(
      /run request refused: params\.f: /,
    );
    expect(() => parseRunRequest({ appId: 'a', pipeline: 'p', params: 'ref=main' })).toThrow(
      /params: /,
    );
  });
});

// ---- the processor, with in-memory live state and run store -------------------------------------

interface Harness {
  failures: Array<{ step: string | null; error: string; final: boolean }>;
  finishes: Array<{ step: string; status: string; output: unknown }>;
  process(job: Job<StepJobData>): Promise<null>;
}

function harness(steps: StepDefinition[], params: Record<string, unknown> = {}): Harness {
  const failures: Harness['failures'] = [];
  const finishes: Harness['finishes'] = [];
  const def = definePipeline<unknown>()({
    name: 'typed',
    version: '1',
    steps: steps.map((s) => ({ ...s, output: s.output ?? z.unknown() })),
  });
  const live = {
    start: async () => ({ action: 'run', attempt: 1, params, spec: {}, sagaId: RUN, log: [] }),
    finish: async (_run: string, step: string, status: string, output: unknown) => {
      finishes.push({ step, status, output });
      return { action: 'ok', log: [] };
    },
    pending: async () => [],
    outputs: async () => ({}),
  } as unknown as LiveRuns;
  const store = {
    heartbeat: async () => true,
    stepFail: async (
      _run: string,
      step: string | null,
      error: string,
      opts: { final: boolean },
    ): Promise<StepFailResult> => {
      failures.push({ step, error, final: opts.final });
      return opts.final
        ? { action: 'ended', status: 'failed', events: [], next: null }
        : { action: 'retry', events: [] };
    },
    runSucceeded: async () => ({ action: 'ended', status: 'succeeded', events: [], next: null }),
  } as unknown as RunStore;
  const processor = createProcessor({
    store,
    runs: { apply: async () => {} } as unknown as RunService,
    live,
    recorder: { push: () => {}, forget: () => {}, settled: async () => {} } as unknown as Recorder,
    registry: new PipelineRegistry([def]),
    services: undefined,
    active: new ActiveSteps(),
    workerId: 'w1',
    heartbeatMs: 60_000,
    cancelGraceMs: 1_000,
    dbRetryMs: 0,
    log: silentLogger,
  });
  return { failures, finishes, process: (job) => processor(job, 'token') };
}

function job(data: unknown, attempts = 3): Job<StepJobData> {
  return {
    id: `${RUN}.x`,
    name: 'x',
    data,
    attemptsMade: 0,
    opts: { attempts },
    log: async () => 0,
  } as unknown as Job<StepJobData>;
}

const data = (step: string, index: number, total: number): StepJobData => ({
  runId: RUN,
  appId: 'a',
  pipeline: 'typed',
  version: '1',
  step,
  index,
  total,
});

describe('the processor', () => {
  const shaped = defineStep<unknown>()({
    name: 'shaped',
    output: z.object({ count: z.int() }),
    attempts: 3,
    // A bug: what it returns is not what it declares.
    run: async () => ({ count: 'many' }) as unknown as { count: number },
  });

  it('fails a step whose output its schema refuses, for good, with the zod problems', async () => {
    const h = harness([shaped]);
    const failed = h.process(job(data('shaped', 0, 1)));
    await expect(failed).rejects.toBeInstanceOf(UnrecoverableError);
    await expect(failed).rejects.toThrow(
      /INTERNAL: step shaped returned an output its schema refuses: count: /,
    );
    expect(h.finishes).toEqual([]);
    expect(h.failures).toEqual([
      {
        step: 'shaped',
        error: expect.stringMatching(/^INTERNAL: step shaped returned an output/),
        final: true, // 3 attempts, but another one cannot help
      },
    ]);
  });

  it('records what the schema parsed, and a skip as a skip', async () => {
    const ok = defineStep<unknown>()({
      name: 'ok',
      output: z.object({ count: z.int() }),
      run: async () => ({ count: 2 }),
    });
    const skips = defineStep<unknown>()({
      name: 'skips',
      output: z.object({ never: z.string() }),
      run: async () => skipStep('nothing to do'),
    });
    const h = harness([ok, skips]);
    await h.process(job(data('ok', 0, 2)));
    await h.process(job({ ...data('skips', 1, 2), previous: 'ok' }));
    expect(h.finishes).toEqual([
      { step: 'ok', status: 'complete', output: { count: 2 } },
      { step: 'skips', status: 'skipped', output: undefined },
    ]);
    expect(h.failures).toEqual([]);
  });

  it('fails the run when its params are refused (BAD_REQUEST), before the step runs', async () => {
    let ran = false;
    const reads = defineStep<unknown>()({
      name: 'reads',
      output: z.object({ ref: z.string() }),
      params: z.object({ ref: z.string() }),
      async run(ctx) {
        ran = true;
        return { ref: ctx.params.ref };
      },
    });
    const h = harness([reads], { ref: ['not', 'a', 'string'] });
    await expect(h.process(job(data('reads', 0, 1)))).rejects.toThrow(
      /^BAD_REQUEST: step reads refused the run's params: ref: /,
    );
    expect(ran).toBe(false);
    expect(h.failures).toMatchObject([{ step: 'reads', final: true }]);

    const good = harness([reads], { ref: 'main', extra: 1 });
    await good.process(job(data('reads', 0, 1)));
    expect(good.finishes).toEqual([{ step: 'reads', status: 'complete', output: { ref: 'main' } }]);
  });

  it('fails a job with bad data for good, listing the problems, without touching the run', async () => {
    const h = harness([shaped]);
    for (const bad of [undefined, 'x', { runId: RUN, step: 'shaped', index: 'zero' }]) {
      const failed = h.process(job(bad));
      await expect(failed).rejects.toBeInstanceOf(UnrecoverableError);
      await expect(failed).rejects.toThrow(/^BAD_REQUEST: job .* has no step job data/);
    }
    await expect(h.process(job({ ...data('shaped', 0, 1), total: -1 }))).rejects.toThrow(/total: /);
    expect(h.failures).toEqual([]);
    expect(h.finishes).toEqual([]);
  });
});
