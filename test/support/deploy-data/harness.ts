/**
 * Shared pieces of the snapshot/migrate/restore tests: a real local git repo whose commits carry
 * migrations, test-only steps (a `clone` that records the commit for ensureSource to clone, a gate
 * that holds a run), app databases on the real server, and a norn system with the deploy services.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { inject } from 'vitest';
import { createDeployServices } from '../../../src/pipelines/deploy/services.js';
import type { CronScheduler } from '../../../src/pipelines/deploy/cron.js';
import type { CloneOutput, DeployServices } from '../../../src/pipelines/deploy/types.js';
import type { PipelineDefinition, StepDefinition } from '../../../src/queues/pipeline.js';
import { silentLogger } from '../../../src/shared/logger.js';
import { parseInfraspec } from '../../../src/shared/spec/infraspec.js';
import type { NornSystem } from '../../../src/system.js';
import { withDatabase } from '../global-setup.js';
import { git } from '../git/repos.js';
import { testEnv, testSystem } from '../norn.js';

/** The test server's admin URL (database `postgres`): what NORN_APP_DATABASE_URL points at. */
export const adminUrl = () => withDatabase(inject('databaseUrl'), 'postgres');
export const appDbName = () => `norn_app_${randomBytes(5).toString('hex')}`;
export const appDbUrl = (name: string) => withDatabase(inject('databaseUrl'), name);

/** Runs SQL on `url` with a short-lived connection. */
export async function sql<R extends pg.QueryResultRow = pg.QueryResultRow>(
  url: string,
  text: string,
  params: unknown[] = [],
): Promise<R[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<R>(text, params)).rows;
  } finally {
    await c.end();
  }
}

export async function databaseExists(name: string): Promise<boolean> {
  return (await sql(adminUrl(), 'SELECT 1 FROM pg_database WHERE datname = $1', [name])).length > 0;
}
export const createDatabase = (name: string) =>
  sql(adminUrl(), `CREATE DATABASE ${pg.escapeIdentifier(name)}`);
export const dropDatabase = (name: string) =>
  sql(adminUrl(), `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);

/** A git repository on local disk; `commit` writes files (null deletes) and returns the new SHA. */
export async function makeRepo(parent: string, name = 'app') {
  const path = join(parent, name);
  await mkdir(path, { recursive: true });
  await git(path, 'init', '-q', '-b', 'main');
  return {
    path,
    async commit(files: Record<string, string>, message = 'change'): Promise<string> {
      for (const [file, text] of Object.entries(files)) {
        await mkdir(dirname(join(path, file)), { recursive: true });
        await writeFile(join(path, file), text);
      }
      await git(path, 'add', '-A');
      await git(path, 'commit', '-q', '-m', message);
      return git(path, 'rev-parse', 'HEAD');
    },
    async symlink(link: string, target: string, message = 'link'): Promise<string> {
      await symlink(target, join(path, link));
      await git(path, 'add', '-A');
      await git(path, 'commit', '-q', '-m', message);
      return git(path, 'rev-parse', 'HEAD');
    },
  };
}

/**
 * Test-only `clone`: records the CloneOutput the real clone step would (params.repo at params.ref)
 * without checking out, so the steps under test get their source through ensureSource's clone.
 */
export const recordClone: StepDefinition<DeployServices> = {
  name: 'clone',
  async run(ctx) {
    const { repo, ref } = ctx.run.params as { repo: string; ref: string };
    const commitSha = await git(repo, 'rev-parse', '--verify', `${ref}^{commit}`);
    const out: CloneOutput = { commitSha, ref, repoUrl: repo };
    return out;
  },
};

/** Stands for "every later deploy step": it must not run after a failed migrate. */
export const after: StepDefinition<DeployServices> = {
  name: 'after',
  run: async () => ({ ran: true }),
};

/** A run that holds the app until the file params.gate exists (cancellable). */
export const holdPipeline: PipelineDefinition<DeployServices> = {
  name: 'hold',
  version: '1',
  steps: [
    {
      name: 'hold',
      async run(ctx) {
        const gate = (ctx.run.params as { gate: string }).gate;
        while (!existsSync(gate)) await sleep(50, undefined, { signal: ctx.signal });
        return { released: true };
      },
    },
  ],
};

/** No scheduled processes in these tests: a deploy that reached for cron would be a bug. */
const noCron: CronScheduler = {
  upsert: () => Promise.reject(new Error('cron is not used by the snapshot/migrate tests')),
  prune: () => Promise.reject(new Error('cron is not used by the snapshot/migrate tests')),
};

/** A started norn (worker + api) with the deploy services, temp work and snapshot folders. */
export async function startSystem(
  databaseUrl: string,
  pipelines: PipelineDefinition<DeployServices>[],
  overrides: Record<string, string> = {},
) {
  const root = await mkdtemp(join(tmpdir(), 'norn-deploy-data-'));
  const env = testEnv(databaseUrl, {
    NORN_WORK_DIR: join(root, 'work'),
    NORN_SNAPSHOT_DIR: join(root, 'snapshots'),
    NORN_APP_DATABASE_URL: adminUrl(),
    NORN_API_TOKEN: TOKEN,
    ...overrides,
  });
  for (const [k, v] of Object.entries(overrides)) if (v === '') delete env[k];
  const system = testSystem<DeployServices>(env, pipelines, ({ config, db }) =>
    createDeployServices({ config, env: process.env, db, log: silentLogger, cron: noCron }),
  );
  await system.startWorker();
  const api = system.createApi();
  const call = (method: string, path: string) =>
    api.request(path, { method, headers: { authorization: `Bearer ${TOKEN}` } });
  return {
    system,
    root,
    snapshotDir: join(root, 'snapshots'),
    call,
    async close() {
      await system.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

const TOKEN = 'test-token-deploy-data-0123456789';

/** Registers (or updates) an app from infraspec fields, with the spec's defaults applied. */
export async function registerSpec(system: NornSystem, spec: Record<string, unknown>) {
  const parsed = parseInfraspec({ processes: { web: { port: 8080 } }, ...spec });
  if (!parsed.ok) throw new Error(`bad test spec: ${JSON.stringify(parsed.problems)}`);
  await system.apps.upsert(parsed.spec.name, parsed.spec, JSON.stringify(parsed.spec), 'json');
  return parsed.spec as unknown as Record<string, unknown>;
}
