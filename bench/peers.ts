/**
 * The durable PostgreSQL queues the engine is compared with, behind the bench's Harness: each in
 * its own throwaway database (dropped at the end), its worker processes started like raw BullMQ's
 * (bench/graphile-worker.ts, bench/pg-boss-worker.ts), each step's events in bench_events. The
 * bench adds a run's first job and LISTENs for the last step's notification.
 */
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import PgBoss from 'pg-boss';
import { makeWorkerUtils, runMigrations, type WorkerUtils } from 'graphile-worker';
import { NornError } from '../src/shared/errors.js';
import { Completions, type BatchResult, type Harness } from './harness.js';
import {
  COUNT_FINISHED,
  DONE_CHANNEL,
  EVENTS_SCHEMA,
  GRAPHILE_TASK,
  STEP_COUNT,
} from './step-events.js';
import { nodeArgv, WorkerPool } from './workers.js';

export interface PeerOptions {
  databaseUrl: string;
  concurrency: number;
  runTimeoutMs: number;
}

/** Creates bench_events and bench_runs_done in the database at `url`. */
export async function createEventsTables(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(EVENTS_SCHEMA);
  } finally {
    await client.end();
  }
}

/** What graphile-worker and pg-boss share: the events table, the done listener, budgeted batches. */
abstract class PgPeerHarness implements Harness {
  abstract readonly label: string;
  protected readonly db: pg.Pool;
  private readonly listener: pg.Client;
  private readonly completions = new Completions();
  private pool: WorkerPool | undefined;

  constructor(protected readonly o: PeerOptions) {
    this.db = new pg.Pool({ connectionString: o.databaseUrl, max: 2 });
    this.db.on('error', () => {});
    this.listener = new pg.Client({ connectionString: o.databaseUrl });
    this.listener.on('error', () => {});
    this.listener.on('notification', (n) => {
      if (n.channel === DONE_CHANNEL && n.payload)
        this.completions.settle(n.payload, performance.now());
    });
  }

  protected abstract setup(): Promise<void>;
  protected abstract workerScript(): string;
  protected abstract workerEnv(): Record<string, string>;
  protected abstract addFirst(runId: string): Promise<void>;
  /** Removes jobs a batch that ran out of budget left behind (its workers are stopped). */
  protected abstract removeJobs(): Promise<void>;
  protected abstract teardown(): Promise<void>;

  async prepare(): Promise<void> {
    await createEventsTables(this.o.databaseUrl);
    await this.setup();
    await this.listener.connect();
    await this.listener.query(`LISTEN ${DONE_CHANNEL}`);
  }

  async startWorkers(count: number): Promise<void> {
    this.pool = new WorkerPool(this.label);
    await this.pool.start(
      count,
      nodeArgv(this.workerScript()),
      {
        DATABASE_URL: this.o.databaseUrl,
        BENCH_CONCURRENCY: String(this.o.concurrency),
        ...this.workerEnv(),
      },
      'line',
    );
  }

  async stopWorkers(): Promise<void> {
    await this.pool?.stop();
    this.pool = undefined;
    await this.removeJobs();
  }

  private crashed(): Promise<never> {
    if (!this.pool) throw new NornError('INTERNAL', `${this.label}: no workers running`);
    return this.pool.crashed;
  }

  private async one(runId: string): Promise<{ start: number; end: number }> {
    const start = performance.now();
    const completion = this.completions.wait(runId, this.o.runTimeoutMs, this.crashed());
    completion.catch(() => {}); // awaited below; a failed add must not leave it unhandled
    await this.addFirst(runId);
    return { start, end: await completion };
  }

  async once(): Promise<number> {
    const { start, end } = await this.one(randomUUID());
    return end - start;
  }

  async batch(n: number, budgetMs: number): Promise<BatchResult> {
    const ids = Array.from({ length: n }, () => randomUUID());
    const start = performance.now();
    const all = Promise.all(ids.map((id) => this.one(id)));
    let timer: NodeJS.Timeout | undefined;
    const outOfTime = new Promise<'budget'>((r) => {
      timer = setTimeout(() => r('budget'), budgetMs);
    });
    try {
      const runs = await Promise.race([all, outOfTime]);
      if (runs !== 'budget')
        return {
          ms: Math.max(...runs.map((r) => r.end)) - start,
          steps: n * STEP_COUNT,
          partial: false,
        };
      all.catch(() => {}); // abandoned: its runs time out after their workers are stopped
      const ms = performance.now() - start;
      const { rows } = await this.db.query<{ n: number }>(COUNT_FINISHED, [ids]);
      return { ms, steps: rows[0]!.n, partial: true };
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await this.pool?.stop();
    await this.teardown().catch(() => {});
    await this.listener.end().catch(() => {});
    await this.db.end().catch(() => {});
  }
}

/** graphile-worker: migrated by the bench, first jobs added with WorkerUtils.addJob. */
export class GraphileHarness extends PgPeerHarness {
  readonly label = 'graphile-worker';
  private utils: WorkerUtils | undefined;

  protected async setup(): Promise<void> {
    await runMigrations({ connectionString: this.o.databaseUrl });
    this.utils = await makeWorkerUtils({ connectionString: this.o.databaseUrl });
  }

  protected workerScript = () => 'bench/graphile-worker.ts';
  protected workerEnv = () => ({});

  protected async addFirst(runId: string): Promise<void> {
    await this.utils!.addJob(GRAPHILE_TASK, { runId, step: 1 });
  }

  protected async removeJobs(): Promise<void> {
    // The database is the bench's own; nothing else queues jobs in it.
    await this.db.query('DELETE FROM graphile_worker._private_jobs');
  }

  protected async teardown(): Promise<void> {
    await this.utils?.release();
  }
}

/** pg-boss: schema installed and the queue created by the bench's own instance, which sends first jobs. */
export class PgBossHarness extends PgPeerHarness {
  readonly label: string;
  static readonly QUEUE = 'bench-steps';
  private boss: PgBoss | undefined;

  constructor(
    o: PeerOptions,
    private readonly notify: boolean,
  ) {
    super(o);
    this.label = notify ? 'pg-boss+notify' : 'pg-boss';
  }

  protected async setup(): Promise<void> {
    this.boss = new PgBoss({ connectionString: this.o.databaseUrl, max: 2 });
    this.boss.on('error', (err: Error) => console.error(`pg-boss (bench) error: ${err.message}`));
    await this.boss.start();
    await this.boss.createQueue(PgBossHarness.QUEUE);
  }

  protected workerScript = () => 'bench/pg-boss-worker.ts';
  protected workerEnv = () => ({
    BENCH_PGBOSS_QUEUE: PgBossHarness.QUEUE,
    BENCH_PGBOSS_NOTIFY: this.notify ? '1' : '0',
  });

  protected async addFirst(runId: string): Promise<void> {
    const id = await this.boss!.send(PgBossHarness.QUEUE, { runId, step: 1 });
    if (!id) throw new NornError('INTERNAL', `pg-boss did not accept run ${runId}'s first job`);
  }

  protected async removeJobs(): Promise<void> {
    await this.db.query('DELETE FROM pgboss.job WHERE name = $1', [PgBossHarness.QUEUE]);
  }

  protected async teardown(): Promise<void> {
    await this.boss?.stop({ graceful: false, wait: true });
  }
}
