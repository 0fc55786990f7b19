/**
 * ioredis connections, by role:
 * - `worker` (BullMQ workers, the engine's own connection): maxRetriesPerRequest null, so commands
 *   wait through a Redis restart and nothing a step did is lost;
 * - `api` (what a request waits for): fails fast (no offline queue, no retries, a command time
 *   limit), as BullMQ advises for producers, so a request answers 503 instead of hanging;
 * - `subscriber` (pub/sub) reconnects and resubscribes by itself; `client`: a few retries.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { logConnectionErrors } from './connection-errors.js';
import type { Logger } from './logger.js';

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

/**
 * A connection for `role`. Its errors (ioredis emits one per failed reconnect) go to `log` as
 * `redis:<name>` (name defaults to the role), at most once per 10 s.
 */
export function createRedis(url: string, role: RedisRole, log: Logger, name: string = role): Redis {
  const redis = new Redis(url, {
    ...ROLE_OPTIONS[role],
    enableReadyCheck: true,
    lazyConnect: false,
  });
  // ioredis retries by itself; the listener logs (and keeps Node from crashing on) each error.
  logConnectionErrors(redis, { name: `redis:${name}`, log });
  return redis;
}
export type { Redis };
