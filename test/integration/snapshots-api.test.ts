/**
 * GET /api/apps/:id/snapshots and POST /api/apps/:id/snapshots/:ts/restore over the real api,
 * engine, PostgreSQL and pg_restore: a restore is a queued, evented `restore` run that waits for
 * whatever the app is running and puts the data back.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { snapshot } from '../../src/pipelines/deploy/steps/snapshot.js';
import type { DeployServices, SnapshotOutput } from '../../src/pipelines/deploy/types.js';
import { restorePipeline } from '../../src/pipelines/restore.js';
import type { PipelineDefinition } from '../../src/queues/pipeline.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { waitFor, waitForRun } from '../support/norn.js';
import {
  appDbName,
  appDbUrl,
  createDatabase,
  dropDatabase,
  holdPipeline,
  registerSpec,
  sql,
  startSystem,
} from '../support/deploy-data/harness.js';

const deploy: PipelineDefinition<DeployServices> = {
  name: 'deploy',
  version: '1',
  steps: [snapshot],
};

let tdb: TestDatabase;
let h: Awaited<ReturnType<typeof startSystem>>;
const databases: string[] = [];

beforeAll(async () => {
  tdb = await createTestDatabase();
  h = await startSystem(tdb.url, [deploy, restorePipeline, holdPipeline]);
});
afterAll(async () => {
  await h?.close();
  for (const d of databases) await dropDatabase(d);
  await tdb?.drop();
});

/** An app whose database holds items 1 and 2, with one snapshot of that taken by a deploy. */
async function appWithSnapshot(name: string) {
  const db = appDbName();
  databases.push(db);
  await createDatabase(db);
  await sql(
    appDbUrl(db),
    "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'one'), (2, 'two');",
  );
  const spec = await registerSpec(h.system, {
    name,
    infrastructure: { postgres: { database: db } },
  });
  const req = await h.system.runs.request({ appId: name, pipeline: 'deploy', params: {}, spec });
  const run = await waitForRun(h.system, req.deploymentId);
  expect(run.status).toBe('succeeded');
  const snap = (await h.system.store.outputs(run.id)).snapshot as SnapshotOutput;
  return { db, snap, items: () => sql(appDbUrl(db), 'SELECT id, name FROM items ORDER BY id') };
}

type Accepted = { deploymentId: string; sagaId: string; status: string; position: number };

describe('snapshots api', () => {
  it('lists snapshots and restores one as a restore run that puts the data back', async () => {
    const app = await appWithSnapshot('rest');
    const listed = await h.call('GET', '/api/apps/rest/snapshots');
    expect(listed.status).toBe(200);
    expect(
      ((await listed.json()) as { snapshots: Array<{ ts: string }> }).snapshots.map((s) => s.ts),
    ).toEqual([app.snap.ts]);

    await sql(
      appDbUrl(app.db),
      "DELETE FROM items WHERE id = 1; UPDATE items SET name = 'changed'; INSERT INTO items VALUES (9, 'nine');",
    );
    const res = await h.call('POST', `/api/apps/rest/snapshots/${app.snap.ts}/restore`);
    expect(res.status).toBe(202);
    const accepted = (await res.json()) as Accepted;
    expect(accepted).toMatchObject({
      deploymentId: expect.any(String),
      sagaId: expect.any(String),
      status: expect.any(String),
      position: 0,
    });

    const run = await waitForRun(h.system, accepted.deploymentId);
    expect(run).toMatchObject({
      status: 'succeeded',
      pipeline: 'restore',
      params: { ts: app.snap.ts },
    });
    expect(await app.items()).toEqual([
      { id: 1, name: 'one' },
      { id: 2, name: 'two' },
    ]);
    const types = (await h.system.events.bySaga(accepted.sagaId)).map((e) => e.type);
    expect(types[0]).toBe('restore.queued');
    expect(types).toContain('restore.step');
    expect(types.at(-1)).toBe('restore.completed');
    expect(types.every((t) => t.startsWith('restore.'))).toBe(true);
  });

  it('answers 404 for an unknown app or snapshot and 400 for a malformed timestamp, requesting no run', async () => {
    const app = await appWithSnapshot('miss');
    const before = (await h.system.store.listRuns('miss', 50)).length;
    expect((await h.call('GET', '/api/apps/nope/snapshots')).status).toBe(404);
    expect((await h.call('POST', `/api/apps/nope/snapshots/${app.snap.ts}/restore`)).status).toBe(
      404,
    );
    const unknown = await h.call('POST', '/api/apps/miss/snapshots/20000101T000000000Z/restore');
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { message: string } }).error.message).toContain(
      '20000101T000000000Z',
    );
    for (const bad of ['latest', '2026-01-01', '..%2F..%2Fetc', '20000101T000000000Zx']) {
      const r = await h.call('POST', `/api/apps/miss/snapshots/${bad}/restore`);
      expect(r.status, bad).toBe(400);
    }
    expect((await h.system.store.listRuns('miss', 50)).length).toBe(before);
  });

  it('queues a restore behind the run the app is busy with, and runs it after', async () => {
    const app = await appWithSnapshot('busy');
    const gate = join(h.root, 'busy-gate');
    const hold = await h.system.runs.request({ appId: 'busy', pipeline: 'hold', params: { gate } });
    await waitForRun(h.system, hold.deploymentId, ['running']);
    await sql(appDbUrl(app.db), 'DELETE FROM items');

    const res = await h.call('POST', `/api/apps/busy/snapshots/${app.snap.ts}/restore`);
    expect(res.status).toBe(202);
    const accepted = (await res.json()) as Accepted;
    expect(accepted).toMatchObject({ status: 'queued', position: 1 });
    await new Promise((r) => setTimeout(r, 500));
    expect((await h.system.store.getRun(accepted.deploymentId))?.status).toBe('queued');
    expect(await app.items()).toEqual([]);

    await writeFile(gate, '');
    const held = await waitForRun(h.system, hold.deploymentId);
    const restored = await waitForRun(h.system, accepted.deploymentId);
    expect(held.status).toBe('succeeded');
    expect(restored.status).toBe('succeeded');
    expect(Date.parse(restored.startedAt!)).toBeGreaterThanOrEqual(Date.parse(held.finishedAt!));
    await waitFor(async () => (await app.items()).length === 2, 'the restored rows');
  });
});
