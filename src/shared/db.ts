/** PostgreSQL pool creation; the only place that builds pg clients. */
import pg from 'pg';
import { logConnectionErrors } from './connection-errors.js';
import type { Logger } from './logger.js';

export type Db = pg.Pool;

// bigint columns (ids, sizes) come back as strings by default; our ids stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

/**
 * A pool for `url`. Errors of its clients (a server restart drops them) go to `options.log` as
 * `postgres:<applicationName>`, at most once per 10 s; the next query reconnects. That includes a
 * client that is checked out but between queries (an advisory lock held through a step, a hook's
 * transaction waiting on its work): pg-pool listens only to idle ones, and pg emits the error of
 * a checked-out client with no listener as an uncaught exception, which ends the process. Its
 * next query fails instead, as the caller expects.
 */
export function createDb(
  url: string,
  options: { log: Logger; max?: number; applicationName?: string },
): Db {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'norn',
    idleTimeoutMillis: 10_000,
  });
  const logged = { name: `postgres:${options.applicationName ?? 'norn'}`, log: options.log };
  logConnectionErrors(pool, logged);
  pool.on('connect', (client) => logConnectionErrors(client, logged));
  return pool;
}

/** Runs `work` in one transaction on one client: committed if it returns, rolled back if it throws. */
export async function inTransaction<T>(db: Db, work: (client: pg.PoolClient) => Promise<T>) {
  const client = await db.connect();
  let failed: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    failed = err instanceof Error ? err : new Error(String(err));
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release(failed); // a client that failed may be broken: the pool drops it
  }
}
