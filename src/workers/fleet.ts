/**
 * A worker process: one BullMQ Worker per pipeline queue, the cancel listener, the sweeper, and
 * graceful shutdown (finish running steps within the grace period, then hand them back).
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Worker, type Processor, type WorkerOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../shared/config.js';
import type { Db } from '../shared/db.js';
import { describeDbError } from '../shared/db-retry.js';
import { channels } from '../shared/events.js';
import type { Logger } from '../shared/logger.js';
import { closeQuietly } from '../shared/connection-errors.js';
import { createRedis } from '../shared/redis.js';
import type { RunStore } from '../shared/store/runs.js';
import type { PipelineRegistry } from '../queues/pipeline.js';
import type { RunService } from '../queues/runs.js';
import type { EventBus } from '../queues/bus.js';
import { LiveRuns, redisLiveCommands } from '../queues/live.js';
import { Recorder } from '../queues/recorder.js';
import { ActiveSteps } from './active.js';
import { HookRunner } from './hooks.js';
import { createProcessor } from './processor.js';

export interface FleetDeps<S> {
  config: Config;
  /** The pool life-cycle hooks run their transactions on. */
  db: Db;
  store: RunStore;
  runs: RunService;
  live: LiveRuns;
  bus: EventBus;
  registry: PipelineRegistry<S>;
  services: S;
  log: Logger;
  /** Queues outside the pipeline engine, with their own processors (e.g. scheduled processes). */
  extraQueues?: ExtraQueue[];
}

export interface ExtraQueue {
  name: string;
  processor: Processor;
  concurrency?: number;
}

export interface WorkerFleet {
  id: string;
  active: ActiveSteps;
  hooks: HookRunner<unknown>;
  /** Stops taking steps; running ones get `graceMs` to finish, then are handed back to the queue. */
  close(graceMs?: number): Promise<void>;
}

/** BullMQ worker options from config: every norn worker (and the bench's raw baseline) uses these. */
export function workerOptions(
  config: Config,
  connection: Redis,
  concurrency = config.worker.concurrency,
): WorkerOptions {
  return {
    connection,
    prefix: config.queuePrefix,
    concurrency,
    lockDuration: config.worker.lockDurationMs,
    stalledInterval: config.worker.stalledIntervalMs,
    maxStalledCount: config.worker.maxStalledCount,
  };
}

export const makeWorkerId = () => `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;

export async function startWorkerFleet<S>(deps: FleetDeps<S>): Promise<WorkerFleet> {
  const { config, log } = deps;
  const id = deps.store.holder;
  const active = new ActiveSteps();
  const recorder = new Recorder({
    store: deps.store,
    live: deps.live,
    bus: deps.bus,
    log,
    delayMs: config.recordDelayMs,
  });
  // Steps start and finish on the connection BullMQ completes their jobs on: a finish sent before
  // a job's moveToFinished is applied before it (see the processor's finish).
  const connection = createRedis(config.redisUrl, 'worker', log, 'steps');
  const stepLive = new LiveRuns(redisLiveCommands(connection), config.queuePrefix);
  await stepLive.load();
  const processor = createProcessor({
    store: deps.store,
    runs: deps.runs,
    live: stepLive,
    recorder,
    registry: deps.registry,
    services: deps.services,
    active,
    workerId: id,
    heartbeatMs: config.lease.heartbeatMs,
    cancelGraceMs: config.cancelGraceMs,
    dbRetryMs: config.dbRetryMs,
    log,
  });

  const queues: ExtraQueue[] = [
    ...deps.registry.queues().map((name) => ({ name, processor: processor as Processor })),
    ...(deps.extraQueues ?? []),
  ];
  const workers = queues.map(({ name, processor: run, concurrency }) => {
    const w = new Worker(name, run, workerOptions(config, connection, concurrency));
    w.on('error', (err) => log.error({ err, queue: name }, 'worker error'));
    w.on('failed', (job, err) => log.debug({ jobId: job?.id, err: err.message }, 'job failed'));
    return w;
  });
  await Promise.all(workers.map((w) => w.waitUntilReady()));

  const subscriber: Redis = createRedis(config.redisUrl, 'subscriber', log, 'cancel');
  const cancelChannel = channels(config.queuePrefix).cancel;
  subscriber.on('message', (channel: string, runId: string) => {
    if (channel === cancelChannel && active.abort(runId, 'cancelled'))
      log.info({ runId }, 'cancelling running step');
  });
  await subscriber.subscribe(cancelChannel);

  const hooks = new HookRunner<S>({
    db: deps.db,
    store: deps.store,
    bus: deps.bus,
    registry: deps.registry,
    services: deps.services,
    log,
    ...config.hooks,
  });
  hooks.start();

  let sweeping = false;
  const sweeper = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    deps.runs
      .sweep(config.cancelGraceMs)
      .catch((err) => log.warn({ err }, `sweep failed: ${describeDbError(err)}`))
      .finally(() => {
        sweeping = false;
      });
  }, config.sweepIntervalMs);

  log.info(
    { workerId: id, queues: deps.registry.queues(), concurrency: config.worker.concurrency },
    'worker started',
  );

  return {
    id,
    active,
    hooks: hooks as HookRunner<unknown>,
    async close(graceMs = config.worker.shutdownGraceMs) {
      clearInterval(sweeper);
      await hooks.close();
      const closing = Promise.all(workers.map((w) => w.close()));
      const timer = setTimeout(() => {
        if (active.size)
          log.warn(
            { steps: active.size },
            'grace period over: handing running steps back to the queue',
          );
        active.abortAll('shutdown');
      }, graceMs);
      await closing;
      clearTimeout(timer);
      await active.settled();
      await recorder.close();
      await closeQuietly(() => subscriber.quit(), 'redis:cancel', log);
      await closeQuietly(() => connection.quit(), 'redis:steps', log);
      log.info({ workerId: id }, 'worker stopped');
    },
  };
}
