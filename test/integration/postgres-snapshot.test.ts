import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import {
  listSnapshots,
  pruneSnapshots,
  restoreSnapshot,
  takeSnapshot,
} from '../../src/shared/drivers/postgres-snapshot.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

const PASSWORD = 'S3cret-Pw-xyz';
/** The admin URL with a password added: trust auth ignores it, so it exercises the PGPASSWORD path. */
function serverUrl(withPassword = true): string {
  const u = new URL(inject('databaseUrl'));
  if (withPassword) u.password = PASSWORD;
  return u.toString();
}

let db: TestDatabase;
let dir: string;
const cleanups: (() => Promise<unknown>)[] = [];

beforeEach(async () => {
  db = await createTestDatabase({ empty: true });
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'norn-snap-'));
  await db.db.query(`CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);
    INSERT INTO items VALUES (1, 'one'), (2, 'two'), (3, 'three');`);
});
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  await db.drop();
  await fs.rm(dir, { recursive: true, force: true });
});

async function rows(): Promise<unknown[]> {
  return (await db.db.query('SELECT id, name FROM items ORDER BY id')).rows;
}
const base = () => ({ serverUrl: serverUrl(), database: db.name, app: 'shop', dir });
const filesIn = async (app = 'shop') =>
  (await fs.readdir(path.join(dir, app)).catch(() => [] as string[])).sort();

async function fakeTool(body: string): Promise<string> {
  const file = path.join(dir, `fake-${Math.random().toString(36).slice(2)}.sh`);
  await fs.writeFile(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

describe('takeSnapshot / restoreSnapshot', () => {
  it('snapshots, then restores the data after it changed', async () => {
    const lines: string[] = [];
    const info = await takeSnapshot({ ...base(), onLine: (l) => lines.push(l) });
    expect(info.ts).toMatch(/^\d{8}T\d{9}Z$/);
    expect(info.path).toBe(path.join(dir, 'shop', `${info.ts}.dump`));
    expect((await fs.stat(info.path)).size).toBe(info.sizeBytes);
    expect(await filesIn()).toEqual([`${info.ts}.dump`, `${info.ts}.json`]);
    expect(lines.some((l) => l.includes('pg_dump'))).toBe(true);
    expect(lines.join('\n')).not.toContain(PASSWORD);

    const before = await rows();
    await db.db.query(
      `DELETE FROM items WHERE id = 1; UPDATE items SET name = 'changed'; INSERT INTO items VALUES (9, 'nine')`,
    );
    expect(await rows()).not.toEqual(before);

    const restored = await restoreSnapshot({
      ...base(),
      ts: info.ts,
      onLine: (l) => lines.push(l),
    });
    expect(restored.sha256).toBe(info.sha256);
    expect(await rows()).toEqual(before);
    expect(lines.join('\n')).not.toContain(PASSWORD);
  });

  it('refuses a snapshot whose dump was modified, leaving the database alone', async () => {
    const info = await takeSnapshot(base());
    const bytes = await fs.readFile(info.path);
    bytes[bytes.length - 10] = (bytes[bytes.length - 10] ?? 0) ^ 0xff;
    await fs.writeFile(info.path, bytes);
    await db.db.query(`UPDATE items SET name = 'after'`);

    await expect(restoreSnapshot({ ...base(), ts: info.ts })).rejects.toMatchObject({
      code: 'CONFLICT',
      message: expect.stringContaining('refusing'),
    });
    expect((await rows()).every((r) => (r as { name: string }).name === 'after')).toBe(true);
  });

  it('refuses malformed timestamps and app names, and reports unknown snapshots', async () => {
    for (const ts of [
      '../../../etc/passwd',
      '20261123T004501123Z/../x',
      '20261123T004501123',
      '',
    ]) {
      await expect(restoreSnapshot({ ...base(), ts })).rejects.toMatchObject({
        code: 'BAD_REQUEST',
      });
    }
    await expect(restoreSnapshot({ ...base(), ts: '20200101T000000000Z' })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(takeSnapshot({ ...base(), app: '../other' })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
    await expect(listSnapshots({ app: '..', dir })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    expect(await fs.readdir(dir)).toEqual([]);
  });

  it('reports a missing database clearly', async () => {
    await expect(takeSnapshot({ ...base(), database: `${db.name}_nope` })).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: expect.stringContaining('does not exist'),
    });
  });
});

describe('listSnapshots / pruneSnapshots', () => {
  it('lists newest first, names same-millisecond snapshots apart, and prunes to N (re-runnable)', async () => {
    const times = [
      '2026-01-01T00:00:00.000Z',
      '2026-03-01T00:00:00.000Z',
      '2026-02-01T00:00:00.000Z',
      '2026-03-01T00:00:00.000Z',
    ];
    const taken = [];
    for (const t of times) taken.push(await takeSnapshot({ ...base(), now: () => new Date(t) }));
    expect(taken.map((s) => s.ts)).toEqual([
      '20260101T000000000Z',
      '20260301T000000000Z',
      '20260201T000000000Z',
      '20260301T000000001Z',
    ]);

    const listed = await listSnapshots({ app: 'shop', dir });
    expect(listed.map((s) => s.ts)).toEqual([
      '20260301T000000001Z',
      '20260301T000000000Z',
      '20260201T000000000Z',
      '20260101T000000000Z',
    ]);
    expect(listed[0]).toMatchObject({
      app: 'shop',
      database: db.name,
      sha256: taken[3]?.sha256,
      sizeBytes: taken[3]?.sizeBytes,
    });
    expect(listed[0]?.takenAt).toEqual(new Date('2026-03-01T00:00:00.001Z'));

    const removed = await pruneSnapshots({ app: 'shop', dir, keep: 2 });
    expect(removed.map((s) => s.ts)).toEqual(['20260201T000000000Z', '20260101T000000000Z']);
    expect(await filesIn()).toEqual([
      '20260301T000000000Z.dump',
      '20260301T000000000Z.json',
      '20260301T000000001Z.dump',
      '20260301T000000001Z.json',
    ]);
    expect(await pruneSnapshots({ app: 'shop', dir, keep: 2 })).toEqual([]);
    expect(await listSnapshots({ app: 'other', dir })).toEqual([]);
    await expect(pruneSnapshots({ app: 'shop', dir, keep: -1 })).rejects.toMatchObject({
      code: 'BAD_REQUEST',
    });
  });
});

describe('interrupted snapshots', () => {
  it('abort stops a pg_dump waiting on a lock and leaves no snapshot-looking file', async () => {
    const locker = await db.db.connect();
    cleanups.push(async () => {
      await locker.query('ROLLBACK').catch(() => {});
      locker.release();
    });
    await locker.query('BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE');

    const ac = new AbortController();
    const running = takeSnapshot({ ...base(), signal: ac.signal });
    running.catch(() => {});
    await waitFor(
      async () => (await dumpBackends(db)).some((b) => b.wait_event_type === 'Lock'),
      10_000,
    );
    const started = Date.now();
    ac.abort('test abort');
    await expect(running).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await filesIn()).toEqual([]);
    expect(await listSnapshots({ app: 'shop', dir })).toEqual([]);
    // client_connection_check_interval lets the server drop the killed pg_dump's session although it waits on a lock.
    await waitFor(async () => (await dumpBackends(db)).length === 0, 15_000);
  });

  it('the next snapshot removes leftovers of a killed one', async () => {
    const where = path.join(dir, 'shop');
    await fs.mkdir(where, { recursive: true });
    const deadPid = spawnSync('true').pid;
    const host = os.hostname().replace(/[^A-Za-z0-9-]/g, '-');
    const partial = `.20260101T000000000Z.dump.${host}.${deadPid}.abcd1234.partial`;
    const livePartial = `.20260101T000000000Z.dump.${host}.${process.pid}.abcd1234.partial`;
    await fs.writeFile(path.join(where, partial), 'half a dump');
    await fs.writeFile(path.join(where, livePartial), 'someone is writing this');
    await fs.writeFile(path.join(where, '20250101T000000000Z.dump'), 'dump without sidecar');
    const old = new Date(Date.now() - 3_600_000);
    await fs.utimes(path.join(where, '20250101T000000000Z.dump'), old, old);

    const lines: string[] = [];
    const info = await takeSnapshot({ ...base(), onLine: (l) => lines.push(l) });
    expect(await filesIn()).toEqual([livePartial, `${info.ts}.dump`, `${info.ts}.json`].sort());
    expect(lines.filter((l) => l.startsWith('removed leftover'))).toHaveLength(2);
  });
});

describe('pg_dump problems', () => {
  it('says to install postgresql-client when pg_dump is missing', async () => {
    const err = await takeSnapshot({
      ...base(),
      tools: { pgDump: '/nonexistent/bin/pg_dump' },
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringContaining('postgresql-client'),
    });
    const err2 = await restoreSnapshot({
      ...base(),
      ts: (await takeSnapshot(base())).ts,
      tools: { pgRestore: '/nonexistent/pg_restore' },
    }).catch((e: unknown) => e);
    expect(err2).toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringContaining('pg_restore is not installed'),
    });
  });

  it('refuses when the server is newer than pg_dump', async () => {
    const old = await fakeTool(`echo "pg_dump (PostgreSQL) 9.6.24"`);
    await expect(takeSnapshot({ ...base(), tools: { pgDump: old } })).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      message: expect.stringMatching(/version 15.*pg_dump \(version 9\)/),
    });
    expect(await filesIn()).toEqual([]);
  });

  it('passes the password in PGPASSWORD, never in argv or messages', async () => {
    const record = path.join(dir, 'record.txt');
    const tool = await fakeTool(
      `[ "$1" = --version ] && { echo "pg_dump (PostgreSQL) 15.2"; exit 0; }\n` +
        `echo "ARGS $*" > ${record}\necho "ENV $PGPASSWORD" >> ${record}\n` +
        `echo "pg_dump: error: could not connect with password $PGPASSWORD" >&2\nexit 1`,
    );
    const lines: string[] = [];
    const err = (await takeSnapshot({
      ...base(),
      tools: { pgDump: tool },
      onLine: (l) => lines.push(l),
    }).catch((e: unknown) => e)) as Error;
    const recorded = await fs.readFile(record, 'utf8');
    expect(recorded).toContain(`ENV ${PASSWORD}`);
    expect(recorded.split('\n')[0]).toContain(`--dbname=postgres://postgres@127.0.0.1`);
    expect(recorded.split('\n')[0]).not.toContain(PASSWORD);
    expect(err).toMatchObject({
      code: 'COMMAND_FAILED',
      message: expect.stringContaining('could not connect with password ***'),
    });
    expect(
      JSON.stringify({ m: err.message, d: (err as { details?: unknown }).details, lines }),
    ).not.toContain(PASSWORD);
    expect(await filesIn()).toEqual([]);
  });
});

async function dumpBackends(t: TestDatabase): Promise<{ wait_event_type: string | null }[]> {
  const res = await t.db.query(
    `SELECT wait_event_type FROM pg_stat_activity WHERE datname = $1 AND application_name = 'pg_dump'`,
    [t.name],
  );
  return res.rows;
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}
