/** ioredis connections. Workers need maxRetriesPerRequest: null (BullMQ); api-side clients fail fast. */
import { Redis } from 'ioredis';

export function createRedis(
  url: string,
  role: 'worker' | 'client' | 'subscriber' = 'client',
): Redis {
  const redis = new Redis(url, {
    maxRetriesPerRequest: role === 'client' ? 3 : null,
    enableReadyCheck: true,
    lazyConnect: false,
  });
  // Errors are retried by ioredis; without a listener Node would print each one as unhandled.
  redis.on('error', () => {});
  return redis;
}
export type { Redis };
