/** PostgreSQL pool creation; the only place that builds pg clients. */
import pg from 'pg';

export type Db = pg.Pool;

// bigint columns (ids, sizes) come back as strings by default; our ids stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export function createDb(
  url: string,
  options: { max?: number; applicationName?: string } = {},
): Db {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'norn',
    idleTimeoutMillis: 10_000,
  });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  return pool;
}
