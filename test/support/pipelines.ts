/**
 * Pipelines defined by the tests. Also loaded by worker/api subprocesses through
 * NORN_PIPELINES_MODULE, so in-process and out-of-process workers run the same definitions.
 * Behaviour is driven by run params (TestParams).
 */
import { appendFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  skipStep,
  type HookContext,
  type PipelineDefinition,
  type StepContext,
  type StepDefinition,
} from '../../src/queues/pipeline.js';
import { NornError } from '../../src/shared/errors.js';

export interface TestParams {
  /** A file each step appends "<runId> <step> start|end <pid> <attempt>" to. */
  trace?: string;
  sleepMs?: Record<string, number>;
  /** Step → error message: the step fails (not retryable). */
  fail?: Record<string, string>;
  /** Step → how many attempts fail (retryable) before it succeeds. */
  flaky?: Record<string, number>;
  /** Step that runs a child `sleep` carrying this marker, to check cancel kills it. */
  childSleep?: { step: string; marker: string };
  /** Step that ignores its AbortSignal (checks the cancel grace). */
  stubborn?: string;
  /** Step that reports progress 0..desired of `desired` (each twice: repeats are dropped). */
  progress?: { step: string; desired: number };
  ref?: string;
}

function trace(ctx: StepContext, what: string) {
  const p = ctx.run.params as TestParams;
  if (p.trace)
    appendFileSync(
      p.trace,
      `${ctx.run.id} ${ctx.step.name} ${what} ${process.pid} ${ctx.step.attempt}\n`,
    );
}

function testStep(name: string, attempts = 1): StepDefinition {
  return {
    name,
    attempts,
    backoffMs: 50,
    async run(ctx) {
      const p = ctx.run.params as TestParams;
      trace(ctx, 'start');
      ctx.log(`${name} says hello`);
      if (p.progress?.step === name)
        for (let ready = 0; ready <= p.progress.desired; ready++) {
          ctx.progress({ ready, desired: p.progress.desired });
          ctx.progress({ ready, desired: p.progress.desired });
          await sleep(20);
        }
      if (p.childSleep?.step === name) {
        await ctx.exec(['sh', '-c', `sleep 300; echo ${p.childSleep.marker}`]);
      }
      // Over HTTP only `ref` reaches a run: ref "sleep-<ms>" makes s2 sleep that long.
      const refSleep =
        typeof p.ref === 'string' && name === 's2' ? /^sleep-(\d+)$/.exec(p.ref)?.[1] : undefined;
      const ms = p.sleepMs?.[name] ?? (refSleep ? Number(refSleep) : undefined);
      if (ms)
        await (p.stubborn === name ? sleep(ms) : sleep(ms, undefined, { signal: ctx.signal }));
      if (p.fail?.[name]) throw new NornError('STEP_FAILED', p.fail[name]!);
      // ref "fail-<step>" makes that step fail (not retryable), e.g. "fail-s3".
      if (typeof p.ref === 'string' && p.ref === `fail-${name}`)
        throw new NornError('STEP_FAILED', `${name} failed because the ref said so`);
      if (p.flaky?.[name] && ctx.step.attempt <= p.flaky[name]!)
        throw new Error(`flaky ${name} attempt ${ctx.step.attempt}`);
      const seen = await ctx.outputs();
      trace(ctx, 'end');
      return { step: name, pid: process.pid, seen: Object.keys(seen) };
    },
  };
}

const names = (n: number) => Array.from({ length: n }, (_, i) => `s${i + 1}`);

export const chain9: PipelineDefinition = {
  name: 'chain',
  version: '1',
  events: 'deploy',
  steps: names(9).map((n) => testStep(n, n === 's4' ? 3 : 1)),
  summarize: (outputs) => ({ imageTag: `test:${Object.keys(outputs).length}` }),
};

export const short3: PipelineDefinition = {
  name: 'short',
  version: '1',
  events: 'forge',
  steps: names(3).map((n) => testStep(n)),
};

/** prepare → work → cleanup, cleanup being the finalizer; `skip` in params makes work skip itself. */
export const withCleanup: PipelineDefinition = {
  name: 'tidy',
  version: '1',
  finalizer: 'cleanup',
  steps: [
    testStep('prepare'),
    {
      name: 'work',
      async run(ctx) {
        const p = ctx.run.params as TestParams & { skip?: string };
        if (p.skip) return skipStep(p.skip);
        return testStep('work').run(ctx, undefined);
      },
    },
    {
      name: 'cleanup',
      async run(ctx) {
        trace(ctx, 'start');
        return { cleaned: true, appName: (ctx.run.spec as { name?: string }).name ?? null };
      },
    },
  ],
};

/** A drift check's shape: its own scope (drift:<app>), and requests coalesce while one waits. */
export const driftCheck: PipelineDefinition = {
  name: 'drift-check',
  version: '1',
  events: 'drift',
  scope: ({ appId }) => `drift:${appId}`,
  policy: 'coalesce',
  steps: [testStep('look')],
};

/** A pipeline whose own policy is reject (a request may still override it). */
export const exclusive: PipelineDefinition = {
  name: 'exclusive',
  version: '1',
  policy: 'reject',
  steps: names(2).map((n) => testStep(n)),
};

export interface HookParams {
  /** A file each hook try appends "<runId> <hook> <attempt> <pid>" to (outside the database). */
  hookTrace?: string;
  /** Hook → ms it sleeps (honouring its signal) after its database write. */
  hookSleepMs?: Record<string, number>;
  /** Hook → how many tries throw before one succeeds. */
  hookFails?: Record<string, number>;
}

/**
 * Each hook writes a row to hook_effects through its transaction (the test creates the table)
 * and emits a `hooked.effect {hook, attempt}` event, then sleeps or throws as the run's params say.
 */
async function hookEffect(ctx: HookContext): Promise<void> {
  const p = ctx.run.params as HookParams;
  if (p.hookTrace)
    appendFileSync(p.hookTrace, `${ctx.run.id} ${ctx.hook} ${ctx.attempt} ${process.pid}\n`);
  await ctx.tx.query(
    'INSERT INTO hook_effects (run_id, hook, attempt, pid, started) VALUES ($1, $2, $3, $4, $5)',
    [ctx.run.id, ctx.hook, ctx.attempt, process.pid, ctx.run.started],
  );
  // An event of the run's subject, in the same transaction as the write above.
  await ctx.emit('hooked.effect', { hook: ctx.hook, attempt: ctx.attempt });
  const ms = p.hookSleepMs?.[ctx.hook];
  if (ms) await sleep(ms, undefined, { signal: ctx.signal });
  const fails = p.hookFails?.[ctx.hook];
  if (fails && ctx.attempt <= fails) throw new Error(`${ctx.hook} fails on try ${ctx.attempt}`);
}

/** Two steps and every life-cycle hook. */
export const hooked: PipelineDefinition = {
  name: 'hooked',
  version: '1',
  steps: names(2).map((n) => testStep(n)),
  hooks: {
    onStart: hookEffect,
    onSucceed: hookEffect,
    onFail: hookEffect,
    onCancel: hookEffect,
  },
};

export const pipelines = [chain9, short3, withCleanup, driftCheck, exclusive, hooked];
