/**
 * A PostgreSQL cluster of a test's own (initdb + pg_ctl on a free loopback port, trust auth), so
 * the test may stop and start it without disturbing anyone else's database. As root it runs as the
 * postgres user (initdb refuses root).
 */
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runChecked } from '../../src/shared/exec.js';
import { createDb } from '../../src/shared/db.js';
import { migrate } from '../../src/shared/db/migrate.js';
import { freePort } from './cli/expect-output.js';
import { silentLogger } from '../../src/shared/logger.js';

const BIN = '/usr/lib/postgresql/15/bin';

export interface PgCluster {
  port: number;
  /** URL of database `norn` (migrated) on this cluster. */
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it and removes its files. */
  destroy(): Promise<void>;
}

/** Runs a PostgreSQL binary as the postgres user when we are root. */
async function asPostgres(argv: string[]): Promise<void> {
  const asRoot = process.getuid?.() === 0;
  await runChecked(asRoot ? ['runuser', '-u', 'postgres', '--', ...argv] : argv, {
    env: { PATH: process.env.PATH, LC_ALL: 'C' },
  });
}

export async function startPgCluster(): Promise<PgCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'norn-pg-'));
  if (process.getuid?.() === 0) {
    const pg = await postgresIds();
    await chown(dir, pg.uid, pg.gid);
  }
  const data = join(dir, 'data');
  const port = await freePort();
  await asPostgres([`${BIN}/initdb`, '-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  const start = () =>
    asPostgres([`${BIN}/pg_ctl`, '-D', data, '-o', options, '-l', join(dir, 'log'), '-w', 'start']);
  const stop = () => asPostgres([`${BIN}/pg_ctl`, '-D', data, '-m', 'fast', '-w', 'stop']);
  await start();
  const admin = createDb(`postgres://postgres@127.0.0.1:${port}/postgres`, {
    log: silentLogger,
    max: 1,
  });
  await admin.query('CREATE DATABASE norn').finally(() => admin.end());
  const url = `postgres://postgres@127.0.0.1:${port}/norn`;
  const db = createDb(url, { log: silentLogger, max: 1 });
  await migrate(db).finally(() => db.end());
  return {
    port,
    url,
    start,
    stop,
    destroy: async () => {
      await stop().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function postgresIds(): Promise<{ uid: number; gid: number }> {
  const { stdout } = await runChecked(['id', '-u', 'postgres']);
  const gid = await runChecked(['id', '-g', 'postgres']);
  return { uid: Number(stdout.trim()), gid: Number(gid.stdout.trim()) };
}
