/**
 * Typed steps, checked by the compiler (`npx tsc --noEmit` covers test/): a step's context reads
 * the earlier steps' outputs with the types of their schemas, and ctx.params with the type of its
 * params schema. Each `@ts-expect-error` line must stay an error, or tsc fails.
 */
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import {
  definePipeline,
  defineStep,
  stepsOf,
  type StepContext,
  type StepsBefore,
} from '../../src/queues/pipeline.js';
import {
  deployStep,
  type BuildOutput,
  type CloneOutput,
  type DeployContext,
  type DEPLOY_STEPS,
} from '../../src/pipelines/deploy/types.js';

describe('deploy steps', () => {
  it('read the outputs of the steps before them, typed', () => {
    const probe = deployStep('test', {
      async run(ctx) {
        expectTypeOf(ctx.output('clone')).resolves.toEqualTypeOf<CloneOutput | null | undefined>();
        expectTypeOf(ctx.output('build')).resolves.toEqualTypeOf<BuildOutput | null | undefined>();
        const cloned = await ctx.output('clone');
        if (cloned) expectTypeOf(cloned.commitSha).toBeString();
        // @ts-expect-error -- no such field on clone's output
        if (cloned) void cloned.imageRef;
        // @ts-expect-error -- no step of that name
        void ctx.output('clonee');
        // @ts-expect-error -- submit runs after test: its output cannot be read yet
        void ctx.output('submit');
        return { exitCode: 0, tail: [] };
      },
    });
    expectTypeOf(probe.name).toEqualTypeOf<'test'>();
  });

  it('must return what their output schema declares', () => {
    deployStep('build', {
      // @ts-expect-error -- reused must be a boolean
      run: async () => ({ imageRef: 'r/a:1', digest: null, reused: 'yes' }),
    });
    // @ts-expect-error -- not a deploy step
    deployStep('nope', { run: async () => ({}) });
  });

  it('type ctx.params from their params schema', () => {
    deployStep('clone', {
      params: z.object({ ref: z.string().nullish() }),
      async run(ctx) {
        expectTypeOf(ctx.params.ref).toEqualTypeOf<string | null | undefined>();
        // @ts-expect-error -- not a declared param
        void ctx.params.branch;
        return { commitSha: 'c', ref: 'main', repoUrl: 'u' };
      },
    });
  });

  it('DeployContext and StepsBefore follow the pipeline order', () => {
    expectTypeOf<StepsBefore<typeof DEPLOY_STEPS, 'snapshot'>>().toEqualTypeOf<
      'clone' | 'build' | 'test'
    >();
    expectTypeOf<DeployContext<'clone'>['output']>().parameter(0).toEqualTypeOf<never>();
    expectTypeOf<DeployContext<'build'>['output']>().parameter(0).toEqualTypeOf<'clone'>();
  });
});

describe('defineStep and definePipeline', () => {
  const Fetched = z.object({ url: z.string(), bytes: z.int() });
  const fetch = defineStep<void>()({
    name: 'fetch',
    output: Fetched,
    params: z.object({ url: z.url() }),
    run: async (ctx) => ({ url: ctx.params.url, bytes: 3 }),
  });
  const count = defineStep<void>()({
    name: 'count',
    reads: { fetch: Fetched },
    output: z.object({ total: z.number() }),
    async run(ctx) {
      const fetched = await ctx.output('fetch');
      // @ts-expect-error -- bytes is a number
      expectTypeOf(fetched?.bytes).toEqualTypeOf<string | undefined>();
      return { total: fetched?.bytes ?? 0 };
    },
  });

  it('a pipeline names its finalizer among its steps and summarizes typed outputs', () => {
    definePipeline<void>()({
      name: 'p',
      version: '1',
      steps: [fetch, count],
      finalizer: 'count',
      summarize: ({ count: c }) => ({ total: c?.total ?? 0 }),
    });
    definePipeline<void>()({
      name: 'p',
      version: '1',
      steps: [fetch, count],
      // @ts-expect-error -- not one of its steps
      finalizer: 'cleanup',
    });
  });

  it('stepsOf types each step from the schemas before it', () => {
    const step = stepsOf<void>()(['a', 'b'] as const, {
      a: z.object({ n: z.int() }),
      b: z.string(),
    });
    step('b', {
      async run(ctx) {
        expectTypeOf(ctx).toEqualTypeOf<StepContext<{ a: { n: number } }>>();
        return String((await ctx.output('a'))?.n);
      },
    });
  });
});
