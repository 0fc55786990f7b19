/**
 * Deploy steps snapshot and migrate through the real engine, against real PostgreSQL, pg_dump and a
 * real git repository (ensureSource clones it): first deploy creates the database, later deploys
 * snapshot before migrating, failed migrations fail the run with a true ledger, retention prunes.
 */
import { mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { migrate, migrationsDirIn } from '../../src/pipelines/deploy/steps/migrate.js';
import { snapshot } from '../../src/pipelines/deploy/steps/snapshot.js';
import type { MigrateOutput, SnapshotOutput } from '../../src/pipelines/deploy/types.js';
import type { PipelineDefinition } from '../../src/queues/pipeline.js';
import { SnapshotStore } from '../../src/pipelines/deploy/snapshot-store.js';
import { takeSnapshot } from '../../src/shared/drivers/postgres-snapshot.js';
import type { DeployServices } from '../../src/pipelines/deploy/types.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { waitForRun } from '../support/norn.js';
import {
  adminUrl,
  after,
  appDbName,
  appDbUrl,
  createDatabase,
  databaseExists,
  dropDatabase,
  makeRepo,
  recordClone,
  registerSpec,
  sql,
  startSystem,
} from '../support/deploy-data/harness.js';

const deploy: PipelineDefinition<DeployServices> = {
  name: 'deploy',
  version: '1',
  steps: [recordClone, snapshot, migrate, after],
};

let tdb: TestDatabase;
let h: Awaited<ReturnType<typeof startSystem>>;
let repos: string;
const databases: string[] = [];

beforeAll(async () => {
  tdb = await createTestDatabase();
  h = await startSystem(tdb.url, [deploy]);
  repos = await mkdtemp(join(tmpdir(), 'norn-dd-repos-'));
});
afterAll(async () => {
  await h?.close();
  for (const d of databases) await dropDatabase(d);
  await tdb?.drop();
  await rm(repos, { recursive: true, force: true });
});

function newAppDb(): string {
  const name = appDbName();
  databases.push(name);
  return name;
}

async function deployRun(appId: string, repo: string, spec: Record<string, unknown>, ref = 'main') {
  const req = await h.system.runs.request({
    appId,
    pipeline: 'deploy',
    params: { repo, ref },
    spec,
  });
  const run = await waitForRun(h.system, req.deploymentId, undefined, 30_000);
  const steps = Object.fromEntries((await h.system.store.steps(run.id)).map((s) => [s.name, s]));
  const outputs = await h.system.store.outputs(run.id);
  // A skipped step keeps no output; its reason is on its deploy.step event.
  const skipped: Record<string, string> = {};
  for (const e of await h.system.events.bySaga(run.sagaId)) {
    if (e.payload.status === 'skipped')
      skipped[e.payload.step as string] = e.payload.reason as string;
  }
  return { run, steps, outputs, skipped };
}

const ledger = async (db: string) =>
  (await sql<{ name: string }>(appDbUrl(db), 'SELECT name FROM norn_migrations ORDER BY name')).map(
    (r) => r.name,
  );

describe('snapshot + migrate', () => {
  it('first deploy creates the database and migrates; the next snapshots first and applies only the new migration', async () => {
    const db = newAppDb();
    const repo = await makeRepo(repos, 'shop');
    await repo.commit({
      'db/migrations/001_items.sql': 'CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);',
      'db/migrations/002_seed.sql': "INSERT INTO items VALUES (1, 'one'), (2, 'two');",
    });
    const spec = await registerSpec(h.system, {
      name: 'shop',
      migrations: 'db/migrations',
      infrastructure: { postgres: { database: db } },
    });

    const first = await deployRun('shop', repo.path, spec);
    expect(first.run.status).toBe('succeeded');
    expect(first.steps.snapshot!.status).toBe('skipped');
    expect(first.skipped).toEqual({
      snapshot: `database ${db} does not exist yet: nothing to snapshot`,
    });
    expect(first.outputs.migrate).toEqual({
      database: db,
      applied: ['001_items.sql', '002_seed.sql'],
      alreadyApplied: [],
    } satisfies MigrateOutput);
    expect(await ledger(db)).toEqual(['001_items.sql', '002_seed.sql']);
    expect(await sql(appDbUrl(db), 'SELECT id, name FROM items ORDER BY id')).toEqual([
      { id: 1, name: 'one' },
      { id: 2, name: 'two' },
    ]);

    await repo.commit({
      'db/migrations/003_price.sql': 'ALTER TABLE items ADD COLUMN price int NOT NULL DEFAULT 0;',
    });
    const second = await deployRun('shop', repo.path, spec);
    expect(second.run.status).toBe('succeeded');
    const snap = second.outputs.snapshot as SnapshotOutput;
    expect(snap).toMatchObject({ database: db, pruned: [] });
    expect(snap.sizeBytes).toBeGreaterThan(0);
    expect(snap.ts).toMatch(/^\d{8}T\d{9}Z$/);
    expect(await readdir(join(h.snapshotDir, 'shop'))).toEqual([
      `${snap.ts}.dump`,
      `${snap.ts}.json`,
    ]);
    expect(second.outputs.migrate).toEqual({
      database: db,
      applied: ['003_price.sql'],
      alreadyApplied: ['001_items.sql', '002_seed.sql'],
    });
    expect(await ledger(db)).toEqual(['001_items.sql', '002_seed.sql', '003_price.sql']);

    const res = await h.call('GET', '/api/apps/shop/snapshots');
    expect(res.status).toBe(200);
    const { snapshots } = (await res.json()) as { snapshots: Array<Record<string, unknown>> };
    expect(snapshots).toHaveLength(1);
    expect(snapshots[0]).toMatchObject({
      appId: 'shop',
      database: db,
      ts: snap.ts,
      sizeBytes: snap.sizeBytes,
      sha256: snap.sha256,
      deploymentId: second.run.id,
    });
  });

  it('a failing migration fails the run at migrate, naming the file; the ledger holds what was applied and nothing later ran', async () => {
    const db = newAppDb();
    const repo = await makeRepo(repos, 'broken');
    await repo.commit({
      'migrations/001_ok.sql': 'CREATE TABLE ok (id int);',
      'migrations/002_bad.sql': 'CREATE TABLE half (id int);\nCREATE TABLEE nope (id int);',
      'migrations/003_later.sql': 'CREATE TABLE later (id int);',
    });
    const spec = await registerSpec(h.system, {
      name: 'broken',
      migrations: 'migrations',
      infrastructure: { postgres: { database: db } },
    });

    const { run, steps } = await deployRun('broken', repo.path, spec);
    expect(run).toMatchObject({ status: 'failed', failedStep: 'migrate' });
    expect(run.error).toContain('002_bad.sql');
    expect(steps.migrate!.attempts).toBe(1); // bad SQL is not retried
    expect(steps.after!.status).toBe('not_run');
    expect(await ledger(db)).toEqual(['001_ok.sql']);
    const tables = (
      await sql<{ t: string }>(
        appDbUrl(db),
        "SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
      )
    ).map((r) => r.t);
    expect(tables).toEqual(['norn_migrations', 'ok']); // 002 rolled back whole, 003 never ran
  });

  it('keeps only the newest snapshots.keep snapshots, on disk and in the api', async () => {
    const db = newAppDb();
    await createDatabase(db);
    await sql(appDbUrl(db), 'CREATE TABLE t (n int); INSERT INTO t VALUES (1);');
    const repo = await makeRepo(repos, 'kept');
    await repo.commit({ 'README.md': 'no migrations\n' });
    const spec = await registerSpec(h.system, {
      name: 'kept',
      snapshots: { keep: 2 },
      infrastructure: { postgres: { database: db } },
    });

    const taken: SnapshotOutput[] = [];
    for (let i = 0; i < 4; i++) {
      const { run, outputs, skipped } = await deployRun('kept', repo.path, spec);
      expect(run.status).toBe('succeeded');
      expect(skipped).toEqual({ migrate: 'no migrations directory declared' });
      taken.push(outputs.snapshot as SnapshotOutput);
    }
    expect(taken.map((t) => t.pruned)).toEqual([[], [], [taken[0]!.ts], [taken[1]!.ts]]);
    const newest = [taken[3]!.ts, taken[2]!.ts];
    expect((await readdir(join(h.snapshotDir, 'kept'))).sort()).toEqual(
      newest.flatMap((ts) => [`${ts}.dump`, `${ts}.json`]).sort(),
    );
    const { snapshots } = (await (await h.call('GET', '/api/apps/kept/snapshots')).json()) as {
      snapshots: Array<{ ts: string }>;
    };
    expect(snapshots.map((s) => s.ts)).toEqual(newest);
  });

  it('heals the table after an interrupted run: records a snapshot left unrecorded, drops rows whose files are gone', async () => {
    const db = newAppDb();
    await createDatabase(db);
    const repo = await makeRepo(repos, 'heal');
    await repo.commit({ 'README.md': 'x\n' });
    const spec = await registerSpec(h.system, {
      name: 'heal',
      infrastructure: { postgres: { database: db } },
    });
    // As if a worker died after pg_dump finished but before recording it …
    const orphan = await takeSnapshot({
      serverUrl: adminUrl(),
      database: db,
      app: 'heal',
      dir: h.snapshotDir,
    });
    // … and another after pruning a file but before marking its row.
    const store = new SnapshotStore(h.system.db);
    await store.record({
      appId: 'heal',
      database: db,
      ts: '20000101T000000000Z',
      takenAt: new Date(0),
      sizeBytes: 1,
      location: '/gone',
      sha256: 'x',
      deploymentId: null,
    });

    const { run, outputs } = await deployRun('heal', repo.path, spec);
    expect(run.status).toBe('succeeded');
    const listed = await store.list('heal');
    expect(listed.map((r) => [r.ts, r.deploymentId])).toEqual([
      [(outputs.snapshot as SnapshotOutput).ts, run.id],
      [orphan.ts, null],
    ]);
  });

  it('skips both steps for an app without infrastructure.postgres', async () => {
    const repo = await makeRepo(repos, 'plain');
    await repo.commit({ 'migrations/001.sql': 'SELECT 1;' });
    const spec = await registerSpec(h.system, { name: 'plain', migrations: 'migrations' });
    const { run, skipped } = await deployRun('plain', repo.path, spec);
    expect(run.status).toBe('succeeded');
    expect(skipped).toEqual({
      snapshot: 'no infrastructure.postgres declared',
      migrate: 'no infrastructure.postgres declared',
    });
  });

  it('refuses a migrations directory that leaves the repository through a symlink', async () => {
    const db = newAppDb();
    const outside = await mkdtemp(join(tmpdir(), 'norn-dd-outside-'));
    onTestFinished(() => rm(outside, { recursive: true, force: true }));
    const repo = await makeRepo(repos, 'escape');
    await repo.commit({ 'README.md': 'x\n' });
    await repo.symlink('migrations', outside);
    const spec = await registerSpec(h.system, {
      name: 'escape',
      migrations: 'migrations',
      infrastructure: { postgres: { database: db } },
    });
    const { run } = await deployRun('escape', repo.path, spec);
    expect(run).toMatchObject({ status: 'failed', failedStep: 'migrate' });
    expect(run.error).toContain('leaves the repository');

    // Also a single migration file linked outside, and `..` (the spec refuses it too, but a pinned spec is not re-checked).
    const root = await mkdtemp(join(tmpdir(), 'norn-dd-root-'));
    onTestFinished(() => rm(root, { recursive: true, force: true }));
    await mkdir(join(root, 'm'));
    await symlink(join(outside, 'x.sql'), join(root, 'm', '001.sql'));
    await expect(migrationsDirIn(root, 'm')).rejects.toThrow(/symlink leading outside/);
    await expect(migrationsDirIn(root, '../')).rejects.toThrow(/leaves the repository/);
    await expect(migrationsDirIn(root, 'missing')).rejects.toThrow(
      /does not exist in the repository/,
    );
  });

  it('fails clearly at snapshot when NORN_APP_DATABASE_URL is not set', async () => {
    const other = await startSystem(tdb.url, [deploy], { NORN_APP_DATABASE_URL: '' });
    onTestFinished(() => other.close());
    const db = newAppDb();
    const repo = await makeRepo(repos, 'nourl');
    await repo.commit({ 'migrations/001.sql': 'CREATE TABLE a (id int);' });
    const spec = await registerSpec(other.system, {
      name: 'nourl',
      migrations: 'migrations',
      infrastructure: { postgres: { database: db } },
    });
    const req = await other.system.runs.request({
      appId: 'nourl',
      pipeline: 'deploy',
      params: { repo: repo.path, ref: 'main' },
      spec,
    });
    const run = await waitForRun(other.system, req.deploymentId);
    expect(run).toMatchObject({ status: 'failed', failedStep: 'snapshot' });
    expect(run.error).toContain(
      'app declares infrastructure.postgres but NORN_APP_DATABASE_URL is not set',
    );
    expect(await databaseExists(db)).toBe(false);
  });
});
