/**
 * ioredis connections, by role:
 * - `worker` (BullMQ workers, the engine's own connection): maxRetriesPerRequest null, so commands
 *   wait through a Redis restart and nothing a step did is lost;
 * - `api` (what a request waits for): fails fast (no offline queue, no retries, a command time
 *   limit), as BullMQ advises for producers, so a request answers 503 instead of hanging;
 * - `subscriber` (pub/sub) reconnects and resubscribes by itself; `client`: a few retries.
 */
import { Redis, type RedisOptions } from 'ioredis';

export type RedisRole = 'worker' | 'api' | 'client' | 'subscriber';

/** How long one api-side command may take before the request gives up on Redis. */
export const API_COMMAND_TIMEOUT_MS = 5_000;

const ROLE_OPTIONS: Record<RedisRole, RedisOptions> = {
  worker: { maxRetriesPerRequest: null },
  subscriber: { maxRetriesPerRequest: null },
  client: { maxRetriesPerRequest: 3 },
  api: {
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    commandTimeout: API_COMMAND_TIMEOUT_MS,
  },
};

export function createRedis(url: string, role: RedisRole = 'client'): Redis {
  const redis = new Redis(url, {
    ...ROLE_OPTIONS[role],
    enableReadyCheck: true,
    lazyConnect: false,
  });
  // Errors are retried by ioredis; without a listener Node would print each one as unhandled.
  redis.on('error', () => {});
  return redis;
}
export type { Redis };
