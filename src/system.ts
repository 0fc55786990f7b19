/**
 * Wires norn's parts from a Config: the one place that opens connections. main.ts uses it for the
 * real processes; tests use it to run api and workers in-process against their own database and
 * queue prefix.
 */
import { serve, type ServerType } from '@hono/node-server';
import type { Server } from 'node:http';
import { createApi } from './api/app.js';
import type { AppContainers } from './api/deps.js';
import type { WsStats } from './api/metrics.js';
import { EventRelay } from './api/relay.js';
import { SessionStore } from './shared/store/sessions.js';
import { guardServer } from './api/server-guards.js';
import type { Config } from './shared/config.js';
import { createDb, type Db } from './shared/db.js';
import { describeDbError, retryingDb } from './shared/db-retry.js';
import { migrate } from './shared/db/migrate.js';
import { createLogger, type Logger } from './shared/logger.js';
import { closeQuietly } from './shared/connection-errors.js';
import { createRedis, type Redis } from './shared/redis.js';
import { AppStore } from './shared/store/apps.js';
import { DriftStateStore } from './shared/store/drift-state.js';
import { EventStore } from './shared/store/events.js';
import { PlanArtifactStore } from './shared/store/plan-artifacts.js';
import { RunStore } from './shared/store/runs.js';
import { WebhookStore } from './shared/store/webhooks.js';
import { StackStore } from './shared/store/stacks.js';
import { EventBus } from './queues/bus.js';
import { LiveRuns, redisLiveCommands } from './queues/live.js';
import { PipelineRegistry, type PipelineDefinition } from './queues/pipeline.js';
import { RunService } from './queues/runs.js';
import {
  makeWorkerId,
  startWorkerFleet,
  type ExtraQueue,
  type WorkerFleet,
} from './workers/fleet.js';
import { createDriftTickProcessor, DRIFT_QUEUE, DriftScheduler } from './gitops/drift-schedule.js';
import { startWorkerMetrics } from './workers/metrics-server.js';

/** The pipeline a stack's drift schedule requests. */
const DRIFT_PIPELINE = 'drift-check';

export interface SystemOptions<S> {
  pipelines: ReadonlyArray<PipelineDefinition<S>>;
  services: S;
  log?: Logger;
  /** Extra queues workers serve besides the pipeline steps (and the queues Bull Board shows). */
  extraQueues?: ExtraQueue[];
  /** Names of an app's containers on the target (DELETE /api/apps/:id refuses while there are any). */
  appContainers?: AppContainers;
}

export interface RunningApi {
  url: string;
  port: number;
  relay: EventRelay;
  close(): Promise<void>;
}

export class NornSystem<S = unknown> {
  readonly db: Db;
  /**
   * The same pool for step services (createStepServices): their queries ride out a PostgreSQL
   * outage for NORN_DB_RETRY_MS, where the api's (on `db`) answer at once.
   */
  readonly stepDb: Db;
  readonly redis: Redis;
  readonly log: Logger;
  readonly registry: PipelineRegistry<S>;
  readonly store: RunStore;
  readonly apps: AppStore;
  readonly stacks: StackStore;
  readonly plans: PlanArtifactStore;
  readonly drift: DriftStateStore;
  readonly events: EventStore;
  readonly bus: EventBus;
  readonly live: LiveRuns;
  readonly runs: RunService;
  private apiSide: { redis: Redis; runs: RunService } | undefined;
  /** Where the last worker started serves its metrics (NORN_WORKER_METRICS_PORT), if it does. */
  workerMetricsPort: number | undefined;
  private readonly closers: Array<() => Promise<unknown>> = [];
  private readonly finalClosers: Array<() => Promise<unknown>> = [];

  constructor(
    readonly config: Config,
    private options: SystemOptions<S>,
  ) {
    this.log = options.log ?? createLogger(config.logLevel, 'norn', config.logFormat);
    this.db = createDb(config.databaseUrl, { log: this.log });
    this.stepDb = retryingDb(this.db, { budgetMs: config.dbRetryMs, log: this.log });
    this.redis = createRedis(config.redisUrl, 'worker', this.log, 'engine');
    this.registry = new PipelineRegistry(options.pipelines);
    this.store = new RunStore(this.db, makeWorkerId(), config.lease.ttlMs);
    this.apps = new AppStore(this.db);
    this.stacks = new StackStore(this.db);
    this.plans = new PlanArtifactStore(this.db);
    this.drift = new DriftStateStore(this.db);
    this.events = new EventStore(this.db);
    this.bus = new EventBus(this.redis, config.queuePrefix);
    this.live = new LiveRuns(redisLiveCommands(this.redis), config.queuePrefix);
    this.runs = this.runService(this.redis);
  }

  private runService(redis: Redis): RunService {
    return new RunService({
      store: this.store,
      bus: redis === this.redis ? this.bus : new EventBus(redis, this.config.queuePrefix),
      registry: this.registry as PipelineRegistry<unknown>,
      live:
        redis === this.redis
          ? this.live
          : new LiveRuns(redisLiveCommands(redis), this.config.queuePrefix),
      connection: redis,
      prefix: this.config.queuePrefix,
      dbRetryMs: this.config.dbRetryMs,
      log: this.log,
    });
  }

  /**
   * What requests use: a Redis connection of their own that fails fast while Redis is down (the
   * request answers 503), where the engine's connection waits for Redis to come back.
   */
  private api(): { redis: Redis; runs: RunService } {
    if (!this.apiSide) {
      const redis = createRedis(this.config.redisUrl, 'api', this.log);
      this.apiSide = { redis, runs: this.runService(redis) };
    }
    return this.apiSide;
  }

  /** Replaces the step services (built after the system when they need its database). */
  setServices(services: S, extraQueues?: ExtraQueue[], appContainers?: AppContainers): void {
    this.options = {
      ...this.options,
      services,
      ...(extraQueues ? { extraQueues } : {}),
      ...(appContainers ? { appContainers } : {}),
    };
  }

  async migrate(): Promise<string[]> {
    const applied = await migrate(this.db);
    if (applied.length) this.log.info({ applied }, 'database migrated');
    return applied;
  }

  /** The stacks' drift schedulers, where the drift-check pipeline is registered. */
  private driftSchedules(runs: RunService): DriftScheduler | undefined {
    if (!this.registry.has(DRIFT_PIPELINE)) return undefined;
    return new DriftScheduler(runs.queue(DRIFT_QUEUE));
  }

  /** The queues workers serve beside the pipelines': the options' and the drift ticks'. */
  private extraQueues(): ExtraQueue[] {
    const extra = [...(this.options.extraQueues ?? [])];
    const scheduler = this.driftSchedules(this.runs);
    if (scheduler)
      extra.push({
        name: DRIFT_QUEUE,
        processor: createDriftTickProcessor({
          runs: this.runs,
          stacks: this.stacks,
          scheduler,
          log: this.log,
        }),
      });
    return extra;
  }

  async startWorker(): Promise<WorkerFleet> {
    const fleet = await startWorkerFleet({
      config: this.config,
      db: this.db,
      store: this.store,
      runs: this.runs,
      live: this.live,
      bus: this.bus,
      registry: this.registry,
      services: this.options.services,
      log: this.log,
      extraQueues: this.extraQueues(),
    });
    this.closers.push(() => fleet.close());
    const metricsPort = this.config.worker.metricsPort;
    if (metricsPort !== undefined) {
      const metrics = await startWorkerMetrics({
        port: metricsPort,
        host: this.config.http.host,
        apiToken: this.config.http.apiToken,
        public: this.config.metricsPublic,
        workerId: fleet.id,
        active: fleet.active,
        log: this.log,
      });
      this.closers.push(() => metrics.close());
      this.workerMetricsPort = metrics.port;
    }
    return fleet;
  }

  createApi(o: { ws?: WsStats } = {}) {
    const { redis, runs } = this.api();
    const driftSchedules = this.driftSchedules(runs);
    return createApi({
      apps: this.apps,
      stacks: this.stacks,
      plans: this.plans,
      drift: this.drift,
      store: this.store,
      events: this.events,
      runs,
      db: this.db,
      redis,
      log: this.log,
      apiToken: this.config.http.apiToken,
      deployPipeline: this.config.deployPipeline,
      maxBodyBytes: this.config.http.maxBodyBytes,
      webhooks: new WebhookStore(this.db),
      webhookSecret: this.config.webhookSecret,
      appContainers: this.options.appContainers,
      ...(driftSchedules ? { driftSchedules } : {}),
      metricsPublic: this.config.metricsPublic,
      sessionTtlS: this.config.sessionTtlS,
      uiDir: this.config.uiDir,
      ...(o.ws ? { ws: o.ws } : {}),
      queues: [...this.registry.queues(), ...this.extraQueues().map((q) => q.name)].map((q) =>
        runs.queue(q),
      ),
    });
  }

  /** Serves the api and the /ws relay; resolves once listening. Port 0 picks a free port. */
  async startApi(port = this.config.http.port): Promise<RunningApi> {
    const relay = new EventRelay({
      subscriber: createRedis(this.config.redisUrl, 'subscriber', this.log, 'relay'),
      events: this.events,
      store: this.store,
      prefix: this.config.queuePrefix,
      heartbeatMs: this.config.wsHeartbeatMs,
      maxBufferedBytes: this.config.wsMaxBufferedBytes,
      apiToken: this.config.http.apiToken,
      sessions: new SessionStore(this.db),
      log: this.log,
    });
    const app = this.createApi({
      ws: { clients: () => relay.clientCount, slowDropped: () => relay.slowClientsDropped },
    });
    await relay.start();
    await this.scheduleDriftChecks();
    const server = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: app.fetch, port, hostname: this.config.http.host }, () =>
        resolve(s),
      );
    });
    guardServer(server as Server, this.log);
    relay.attach(server as Server);
    const address = server.address();
    const actual = typeof address === 'object' && address ? address.port : port;
    const host = this.config.http.host.includes(':')
      ? `[${this.config.http.host}]`
      : this.config.http.host;
    const sweeper = this.sweepEvery(this.api().runs);
    const running: RunningApi = {
      url: `http://${host}:${actual}`,
      port: actual,
      relay,
      close: async () => {
        clearInterval(sweeper);
        await relay.close();
        await new Promise<void>((r) => {
          server.close(() => r());
          (server as Server).closeAllConnections?.();
        });
      },
    };
    this.closers.push(() => running.close());
    this.log.info({ url: running.url }, 'api listening');
    return running;
  }

  /**
   * Every stack's drift scheduler upserted (and those of deleted stacks removed): what a stack
   * registered while Redis was away, or before an upgrade, gets here. A failure is logged, not fatal.
   */
  private async scheduleDriftChecks(): Promise<void> {
    const scheduler = this.driftSchedules(this.api().runs);
    if (!scheduler) return;
    try {
      const { upserted, removed } = await scheduler.reconcile(await this.stacks.list());
      if (upserted.length || removed.length)
        this.log.info({ upserted: upserted.length, removed }, 'drift schedules reconciled');
    } catch (err) {
      this.log.warn({ err }, 'drift schedules not reconciled; registering a stack sets its own');
    }
  }

  /**
   * Recovery on the api's connection: while Redis is down a sweep fails at once and the next
   * retries; a sweep may wait out a PostgreSQL outage, so never two run at once.
   */
  private sweepEvery(runs: RunService): NodeJS.Timeout {
    let sweeping = false;
    return setInterval(() => {
      if (sweeping) return;
      sweeping = true;
      runs
        .sweep(this.config.cancelGraceMs)
        .catch((err) => this.log.warn({ err }, `sweep failed: ${describeDbError(err)}`))
        .finally(() => {
          sweeping = false;
        });
    }, this.config.sweepIntervalMs);
  }

  /** Runs `close` when the system closes, after the api and workers stopped, before the connections. */
  onClose(close: () => Promise<unknown>): void {
    this.finalClosers.push(close);
  }

  /** Closes what was started, newest first, then the connections. */
  async close(): Promise<void> {
    for (const close of [...this.closers.reverse(), ...this.finalClosers]) {
      await close().catch((err) => this.log.warn({ err }, 'close failed'));
    }
    this.closers.length = 0;
    this.finalClosers.length = 0;
    await this.runs.close();
    if (this.apiSide) {
      await this.apiSide.runs.close();
      this.apiSide.redis.disconnect();
      this.apiSide = undefined;
    }
    await closeQuietly(() => this.redis.quit(), 'redis:engine', this.log);
    await this.db.end();
  }
}
