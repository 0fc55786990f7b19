/**
 * The baseline's worker process: a plain BullMQ Worker with a no-op processor, built with exactly
 * the options the engine's fleet uses (src/workers/fleet.ts), from the same environment variables
 * (REDIS_URL, NORN_QUEUE_PREFIX, NORN_WORKER_CONCURRENCY, …). BENCH_QUEUE names its queue.
 *
 * With BENCH_INSERT_DATABASE_URL it is the BullMQ+INSERT peer instead: each step INSERTs its start
 * event and then its finish event into bench_events, each committed on its own, before it returns,
 * so its parent in the flow (the next step) is not released before both are durable.
 */
import './parent-watch.js';
import { Worker, type Job } from 'bullmq';
import pg from 'pg';
import { loadConfig } from '../src/shared/config.js';
import { silentLogger } from '../src/shared/logger.js';
import { createRedis } from '../src/shared/redis.js';
import { workerOptions } from '../src/workers/fleet.js';
import { RECORD_EVENT } from './step-events.js';

const config = loadConfig(process.env);
const queue = process.env.BENCH_QUEUE ?? 'raw';
const insertUrl = process.env.BENCH_INSERT_DATABASE_URL;
const pool = insertUrl
  ? new pg.Pool({ connectionString: insertUrl, max: config.worker.concurrency })
  : undefined;
pool?.on('error', () => {});

const insert = async (job: Job<{ runId: string; index: number }>) => {
  const { runId, index } = job.data;
  await pool!.query(RECORD_EVENT, [runId, index + 1, 'start']);
  await pool!.query(RECORD_EVENT, [runId, index + 1, 'finish']);
  return null;
};

const connection = createRedis(config.redisUrl, 'worker', silentLogger);
const worker = new Worker(
  queue,
  pool ? insert : async () => null,
  workerOptions(config, connection),
);
worker.on('error', (err) => console.error(`raw worker error: ${err.message}`));

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    worker
      .close()
      .then(() => Promise.all([connection.quit().catch(() => {}), pool?.end()]))
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  });
}

await worker.waitUntilReady();
