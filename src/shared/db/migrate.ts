/**
 * Versioned schema migrations: `src/shared/db/migrations/NNN_name.sql`, applied in order, each once,
 * each in its own transaction, recorded in `schema_migrations` with a checksum. A session-level
 * advisory lock lets any number of api/worker processes start at once.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { PoolClient } from 'pg';
import type { Db } from '../db.js';
import { NornError } from '../errors.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));
const LOCK_KEY = 7_370_001; // arbitrary, fixed: "norn migrations"

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{3,}_[a-z0-9_]+\.sql$/.test(f)).sort();
  return Promise.all(
    files.map(async (file) => {
      const sql = await readFile(dir + file, 'utf8');
      return {
        version: Number(file.split('_')[0]),
        name: file.replace(/\.sql$/, ''),
        sql,
        checksum: createHash('sha256').update(sql).digest('hex'),
      };
    }),
  );
}

/**
 * Applies pending migrations; returns the names applied. Refuses (CONFIG_INVALID, nothing changed)
 * if an applied one was edited, or if the database holds a schema these migrations did not make:
 * one made by migrations this version no longer has (before 001_baseline folded them), or norn's
 * tables with no record of how they were made. The new baseline is never applied over either.
 */
export async function migrate(db: Db, dir?: string): Promise<string[]> {
  const migrations = await loadMigrations(dir);
  const client = await db.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ version: number; checksum: string; name: string }>(
      'SELECT version, checksum, name FROM schema_migrations',
    );
    refuseForeignSchema(migrations, rows, rows.length === 0 ? await unrecordedTables(client) : []);
    const applied = new Map(rows.map((r) => [r.version, r]));
    const done: string[] = [];
    for (const m of migrations) {
      const prior = applied.get(m.version);
      if (prior) {
        if (prior.checksum !== m.checksum) {
          throw new NornError(
            'CONFIG_INVALID',
            `migration ${m.name} was changed after it was applied; add a new migration instead`,
          );
        }
        continue;
      }
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query(
          'INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)',
          [m.version, m.name, m.checksum],
        );
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK');
        throw new NornError('INTERNAL', `migration ${m.name} failed: ${(err as Error).message}`, {
          cause: err,
        });
      }
      done.push(m.name);
    }
    return done;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]).catch(() => {});
    client.release();
  }
}

/** Tables norn's baseline creates; one of them in a database with no migration record is foreign. */
const NORN_TABLES = ['apps', 'runs', 'deployments', 'saga_events', 'events', 'releases'];

async function unrecordedTables(client: PoolClient): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT table_name AS name FROM information_schema.tables
     WHERE table_schema = current_schema() AND table_name = ANY ($1) ORDER BY table_name`,
    [NORN_TABLES],
  );
  return rows.map((r) => r.name);
}

/** Throws when the database's recorded migrations (or unrecorded tables) are not these. */
export function refuseForeignSchema(
  migrations: ReadonlyArray<Pick<Migration, 'version' | 'name'>>,
  applied: ReadonlyArray<{ version: number; name: string }>,
  unrecorded: readonly string[],
): void {
  const known = new Map(migrations.map((m) => [m.version, m.name]));
  const foreign = applied.filter((a) => known.get(a.version) !== a.name).map((a) => a.name);
  const what =
    foreign.length > 0
      ? `was made by migrations this version of norn does not have (${foreign.join(', ')}): an earlier schema, from before the migrations were folded into ${migrations[0]?.name ?? 'the baseline'}`
      : unrecorded.length > 0
        ? `already holds tables named like norn's (${unrecorded.join(', ')}) but no record (schema_migrations) of how they were made`
        : null;
  if (!what) return;
  throw new NornError(
    'CONFIG_INVALID',
    `the database ${what}. Nothing was changed. Its data cannot be carried over automatically: point DATABASE_URL at a new database (or drop this one) and start norn again`,
  );
}
