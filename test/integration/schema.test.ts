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
  'deployments',
  'deployment_steps',
  'saga_events',
  'app_leases',
  'forge_state',
  'snapshots',
  'schema_migrations',
];

describe('migrations', () => {
  it('`main.ts migrate` creates every table; a second run applies nothing', async () => {
    const first = spawnNorn('migrate', testEnv(empty.url, { LOG_LEVEL: 'info' }));
    expect(await first.exited).toBe(0);
    expect(first.output()).toContain('001_foundation');
    const { rows } = await empty.db.query(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`,
    );
    expect(rows.map((r) => r.table_name)).toEqual(expect.arrayContaining(TABLES));
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
    await expect(empty.db.query(`UPDATE saga_events SET type = 'x'`)).rejects.toThrow(
      /append-only: UPDATE/,
    );
    await expect(empty.db.query(`DELETE FROM saga_events`)).rejects.toThrow(/append-only: DELETE/);
    await expect(empty.db.query(`TRUNCATE saga_events`)).rejects.toThrow(/append-only: TRUNCATE/);
    const { rows } = await empty.db.query(`SELECT count(*)::int AS n FROM saga_events`);
    expect(rows[0].n).toBe(1);
  });

  it('refuses to run when an applied migration was edited', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'norn-migrations-'));
    const src = fileURLToPath(new URL('../../src/shared/db/migrations/', import.meta.url));
    for (const f of readdirSync(src)) copyFileSync(join(src, f), join(dir, f));
    await migrate(empty.db, dir + '/');
    writeFileSync(join(dir, '001_foundation.sql'), '-- edited\n', { flag: 'a' });
    await expect(migrate(empty.db, dir + '/')).rejects.toThrow(
      /001_foundation was changed after it was applied/,
    );
  });
});
