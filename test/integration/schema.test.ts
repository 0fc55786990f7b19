/** The PostgreSQL schema: versioned migrations applied by a command and at start; append-only saga log. */
import { mkdtempSync, writeFileSync, copyFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../src/shared/db/migrate.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { testEnv } from '../support/norn.js';
import { spawnNorn } from '../support/processes.js';

let empty: TestDatabase;
beforeAll(async () => {
  empty = await createTestDatabase({ empty: true });
});
afterAll(async () => {
  await empty.drop();
});

const TABLES = [
  'apps',
  'runs',
  'run_steps',
  'events',
  'leases',
  'run_hooks',
  'releases',
  'snapshots',
  'forge_state',
  'alert_deliveries',
  'webhook_deliveries',
  'webhook_refusals',
  'schema_migrations',
  // 003_stacks.sql
  'stacks',
  'plan_artifacts',
  'drift_state',
  // 006_sessions.sql
  'sessions',
];

describe('migrations', () => {
  it('`main.ts migrate` creates every table; a second run applies nothing', async () => {
    const first = spawnNorn('migrate', testEnv(empty.url, { LOG_LEVEL: 'info' }));
    expect(await first.exited).toBe(0);
    expect(first.output()).toContain('001_baseline');
    expect(first.output()).toContain('002_webhooks');
    const { rows } = await empty.db.query(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`,
    );
    // Every table is one the code uses: no forge_state until the forge pipeline gives it one.
    expect(rows.map((r) => r.table_name).sort()).toEqual([...TABLES].sort());
    expect(await migrate(empty.db)).toEqual([]);
  }, 30_000);

  it('the saga event log refuses UPDATE, DELETE and TRUNCATE', async () => {
    await migrate(empty.db);
    await empty.db.query(
      `INSERT INTO apps (id, spec, source, source_format) VALUES ('log-app', '{}', '{}', 'json')`,
    );
    await empty.db.query(
      `SELECT norn_append_event('log-app', gen_random_uuid(), 'test.one', '{}')`,
    );
    await expect(empty.db.query(`UPDATE events SET type = 'x'`)).rejects.toThrow(
      /append-only: UPDATE/,
    );
    await expect(empty.db.query(`DELETE FROM events`)).rejects.toThrow(/append-only: DELETE/);
    await expect(empty.db.query(`TRUNCATE events`)).rejects.toThrow(/append-only: TRUNCATE/);
    const { rows } = await empty.db.query(`SELECT count(*)::int AS n FROM events`);
    expect(rows[0].n).toBe(1);
  });

  it('refuses to run when an applied migration was edited', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'norn-migrations-'));
    const src = fileURLToPath(new URL('../../src/shared/db/migrations/', import.meta.url));
    for (const f of readdirSync(src)) copyFileSync(join(src, f), join(dir, f));
    await migrate(empty.db, dir + '/');
    writeFileSync(join(dir, '001_baseline.sql'), '-- edited\n', { flag: 'a' });
    await expect(migrate(empty.db, dir + '/')).rejects.toThrow(
      /001_baseline was changed after it was applied/,
    );
  });

  it('refuses, changing nothing, a database made by the migrations the baseline folded', async () => {
    const old = await createTestDatabase({ empty: true });
    try {
      // What 001_foundation … 005_docker_releases left: their records, and their tables.
      await old.db.query(`CREATE TABLE schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now())`);
      await old.db.query(`CREATE TABLE deployments (id uuid PRIMARY KEY)`);
      await old.db.query(
        `INSERT INTO schema_migrations (version, name, checksum)
         VALUES (1, '001_foundation', 'x'), (2, '002_releases', 'y')`,
      );
      await expect(migrate(old.db)).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
        message: expect.stringMatching(
          /made by migrations this version of norn does not have \(001_foundation, 002_releases\).*Nothing was changed.*point DATABASE_URL at a new database/,
        ),
      });
      // The process says so too, and exits non-zero.
      const proc = spawnNorn('migrate', testEnv(old.url, { LOG_LEVEL: 'info' }));
      expect(await proc.exited).not.toBe(0);
      expect(proc.output()).toMatch(/001_foundation, 002_releases/);
      const { rows } = await old.db.query(
        `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`,
      );
      expect(rows.map((r) => r.table_name)).toEqual(['deployments', 'schema_migrations']);
    } finally {
      await old.drop();
    }
  }, 30_000);

  it('refuses norn-named tables that no migration record accounts for', async () => {
    const odd = await createTestDatabase({ empty: true });
    try {
      await odd.db.query(`CREATE TABLE apps (id text PRIMARY KEY)`);
      await expect(migrate(odd.db)).rejects.toThrow(
        /already holds tables named like norn's \(apps\) but no record/,
      );
    } finally {
      await odd.drop();
    }
  });
});
