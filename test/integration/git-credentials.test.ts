/**
 * Git tokens bound to hosts, end to end: from the environment (as loadConfig reads it) through the
 * deploy services to the clone step run by the real engine against a private smart-HTTP server.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PipelineDefinition } from '../../src/queues/pipeline.js';
import { cleanup } from '../../src/pipelines/deploy/steps/cleanup.js';
import { clone } from '../../src/pipelines/deploy/steps/clone.js';
import type { DeployServices } from '../../src/pipelines/deploy/types.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { closeAfterTest, deploy, jobLogs, startDeploySystem } from '../support/deploy/harness.js';
import { startGitHttpServer, type GitHttpServer } from '../support/git/http-server.js';
import { makeFixtureRepo, type FixtureRepo } from '../support/git/repos.js';

const pipeline: PipelineDefinition<DeployServices> = {
  name: 'deploy',
  version: '1',
  finalizer: 'cleanup',
  steps: [clone, cleanup],
};

const token = `ghp_${randomBytes(18).toString('hex')}`;
let root: string;
let repo: FixtureRepo;
let server: GitHttpServer;
let db: TestDatabase;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'norn-git-cred-'));
  [repo, db] = await Promise.all([makeFixtureRepo(root), createTestDatabase()]);
  server = await startGitHttpServer({ root, token });
});
afterAll(async () => {
  await server?.close();
  await db?.drop();
  await rm(root, { recursive: true, force: true });
});

const start = (env: Record<string, string>) =>
  startDeploySystem(db.url, [pipeline], { NORN_WORK_DIR: join(root, 'work'), ...env });

describe('the clone step with tokens bound to hosts', () => {
  it('clones a private repository with NORN_GIT_TOKEN sent only to NORN_GIT_TOKEN_HOSTS', async () => {
    const system = await start({
      NORN_GIT_TOKEN: token,
      NORN_GIT_TOKEN_HOSTS: `github.com, 127.0.0.1:${server.port}`,
    });
    closeAfterTest(system);
    const { run } = await deploy(
      system,
      'cred-ok',
      { repo: { url: `${server.url}/app.git` } },
      'v1.0',
    );
    expect(run).toMatchObject({ status: 'succeeded' });
    expect((await system.store.outputs(run.id)).clone).toMatchObject({
      commitSha: repo.shas.tagged,
    });
    const logs = await jobLogs(system, run.id, 'clone');
    expect(logs).toContain(
      `the git token bound to 127.0.0.1:${server.port} (NORN_GIT_TOKEN_HOSTS) is sent if the server asks for one`,
    );
    expect(logs.join('\n')).not.toContain(token);
  }, 60_000);

  it('fails at clone saying that no token is bound to the host the private repository is on', async () => {
    const system = await start({
      NORN_GIT_CREDENTIALS: JSON.stringify({
        'github.com': token,
        [`localhost:${server.port}`]: token,
      }),
    });
    closeAfterTest(system);
    const seen = server.authHeaders.length;
    const url = `${server.url}/app.git`;
    const { run } = await deploy(system, 'cred-none', { repo: { url } }, 'main');
    expect(run).toMatchObject({ status: 'failed', failedStep: 'clone' });
    expect(run.error).toContain(
      `COMMAND_FAILED: could not read ${url} (authentication failed: the server asked for credentials and no token is bound to 127.0.0.1:${server.port}; bind one with NORN_GIT_CREDENTIALS (or NORN_GIT_TOKEN with NORN_GIT_TOKEN_HOSTS), tokens are bound to: github.com, localhost:${server.port})`,
    );
    expect(await jobLogs(system, run.id, 'clone')).toContain(
      `no git token is bound to 127.0.0.1:${server.port}; cloning without one`,
    );
    expect(server.authHeaders).toHaveLength(seen);
    expect(JSON.stringify(run)).not.toContain(token);
  }, 60_000);
});
