/**
 * Applies an app's SQL migrations (a directory of `*.sql` files in its repository) to the app's
 * database, in filename order, each exactly once. The ledger `public.norn_migrations` lives in the
 * same database and is written in the same transaction as the migration it records, so it is true
 * after any failure or kill: a recorded migration committed, an unrecorded one did not.
 *
 * A file whose first line is `-- norn:no-transaction` runs outside a transaction, one statement at
 * a time (CREATE INDEX CONCURRENTLY and the like), and is recorded only after all of it succeeded.
 * Such a file can fail or be cancelled halfway, leaving its earlier statements applied and the file
 * unrecorded, so it should be safe to run again (IF NOT EXISTS; a cancelled CREATE INDEX
 * CONCURRENTLY leaves an INVALID index that IF NOT EXISTS would keep: drop it first).
 */
import { createHash } from 'node:crypto';
import type { Dirent } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { isNornError, NornError } from '../errors.js';
import { redactText } from '../exec.js';
import { cancelled, connectClient, sqlState, urlSecrets } from './postgres-connect.js';
import { splitSqlStatements } from './sql-split.js';

export interface MigrationFile {
  name: string;
  sql: string;
  /** sha256 (hex) of the file's text with CRLF line endings read as LF. */
  checksum: string;
}

const LEDGER = 'public.norn_migrations';
/** 'norn_mig' as a bigint. Advisory lock keys are scoped to the current database, so one key serialises appliers per database. */
const LOCK_KEY = '7957704884959930727';
const NO_TRANSACTION = /^--\s*norn:no-transaction\s*$/;
const WHAT = 'migrations';

const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The `*.sql` files of `dir`, sorted by name; anything else there is ignored. */
export async function readMigrationDir(dir: string): Promise<MigrationFile[]> {
  let entries: Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new NornError(
        'NOT_FOUND',
        `migrations directory ${dir} does not exist or is not a directory`,
      );
    }
    throw err;
  }
  const names = entries
    .filter((e) => e.name.endsWith('.sql') && (e.isFile() || e.isSymbolicLink()))
    .map((e) => e.name)
    .sort(byCodePoint);
  return Promise.all(
    names.map(async (name) => toMigration(name, await fs.readFile(path.join(dir, name), 'utf8'))),
  );
}

function toMigration(name: string, text: string): MigrationFile {
  // A BOM would be a syntax error, and a checkout's line endings must not make a file look edited.
  const sql = text.replace(/^\uFEFF/, '').replace(/\r\n/g, '\n');
  return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
}

/**
 * Applies the files not yet in the ledger, in name order. Refuses to start when an applied file
 * changed; stops at the first failure (STEP_FAILED) or abort (CANCELLED, the running statement is
 * cancelled and its transaction rolled back).
 */
export async function applyMigrations(o: {
  databaseUrl: string;
  files: MigrationFile[];
  signal?: AbortSignal;
  onLine?: (l: string) => void;
}): Promise<{ applied: string[]; alreadyApplied: string[] }> {
  const log = o.onLine ?? (() => {});
  const files = [...o.files].sort((a, b) => byCodePoint(a.name, b.name));
  const dup = files.find((f, i) => files[i + 1]?.name === f.name);
  if (dup) throw new NornError('BAD_REQUEST', `migration ${dup.name} is listed twice`);
  const secrets = urlSecrets(o.databaseUrl);

  const client = await connectClient(o.databaseUrl, {
    signal: o.signal,
    applicationName: 'norn-migrate',
    what: WHAT,
  });
  client.on('notice', (n) => log(`notice: ${n.message ?? ''}`));
  const s = await openSession(client, o.databaseUrl, secrets, o.signal);
  try {
    const ledger = await lockAndReadLedger(s, log);
    refuseChanged(files, ledger);
    const alreadyApplied = files.filter((f) => ledger.has(f.name)).map((f) => f.name);
    const applied: string[] = [];
    for (const f of files.filter((f) => !ledger.has(f.name))) {
      log(`applying ${f.name}`);
      const started = performance.now();
      await applyOne(s, f);
      applied.push(f.name);
      log(`applied ${f.name} in ${Math.round(performance.now() - started)} ms`);
    }
    if (applied.length === 0) log(`no new migrations (${alreadyApplied.length} already applied)`);
    return { applied, alreadyApplied };
  } finally {
    s.dispose();
    await client.end().catch(() => {}); // also releases the session's advisory lock
  }
}

interface Session {
  /** A query that refuses to start after an abort; a statement cancelled by the abort throws CANCELLED. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<R>>;
  /** Runs even after an abort: for ROLLBACK, and for recording work that already happened. */
  raw(sql: string, params?: unknown[]): Promise<unknown>;
  secrets: string[];
  dispose(): void;
}

/** Wires the AbortSignal to pg_cancel_backend, sent from a second connection. */
async function openSession(
  client: pg.Client,
  url: string,
  secrets: string[],
  signal?: AbortSignal,
): Promise<Session> {
  let pid: number;
  try {
    pid = Number(
      (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid,
    );
  } catch (err) {
    await client.end().catch(() => {});
    throw dbError('could not start applying migrations', err, secrets);
  }
  const onAbort = () => {
    cancelBackend(url, pid).catch(() => client.end().catch(() => {}));
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  return {
    secrets,
    async query(sql, params) {
      if (signal?.aborted) throw cancelled(WHAT);
      try {
        return await client.query(sql, params);
      } catch (err) {
        if (signal?.aborted) throw cancelled(WHAT);
        throw err;
      }
    },
    raw: (sql, params) => client.query(sql, params),
    dispose: () => signal?.removeEventListener('abort', onAbort),
  };
}

async function cancelBackend(url: string, pid: number): Promise<void> {
  const c = await connectClient(url, {
    applicationName: 'norn-migrate-cancel',
    what: 'cancelling migrations',
  });
  try {
    await c.query('SELECT pg_cancel_backend($1)', [pid]);
  } finally {
    await c.end().catch(() => {});
  }
}

/** Takes the database's migration lock (held until the connection closes) and reads the ledger: name → checksum. */
async function lockAndReadLedger(
  s: Session,
  log: (l: string) => void,
): Promise<Map<string, string>> {
  try {
    const got = await s.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS ok', [
      LOCK_KEY,
    ]);
    if (!got.rows[0]?.ok) {
      log('another run is applying migrations to this database; waiting for it to finish');
      await s.query('SELECT pg_advisory_lock($1::bigint)', [LOCK_KEY]);
    }
    // Created under the lock: concurrent CREATE TABLE IF NOT EXISTS can still collide.
    await s.query(`CREATE TABLE IF NOT EXISTS ${LEDGER} (
      name text PRIMARY KEY,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const rows = (
      await s.query<{ name: string; checksum: string }>(`SELECT name, checksum FROM ${LEDGER}`)
    ).rows;
    return new Map(rows.map((r) => [r.name, r.checksum]));
  } catch (err) {
    if (isNornError(err)) throw err;
    throw dbError('could not prepare the migrations ledger', err, s.secrets);
  }
}

function refuseChanged(files: MigrationFile[], ledger: Map<string, string>): void {
  const changed = files.filter((f) => ledger.has(f.name) && ledger.get(f.name) !== f.checksum);
  if (changed.length === 0) return;
  const names = changed.map((f) => f.name).join(', ');
  throw new NornError(
    'CONFLICT',
    `${changed.length === 1 ? 'migration' : 'migrations'} ${names} changed after being applied to this database; ` +
      'nothing was applied. Restore the applied version and put the change in a new migration file',
    {
      details: {
        changed: changed.map((f) => ({
          name: f.name,
          applied: ledger.get(f.name),
          now: f.checksum,
        })),
      },
    },
  );
}

async function applyOne(s: Session, f: MigrationFile): Promise<void> {
  const record = `INSERT INTO ${LEDGER} (name, checksum) VALUES ($1, $2)`;
  if (NO_TRANSACTION.test(f.sql.split('\n', 1)[0] ?? '')) {
    for (const statement of splitSqlStatements(f.sql))
      await runMigrationSql(s, f, statement, false);
    // It all ran: record it even if an abort arrived meanwhile, so the ledger stays true.
    await s.raw(record, [f.name, f.checksum]).catch((err: unknown) => {
      throw dbError(`migration ${f.name} ran but could not be recorded`, err, s.secrets);
    });
    return;
  }
  try {
    await s.query('BEGIN');
    if (f.sql.trim()) await runMigrationSql(s, f, f.sql, true);
    await s.query(record, [f.name, f.checksum]);
    // COMMIT of a transaction that failed inside (e.g. the file ran its own ROLLBACK) reports ROLLBACK.
    const done = await s.query('COMMIT');
    if (done.command !== 'COMMIT')
      throw new NornError(
        'STEP_FAILED',
        `migration ${f.name} failed: its transaction was rolled back`,
      );
  } catch (err) {
    await s.raw('ROLLBACK').catch(() => {});
    throw isNornError(err) ? err : dbError(`migration ${f.name} failed`, err, s.secrets);
  }
}

async function runMigrationSql(
  s: Session,
  f: MigrationFile,
  sql: string,
  wholeFile: boolean,
): Promise<void> {
  try {
    await s.query(sql);
  } catch (err) {
    if (isNornError(err)) throw err;
    // In whole-file mode the error position indexes the file, so it can be shown as a line number.
    const pos = Number((err as { position?: string }).position);
    const line = wholeFile && pos > 0 ? ` (line ${sql.slice(0, pos - 1).split('\n').length})` : '';
    throw dbError(`migration ${f.name} failed`, err, s.secrets, line);
  }
}

/** A PostgreSQL failure as STEP_FAILED, retryable only when the connection or server was the problem. */
function dbError(prefix: string, err: unknown, secrets: string[], suffix = ''): NornError {
  const e = err as { message?: string; detail?: string; hint?: string };
  const state = sqlState(err);
  const retryable = state === undefined || /^(08|40|53|57P)/.test(state);
  const message = redactText(`${prefix}: ${e.message ?? String(err)}${suffix}`, secrets);
  return new NornError('STEP_FAILED', message, {
    retryable,
    details: { sqlState: state, detail: e.detail && redactText(e.detail, secrets), hint: e.hint },
  });
}
