/**
 * Deploy step `migrate`: applies the app's `*.sql` migrations (spec.migrations, a directory in its
 * repository) to its database, each once, recorded in the database's own ledger table. The first
 * deploy creates the database. A failed migration fails the run (the driver's STEP_FAILED names the
 * file); what was applied before it stays applied and in the ledger.
 */
import { lstat, readdir, realpath } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import pg from 'pg';
import { cancelled, connectClient, sqlState } from '../../../shared/drivers/postgres-connect.js';
import { applyMigrations, readMigrationDir } from '../../../shared/drivers/postgres-migrations.js';
import { databaseUrlFor } from '../../../shared/drivers/postgres-snapshot.js';
import { NornError } from '../../../shared/errors.js';
import { skipStep } from '../../../queues/pipeline.js';
import { ensureSource, pinnedSpec } from '../workspace.js';
import { deployStep } from '../types.js';
import { adminUrl, declaredDatabase } from './snapshot.js';

/** duplicate_database, and the catalog's unique violation when two CREATE DATABASE race. */
const ALREADY_EXISTS = new Set(['42P04', '23505']);

/** Creates `database` when it is missing; returns whether it created it. Safe to run concurrently. */
export async function ensureDatabase(
  admin: string,
  database: string,
  signal: AbortSignal,
): Promise<boolean> {
  const client = await connectClient(admin, {
    signal,
    applicationName: 'norn-deploy',
    what: "the apps' PostgreSQL server",
  });
  try {
    const { rows } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (rows.length > 0) return false;
    // CREATE DATABASE takes no parameters: the name is quoted as an identifier, never pasted raw.
    await client.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
    return true;
  } catch (err) {
    if (ALREADY_EXISTS.has(sqlState(err) ?? '')) return false;
    if (signal.aborted) throw cancelled(`creating database "${database}"`);
    const state = sqlState(err);
    const why = err instanceof Error ? err.message : String(err);
    throw new NornError('STEP_FAILED', `could not create database "${database}": ${why}`, {
      retryable: state === undefined || /^(08|57P)/.test(state),
      details: { sqlState: state },
    });
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * `dir` inside the checkout `root`, refusing any path that leaves it: `..`, an absolute path, or a
 * symlink (the directory or one of its `*.sql` files) pointing outside. Returns the real path.
 */
export async function migrationsDirIn(root: string, dir: string): Promise<string> {
  const outside = () =>
    new NornError(
      'SPEC_INVALID',
      `migrations directory "${dir}" leaves the repository; it must be a directory inside it`,
    );
  if (isAbsolute(dir)) throw outside();
  const realRoot = await realpath(root);
  const inside = (p: string) => {
    const rel = relative(realRoot, p);
    return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
  };
  let real: string;
  try {
    real = await realpath(join(realRoot, dir));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new NornError(
        'NOT_FOUND',
        `migrations directory "${dir}" does not exist in the repository at this commit`,
      );
    }
    throw err;
  }
  if (!inside(real)) throw outside();
  if (!(await lstat(real)).isDirectory())
    throw new NornError('SPEC_INVALID', `migrations path "${dir}" is not a directory`);
  for (const e of await readdir(real, { withFileTypes: true })) {
    if (!e.name.endsWith('.sql') || !e.isSymbolicLink()) continue;
    const target = await realpath(join(real, e.name)).catch(() => undefined);
    if (!target || !inside(target)) {
      throw new NornError(
        'SPEC_INVALID',
        `migration ${e.name} in "${dir}" is a symlink leading outside the repository (or nowhere)`,
      );
    }
  }
  return real;
}

export const migrate = deployStep('migrate', {
  // The ledger makes a repeat safe; a lost connection (retryable STEP_FAILED) gets one more try.
  attempts: 2,
  async run(ctx, s) {
    const database = declaredDatabase(ctx);
    if (!database) return skipStep('no infrastructure.postgres declared');
    const dir = pinnedSpec(ctx).migrations;
    if (!dir) return skipStep('no migrations directory declared');
    const admin = adminUrl(s);

    if (await ensureDatabase(admin, database, ctx.signal))
      ctx.log(`created database "${database}"`);
    const src = await ensureSource(ctx, s);
    const files = await readMigrationDir(await migrationsDirIn(src, dir));
    ctx.log(`${files.length} migration file(s) in ${dir}`);
    const result = await applyMigrations({
      databaseUrl: databaseUrlFor(admin, database),
      files,
      signal: ctx.signal,
      onLine: ctx.log,
    });
    return { database, ...result };
  },
});
