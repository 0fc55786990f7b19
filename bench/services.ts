/**
 * The bench's services: reachability checks with an operator-readable error, the throwaway
 * database, versions for the report, and removal of every Redis key under the bench's prefix.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createDb } from '../src/shared/db.js';
import { migrate } from '../src/shared/db/migrate.js';
import { NornError } from '../src/shared/errors.js';
import { silentLogger } from '../src/shared/logger.js';

/** host:port/db of a URL, never its credentials. */
export function where(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '(default port)'}${u.pathname.length > 1 ? u.pathname : ''}`;
  } catch {
    return '(unparseable URL)';
  }
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Fails fast (3 s) with a clear message instead of ioredis retrying forever. */
export async function checkRedis(url: string): Promise<string> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 3_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  let cause: Error | undefined; // ioredis rejects with "Connection is closed"; the socket error says why
  redis.on('error', (err: Error) => {
    cause ??= err;
  });
  try {
    await redis.connect();
    const info = await redis.info('server');
    return /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  } catch (err) {
    const why = (cause ?? (err as Error)).message;
    throw new NornError(
      'UNAVAILABLE',
      `Redis at ${where(url)} is not reachable (${why}); start it or set REDIS_URL`,
      { cause: err },
    );
  } finally {
    redis.disconnect();
  }
}

export async function checkPostgres(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query<{ server_version: string }>('SHOW server_version');
    return rows[0]!.server_version;
  } catch (err) {
    throw new NornError(
      'UNAVAILABLE',
      `PostgreSQL at ${where(url)} is not reachable (${(err as Error).message}); start it or set DATABASE_URL`,
      { cause: err },
    );
  } finally {
    await client.end().catch(() => {});
  }
}

export interface BenchDatabase {
  url: string;
  drop(): Promise<void>;
}

/**
 * Creates an empty database `name` next to the database of `baseUrl` (a peer's throwaway
 * database); drop() is safe to call twice. `synchronousCommit` (diagnostic) sets that PostgreSQL
 * setting for this database only.
 */
export async function createThrowawayDatabase(
  baseUrl: string,
  name: string,
  synchronousCommit?: string,
): Promise<BenchDatabase> {
  if (!/^norn_bench_[a-f0-9]+(_[a-z]+)?$/.test(name))
    throw new NornError('BAD_REQUEST', `refusing to manage database ${name}`);
  const admin = createDb(baseUrl, { log: silentLogger, max: 1, applicationName: 'norn-bench' });
  try {
    await admin.query(`CREATE DATABASE ${name}`);
    if (synchronousCommit)
      await admin.query(`ALTER DATABASE ${name} SET synchronous_commit = ${synchronousCommit}`);
  } finally {
    await admin.end();
  }
  const drop = async () => {
    const a = createDb(baseUrl, { log: silentLogger, max: 1, applicationName: 'norn-bench' });
    try {
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } finally {
      await a.end();
    }
  };
  return { url: withDatabase(baseUrl, name), drop };
}

/** Creates and migrates `name` (the engine's database) as createThrowawayDatabase does. */
export async function createBenchDatabase(
  baseUrl: string,
  name: string,
  synchronousCommit?: string,
): Promise<BenchDatabase> {
  const bench = await createThrowawayDatabase(baseUrl, name, synchronousCommit);
  const db = createDb(bench.url, { log: silentLogger, max: 1, applicationName: 'norn-bench' });
  try {
    await migrate(db);
  } catch (err) {
    await db.end();
    await bench.drop().catch(() => {});
    throw err;
  }
  await db.end();
  return bench;
}

/** Deletes every key under `<prefix>:` (the prefix is random and the bench's own). */
export async function removeKeys(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let removed = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) removed += await redis.unlink(...keys);
  } while (cursor !== '0');
  return removed;
}

export function environment(redisVersion: string, pgVersion: string): string {
  const bullmq = (
    JSON.parse(
      readFileSync(new URL('../node_modules/bullmq/package.json', import.meta.url), 'utf8'),
    ) as { version: string }
  ).version;
  const cpu = cpus();
  return (
    `Node ${process.version}, Redis ${redisVersion}, PostgreSQL ${pgVersion}, bullmq ${bullmq}, ` +
    `${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown CPU'})`
  );
}
