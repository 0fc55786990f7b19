/**
 * Safe edits of a file that several norn workers (and the operator) share, such as the cloudflared
 * config: an exclusive cross-process lock (`<file>.lock`, created with O_EXCL) and atomic
 * replacement (temp file in the same directory + fsync + rename), so readers never see half a file
 * and concurrent read-modify-write cycles never lose each other's changes.
 *
 * Node has no flock(), hence the lock file. A holder refreshes its lock's mtime while it works, so
 * only a lock whose holder died goes stale; a stale lock is moved aside with rename (which only one
 * contender can win) and checked by inode before it is dropped, so a fresh lock is never deleted.
 */
import { randomUUID } from 'node:crypto';
import { link, open, readFile, readdir, rename, stat, unlink, utimes } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { NornError } from '../errors.js';

export interface FileLockOptions {
  signal?: AbortSignal;
  /** A lock not refreshed for this long belongs to a dead process and is taken over. */
  staleMs?: number;
  /** Give up waiting for the lock after this long (TIMEOUT, retryable). */
  timeoutMs?: number;
}

export interface HeldLock {
  /** Throws when the lock was taken over (we stalled past staleMs): the caller must not commit. */
  assertHeld(): Promise<void>;
}

const DEFAULT_STALE_MS = 30_000;
const DEFAULT_TIMEOUT_MS = 120_000;

const errCode = (err: unknown) => (err as NodeJS.ErrnoException | undefined)?.code;

/** Runs `fn` while holding the exclusive lock on `path`; the lock is released however `fn` ends. */
export async function withFileLock<T>(
  path: string,
  fn: (lock: HeldLock) => Promise<T>,
  o: FileLockOptions = {},
): Promise<T> {
  const lockPath = `${path}.lock`;
  const staleMs = o.staleMs ?? DEFAULT_STALE_MS;
  const token = `${process.pid} ${randomUUID()}`;
  await acquire(lockPath, token, staleMs, o);
  // Keep the lock fresh while fn runs, so a slow disk never makes a live holder look dead.
  const heartbeat = setInterval(
    () => {
      const now = new Date();
      utimes(lockPath, now, now).catch(() => {});
    },
    Math.max(10, Math.floor(staleMs / 3)),
  );
  heartbeat.unref();
  try {
    await removeLeftovers(path);
    return await fn({ assertHeld: () => assertHeld(lockPath, token) });
  } finally {
    clearInterval(heartbeat);
    await release(lockPath, token);
  }
}

/**
 * Temp files of `path` are garbage once we hold its lock (only lock holders write them), so a
 * worker killed mid-write leaves nothing behind for long.
 */
async function removeLeftovers(path: string): Promise<void> {
  const tmp = new RegExp(`^\\.${escapeRegex(basename(path))}\\.\\d+\\.[0-9a-f]{8}\\.tmp$`);
  const names = await readdir(dirname(path)).catch(() => [] as string[]);
  for (const name of names) {
    if (tmp.test(name)) await unlink(join(dirname(path), name)).catch(() => {});
  }
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

async function acquire(lockPath: string, token: string, staleMs: number, o: FileLockOptions) {
  const deadline = Date.now() + (o.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  for (let attempt = 0; ; attempt++) {
    throwIfAborted(o.signal, lockPath);
    if (await tryCreate(lockPath, token)) return;
    if (await takeOverIfStale(lockPath, staleMs)) continue;
    if (Date.now() >= deadline) {
      const message = `gave up waiting for the lock ${lockPath}; another norn worker holds it`;
      throw new NornError('TIMEOUT', message, { retryable: true });
    }
    // Jittered backoff, so many waiters do not retry in lockstep.
    const ms = Math.min(50, 5 * 2 ** Math.min(attempt, 4)) * (0.5 + Math.random());
    await sleep(ms, undefined, { signal: o.signal }).catch(() =>
      throwIfAborted(o.signal, lockPath),
    );
  }
}

async function tryCreate(lockPath: string, token: string): Promise<boolean> {
  let fh;
  try {
    fh = await open(lockPath, 'wx', 0o644);
  } catch (err) {
    if (errCode(err) === 'EEXIST') return false;
    throw fsError(err, `cannot create the lock file ${lockPath}`);
  }
  try {
    await fh.writeFile(token, 'utf8');
  } catch (err) {
    await fh.close().catch(() => {});
    await unlink(lockPath).catch(() => {});
    throw fsError(err, `cannot write the lock file ${lockPath}`);
  }
  await fh.close();
  return true;
}

/** True when the caller should retry at once (the lock is gone or was stale and has been removed). */
async function takeOverIfStale(lockPath: string, staleMs: number): Promise<boolean> {
  const seen = await stat(lockPath).catch((err: unknown) => {
    if (errCode(err) === 'ENOENT') return null;
    throw fsError(err, `cannot inspect the lock ${lockPath}`);
  });
  if (!seen) return true;
  if (Date.now() - seen.mtimeMs < staleMs) return false;
  const aside = `${lockPath}.stale-${randomUUID()}`;
  try {
    await rename(lockPath, aside);
  } catch (err) {
    if (errCode(err) === 'ENOENT') return true; // another contender removed it first
    throw fsError(err, `cannot take over the stale lock ${lockPath}`);
  }
  const moved = await stat(aside).catch(() => undefined);
  if (!moved) return true;
  if (moved.ino !== seen.ino || moved.mtimeMs !== seen.mtimeMs) {
    // Between our stat and rename someone replaced the stale lock with a live one: put it back.
    // link() never overwrites: should a third process have locked meanwhile, the original holder
    // finds a foreign token in assertHeld() and writes nothing.
    await link(aside, lockPath).catch(() => {});
    await unlink(aside).catch(() => {});
    return false;
  }
  await unlink(aside).catch(() => {});
  return true;
}

async function assertHeld(lockPath: string, token: string): Promise<void> {
  const current = await readFile(lockPath, 'utf8').catch(() => undefined);
  if (current !== token) {
    const message = `lost the lock ${lockPath} to another process; nothing was written`;
    throw new NornError('UNAVAILABLE', message, { retryable: true });
  }
}

async function release(lockPath: string, token: string): Promise<void> {
  const current = await readFile(lockPath, 'utf8').catch(() => undefined);
  if (current === token) await unlink(lockPath).catch(() => {});
}

function throwIfAborted(signal: AbortSignal | undefined, what: string) {
  if (!signal?.aborted) return;
  const reason = typeof signal.reason === 'string' ? signal.reason : 'aborted';
  throw new NornError('CANCELLED', `stopped while working on ${what}: ${reason}`, {
    details: { reason },
  });
}

function fsError(err: unknown, message: string): NornError {
  const code = errCode(err);
  // A missing directory is an operator configuration problem; anything else may be transient.
  if (code === 'ENOENT') {
    return new NornError('CONFIG_INVALID', `${message}: its directory does not exist`, {
      cause: err,
    });
  }
  const retryable = code !== 'EACCES' && code !== 'EPERM' && code !== 'EROFS';
  return new NornError('UNAVAILABLE', `${message}: ${code ?? String(err)}`, {
    cause: err,
    retryable,
  });
}

export interface ExistingFile {
  text: string;
  mode: number;
  uid: number;
  gid: number;
}

/** Reads a text file, or returns undefined when it does not exist. */
export async function readFileIfExists(path: string): Promise<ExistingFile | undefined> {
  try {
    const [text, st] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    return { text, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
  } catch (err) {
    if (errCode(err) === 'ENOENT') return undefined;
    throw fsError(err, `cannot read ${path}`);
  }
}

export interface ReplaceOptions {
  mode: number;
  /** Owner to keep (ignored when we may not chown, e.g. not running as root). */
  owner?: { uid: number; gid: number };
  signal?: AbortSignal;
}

/**
 * Replaces `path` with `text` atomically: readers see the old file or the new one, never a mix, and
 * a crash leaves at most a stray `.<name>.*.tmp` file next to it.
 */
export async function replaceFileAtomic(
  path: string,
  text: string,
  o: ReplaceOptions,
): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`);
  const fh = await open(tmp, 'wx', o.mode).catch((err: unknown) => {
    throw fsError(err, `cannot write ${tmp}`);
  });
  try {
    await fh.writeFile(text, 'utf8');
    await fh.chmod(o.mode); // open()'s mode is filtered by the umask; the old file's mode wins
    if (o.owner) await fh.chown(o.owner.uid, o.owner.gid).catch(() => {});
    await fh.sync();
    await fh.close();
    throwIfAborted(o.signal, path);
    await rename(tmp, path);
  } catch (err) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err instanceof NornError ? err : fsError(err, `cannot replace ${path}`);
  }
  await syncDir(dir);
}

/** Makes the rename itself durable; some filesystems cannot fsync a directory, which is fine. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => undefined);
  if (!fh) return;
  await fh.sync().catch(() => {});
  await fh.close();
}
