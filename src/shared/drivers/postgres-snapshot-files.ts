/**
 * On-disk layout of database snapshots: `<dir>/<app>/<ts>.dump` (pg_dump custom format) plus a
 * `<ts>.json` sidecar. The sidecar is written last and is what makes a snapshot exist: a dump
 * without one is an unfinished or half-removed snapshot and is never listed or restored.
 * In-progress files are dot-files ending in `.partial`, named after the host and process writing
 * them, so the next snapshot can tell a dead writer's leftovers from a live one's work.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { NornError } from '../errors.js';

export interface SnapshotInfo {
  app: string;
  database: string;
  /** UTC time as `20261123T004501123Z`: filename-safe and sorts in time order. */
  ts: string;
  takenAt: Date;
  sizeBytes: number;
  /** Absolute path of the dump file. */
  path: string;
  sha256: string;
}

export const TS_PATTERN = /^\d{8}T\d{9}Z$/;
const APP_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const PARTIAL_PATTERN =
  /^\.\d{8}T\d{9}Z\.(?:dump|json)\.([A-Za-z0-9-]+)\.(\d+)\.[0-9a-f]+\.partial$/;
/** A partial file untouched this long is abandoned even if its writer's pid looks alive (pid reuse, other hosts). */
const PARTIAL_STALE_MS = 60 * 60_000;
/** A dump with no sidecar this old was left by a writer killed between its last two renames. */
const ORPHAN_STALE_MS = 10 * 60_000;
const HOST = os.hostname().replace(/[^A-Za-z0-9-]/g, '-') || 'host';

const SidecarSchema = z.object({
  version: z.literal(1),
  app: z.string(),
  database: z.string(),
  ts: z.string().regex(TS_PATTERN),
  takenAt: z.iso.datetime(),
  sizeBytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

export function formatTs(d: Date): string {
  const ts = d.toISOString().replace(/[-:.]/g, '');
  if (!TS_PATTERN.test(ts))
    throw new NornError('BAD_REQUEST', `cannot name a snapshot for ${d.toISOString()}`);
  return ts;
}

/** Rejects anything but a well-formed timestamp, so a ts can never walk out of the snapshot folder. */
export function checkTs(ts: string): void {
  if (typeof ts !== 'string' || !TS_PATTERN.test(ts)) {
    throw new NornError(
      'BAD_REQUEST',
      `invalid snapshot timestamp ${JSON.stringify(String(ts).slice(0, 40))}; expected e.g. 20261123T004501123Z`,
    );
  }
}

/** The app's snapshot folder; the app name becomes a path segment, so it is checked like a ts. */
export function appDir(dir: string, app: string): string {
  if (typeof app !== 'string' || !APP_PATTERN.test(app) || app.includes('..')) {
    throw new NornError(
      'BAD_REQUEST',
      `invalid app name ${JSON.stringify(String(app).slice(0, 40))} for a snapshot folder`,
    );
  }
  return path.resolve(dir, app);
}

export const dumpPath = (where: string, ts: string) => path.join(where, `${ts}.dump`);
const sidecarPath = (where: string, ts: string) => path.join(where, `${ts}.json`);

/** A fresh in-progress name for `final` (a `<ts>.dump` or `<ts>.json` in `where`). */
export function partialPath(final: string): string {
  const name = `.${path.basename(final)}.${HOST}.${process.pid}.${randomBytes(4).toString('hex')}.partial`;
  return path.join(path.dirname(final), name);
}

const isErrno = (err: unknown, ...codes: string[]) =>
  codes.includes((err as NodeJS.ErrnoException | null)?.code ?? '');

export async function fsyncPath(p: string): Promise<void> {
  const fh = await fs.open(p, 'r');
  try {
    await fh.sync();
  } catch (err) {
    // Some filesystems cannot fsync a directory; the rename is still atomic there.
    if (!isErrno(err, 'EINVAL', 'ENOTSUP', 'EISDIR')) throw err;
  } finally {
    await fh.close();
  }
}

/** Writes `final` all-or-nothing: temp file, fsync, rename, fsync the folder. */
async function writeFileDurably(final: string, data: string): Promise<void> {
  const tmp = partialPath(final);
  try {
    await fs.writeFile(tmp, data, { flag: 'wx' });
    await fsyncPath(tmp);
    await fs.rename(tmp, final);
    await fsyncPath(path.dirname(final));
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

export async function writeSidecar(where: string, info: SnapshotInfo): Promise<void> {
  const { path: _path, takenAt, ...rest } = info;
  const body = { version: 1, ...rest, takenAt: takenAt.toISOString() };
  await writeFileDurably(sidecarPath(where, info.ts), `${JSON.stringify(body, null, 2)}\n`);
}

/** The snapshot `ts` of the app in `where`: NOT_FOUND when it does not exist, CONFLICT when its sidecar is unreadable. */
export async function readSidecar(where: string, ts: string): Promise<SnapshotInfo> {
  let text: string;
  try {
    text = await fs.readFile(sidecarPath(where, ts), 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT'))
      throw new NornError('NOT_FOUND', `snapshot ${ts} of app ${path.basename(where)} not found`);
    throw err;
  }
  let parsed: z.infer<typeof SidecarSchema>;
  try {
    parsed = SidecarSchema.parse(JSON.parse(text));
  } catch {
    throw new NornError(
      'CONFLICT',
      `snapshot ${ts} of app ${path.basename(where)} has an unreadable ${ts}.json; it cannot be used`,
    );
  }
  if (parsed.ts !== ts)
    throw new NornError(
      'CONFLICT',
      `snapshot ${ts}.json describes snapshot ${parsed.ts}; it cannot be used`,
    );
  const { version: _v, ...rest } = parsed;
  return { ...rest, takenAt: new Date(parsed.takenAt), path: dumpPath(where, ts) };
}

/** Snapshots of the app in `where`, newest first; unreadable sidecars are skipped. */
export async function readAllSidecars(where: string): Promise<SnapshotInfo[]> {
  let names: string[];
  try {
    names = await fs.readdir(where);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
  const tss = names
    .map((n) => /^(\d{8}T\d{9}Z)\.json$/.exec(n)?.[1])
    .filter((t): t is string => t !== undefined);
  const infos = await Promise.all(tss.map((ts) => readSidecar(where, ts).catch(() => undefined)));
  return infos
    .filter((i): i is SnapshotInfo => i !== undefined)
    .sort((a, b) => (a.ts < b.ts ? 1 : a.ts > b.ts ? -1 : 0));
}

export async function sha256File(file: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { signal })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return isErrno(err, 'EPERM');
  }
}

/**
 * Removes what killed snapshot runs left in `where`: partial files whose writer (on this host) is
 * gone or that nobody has written to for an hour, and dumps whose sidecar never got written.
 * Returns the names removed.
 */
export async function cleanLeftovers(where: string, nowMs: number = Date.now()): Promise<string[]> {
  const names = await fs.readdir(where);
  const present = new Set(names);
  const removed: string[] = [];
  for (const name of names) {
    const partial = PARTIAL_PATTERN.exec(name);
    const orphan = /^(\d{8}T\d{9}Z)\.dump$/.exec(name);
    if (!partial && !(orphan && !present.has(`${orphan[1]}.json`))) continue;
    const file = path.join(where, name);
    const stat = await fs.stat(file).catch(() => undefined);
    if (!stat) continue;
    const age = nowMs - stat.mtimeMs;
    const stale = partial
      ? age > PARTIAL_STALE_MS || (partial[1] === HOST && !processAlive(Number(partial[2])))
      : age > ORPHAN_STALE_MS;
    if (!stale) continue;
    await fs.rm(file, { force: true });
    removed.push(name);
  }
  return removed;
}

export async function removeSnapshotFiles(info: SnapshotInfo): Promise<void> {
  const where = path.dirname(info.path);
  // Sidecar first: once it is gone the snapshot no longer exists, whatever happens to the dump.
  await fs.rm(sidecarPath(where, info.ts), { force: true });
  await fs.rm(info.path, { force: true });
}
