/**
 * Starting, cancelling and resuming runs, shared by the api and the workers. PostgreSQL decides
 * (norn_* functions: admission, policy, fencing, the end of a run); this class carries out what it
 * decided in BullMQ, in the runs' live state in Redis (src/queues/live.ts: where steps start and
 * finish) and on the event bus.
 */
import { randomUUID } from 'node:crypto';
import { FlowProducer, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { retryDb } from '../shared/db-retry.js';
import { z } from 'zod';
import { NornError, notFound, unreachable, zodProblems } from '../shared/errors.js';
import { unavailableService } from '../shared/unavailable.js';
import type { Logger } from '../shared/logger.js';
import {
  CONCURRENCY_POLICIES,
  type ConcurrencyPolicy,
  type RequestRunInput,
  type RequestRunResult,
  type RunRef,
  type RunStore,
  type Transition,
} from '../shared/store/runs.js';
import type { EventBus } from './bus.js';
import type { LiveRuns } from './live.js';
import { buildFlow, FINALIZE_JOB, rootJobId, stepJobId } from './flow.js';
import { DEFAULT_QUEUE, scopeOf, type PipelineRegistry } from './pipeline.js';

export interface RunServiceDeps {
  store: RunStore;
  bus: EventBus;
  registry: PipelineRegistry<unknown>;
  live: LiveRuns;
  /** A connection for the FlowProducer and Queue handles (shared; BullMQ duplicates as needed). */
  connection: Redis;
  prefix: string;
  /** NORN_DB_RETRY_MS: how long follow-ups of a committed transition retry PostgreSQL. */
  dbRetryMs: number;
  log: Logger;
}

/**
 * A JSON value as PostgreSQL stores it (jsonb) and steps read it back. A key whose value is
 * undefined is allowed in an object: JSON leaves it out, as it always did.
 */
type Json = string | number | boolean | null | Json[] | { [key: string]: Json | undefined };
const Json: z.ZodType<Json> = z.lazy(() =>
  z.union([
    z.string(),
    z.number(), // finite: NaN and Infinity are not JSON
    z.boolean(),
    z.null(),
    z.array(Json),
    z.record(z.string(), Json.optional()),
  ]),
);
/** A JSON object (params, a spec). */
const JsonObject = z.record(z.string(), Json.optional());

/** A request for a run, as every caller (the api, the CLI's server side, tests) makes it. */
export interface RunRequest {
  appId: string;
  pipeline: string;
  /** A JSON object: the steps read it (each through its params schema). */
  params?: Record<string, unknown>;
  /** Overrides the pipeline's policy (a deploy passes the app's deployPolicy.concurrency). */
  policy?: ConcurrencyPolicy;
  requestedBy?: string;
  /** The app spec the run deploys (pinned now). */
  spec?: Record<string, unknown>;
}

/** What `request` and `resume` check before anything is recorded. */
const RunRequestSchema = z.object({
  appId: z.string().min(1, { error: 'must be an app id' }),
  pipeline: z.string().min(1, { error: 'must name a pipeline' }),
  params: JsonObject.optional(),
  policy: z.enum(CONCURRENCY_POLICIES).optional(),
  requestedBy: z.string().optional(),
  spec: JsonObject.optional(),
});

/** The request checked: BAD_REQUEST listing every problem when it is not one. */
export function parseRunRequest(req: unknown): z.output<typeof RunRequestSchema> {
  const parsed = RunRequestSchema.safeParse(req);
  if (parsed.success) return parsed.data;
  const problems = zodProblems(parsed.error);
  throw new NornError('BAD_REQUEST', `run request refused: ${problems.join('; ')}`, {
    details: { problems },
  });
}

export interface RunAccepted {
  runId: string;
  /** The run id under its earlier names (the CLI and older clients read these). */
  deploymentId: string;
  sagaId: string;
  status: 'running' | 'queued';
  scope: string;
  /** Runs ahead of this one in its scope (0: it is running now or next). */
  position: number;
  /** True when the scope already had this pipeline's run waiting (policy coalesce): this is it. */
  coalesced?: boolean;
}

/** A coalesced request's answer: the run of its pipeline that already waited in its scope. */
function coalescedInto(result: Extract<RequestRunResult, { action: 'coalesced' }>): RunAccepted {
  const run = result.run;
  return {
    runId: run.id,
    deploymentId: run.id,
    sagaId: run.id,
    scope: run.scope,
    status: run.status === 'running' ? 'running' : 'queued',
    position: result.position,
    coalesced: true,
  };
}

export class RunService {
  private readonly flows: FlowProducer;
  private readonly queues = new Map<string, Queue>();
  private scriptsLoaded: Promise<void> | undefined;

  constructor(private readonly deps: RunServiceDeps) {
    this.flows = new FlowProducer({ connection: deps.connection, prefix: deps.prefix });
    this.flows.on('error', this.connectionError);
  }

  /**
   * BullMQ handles re-emit their connection's errors, and print them to stderr when nobody
   * listens. The shared connection logs them already (src/shared/redis.ts): debug here.
   */
  private readonly connectionError = (err: Error) =>
    this.deps.log.debug({ err }, 'Redis connection error (BullMQ handle)');

  /**
   * What follows a committed transition (a finalizer to schedule, the next run to start) must not
   * be dropped by a PostgreSQL outage in between: its reads are retried through it.
   */
  private pg<T>(fn: () => Promise<T>): Promise<T> {
    return retryDb(fn, { budgetMs: this.deps.dbRetryMs, log: this.deps.log });
  }

  queue(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.deps.connection, prefix: this.deps.prefix });
      q.on('error', this.connectionError);
      this.queues.set(name, q);
    }
    return q;
  }

  /** Records the request, applies the app's policy, and starts it if the app is free. */
  async request(request: RunRequest): Promise<RunAccepted> {
    const req = parseRunRequest(request);
    const def = this.deps.registry.latest(req.pipeline);
    const params = req.params ?? {};
    return this.requestChecked({
      id: randomUUID(),
      appId: req.appId,
      scope: scopeOf(def, { appId: req.appId, params }),
      pipeline: def.name,
      version: def.version,
      eventPrefix: def.events ?? def.name,
      queue: def.queue ?? DEFAULT_QUEUE,
      steps: def.steps.map((s) => s.name),
      params,
      policy: req.policy ?? def.policy ?? 'queue',
      hooks: Object.keys(def.hooks ?? {}),
      requestedBy: req.requestedBy,
      spec: req.spec,
      finalizer: def.finalizer,
    });
  }

  /** A new run of the same pipeline version; steps the earlier run completed are reported skipped. */
  async resume(runId: string, requestedBy?: string): Promise<RunAccepted> {
    const old = await this.deps.store.getRun(runId);
    if (!old) throw notFound(`run ${runId}`);
    if (old.status !== 'failed' && old.status !== 'cancelled') {
      throw new NornError(
        'CONFLICT',
        `run ${runId} is ${old.status}; only failed or cancelled runs can be resumed`,
      );
    }
    const done = (await this.deps.store.steps(runId)).filter(
      (s) => s.status === 'complete' || s.status === 'skipped',
    );
    const ctx = await this.deps.store.runContext(runId);
    // What the earlier run was requested with is checked as a new request would be.
    const req = parseRunRequest({
      appId: old.appId,
      pipeline: old.pipeline,
      params: old.params,
      policy: old.policy,
      requestedBy,
      spec: ctx?.spec,
    });
    return this.requestChecked({
      id: randomUUID(),
      appId: req.appId,
      scope: old.scope,
      pipeline: req.pipeline,
      version: old.pipelineVersion,
      eventPrefix: old.eventPrefix,
      queue: old.queue,
      steps: old.steps,
      params: req.params ?? {},
      policy: req.policy ?? old.policy,
      resumedFrom: old.id,
      hooks: old.hooks,
      skip: done.map((s) => s.name),
      requestedBy: req.requestedBy,
      spec: req.spec,
      finalizer: ctx?.finalizer ?? undefined,
    });
  }

  /** Records a checked request and carries out what PostgreSQL decided about it. */
  private async requestChecked(input: RequestRunInput): Promise<RunAccepted> {
    const result = await this.deps.store.requestRun(input);
    switch (result.action) {
      case 'queued':
        return this.afterQueued(result);
      case 'coalesced':
        return coalescedInto(result);
      case 'no-app':
        throw notFound('app');
      case 'rejected':
        throw this.rejected(result.busy);
      default:
        return unreachable(result, 'norn_request_run action');
    }
  }

  private rejected(busy: RunRef): NornError {
    return new NornError(
      'CONFLICT',
      `${busy.scope} is busy with run ${busy.id} (${busy.pipeline}, ${busy.status}; policy: reject)`,
      {
        details: {
          scope: busy.scope,
          runningRunId: busy.id,
          runningDeploymentId: busy.id,
          runningSagaId: busy.sagaId,
          status: busy.status,
        },
      },
    );
  }

  private async afterQueued(
    result: Extract<RequestRunResult, { action: 'queued' }>,
  ): Promise<RunAccepted> {
    const run = result.run;
    // Committed already; one connection keeps their order, and a relay that misses one reads it
    // from PostgreSQL. Not awaited: the caller (an HTTP request) does not wait for Redis.
    this.deps.bus
      .publish(result.events)
      .catch((err) => this.deps.log.warn({ err }, 'publishing events failed'));
    try {
      for (const old of result.toCancel) {
        await this.deps.live.cancel(old.id);
        await this.stopRunning(old);
      }
      await this.start(result.next);
    } catch (err) {
      if (!unavailableService(err)) throw err;
      // PostgreSQL has the run (and the cancels) already; the recovery sweep stops the superseded
      // runs and adds the flow once Redis is back. Failing here would make the caller ask again
      // for a run that exists.
      this.deps.log.warn({ err, runId: run.id }, 'Redis failed after the run was recorded');
    }
    const status = result.next?.id === run.id ? 'running' : 'queued';
    return {
      runId: run.id,
      deploymentId: run.id,
      sagaId: run.id,
      scope: run.scope,
      status,
      position: result.position,
    };
  }

  /**
   * Makes a run that PostgreSQL just admitted live and adds its flow. Idempotent (the live state is
   * opened once; job ids derive from the run). A resumed run's live state starts from the steps its
   * predecessor completed; `reopen` (recovery) starts from what PostgreSQL recorded.
   */
  async start(run: RunRef | null | undefined, reopen = false): Promise<void> {
    if (!run) return;
    const seed =
      reopen || run.resumedFrom
        ? await this.pg(() => this.deps.store.liveSeed(run.id))
        : { recorded: 0, steps: [] };
    let def;
    try {
      def = this.deps.registry.get(run.pipeline, run.version);
    } catch {
      def = undefined; // started by a process without this version: default retry options
    }
    // Both go out on the same connection, the live state first, so Redis has it before any step
    // can be taken; neither waits for the other's answer. (With the scripts loaded, the open is a
    // single EVALSHA; a step that still found no live state would rebuild it from PostgreSQL.)
    await (this.scriptsLoaded ??= this.deps.live.load().catch((err: unknown) => {
      this.scriptsLoaded = undefined; // try again next time
      throw err;
    }));
    const opened = this.deps.live.open(run, seed.steps, seed.recorded);
    opened.catch(() => {}); // awaited below
    await this.flows.add(buildFlow(run, def));
    await opened;
  }

  /**
   * Publishes a transition's events and starts whatever run it admitted. When the transition ended
   * run `runId` (failed or cancelled), its pipeline's finalizer is scheduled.
   */
  async apply(t: Transition, runId?: string): Promise<void> {
    // Not awaited: the events are committed already, one connection keeps their order, and a
    // relay that misses one reads it from PostgreSQL. Waiting would add a Redis round trip to
    // every step.
    if (t.events?.length)
      this.deps.bus
        .publish(t.events)
        .catch((err) => this.deps.log.warn({ err }, 'publishing events failed'));
    switch (t.action) {
      case 'ended':
        if (runId) {
          await this.deps.live.close(runId);
          if (t.status !== 'succeeded') await this.scheduleFinalizer(runId);
        }
        await this.start(t.next);
        return;
      // Nothing to carry out: refused, not the end of the run (retry, cancelling, incomplete), or
      // a finalizer's report.
      case 'missing':
      case 'finished':
      case 'fenced':
      case 'incomplete':
      case 'retry':
      case 'cancelling':
      case 'ok':
      case 'done':
        return;
      default:
        return unreachable(t, 'transition action');
    }
  }

  /** A standalone job (id `<run>.finally`, so at most one) that runs the finalizer step. */
  async scheduleFinalizer(runId: string): Promise<void> {
    const ctx = await this.pg(() => this.deps.store.runContext(runId));
    if (!ctx?.finalizer || !ctx.startedAt) return; // nothing ran, nothing to clean up
    await this.queue(ctx.queue).add(
      FINALIZE_JOB,
      {
        runId,
        appId: ctx.appId,
        pipeline: ctx.pipeline,
        version: ctx.version,
        scope: ctx.scope,
        step: ctx.finalizer,
        index: -1,
        total: 0,
      },
      {
        jobId: `${runId}.finally`,
        attempts: 3,
        backoff: { type: 'exponential', delay: 1_000 },
        removeOnComplete: { age: 86_400 },
        removeOnFail: { age: 7 * 86_400 },
      },
    );
  }

  async cancel(runId: string, reason = 'cancelled by request'): Promise<{ status: string }> {
    const t = await this.deps.store.requestCancel(runId, reason);
    switch (t.action) {
      case 'missing':
        throw notFound(`run ${runId}`);
      case 'cancelling':
        await this.deps.live.cancel(runId);
        await this.stopRunning(t.run);
        break;
      case 'ended': // it was queued: ended now, and the next run may have been admitted
        await this.apply(t);
        break;
      case 'finished': // ended before: nothing to do
      case 'fenced': // norn_request_cancel does not ask for the lease; kept for the union
        break;
      default:
        return unreachable(t, 'norn_request_cancel action');
    }
    const now = await this.deps.store.getRun(runId);
    return { status: now?.status ?? ('status' in t ? t.status : undefined) ?? 'unknown' };
  }

  /**
   * Stops a running run: workers abort its active step (the processor then ends the run); if no
   * step is active (waiting between steps, or no worker alive), the flow is removed and the run
   * ended here.
   */
  async stopRunning(run: RunRef): Promise<void> {
    await this.deps.bus.broadcastCancel(run.id);
    const queue = this.queue(run.queue);
    const root = rootJobId(run);
    const state = await queue.getJobState(root);
    const removed = state === 'unknown' ? 1 : await queue.remove(root, { removeChildren: true });
    if (removed === 1) {
      const t = await this.deps.store.stepFail(
        run.id,
        null,
        'cancelled',
        { final: true, cancelled: true },
        await this.deps.live.pending(run.id),
      );
      await this.apply(t, run.id);
    }
  }

  /**
   * Recovery, run periodically by every process (idempotent, so several may overlap):
   * expired leases, cancels nobody finished, and queued runs nobody admitted.
   */
  async sweep(cancelGraceMs: number): Promise<void> {
    const { store, log } = this.deps;
    for (const run of await store.expiredLeases()) {
      const queue = this.queue(run.queue);
      const state = await queue.getJobState(rootJobId(run));
      if (state === 'unknown') {
        if ((await store.notStarted(run.id)) && !(await this.deps.live.lastTransition(run.id))) {
          log.warn({ runId: run.id }, 'admitted run had no flow; adding it');
          await this.start(run, true);
          await store.renewExpired(run.id);
        } else {
          const t = await store.stepFail(
            run.id,
            null,
            'lease expired and the run has no jobs left in the queue',
            { final: true, cancelled: false, code: 'LEASE_LOST' },
            await this.deps.live.pending(run.id),
          );
          await this.apply(t, run.id);
        }
      } else if (state === 'failed' || state === 'completed') {
        // The processor could not end the run (PostgreSQL was down, or the worker died): the
        // failed step's job says why, and that is what the run records.
        const failed = state === 'failed' ? await this.failedStep(run) : undefined;
        const error = `lease expired after the flow ended (${state})${failed ? `: step ${failed.step} failed: ${failed.reason}` : ''}`;
        const t = await store.stepFail(
          run.id,
          failed?.step ?? null,
          error,
          { final: true, cancelled: false, code: 'LEASE_LOST' },
          await this.deps.live.pending(run.id),
        );
        if (failed) await failed.job.log(`the run was ended after its lease expired: ${error}`);
        await this.apply(t, run.id);
      } else {
        await store.renewExpired(run.id); // alive in the queue (waiting, active, or recovering from a stall)
      }
    }
    for (const run of await store.stuckCancels(cancelGraceMs)) await this.stopRunning(run);
    for (const scope of await store.scopesWaitingForAdmission())
      await this.start(await store.admit(scope));
  }

  /** The first step of a run whose job failed (the steps above it fail with "child … failed"). */
  private async failedStep(run: RunRef) {
    const queue = this.queue(run.queue);
    for (const step of run.steps) {
      const job = await queue.getJob(stepJobId(run.id, step));
      if (job && (await job.getState()) === 'failed')
        return { step, job, reason: job.failedReason || 'no reason recorded' };
    }
    return undefined;
  }

  async close(): Promise<void> {
    await this.flows.close();
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}
