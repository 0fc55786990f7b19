import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  applyMigrations,
  readMigrationDir,
  type MigrationFile,
} from '../../src/shared/drivers/postgres-migrations.js';
import { splitSqlStatements } from '../../src/shared/drivers/sql-split.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

let db: TestDatabase;
let dir: string;

beforeEach(async () => {
  db = await createTestDatabase({ empty: true });
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'norn-mig-'));
});
afterEach(async () => {
  await db.drop();
  await fs.rm(dir, { recursive: true, force: true });
});

async function write(files: Record<string, string>): Promise<MigrationFile[]> {
  for (const [name, sql] of Object.entries(files)) await fs.writeFile(path.join(dir, name), sql);
  return readMigrationDir(dir);
}
async function ledger(): Promise<string[]> {
  return (
    await db.db.query<{ name: string }>('SELECT name FROM norn_migrations ORDER BY name')
  ).rows.map((r) => r.name);
}
async function tableExists(name: string): Promise<boolean> {
  return (await db.db.query('SELECT to_regclass($1) AS t', [name])).rows[0].t !== null;
}

describe('readMigrationDir', () => {
  it('reads *.sql files sorted by name and ignores the rest', async () => {
    await fs.mkdir(path.join(dir, '000_dir.sql'));
    const files = await write({
      '010_b.sql': 'SELECT 2;\r\n',
      '002_a.sql': '\uFEFFSELECT 1;',
      'README.md': '#',
      '001_x.sql.bak': 'x',
    });
    expect(files.map((f) => f.name)).toEqual(['002_a.sql', '010_b.sql']);
    expect(files[0]?.sql).toBe('SELECT 1;');
    expect(files[1]?.sql).toBe('SELECT 2;\n');
    expect(files[1]?.checksum).toMatch(/^[0-9a-f]{64}$/);
  });

  it('says clearly when the directory is missing', async () => {
    await expect(readMigrationDir(path.join(dir, 'nope'))).rejects.toMatchObject({
      code: 'NOT_FOUND',
      message: expect.stringContaining('migrations directory'),
    });
  });
});

describe('applyMigrations', () => {
  it('applies in name order once; a second run applies nothing', async () => {
    const files = await write({
      '002_seed.sql': `INSERT INTO notes (body) VALUES ('hello');`,
      '001_create.sql': 'CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL);',
      '003_more.sql': `ALTER TABLE notes ADD COLUMN tag text; UPDATE notes SET tag = 'x';`,
    });
    const lines: string[] = [];
    const first = await applyMigrations({
      databaseUrl: db.url,
      files,
      onLine: (l) => lines.push(l),
    });
    expect(first).toEqual({
      applied: ['001_create.sql', '002_seed.sql', '003_more.sql'],
      alreadyApplied: [],
    });
    expect(lines).toContain('applying 002_seed.sql');
    expect(await ledger()).toEqual(['001_create.sql', '002_seed.sql', '003_more.sql']);

    const second = await applyMigrations({
      databaseUrl: db.url,
      files: await readMigrationDir(dir),
    });
    expect(second).toEqual({
      applied: [],
      alreadyApplied: ['001_create.sql', '002_seed.sql', '003_more.sql'],
    });
    expect((await db.db.query('SELECT body, tag FROM notes')).rows).toEqual([
      { body: 'hello', tag: 'x' },
    ]);
  });

  it('a failing file is rolled back and not recorded; earlier ones stay, later ones do not run', async () => {
    const files = await write({
      '001_ok.sql': 'CREATE TABLE a (id int);',
      '002_bad.sql': 'INSERT INTO a VALUES (1);\nSELECT * FROM no_such_table;\n',
      '003_after.sql': 'CREATE TABLE c (id int);',
    });
    const err = await applyMigrations({ databaseUrl: db.url, files }).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'STEP_FAILED',
      message: 'migration 002_bad.sql failed: relation "no_such_table" does not exist (line 2)',
      details: { sqlState: '42P01' },
    });
    expect(await ledger()).toEqual(['001_ok.sql']);
    expect((await db.db.query('SELECT count(*)::int AS n FROM a')).rows[0].n).toBe(0);
    expect(await tableExists('c')).toBe(false);
  });

  it('refuses to run anything when an applied file changed', async () => {
    await applyMigrations({
      databaseUrl: db.url,
      files: await write({ '001_t.sql': 'CREATE TABLE t (id int);' }),
    });
    const files = await write({
      '001_t.sql': 'CREATE TABLE t (id bigint);',
      '002_u.sql': 'CREATE TABLE u (id int);',
    });
    await expect(applyMigrations({ databaseUrl: db.url, files })).rejects.toMatchObject({
      code: 'CONFLICT',
      message: expect.stringContaining('migration 001_t.sql changed after being applied'),
    });
    expect(await ledger()).toEqual(['001_t.sql']);
    expect(await tableExists('u')).toBe(false);
  });

  it('runs `-- norn:no-transaction` files statement by statement, outside a transaction', async () => {
    await applyMigrations({
      databaseUrl: db.url,
      files: await write({
        '001_t.sql': 'CREATE TABLE t (id int, v text); INSERT INTO t VALUES (1, $$a;b$$);',
      }),
    });
    const body = `CREATE INDEX CONCURRENTLY t_id ON t (id);
CREATE FUNCTION t_count() RETURNS bigint LANGUAGE sql AS $fn$ SELECT count(*) FROM t; $fn$;
-- a comment; with a semicolon
CREATE INDEX CONCURRENTLY t_v ON t (v);`;
    // Without the marker the same file cannot run: PostgreSQL refuses CONCURRENTLY inside a transaction.
    const inTx = await write({ '002_idx.sql': body });
    await expect(applyMigrations({ databaseUrl: db.url, files: inTx })).rejects.toMatchObject({
      code: 'STEP_FAILED',
      message: expect.stringContaining('cannot run inside a transaction block'),
    });
    expect(await ledger()).toEqual(['001_t.sql']);

    const files = await write({ '002_idx.sql': `-- norn:no-transaction\n${body}` });
    expect((await applyMigrations({ databaseUrl: db.url, files })).applied).toEqual([
      '002_idx.sql',
    ]);
    const idx = await db.db
      .query(`SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
      WHERE i.indrelid = 't'::regclass AND i.indisvalid ORDER BY 1`);
    expect(idx.rows.map((r) => r.relname)).toEqual(['t_id', 't_v']);
    expect((await db.db.query('SELECT t_count() AS n')).rows[0].n).toBe(1);
    expect(await ledger()).toEqual(['001_t.sql', '002_idx.sql']);
  });

  it('serialises concurrent appliers: every migration runs exactly once', async () => {
    const files = await write({
      '001_runs.sql':
        "CREATE TABLE runs (name text); SELECT pg_sleep(0.5); INSERT INTO runs VALUES ('001');",
      '002_runs.sql': `INSERT INTO runs VALUES ('002');`,
    });
    const lines: string[] = [];
    const results = await Promise.all([
      applyMigrations({ databaseUrl: db.url, files, onLine: (l) => lines.push(l) }),
      applyMigrations({ databaseUrl: db.url, files, onLine: (l) => lines.push(l) }),
    ]);
    expect(results.flatMap((r) => r.applied).sort()).toEqual(['001_runs.sql', '002_runs.sql']);
    expect(results.some((r) => r.applied.length === 0 && r.alreadyApplied.length === 2)).toBe(true);
    expect(lines.some((l) => l.includes('waiting'))).toBe(true);
    expect(
      (await db.db.query('SELECT name FROM runs ORDER BY name')).rows.map((r) => r.name),
    ).toEqual(['001', '002']);
  });

  it('abort cancels the running statement and rolls its migration back', async () => {
    const files = await write({
      '001_ok.sql': 'CREATE TABLE a (id int);',
      '002_slow.sql': 'CREATE TABLE b (id int);\nSELECT pg_sleep(30);',
      '003_never.sql': 'CREATE TABLE c (id int);',
    });
    const ac = new AbortController();
    const running = applyMigrations({ databaseUrl: db.url, files, signal: ac.signal });
    running.catch(() => {});
    await waitFor(async () => (await sleepingBackends()) > 0, 10_000);
    const started = Date.now();
    ac.abort('test abort');
    await expect(running).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await sleepingBackends()).toBe(0);
    expect(await ledger()).toEqual(['001_ok.sql']);
    expect(await tableExists('b')).toBe(false);
    expect(await tableExists('c')).toBe(false);
    await expect(
      applyMigrations({ databaseUrl: db.url, files, signal: ac.signal }),
    ).rejects.toMatchObject({ code: 'CANCELLED' });
  });

  it('keeps the password out of error messages', async () => {
    const u = new URL(db.url);
    u.password = 'Pw-in-url-123';
    const files = await write({ '001_leak.sql': `SELECT 'Pw-in-url-123'::int;` });
    const err = (await applyMigrations({ databaseUrl: u.toString(), files }).catch(
      (e: unknown) => e,
    )) as Error;
    expect(err).toMatchObject({
      code: 'STEP_FAILED',
      message: expect.stringContaining('invalid input syntax for type integer: "***"'),
    });
    expect(err.message).not.toContain('Pw-in-url-123');
  });
});

describe('splitSqlStatements', () => {
  it('splits on semicolons outside strings, identifiers, dollar quotes and comments', () => {
    const sql = `-- norn:no-transaction
SELECT 'a;''b';  SELECT E'c\\';d' AS "x;y";
/* c1; /* nested; */ still; */ DO $$ BEGIN PERFORM 1; END $$;
SELECT $1::int, a$b$c FROM t; -- trailing; comment
;;`;
    expect(splitSqlStatements(sql)).toEqual([
      `-- norn:no-transaction\nSELECT 'a;''b'`,
      `SELECT E'c\\';d' AS "x;y"`,
      `/* c1; /* nested; */ still; */ DO $$ BEGIN PERFORM 1; END $$`,
      'SELECT $1::int, a$b$c FROM t',
    ]);
    expect(splitSqlStatements('-- only a comment\n')).toEqual([]);
  });
});

async function sleepingBackends(): Promise<number> {
  const res = await db.db.query(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND query LIKE '%pg_sleep(30)%' AND state = 'active' AND pid <> pg_backend_pid()`,
    [db.name],
  );
  return res.rows[0].n;
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}
