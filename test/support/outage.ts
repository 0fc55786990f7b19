/**
 * A Redis and a PostgreSQL of the test's own, on given ports, that the test stops and starts to
 * make an outage (the shared services stay up for everyone else). PostgreSQL is a throwaway
 * cluster (initdb + pg_ctl, as the postgres user when the tests run as root, which initdb refuses).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from './norn.js';

const run = promisify(execFile);
const PG_BIN = '/usr/lib/postgresql/15/bin';

export interface Service {
  url: string;
  stop(): Promise<void>;
  /** Starts it again (nothing to do when it runs). */
  start(): Promise<void>;
  /** Stops it for good and removes its files. */
  destroy(): Promise<void>;
}

/** Resolves when something accepts TCP connections on the port (or rejects after the timeout). */
export const listening = (port: number, timeoutMs = 20_000) =>
  waitFor(() => accepts(port), `a listener on 127.0.0.1:${port}`, timeoutMs);

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

/** Fails at once when the port is taken: these ports are the test's own. */
export async function assertFree(port: number): Promise<void> {
  if (await accepts(port))
    throw new Error(`127.0.0.1:${port} is in use; this test needs it for its own service`);
}

/**
 * A Redis of the test's own. By default it keeps nothing and `stop` kills it (a crash). With
 * `aof`, it runs as production should (`appendonly yes`, `appendfsync everysec`, noeviction) in a
 * directory of its own, `stop` shuts it down as a restart does (SIGTERM: the AOF is flushed), and
 * `start` brings it back with its data.
 */
export async function ownRedis(port: number, opts: { aof?: boolean } = {}): Promise<Service> {
  await assertFree(port);
  const dir = opts.aof ? mkdtempSync(join(tmpdir(), 'norn-redis-')) : undefined;
  const persistence = dir
    ? ['--appendonly', 'yes', '--appendfsync', 'everysec', '--dir', dir]
    : ['--appendonly', 'no'];
  let child: ChildProcess | undefined;
  const start = async () => {
    if (child && child.exitCode === null) return;
    child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--maxmemory-policy',
        'noeviction',
        ...persistence,
      ],
      { stdio: 'ignore' },
    );
    await listening(port);
  };
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    // Without AOF: as abrupt as a crash, clients see their connections reset. With it: a restart.
    c.kill(dir ? 'SIGTERM' : 'SIGKILL');
    await exited;
  };
  await start();
  const destroy = async () => {
    await stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
  return { url: `redis://127.0.0.1:${port}`, start, stop, destroy };
}

export async function ownPostgres(port: number): Promise<Service> {
  await assertFree(port);
  const dir = mkdtempSync(join(tmpdir(), 'h7a-pg-'));
  const asRoot = process.getuid?.() === 0;
  const ids = asRoot ? await postgresIds() : undefined;
  if (ids) chownSync(dir, ids.uid, ids.gid);
  const pg = (bin: string, args: string[]) =>
    run(join(PG_BIN, bin), args, { ...(ids ?? {}), cwd: dir, timeout: 60_000 });
  await pg('initdb', ['-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  const start = async () => {
    if (await accepts(port)) return;
    await pg('pg_ctl', [
      '-D',
      join(dir, 'data'),
      '-o',
      options,
      '-l',
      join(dir, 'log'),
      '-w',
      'start',
    ]);
  };
  const stop = async () => {
    await pg('pg_ctl', ['-D', join(dir, 'data'), '-m', 'fast', '-w', 'stop']).catch(() => {});
  };
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop,
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all([
    run('id', ['-u', 'postgres']),
    run('id', ['-g', 'postgres']),
  ]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}
