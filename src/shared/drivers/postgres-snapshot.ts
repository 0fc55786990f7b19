/**
 * Snapshots of an app's PostgreSQL database, taken by the deploy pipeline before `migrate` and
 * restorable by an operator (`norn snapshots <app> restore <ts>`). Uses the real `pg_dump` and
 * `pg_restore` (Debian package `postgresql-client`); there is no fallback without them.
 *
 * Files: see postgres-snapshot-files.ts. A dump is written to a partial file, fsynced, renamed into
 * place, and only then is its sidecar written, so a killed or cancelled dump never looks complete.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { isNornError, NornError } from '../errors.js';
import { runChecked } from '../exec.js';
import {
  cancelled,
  cliConnection,
  connectClient,
  databaseUrlFor,
  serverMajorVersion,
  type CliConnection,
} from './postgres-connect.js';
import {
  appDir,
  checkTs,
  cleanLeftovers,
  dumpPath,
  formatTs,
  fsyncPath,
  partialPath,
  readAllSidecars,
  readSidecar,
  removeSnapshotFiles,
  sha256File,
  writeSidecar,
  type SnapshotInfo,
} from './postgres-snapshot-files.js';

export type { SnapshotInfo } from './postgres-snapshot-files.js';
export { databaseUrlFor } from './postgres-connect.js';

/** Program paths, for workers whose client tools are not on PATH (e.g. /usr/lib/postgresql/16/bin). */
export interface PgTools {
  pgDump?: string;
  pgRestore?: string;
}

interface Call {
  signal?: AbortSignal;
  onLine?: (line: string) => void;
  tools?: PgTools;
}

export async function takeSnapshot(
  o: { serverUrl: string; database: string; app: string; dir: string; now?: () => Date } & Call,
): Promise<SnapshotInfo> {
  const log = o.onLine ?? (() => {});
  const where = appDir(o.dir, o.app);
  const conn = cliConnection(o.serverUrl, o.database);
  await fs.mkdir(where, { recursive: true });
  for (const name of await cleanLeftovers(where))
    log(`removed leftover ${name} from an earlier interrupted snapshot`);

  const pgDump = o.tools?.pgDump ?? 'pg_dump';
  const toolMajor = await toolMajorVersion(pgDump, o.signal);
  const serverMajor = await probeServer(o.serverUrl, o.database, o.signal);
  if (serverMajor > toolMajor) {
    throw new NornError(
      'UNAVAILABLE',
      `the PostgreSQL server of database "${o.database}" is version ${serverMajor}, newer than this worker's pg_dump ` +
        `(version ${toolMajor}), which cannot dump it; install postgresql-client-${serverMajor} (or newer) on the worker`,
    );
  }

  const takenAt = (o.now ?? (() => new Date()))();
  const tmp = partialPath(dumpPath(where, formatTs(takenAt)));
  let reserved: string | undefined;
  try {
    const args = [
      '--format=custom',
      '--no-owner',
      '--verbose',
      '--file',
      tmp,
      `--dbname=${conn.url}`,
    ];
    await runTool(pgDump, args, conn, serverMajor, `pg_dump of database "${o.database}"`, o);
    await fsyncPath(tmp);
    const { size } = await fs.stat(tmp);
    const sha256 = await hashOrCancel(tmp, o.signal);
    const slot = await reserveSlot(where, takenAt);
    reserved = slot.file;
    await fs.rename(tmp, slot.file);
    await fsyncPath(where);
    if (o.signal?.aborted) throw cancelled('snapshot');
    const info: SnapshotInfo = {
      app: o.app,
      database: o.database,
      ts: slot.ts,
      takenAt: slot.takenAt,
      sizeBytes: size,
      path: slot.file,
      sha256,
    };
    await writeSidecar(where, info);
    reserved = undefined;
    log(`snapshot ${info.ts} of database "${o.database}" written (${size} bytes)`);
    return info;
  } finally {
    await fs.rm(tmp, { force: true });
    // A dump without its sidecar is not a snapshot; do not leave one behind.
    if (reserved) await fs.rm(reserved, { force: true });
  }
}

/** The app's snapshots, newest first. */
export async function listSnapshots(o: { app: string; dir: string }): Promise<SnapshotInfo[]> {
  return readAllSidecars(appDir(o.dir, o.app));
}

/** Keeps the newest `keep` snapshots and removes the rest; returns what it removed. Safe to re-run. */
export async function pruneSnapshots(o: {
  app: string;
  dir: string;
  keep: number;
}): Promise<SnapshotInfo[]> {
  if (!Number.isInteger(o.keep) || o.keep < 0) {
    throw new NornError(
      'BAD_REQUEST',
      `keep must be a whole number of snapshots (0 or more), got ${o.keep}`,
    );
  }
  const removed = (await listSnapshots(o)).slice(o.keep);
  for (const info of removed) await removeSnapshotFiles(info);
  return removed;
}

/**
 * Restores snapshot `ts` into `database`, in one transaction: objects in the snapshot are dropped
 * and recreated with their data. Objects created after the snapshot was taken are left alone.
 */
export async function restoreSnapshot(
  o: { serverUrl: string; database: string; app: string; dir: string; ts: string } & Call,
): Promise<SnapshotInfo> {
  checkTs(o.ts);
  const where = appDir(o.dir, o.app);
  const conn = cliConnection(o.serverUrl, o.database);
  const info = await readSidecar(where, o.ts);
  let actual: string;
  try {
    actual = await hashOrCancel(info.path, o.signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new NornError('NOT_FOUND', `snapshot ${o.ts} of app ${o.app} has no dump file`);
    throw err;
  }
  if (actual !== info.sha256) {
    throw new NornError(
      'CONFLICT',
      `snapshot ${o.ts} of app ${o.app} is damaged or was modified (sha256 ${actual.slice(0, 12)}…, recorded ${info.sha256.slice(0, 12)}…); refusing to restore it`,
    );
  }
  const pgRestore = o.tools?.pgRestore ?? 'pg_restore';
  await toolMajorVersion(pgRestore, o.signal);
  const serverMajor = await probeServer(o.serverUrl, o.database, o.signal);
  const args = [
    '--clean',
    '--if-exists',
    '--no-owner',
    '--single-transaction',
    '--verbose',
    `--dbname=${conn.url}`,
    info.path,
  ];
  await runTool(
    pgRestore,
    args,
    conn,
    serverMajor,
    `restore of snapshot ${o.ts} into database "${o.database}"`,
    o,
  );
  o.onLine?.(`snapshot ${o.ts} restored into database "${o.database}"`);
  return info;
}

/** Claims `<ts>.dump` without overwriting another snapshot taken in the same millisecond. */
async function reserveSlot(
  where: string,
  takenAt: Date,
): Promise<{ ts: string; takenAt: Date; file: string }> {
  for (let i = 0; i < 1000; i++) {
    const t = new Date(takenAt.getTime() + i);
    const ts = formatTs(t);
    const file = dumpPath(where, ts);
    try {
      await fs.writeFile(file, '', { flag: 'wx' });
      return { ts, takenAt: t, file };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  throw new NornError('CONFLICT', `could not find a free snapshot name in ${where}`);
}

async function hashOrCancel(file: string, signal?: AbortSignal): Promise<string> {
  try {
    return await sha256File(file, signal);
  } catch (err) {
    if (signal?.aborted) throw cancelled('snapshot checksum');
    throw err;
  }
}

/** Major version of a libpq tool; a clear error when it is not installed. */
async function toolMajorVersion(program: string, signal?: AbortSignal): Promise<number> {
  const name = path.basename(program);
  let out: string;
  try {
    out = (await runChecked([program, '--version'], { signal })).stdout;
  } catch (err) {
    const code = isNornError(err)
      ? (err.cause as NodeJS.ErrnoException | undefined)?.code
      : undefined;
    if (code === 'ENOENT' || code === 'EACCES') {
      throw new NornError(
        'UNAVAILABLE',
        `${name} is not installed on this worker (looked for ${program}); install the PostgreSQL client tools ` +
          `(Debian/Ubuntu: apt-get install postgresql-client), at least the server's major version`,
      );
    }
    throw err;
  }
  const major = /\(PostgreSQL\)\s+(\d+)/.exec(out)?.[1];
  if (!major)
    throw new NornError(
      'UNAVAILABLE',
      `could not read the version of ${name} from ${JSON.stringify(out.trim().slice(0, 80))}`,
    );
  return Number(major);
}

/** Connects once to check the database exists and learn the server's major version. */
async function probeServer(
  serverUrl: string,
  database: string,
  signal?: AbortSignal,
): Promise<number> {
  const client = await connectClient(databaseUrlFor(serverUrl, database), {
    signal,
    applicationName: 'norn-snapshot',
    what: `database "${database}"`,
  });
  try {
    return await serverMajorVersion(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Runs pg_dump/pg_restore with the password in the environment; failures say what went wrong. */
async function runTool(
  program: string,
  args: string[],
  conn: CliConnection,
  serverMajor: number,
  label: string,
  o: Call,
): Promise<void> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...conn.env };
  // From PostgreSQL 14 the server can notice that a killed pg_dump is gone even while it waits for a lock.
  if (serverMajor >= 14)
    env.PGOPTIONS = `${env.PGOPTIONS ?? ''} -c client_connection_check_interval=5000`.trim();
  try {
    await runChecked([program, ...args], {
      signal: o.signal,
      env,
      redact: conn.redact,
      onLine: o.onLine ? (l) => o.onLine?.(l) : undefined,
    });
  } catch (err) {
    if (isNornError(err) && err.code === 'COMMAND_FAILED') {
      const tail = Array.isArray(err.details?.tail) ? (err.details.tail as string[]) : [];
      throw new NornError('COMMAND_FAILED', `${label} failed: ${summarize(tail)}`, {
        details: err.details,
      });
    }
    throw err;
  }
}

/** The error part of a libpq tool's output (its --verbose progress lines are noise in an error). */
function summarize(tail: string[]): string {
  const first = tail.findIndex((l) => /: error: /.test(l));
  const lines = (first >= 0 ? tail.slice(first) : tail.slice(-5)).filter((l) => l.trim() !== '');
  return lines.slice(0, 10).join('\n') || 'no output';
}
