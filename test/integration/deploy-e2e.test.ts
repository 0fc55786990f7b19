/**
 * The whole deploy pipeline on the example app, through the api, a worker, the real Docker
 * engine, registry, git and PostgreSQL: two apps deploying at once, then a redeploy that snapshots.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtinPipelines, createStepServices } from '../../src/pipelines/index.js';
import type { DeployServices } from '../../src/pipelines/deploy/types.js';
import { silentLogger } from '../../src/shared/logger.js';
import { createDb } from '../../src/shared/db.js';
import type { NornSystem, RunningApi } from '../../src/system.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { withDatabase } from '../support/global-setup.js';
import { dockerUp, REPO_ROOT } from '../support/docker/engine.js';
import {
  appContainers,
  fetchBody,
  replicaBodies,
  freePorts,
  removeAppContainers,
} from '../support/deploy-runtime/fixtures.js';
import { apiCaller, testEnv, testSystem, waitForRun } from '../support/norn.js';
import { inject } from 'vitest';

const TOKEN = 'e2e-token-0123456789abcdef';
let tdb: TestDatabase;
let system: NornSystem<DeployServices>;
let api: RunningApi;
let work: string;
let repoUrl: string;
const apps: string[] = [];
const databases: string[] = [];

beforeAll(async () => {
  await dockerUp();
  tdb = await createTestDatabase();
  work = mkdtempSync(join(tmpdir(), 'norn-e2e-'));
  repoUrl = execFileSync('bash', [join(REPO_ROOT, 'script/example-repo'), join(work, 'hello')], {
    encoding: 'utf8',
  }).trim();
  writeFileSync(
    join(work, 'cloudflared.yml'),
    'tunnel: test\ningress:\n  - hostname: other.example.test\n    service: http://127.0.0.1:9\n  - service: http_status:404\n',
  );
  const env = testEnv(tdb.url, {
    NORN_API_TOKEN: TOKEN,
    NORN_DEPLOY_PIPELINE: 'deploy',
    NORN_WORK_DIR: join(work, 'runs'),
    NORN_SNAPSHOT_DIR: join(work, 'snapshots'),
    NORN_APP_DATABASE_URL: withDatabase(inject('databaseUrl'), 'postgres'),
    NORN_CLOUDFLARED_CONFIG: join(work, 'cloudflared.yml'),
    NORN_CLOUDFLARED_RESTART: JSON.stringify(['touch', join(work, 'tunnel-restarted')]),
    NORN_HEALTH_POLL_MS: '200',
    NORN_WORKER_CONCURRENCY: '4',
  });
  system = testSystem<DeployServices>(env, builtinPipelines());
  const step = createStepServices(system.config, process.env, system.stepDb, silentLogger);
  system.setServices(step.services, step.extraQueues);
  system.onClose(() => step.close());
  await system.startWorker();
  api = await system.startApi(0);
}, 300_000);

afterAll(async () => {
  await removeAppContainers(apps);
  await system?.close();
  for (const db of databases)
    await tdb.db.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => {});
  await tdb?.drop();
});

const call = apiCaller(() => api, TOKEN);

/** The example's infraspec, renamed, on its own ports and database, pointing at the test repo. */
function exampleSpec(name: string, port: number) {
  const spec = parseYaml(readFileSync(join(REPO_ROOT, 'examples/hello/infraspec.yaml'), 'utf8'));
  spec.name = name;
  spec.repo.url = repoUrl;
  spec.processes.web.port = port;
  spec.infrastructure.postgres.database = name.replace(/-/g, '_');
  spec.endpoints = [{ url: `${name}.example.test` }];
  spec.deployPolicy.minHealthyTime = '1s';
  databases.push(spec.infrastructure.postgres.database);
  apps.push(name);
  return spec;
}

describe('deploying the example app end to end', () => {
  it('two apps deploy at once: each is cloned, built, tested, migrated, running, healthy and routed', async () => {
    const [p1, p2] = [await freePorts(2), await freePorts(2)];
    const names = [`e2e-a-${p1}`, `e2e-b-${p2}`];
    for (const [i, name] of names.entries()) {
      expect((await call('POST', '/api/apps', exampleSpec(name, [p1, p2][i]!))).status).toBe(201);
    }
    const t0 = Date.now();
    const runs = await Promise.all(
      names.map(async (n) => (await call('POST', `/api/apps/${n}/deploy`, { ref: 'main' })).body),
    );
    const done = await Promise.all(
      runs.map((r) => waitForRun(system as NornSystem, r.deploymentId, undefined, 180_000)),
    );
    expect(done.map((d) => [d.status, d.error])).toEqual([
      ['succeeded', null],
      ['succeeded', null],
    ]);

    // They ran at the same time: each started before the other finished.
    expect(new Date(done[0]!.startedAt!).getTime()).toBeLessThan(
      new Date(done[1]!.finishedAt!).getTime(),
    );
    expect(new Date(done[1]!.startedAt!).getTime()).toBeLessThan(
      new Date(done[0]!.finishedAt!).getTime(),
    );

    for (const [i, name] of names.entries()) {
      const port = [p1, p2][i]!;
      const { body } = await call('GET', `/api/deployments/${runs[i].deploymentId}`);
      expect(
        body.steps.map((s: { name: string; status: string }) => `${s.name}:${s.status}`),
      ).toEqual([
        'clone:complete',
        'build:complete',
        'test:complete',
        'snapshot:skipped',
        'migrate:complete',
        'submit:complete',
        'healthy:complete',
        'forge:complete',
        'cleanup:complete',
      ]);
      const events = (await call('GET', `/api/sagas/${runs[i].sagaId}/events`)).body.events;
      const completed = events.find((e: { type: string }) => e.type === 'deploy.completed');
      // The healthy step said how far the rollout was, after its start, ending 2 of 2 ready.
      type Ev = { type: string; payload: Record<string, unknown> };
      const healthyStart = events.findIndex(
        (e: Ev) => e.payload.step === 'healthy' && e.payload.status === 'running',
      );
      const progress = events.filter((e: Ev) => e.type === 'deploy.progress');
      expect(progress.length).toBeGreaterThan(0);
      expect(progress.every((e: Ev) => e.payload.step === 'healthy')).toBe(true);
      expect(progress.at(-1).payload).toMatchObject({ ready: 2, desired: 2 });
      expect(events.indexOf(progress[0])).toBeGreaterThan(healthyStart);
      expect(completed.payload.imageTag).toMatch(
        new RegExp(`^127\\.0\\.0\\.1:5000/${name}:[0-9a-f]{40}$`),
      );
      // Both replicas answer on loopback.
      expect(await fetchBody(port)).toContain('hello from norn');
      // Through the proxy, and each replica on its own port.
      expect(await replicaBodies(name, '/healthz')).toEqual(['ok', 'ok']);
      const containers = await appContainers(name);
      expect(containers.length).toBe(2);
      // The app's database reaches its processes as DATABASE_URL (a secret: env, not a label).
      const dbUrl = withDatabase(inject('databaseUrl'), name.replace(/-/g, '_'));
      for (const c of containers) expect(c.env).toContain(`DATABASE_URL=${dbUrl}`);
      // The migrations ran in the app's own database, recorded in its ledger.
      const appDb = createDb(withDatabase(inject('databaseUrl'), name.replace(/-/g, '_')), {
        log: silentLogger,
        max: 1,
      });
      try {
        const ledger = await appDb.query('SELECT name FROM norn_migrations ORDER BY name');
        expect(ledger.rows.map((r) => r.name)).toEqual(['001_visits.sql', '002_visits_index.sql']);
        expect((await appDb.query(`SELECT to_regclass('visits') AS t`)).rows[0].t).toBe('visits');
      } finally {
        await appDb.end();
      }
    }
    const cloudflared = readFileSync(join(work, 'cloudflared.yml'), 'utf8');
    expect(cloudflared.indexOf('other.example.test')).toBeGreaterThanOrEqual(0);
    for (const name of names)
      expect(cloudflared.indexOf(`${name}.example.test`)).toBeLessThan(
        cloudflared.indexOf('http_status:404'),
      );
    expect(existsSync(join(work, 'tunnel-restarted'))).toBe(true);
    expect(existsSync(join(work, 'runs', runs[0].deploymentId))).toBe(false); // cleanup
    expect(Date.now() - t0).toBeLessThan(180_000);

    // A redeploy: the database exists now, so it is snapshotted before migrate (nothing new to apply),
    // and the image for the same commit is reused.
    const again = (await call('POST', `/api/apps/${names[0]}/deploy`, {})).body;
    expect(
      (await waitForRun(system as NornSystem, again.deploymentId, undefined, 120_000)).status,
    ).toBe('succeeded');
    const out = await system.store.outputs(again.deploymentId);
    expect(out.build).toMatchObject({ reused: true });
    expect(out.snapshot).toMatchObject({ database: names[0]!.replace(/-/g, '_') });
    expect(out.migrate).toMatchObject({
      applied: [],
      alreadyApplied: ['001_visits.sql', '002_visits_index.sql'],
    });
    const snaps = (await call('GET', `/api/apps/${names[0]}/snapshots`)).body.snapshots;
    expect(snaps).toHaveLength(1);
  }, 300_000);
});
