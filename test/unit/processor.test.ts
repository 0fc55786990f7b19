/**
 * The step processor through injected fakes: the live state in memory (FakeLiveRedis behind the
 * real LiveRuns), PostgreSQL's answers scripted, time moved by hand. What BullMQ would see (the
 * return value, the error thrown) and what reaches Redis and PostgreSQL is asserted.
 */
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import { beforeEach, describe, expect, it } from 'vitest';
import { FINALIZE_JOB, type StepJobData } from '../../src/queues/flow.js';
import { LiveRuns } from '../../src/queues/live.js';
import { PipelineRegistry, type StepDefinition } from '../../src/queues/pipeline.js';
import { NornError } from '../../src/shared/errors.js';
import { silentLogger } from '../../src/shared/logger.js';
import type { Transition } from '../../src/shared/store/runs.js';
import { ActiveSteps } from '../../src/workers/active.js';
import { createProcessor, type ProcessorStore } from '../../src/workers/processor.js';
import { FakeLiveRedis } from './support/fake-live.js';
import { manualTime } from './support/manual-time.js';
import { recordingLogger } from './support/log.js';
import type { Logger } from '../../src/shared/logger.js';

const RUN = { id: 'run-1', appId: 'app-1', sagaId: 'saga-1', params: { ref: 'main' }, spec: {} };
const STEPS = ['clone', 'build', 'ship'];
const iso = (ms: number) => new Date(ms).toISOString();

function fakeJob(step: string, o: { attempts?: number; attemptsMade?: number } = {}) {
  const index = STEPS.indexOf(step);
  const data: StepJobData = {
    runId: RUN.id,
    appId: RUN.appId,
    pipeline: 'demo',
    version: '1',
    scope: `app:${RUN.appId}`,
    step,
    index,
    total: STEPS.length,
    ...(index > 0 ? { previous: STEPS[index - 1] } : {}),
  };
  const lines: string[] = [];
  const delayed: Array<{ timestamp: number; token: string }> = [];
  const job = {
    name: step,
    data,
    opts: { attempts: o.attempts ?? 1 },
    attemptsMade: o.attemptsMade ?? 0,
    log: async (line: string) => lines.push(line),
    moveToDelayed: async (timestamp: number, token: string) =>
      void delayed.push({ timestamp, token }),
  };
  return { job: job as unknown as Job<StepJobData>, lines, delayed };
}

function harness(
  handlers: Partial<Record<string, StepDefinition['run']>> = {},
  opts: { heartbeatMs?: number; log?: Logger } = {},
) {
  const time = manualTime();
  const redis = new FakeLiveRedis();
  const live = new LiveRuns(redis, 'pfx', time.clock);
  const calls: Array<[string, ...unknown[]]> = [];
  const store: ProcessorStore = {
    stepFail: async (...args) => {
      calls.push(['stepFail', ...args]);
      return { action: 'ended', status: 'failed', events: [], next: null };
    },
    runSucceeded: async (...args) => {
      calls.push(['runSucceeded', ...args]);
      return { action: 'ended', status: 'succeeded', events: [], next: null };
    },
    leasedRun: async () => null,
    heartbeat: async () => true,
    runContext: async () => null,
    outputs: async () => ({}),
    finalizerDone: async () => ({ action: 'ok', events: [] }),
  };
  const applied: Array<{ t: Transition; runId?: string }> = [];
  const pushed: Array<{ runId: string; log: string[] }> = [];
  const forgotten: string[] = [];
  const progressed: Array<{ runId: string; step: string; payload: unknown }> = [];
  const active = new ActiveSteps();
  const steps = STEPS.map((name) => ({
    name,
    run: handlers[name] ?? (async () => ({ [name]: true })),
  }));
  const registry = new PipelineRegistry([{ name: 'demo', version: '1', steps }]);
  const process = createProcessor({
    store,
    runs: { apply: async (t, runId) => void applied.push({ t, runId }), start: async () => {} },
    live,
    recorder: {
      push: (runId, log) => void pushed.push({ runId, log: [...log] }),
      forget: (runId) => void forgotten.push(runId),
      progress: async (runId, step, payload) => void progressed.push({ runId, step, payload }),
      settled: async () => {},
    },
    registry,
    services: {},
    active,
    workerId: 'worker-1',
    heartbeatMs: opts.heartbeatMs ?? 3_600_000,
    cancelGraceMs: 50,
    dbRetryMs: 0,
    log: opts.log ?? silentLogger,
    clock: time.clock,
  });
  return {
    time,
    redis,
    live,
    store,
    calls,
    applied,
    pushed,
    forgotten,
    progressed,
    active,
    process,
  };
}

type Harness = ReturnType<typeof harness>;
const kinds = (log: string[]) => log.map((e) => JSON.parse(e) as { k: string; step: string });

describe('step processor', () => {
  let h: Harness;
  beforeEach(async () => {
    h = harness({
      clone: async () => {
        h.time.tick(1_500); // the step takes 1.5 s
        return { sha: 'abc' };
      },
      build: async (ctx) => ({
        image: `img-${((await ctx.outputs()).clone as { sha: string } | undefined)?.sha}`,
      }),
    });
    await h.live.open(RUN);
  });

  it('step.start: starts a step, records its finish, and lets the next step start only after it', async () => {
    const t0 = h.time.clock();
    const clone = fakeJob('clone');
    // The next step taken too early waits for its predecessor's finish (the live state says so).
    const build = h.process(fakeJob('build').job, 'tok-b');
    expect(await h.process(clone.job, 'tok-a')).toBeNull();
    expect(await build).toBeNull();
    await h.active.settled();

    const scripts = h.redis.calls.flatMap((c) => (c.kind === 'script' ? [c] : []));
    expect(scripts.map((c) => [c.name, c.args[0]])).toEqual([
      ['nornOpen', 7 * 86_400_000],
      ['nornStart', 'build'], // early: clone has not finished
      ['nornStart', 'clone'],
      ['nornFinish', 'clone'],
      ['nornStart', 'build'],
      ['nornFinish', 'build'],
    ]);
    const cloneStart = scripts[2]!;
    const cloneFinish = scripts[3]!;
    expect(cloneStart.args).toEqual(['clone', 'worker-1', iso(t0), '']);
    // Duration from the injected clock; the output as JSON.
    expect(cloneFinish.args).toEqual([
      'clone',
      'complete',
      '{"sha":"abc"}',
      1_500,
      '',
      iso(t0 + 1_500),
    ]);
    expect(scripts[5]!.args.slice(0, 3)).toEqual(['build', 'complete', '{"image":"img-abc"}']);

    // Every transition went to the recorder (not the last step's: the end of the run records it).
    expect(h.pushed.map((p) => kinds(p.log).map((e) => `${e.k}:${e.step}`))).toEqual([
      ['start:clone'],
      ['start:clone', 'finish:clone'],
      ['start:clone', 'finish:clone', 'start:build'],
      ['start:clone', 'finish:clone', 'start:build', 'finish:build'],
    ]);
    expect(h.calls).toEqual([]); // no PostgreSQL call on a middle step's path
    expect(h.redis.hashes.get('pfx:norn:run:run-1')?.get('s:build')).toBe('complete');
  });

  it("hands a step's progress to the recorder, a repeat of the last one dropped", async () => {
    const p = harness({
      clone: async (ctx) => {
        ctx.progress({ ready: 0, desired: 2 });
        ctx.progress({ ready: 0, desired: 2 }); // the same again: not an event
        ctx.progress({ ready: 1, desired: 2 });
        ctx.progress({ ready: 2, desired: 2 });
        return { sha: 'abc' };
      },
    });
    await p.live.open(RUN);
    await p.process(fakeJob('clone').job, 'tok');
    await p.active.settled();
    expect(p.progressed).toEqual([
      { runId: 'run-1', step: 'clone', payload: { ready: 0, desired: 2 } },
      { runId: 'run-1', step: 'clone', payload: { ready: 1, desired: 2 } },
      { runId: 'run-1', step: 'clone', payload: { ready: 2, desired: 2 } },
    ]);
  });

  it('puts the run, scope, pipeline, step and attempt on every log line of a step', async () => {
    const { log, lines } = recordingLogger();
    const p = harness(
      {
        clone: async (ctx) => {
          ctx.log('cloning now');
          return { sha: 'abc' };
        },
      },
      { log },
    );
    await p.live.open(RUN);
    await p.process(fakeJob('clone', { attempts: 3, attemptsMade: 1 }).job, 'tok');
    expect(lines.find((l) => l.msg === 'cloning now')).toMatchObject({
      runId: RUN.id,
      scope: 'app:app-1',
      pipeline: 'demo',
      step: 'clone',
      attempt: 2,
    });
  });

  it('run.succeed: the last step ends the run in PostgreSQL with the whole live log', async () => {
    for (const step of STEPS) await h.process(fakeJob(step).job, 'tok');
    await h.active.settled();
    expect(h.calls).toHaveLength(1);
    const [method, runId, entries] = h.calls[0]!;
    expect([method, runId]).toEqual(['runSucceeded', 'run-1']);
    expect(kinds(entries as string[]).map((e) => `${e.k}:${e.step}`)).toEqual(
      STEPS.flatMap((s) => [`start:${s}`, `finish:${s}`]),
    );
    expect(h.forgotten).toEqual(['run-1']);
    expect(h.applied).toEqual([
      { t: { action: 'ended', status: 'succeeded', events: [], next: null }, runId: 'run-1' },
    ]);
  });

  it('step.done: a re-delivered finished step does nothing again', async () => {
    await h.process(fakeJob('clone').job, 'tok');
    await h.active.settled();
    const before = h.redis.calls.length;
    expect(await h.process(fakeJob('clone').job, 'tok')).toBeNull();
    expect(h.redis.calls.slice(before).map((c) => (c.kind === 'script' ? c.name : c.kind))).toEqual(
      ['nornStart'],
    );
  });

  it('step.early: a step whose predecessor never finishes asks again for about a second, then fails without recording anything', async () => {
    let ran = false;
    const h = harness({
      build: async () => {
        ran = true;
      },
    });
    await h.live.open(RUN);
    const t0 = Date.now();
    const err = await h.process(fakeJob('build', { attempts: 3 }).job, 'tok').catch((e) => e);
    // Not unrecoverable: BullMQ counts a failed attempt and may try again.
    expect(err).toBeInstanceOf(NornError);
    expect(err).not.toBeInstanceOf(UnrecoverableError);
    expect(err).toMatchObject({ code: 'INTERNAL', message: expect.stringContaining('clone') });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_000); // 2 + 4 + … + 512 ms of waiting
    expect(h.redis.scriptNames()).toEqual(['nornOpen', ...Array(10).fill('nornStart')]);
    expect(ran).toBe(false);
    expect(h.redis.lists.get('pfx:norn:run:run-1:log') ?? []).toEqual([]);
    expect(h.calls).toEqual([]);
    expect(h.pushed).toEqual([]);
  });
});

describe('step processor failures', () => {
  it('a failure with attempts left is recorded as not final and thrown as is, for BullMQ to retry', async () => {
    const h = harness({
      clone: async () => {
        h.time.tick(40);
        throw new Error('git fetch failed');
      },
    });
    await h.live.open(RUN);
    const { job, lines } = fakeJob('clone', { attempts: 3 });
    const err = await h.process(job, 'tok').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(UnrecoverableError);
    expect((err as Error).message).toBe('git fetch failed');
    expect(lines).toEqual(['failed (to be tried again): git fetch failed']);
    const [method, runId, step, error, opts, pending] = h.calls[0]!;
    expect([method, runId, step, error, opts]).toEqual([
      'stepFail',
      'run-1',
      'clone',
      'git fetch failed',
      { final: false, cancelled: false, durationMs: 40, code: 'STEP_FAILED' },
    ]);
    expect(kinds(pending as string[]).map((e) => e.k)).toEqual(['start']);
    expect(h.applied.map((a) => a.runId)).toEqual(['run-1']);
    expect(h.active.size).toBe(0);
  });

  it('the last attempt, or an error that is not retryable, fails the step for good', async () => {
    const h = harness({
      clone: async () => {
        throw new Error('git fetch failed');
      },
    });
    await h.live.open(RUN);
    const last = fakeJob('clone', { attempts: 3, attemptsMade: 2 });
    await expect(h.process(last.job, 't')).rejects.toThrow(
      new UnrecoverableError('git fetch failed'),
    );
    expect(last.lines).toEqual(['failed: git fetch failed']);
    expect(h.calls[0]?.slice(0, 5)).toEqual([
      'stepFail',
      'run-1',
      'clone',
      'git fetch failed',
      { final: true, cancelled: false, durationMs: 0, code: 'STEP_FAILED' },
    ]);

    const h2 = harness({
      clone: async () => {
        throw new NornError('SPEC_INVALID', 'no Dockerfile');
      },
    });
    await h2.live.open(RUN);
    await expect(h2.process(fakeJob('clone', { attempts: 3 }).job, 't')).rejects.toThrow(
      new UnrecoverableError('SPEC_INVALID: no Dockerfile'),
    );
    expect(h2.calls[0]?.[4]).toMatchObject({ final: true, cancelled: false });
  });

  it('a failure PostgreSQL cannot record fails the job with both causes', async () => {
    const h = harness({
      clone: async () => {
        throw new Error('git fetch failed');
      },
    });
    h.store.stepFail = async () => {
      throw new Error('relation "steps" does not exist');
    };
    await h.live.open(RUN);
    const { job, lines } = fakeJob('clone');
    const both =
      'git fetch failed (and PostgreSQL could not record it: relation "steps" does not exist)';
    await expect(h.process(job, 't')).rejects.toThrow(new UnrecoverableError(both));
    expect(lines).toEqual(['failed: git fetch failed', both]);
    expect(h.applied).toEqual([]);
  });

  it('a step of a run that ended does not run, and a late finish is refused (the fence)', async () => {
    let ran = 0;
    const h = harness({
      clone: async () => {
        ran++;
        return {};
      },
      ship: async () => {
        await h.live.close(RUN.id); // the run ends (e.g. cancelled and swept) while it runs
        return { shipped: true };
      },
    });
    await h.live.open(RUN);
    for (const step of ['clone', 'build']) await h.process(fakeJob(step).job, 't');
    await expect(h.process(fakeJob('ship').job, 't')).rejects.toThrow(
      'LEASE_LOST: run run-1 is finished; step result discarded',
    );
    await expect(h.process(fakeJob('clone').job, 't')).rejects.toThrow(
      'LEASE_LOST: run run-1 is finished; step not run',
    );
    expect(ran).toBe(1);
    expect(h.calls).toEqual([]); // nothing ended the run twice
  });

  it('step.lease-lost: a heartbeat that finds no lease aborts the step and fails its job without recording it', async () => {
    let reason: unknown;
    const h = harness(
      {
        clone: (ctx) =>
          new Promise((_, reject) =>
            ctx.signal.addEventListener('abort', () => {
              reason = ctx.signal.reason;
              reject(new Error('aborted'));
            }),
          ),
      },
      { heartbeatMs: 5 },
    );
    h.store.heartbeat = async () => false; // the run ended elsewhere: its lease row is gone
    await h.live.open(RUN);
    await expect(h.process(fakeJob('clone', { attempts: 3 }).job, 't')).rejects.toThrow(
      new UnrecoverableError('LEASE_LOST: the run lost its scope lease'),
    );
    expect(reason).toBe('lease-lost');
    expect(h.calls).toEqual([]);
    expect(h.applied).toEqual([]);
    expect(h.active.size).toBe(0);
  });

  it('finalizer.fail: a finalizer that throws on its last attempt is recorded failed', async () => {
    const h = harness({
      ship: async () => {
        h.time.tick(30);
        throw new Error('cleanup failed');
      },
    });
    const done: unknown[][] = [];
    h.store.runContext = async () => ({
      params: {},
      spec: {},
      sagaId: RUN.sagaId,
      finalizer: 'ship',
      startedAt: iso(0),
      queue: 'steps',
      pipeline: 'demo',
      version: '1',
      appId: RUN.appId,
      scope: `app:${RUN.appId}`,
    });
    h.store.finalizerDone = async (...args) => {
      done.push(args);
      return { action: 'ok', events: [] };
    };
    const finalJob = (attemptsMade: number) => {
      const { job } = fakeJob('ship', { attempts: 3, attemptsMade });
      (job as { name: string }).name = FINALIZE_JOB;
      return job;
    };
    // An attempt with more to come is only thrown, for BullMQ to retry.
    await expect(h.process(finalJob(0), 't')).rejects.toThrow(new Error('cleanup failed'));
    expect(done).toEqual([]);
    await expect(h.process(finalJob(2), 't')).rejects.toThrow(
      new UnrecoverableError('cleanup failed'),
    );
    expect(done).toEqual([['run-1', 'ship', 'failed', null, 'cleanup failed', 30]]);
    expect(h.applied).toEqual([{ t: { action: 'ok', events: [] }, runId: undefined }]);
  });
});

describe('step processor cancel', () => {
  it('step.cancel: a run cancelled before the step starts fails the step as cancelled without running it', async () => {
    let ran = false;
    const h = harness({
      build: async () => {
        ran = true;
      },
    });
    await h.live.open(RUN);
    await h.process(fakeJob('clone').job, 't');
    await h.active.settled();
    await h.live.cancel(RUN.id);
    await expect(h.process(fakeJob('build').job, 't')).rejects.toThrow(
      new UnrecoverableError('CANCELLED: run cancelled before this step started'),
    );
    expect(ran).toBe(false);
    const [method, runId, step, error, opts, pending] = h.calls[0]!;
    expect([method, runId, step, error, opts]).toEqual([
      'stepFail',
      'run-1',
      'build',
      'cancelled',
      { final: true, cancelled: true },
    ]);
    // What the live log still holds goes with it (clone's transitions).
    expect(kinds(pending as string[]).map((e) => `${e.k}:${e.step}`)).toEqual([
      'start:clone',
      'finish:clone',
    ]);
    expect(h.applied).toEqual([
      { t: { action: 'ended', status: 'failed', events: [], next: null }, runId: 'run-1' },
    ]);
  });

  it('a cancel broadcast aborts the running step: recorded as cancelled, final', async () => {
    let reason: unknown;
    const h = harness({
      clone: (ctx) =>
        new Promise((_, reject) =>
          ctx.signal.addEventListener('abort', () => {
            reason = ctx.signal.reason;
            h.time.tick(7);
            reject(new Error('aborted'));
          }),
        ),
    });
    await h.live.open(RUN);
    const { job, lines } = fakeJob('clone', { attempts: 5 });
    const running = h.process(job, 't');
    await expect.poll(() => h.active.size).toBe(1);
    expect(h.active.abort(RUN.id, 'cancelled')).toBe(true);
    await expect(running).rejects.toThrow(new UnrecoverableError('CANCELLED'));
    expect(reason).toBe('cancelled');
    expect(lines).toEqual(['cancelled']);
    expect(h.calls[0]?.slice(0, 5)).toEqual([
      'stepFail',
      'run-1',
      'clone',
      'cancelled',
      { final: true, cancelled: true, durationMs: 7, code: 'CANCELLED' },
    ]);
    expect(h.active.size).toBe(0);
  });

  it('a step that ignores the cancel is abandoned after the grace period', async () => {
    const h = harness({ clone: () => new Promise(() => {}) });
    await h.live.open(RUN);
    const running = h.process(fakeJob('clone').job, 't');
    await expect.poll(() => h.active.size).toBe(1);
    h.active.abort(RUN.id, 'cancelled');
    await expect(running).rejects.toThrow(new UnrecoverableError('CANCELLED'));
    expect(h.calls[0]?.[4]).toMatchObject({ final: true, cancelled: true });
  });

  it('step.handback: a worker shutdown hands the step back at the injected time without spending an attempt', async () => {
    const h = harness({
      clone: (ctx) =>
        new Promise((_, reject) =>
          ctx.signal.addEventListener('abort', () => reject(new Error('stop'))),
        ),
    });
    await h.live.open(RUN);
    const bull = new AbortController();
    const { job, delayed } = fakeJob('clone', { attempts: 3 });
    const running = h.process(job, 'tok-1', bull.signal);
    await expect.poll(() => h.active.size).toBe(1);
    h.time.tick(250);
    bull.abort('shutdown');
    await expect(running).rejects.toBeInstanceOf(DelayedError);
    expect(delayed).toEqual([{ timestamp: h.time.clock(), token: 'tok-1' }]);
    expect(h.calls).toEqual([]); // not a failure
  });
});
