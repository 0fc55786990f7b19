/**
 * The baseline's worker process: a plain BullMQ Worker with a no-op processor, built with exactly
 * the options the engine's fleet uses (src/workers/fleet.ts), from the same environment variables
 * (REDIS_URL, NORN_QUEUE_PREFIX, NORN_WORKER_CONCURRENCY, …). BENCH_QUEUE names its queue.
 */
import './parent-watch.js';
import { Worker } from 'bullmq';
import { loadConfig } from '../src/shared/config.js';
import { createRedis } from '../src/shared/redis.js';
import { workerOptions } from '../src/workers/fleet.js';
import { silentLogger } from '../src/shared/logger.js';

const config = loadConfig(process.env);
const queue = process.env.BENCH_QUEUE ?? 'raw';
const connection = createRedis(config.redisUrl, 'worker', silentLogger);
const worker = new Worker(queue, async () => null, workerOptions(config, connection));
worker.on('error', (err) => console.error(`raw worker error: ${err.message}`));

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    worker
      .close()
      .then(() => connection.quit().catch(() => {}))
      .then(
        () => process.exit(0),
        () => process.exit(1),
      );
  });
}

await worker.waitUntilReady();
