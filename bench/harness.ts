/**
 * The BullMQ-based systems under test behind one interface: raw BullMQ (the same nested 9-step
 * flow the engine builds, no-op workers), BullMQ+INSERT (that flow, each step committing its start
 * and finish events to PostgreSQL) and the engine (RunService.request, norn worker processes); the
 * PostgreSQL queues are in peers.ts. `once` is one run, requested and awaited; `batch` is n runs in
 * flight at once.
 */
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { FlowProducer, Queue, QueueEvents } from 'bullmq';
import { buildFlow, rootJobId } from '../src/queues/flow.js';
import { loadConfig } from '../src/shared/config.js';
import { NornError } from '../src/shared/errors.js';
import { channels, parseEvents } from '../src/shared/events.js';
import { silentLogger } from '../src/shared/logger.js';
import { createRedis, type Redis } from '../src/shared/redis.js';
import type { RunRef } from '../src/shared/store/runs.js';
import { NornSystem } from '../src/system.js';
import { bench, BENCH_STEPS, pipelines } from './pipelines.js';
import { nodeArgv, WorkerPool } from './workers.js';

export interface Harness {
  readonly label: string;
  startWorkers(count: number): Promise<void>;
  stopWorkers(): Promise<void>;
  /** End-to-end ms of one run: request → completion observed here. */
  once(i: number): Promise<number>;
  /**
   * `n` runs requested at once: wall ms until the last completion is observed, and the steps done.
   * A harness whose system may be slower than `budgetMs` stops waiting then and counts the steps
   * finished so far (`partial`); its stopWorkers() removes what was left.
   */
  batch(n: number, budgetMs: number): Promise<BatchResult>;
  close(): Promise<void>;
}

export interface BatchResult {
  ms: number;
  steps: number;
  partial: boolean;
}

export interface HarnessOptions {
  redisUrl: string;
  prefix: string;
  concurrency: number;
  /** Bounds every wait: a run that does not finish in time fails the bench. */
  runTimeoutMs: number;
}

/**
 * Completion times by key, fed by one listener. A completion may be observed before its waiter is
 * registered (the engine's sagaId is known only once request() returns), so those are kept.
 */
export class Completions {
  private readonly waiting = new Map<
    string,
    { resolve(t: number): void; reject(e: Error): void }
  >();
  private readonly early = new Map<string, number | Error>();

  settle(key: string, outcome: number | Error): void {
    const w = this.waiting.get(key);
    if (!w) return void this.early.set(key, outcome);
    this.waiting.delete(key);
    if (typeof outcome === 'number') w.resolve(outcome);
    else w.reject(outcome);
  }

  wait(key: string, timeoutMs: number, crashed: Promise<never>): Promise<number> {
    const known = this.early.get(key);
    if (known !== undefined) {
      this.early.delete(key);
      return typeof known === 'number' ? Promise.resolve(known) : Promise.reject(known);
    }
    let timer: NodeJS.Timeout | undefined;
    const done = new Promise<number>((resolve, reject) => {
      this.waiting.set(key, { resolve, reject });
      timer = setTimeout(() => {
        this.waiting.delete(key);
        reject(new NornError('TIMEOUT', `run ${key} did not complete within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    return Promise.race([done, crashed]).finally(() => clearTimeout(timer));
  }
}

/** What makes a BullMQ chain the raw baseline or the BullMQ+INSERT peer. */
export interface RawVariant {
  label: string;
  queue: string;
  /** Extra worker environment (BENCH_INSERT_DATABASE_URL for BullMQ+INSERT). */
  env: Record<string, string>;
}

/**
 * QueueEvents' stream length: BullMQ trims it at 10,000 entries by default, and a 9-step chain
 * writes ~45, so beyond ~200 chains in flight completions could be trimmed before the bench reads
 * them. The queue's meta sets the limit the workers' scripts trim at; this leaves room for `runs`.
 */
export const eventsMaxLen = (runs: number) => Math.max(10_000, runs * 100);

export class RawHarness implements Harness {
  readonly label: string;
  private readonly queueName: string;
  private readonly connection: Redis;
  private readonly flows: FlowProducer;
  private readonly queue: Queue;
  private readonly events: QueueEvents;
  private readonly completions = new Completions();
  private pool: WorkerPool;

  constructor(
    private readonly o: HarnessOptions & { maxRunsInFlight: number },
    private readonly variant: RawVariant = { label: 'raw BullMQ', queue: 'raw', env: {} },
  ) {
    this.label = variant.label;
    this.pool = new WorkerPool(this.label);
    this.queueName = variant.queue;
    this.connection = createRedis(o.redisUrl, 'worker', silentLogger);
    this.flows = new FlowProducer({ connection: this.connection, prefix: o.prefix });
    this.queue = new Queue(this.queueName, {
      connection: this.connection,
      prefix: o.prefix,
      streams: { events: { maxLen: eventsMaxLen(o.maxRunsInFlight) } },
    });
    // One QueueEvents for the whole bench. Reading from the stream's start: the prefix is new, and
    // no completion can slip in between connecting and the first XREAD.
    this.events = new QueueEvents(this.queueName, {
      connection: createRedis(o.redisUrl, 'worker', silentLogger),
      prefix: o.prefix,
      lastEventId: '0',
    });
    const isRoot = (jobId: string) => jobId.endsWith(`.${BENCH_STEPS.at(-1)}`);
    this.events.on('completed', ({ jobId }) => {
      if (isRoot(jobId)) this.completions.settle(jobId, performance.now());
    });
    this.events.on('failed', ({ jobId, failedReason }) => {
      if (isRoot(jobId))
        this.completions.settle(
          jobId,
          new NornError('STEP_FAILED', `raw job ${jobId} failed: ${failedReason}`),
        );
    });
  }

  /** Writes the queue's meta (the events stream length) before any worker trims the stream. */
  async prepare(): Promise<void> {
    await this.queue.getVersion();
    const maxLen = await this.connection.hget(
      `${this.o.prefix}:${this.queueName}:meta`,
      'opts.maxLenEvents',
    );
    if (Number(maxLen) !== eventsMaxLen(this.o.maxRunsInFlight))
      throw new NornError(
        'INTERNAL',
        `${this.label}: events stream maxLen is ${maxLen}, not ${eventsMaxLen(this.o.maxRunsInFlight)}`,
      );
  }

  async startWorkers(count: number): Promise<void> {
    await this.events.waitUntilReady();
    this.pool = new WorkerPool(this.label);
    await this.pool.start(
      count,
      nodeArgv('bench/raw-worker.ts'),
      {
        REDIS_URL: this.o.redisUrl,
        NORN_QUEUE_PREFIX: this.o.prefix,
        NORN_WORKER_CONCURRENCY: String(this.o.concurrency),
        BENCH_QUEUE: this.queueName,
        ...this.variant.env,
      },
      this.queue,
    );
  }

  stopWorkers(): Promise<void> {
    return this.pool.stop();
  }

  /** The run ref buildFlow needs: the flow is byte-for-byte what the engine would add. */
  private flow() {
    const ref: RunRef = {
      id: randomUUID(),
      appId: 'raw',
      sagaId: randomUUID(),
      scope: 'app:raw',
      pipeline: bench.name,
      version: bench.version,
      eventPrefix: bench.name,
      queue: this.queueName,
      steps: [...BENCH_STEPS],
      status: 'running',
      params: {},
    };
    return { root: rootJobId(ref), job: buildFlow(ref, bench) };
  }

  private async one(): Promise<{ start: number; end: number }> {
    const { root, job } = this.flow();
    const start = performance.now();
    const completion = this.completions.wait(root, this.o.runTimeoutMs, this.pool.crashed);
    completion.catch(() => {}); // awaited below; a failed add must not leave it unhandled
    await this.flows.add(job);
    return { start, end: await completion };
  }

  async once(): Promise<number> {
    const { start, end } = await this.one();
    return end - start;
  }

  async batch(n: number): Promise<BatchResult> {
    const start = performance.now();
    const runs = await Promise.all(Array.from({ length: n }, () => this.one()));
    return {
      ms: Math.max(...runs.map((r) => r.end)) - start,
      steps: n * BENCH_STEPS.length,
      partial: false,
    };
  }

  async close(): Promise<void> {
    await this.pool.stop();
    await this.events.close();
    await this.flows.close();
    await this.queue.obliterate({ force: true }).catch(() => {});
    await this.queue.close();
    await this.connection.quit().catch(() => {});
  }
}

export interface EngineOptions extends HarnessOptions {
  databaseUrl: string;
  apps: number;
}

export class EngineHarness implements Harness {
  readonly label = 'engine';
  readonly system: NornSystem;
  private readonly subscriber: Redis;
  private readonly completions = new Completions();
  private readonly completedType = `${bench.events ?? bench.name}.completed`;
  private readonly failedType = `${bench.events ?? bench.name}.failed`;
  private pool = new WorkerPool(this.label);
  private appIds: string[] = [];

  constructor(private readonly o: EngineOptions) {
    this.system = new NornSystem(loadConfig(this.env('silent')), {
      pipelines,
      services: {},
      log: silentLogger,
    });
    this.subscriber = createRedis(o.redisUrl, 'subscriber', silentLogger);
    this.subscriber.on('message', (_channel: string, text: string) => this.onEvent(text));
  }

  private env(logLevel: string): Record<string, string> {
    return {
      REDIS_URL: this.o.redisUrl,
      DATABASE_URL: this.o.databaseUrl,
      NORN_QUEUE_PREFIX: this.o.prefix,
      NORN_PIPELINES_MODULE: 'bench/pipelines.ts',
      NORN_WORKER_CONCURRENCY: String(this.o.concurrency),
      NORN_MIGRATE_ON_START: 'false',
      LOG_LEVEL: logLevel,
      // Engine settings worth comparing pass through (the default when unset).
      ...(process.env.NORN_RECORD_DELAY_MS
        ? { NORN_RECORD_DELAY_MS: process.env.NORN_RECORD_DELAY_MS }
        : {}),
    };
  }

  private onEvent(text: string) {
    for (const e of parseEvents(text)) {
      if (e.type === this.completedType) this.completions.settle(e.sagaId, performance.now());
      else if (e.type === this.failedType)
        this.completions.settle(
          e.sagaId,
          new NornError('STEP_FAILED', `run ${e.sagaId} failed: ${JSON.stringify(e.payload)}`),
        );
    }
  }

  /** Registers the apps runs are spread over (one run per app at a time) and subscribes to events. */
  async prepare(): Promise<void> {
    this.appIds = Array.from(
      { length: this.o.apps },
      (_, i) => `bench-${String(i).padStart(2, '0')}`,
    );
    for (const id of this.appIds) {
      const spec = { name: id, processes: { web: { port: 8080 } } };
      await this.system.apps.upsert(id, spec, JSON.stringify(spec), 'json');
    }
    await this.subscriber.subscribe(channels(this.o.prefix).events);
  }

  async startWorkers(count: number): Promise<void> {
    this.pool = new WorkerPool(this.label);
    await this.pool.start(
      count,
      nodeArgv('src/main.ts', 'worker'),
      this.env('warn'),
      this.system.runs.queue('steps'),
    );
  }

  stopWorkers(): Promise<void> {
    return this.pool.stop();
  }

  private async one(i: number): Promise<{ start: number; end: number }> {
    const start = performance.now();
    const accepted = await this.system.runs.request({
      appId: this.appIds[i % this.appIds.length]!,
      pipeline: bench.name,
    });
    return {
      start,
      end: await this.completions.wait(accepted.sagaId, this.o.runTimeoutMs, this.pool.crashed),
    };
  }

  async once(i: number): Promise<number> {
    const { start, end } = await this.one(i);
    return end - start;
  }

  async batch(n: number): Promise<BatchResult> {
    const start = performance.now();
    const runs = await Promise.all(Array.from({ length: n }, (_, i) => this.one(i)));
    return {
      ms: Math.max(...runs.map((r) => r.end)) - start,
      steps: n * BENCH_STEPS.length,
      partial: false,
    };
  }

  async close(): Promise<void> {
    await this.pool.stop();
    await this.subscriber.quit().catch(() => {});
    await this.system.runs
      .queue('steps')
      .obliterate({ force: true })
      .catch(() => {});
    await this.system.close();
  }
}
