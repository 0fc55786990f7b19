/**
 * The deploy steps clone, build, test and cleanup, run through the real engine against real git,
 * a real dockerd and the local registries (script/docker-up): open on :5000, htpasswd on :5001.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  defineStep,
  type PipelineDefinition,
  type StepDefinition,
} from '../../src/queues/pipeline.js';
import { build } from '../../src/pipelines/deploy/steps/build.js';
import { cleanup } from '../../src/pipelines/deploy/steps/cleanup.js';
import { clone } from '../../src/pipelines/deploy/steps/clone.js';
import { test as testStep, testContainerName } from '../../src/pipelines/deploy/steps/test.js';
import {
  BuildOutput,
  type CloneOutput,
  type DeployServices,
  type TestOutput,
} from '../../src/pipelines/deploy/types.js';
import { runDir, sourceDir } from '../../src/pipelines/deploy/workspace.js';
import type { NornSystem } from '../../src/system.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { makeAppRepo, type AppRepo } from '../support/deploy/app-repo.js';
import {
  closeAfterTest,
  deploy,
  jobLogs,
  registryTags,
  requestDeploy,
  startDeploySystem,
} from '../support/deploy/harness.js';
import {
  authRegistry,
  AUTH_USER,
  OPEN_REGISTRY,
  authRegistryPassword,
  dockerUp,
  uniqueName,
} from '../support/docker/engine.js';
import { waitFor, waitForRun } from '../support/norn.js';

const engine = new Docker();
const base = uniqueName('norn-src');
const apps = {
  main: `${base}-main`,
  escape: `${base}-escape`,
  auth: `${base}-auth`,
  cancel: `${base}-cancel`,
  moved: `${base}-moved`,
};
const tags: string[] = []; // local image tags to remove afterwards

/** Stands in for a worker that never had this run's clone: the next step must fetch it again. */
const forget: StepDefinition<DeployServices> = {
  name: 'forget',
  async run(ctx, services) {
    await rm(sourceDir(services, ctx.run.id), { recursive: true, force: true });
    return { forgot: true };
  },
};
/** Stands in for a worker killed while its test container ran: the container stays behind. */
const plant = defineStep<DeployServices>()({
  name: 'plant',
  reads: { build: BuildOutput },
  output: z.object({ name: z.string() }),
  async run(ctx, services) {
    const built = await ctx.output('build');
    const name = testContainerName(ctx.run.appId, ctx.run.id);
    const labels = {
      'norn.app': ctx.run.appId,
      'norn.deployment': ctx.run.id,
      'norn.one-off': '1',
    };
    await services.docker!.run({
      name,
      image: built!.imageRef,
      cmd: ['sleep', '3600'],
      labels,
      signal: ctx.signal,
    });
    return { name };
  },
});
const deployPipeline: PipelineDefinition<DeployServices> = {
  name: 'deploy',
  version: '1',
  finalizer: 'cleanup',
  steps: [clone, build, testStep, cleanup],
};
const movedPipeline: PipelineDefinition<DeployServices> = {
  ...deployPipeline,
  name: 'deploy-moved',
  events: 'deploy',
  steps: [clone, forget, build, testStep, cleanup],
};
const leftoverPipeline: PipelineDefinition<DeployServices> = {
  ...deployPipeline,
  name: 'deploy-leftover',
  events: 'deploy',
  steps: [clone, build, plant, cleanup],
};

let db: TestDatabase;
let authDb: TestDatabase;
let repo: AppRepo;
let workDir: string;
let system: NornSystem<DeployServices>;

const created = async (ref: string) =>
  (
    await engine
      .getImage(ref)
      .inspect()
      .catch(() => null)
  )?.Created ?? null;
const outputs = async (runId: string) =>
  (await system.store.outputs(runId)) as {
    clone: CloneOutput;
    build: BuildOutput;
    test: TestOutput;
    cleanup: { removed: string[] };
  };

beforeAll(async () => {
  await dockerUp();
  [db, authDb, repo] = await Promise.all([
    createTestDatabase(),
    createTestDatabase(),
    makeAppRepo(),
  ]);
  workDir = await mkdtemp(join(tmpdir(), 'norn-deploy-work-'));
  system = await startDeploySystem(db.url, [deployPipeline, movedPipeline, leftoverPipeline], {
    NORN_WORK_DIR: workDir,
    NORN_REGISTRY_URL: OPEN_REGISTRY,
  });
}, 300_000);

afterAll(async () => {
  await system?.close();
  for (const app of Object.values(apps)) {
    for (const c of await engine.listContainers({
      all: true,
      filters: { label: [`norn.app=${app}`] },
    })) {
      await engine
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => {});
    }
  }
  for (const tag of tags)
    await engine
      .getImage(tag)
      .remove({ force: true })
      .catch(() => {});
  // The build step labels its images, which also catches tags of a test that stopped midway.
  for (const app of Object.values(apps)) {
    for (const image of await engine.listImages({ filters: { label: [`norn.app=${app}`] } })) {
      await engine
        .getImage(image.Id)
        .remove({ force: true })
        .catch(() => {});
    }
  }
  await Promise.all([
    db?.drop(),
    authDb?.drop(),
    repo?.remove(),
    workDir && rm(workDir, { recursive: true, force: true }),
  ]);
});

describe('deploy steps clone, build, test, cleanup', () => {
  it('deploys a branch, a tag and a commit SHA: clones, builds, pushes, tests in the image, cleans up', async () => {
    const spec = {
      repo: { url: repo.url },
      build: { test: 'cat /www/index.html && test -f /www/index.html' },
    };
    const cases = [
      ['main', repo.shas.main, 'main'],
      ['v1.0', repo.shas.tagged, 'tagged'],
      [repo.shas.first, repo.shas.first, 'first'],
    ] as const;
    for (const [ref, sha, page] of cases) {
      const { run } = await deploy(system, apps.main, spec, ref);
      expect(run.status, run.error ?? '').toBe('succeeded');
      const out = await outputs(run.id);
      expect(out.clone).toEqual({ commitSha: sha, ref, repoUrl: repo.url });
      const image = `${OPEN_REGISTRY}/${apps.main}:${sha}`;
      tags.push(image);
      expect(out.build).toMatchObject({
        imageRef: image,
        reused: false,
        digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
      });
      expect(await registryTags(OPEN_REGISTRY, apps.main)).toContain(sha);
      const labels = (await engine.getImage(image).inspect()).Config.Labels;
      expect(labels).toMatchObject({ 'norn.app': apps.main, 'norn.commit': sha });
      // The engine's build output reached the build job's log, including what a RUN printed.
      const buildLog = await jobLogs(system, run.id, 'build');
      expect(buildLog.some((l) => /Step \d+\/\d+ : COPY www \/www/.test(l))).toBe(true);
      expect(buildLog).toContain(`build-step-output-${repo.nonce}`);
      // The test command ran inside this commit's image.
      expect(out.test).toEqual({ exitCode: 0, tail: [`${page} ${repo.nonce}`] });
      expect(await jobLogs(system, run.id, 'test')).toContain(`${page} ${repo.nonce}`);
      expect(out.cleanup.removed).toEqual([runDir({ workDir }, run.id)]);
      expect(existsSync(runDir({ workDir }, run.id))).toBe(false);
    }
    // No test container outlived its step.
    expect(
      await engine.listContainers({ all: true, filters: { label: [`norn.app=${apps.main}`] } }),
    ).toEqual([]);
  }, 120_000);

  it('reuses the pushed image for a commit it already built, and skips test without build.test', async () => {
    const image = `${OPEN_REGISTRY}/${apps.main}:${repo.shas.main}`;
    const before = await created(image);
    expect(before).not.toBeNull();
    const { run, sagaId } = await deploy(system, apps.main, { repo: { url: repo.url } }, 'main');
    expect(run.status, run.error ?? '').toBe('succeeded');
    const out = await outputs(run.id);
    expect(out.build).toEqual({ imageRef: image, digest: null, reused: true });
    const buildLog = await jobLogs(system, run.id, 'build');
    expect(buildLog.some((l) => /reusing/.test(l))).toBe(true);
    expect(buildLog.some((l) => /^Step \d+/.test(l))).toBe(false);
    expect(await created(image)).toBe(before);

    const steps = await system.store.steps(run.id);
    expect(steps.map((s) => `${s.name}:${s.status}`)).toEqual([
      'clone:complete',
      'build:complete',
      'test:skipped',
      'cleanup:complete',
    ]);
    const events = await system.events.bySaga(sagaId);
    const skipped = events.find((e) => e.payload.step === 'test' && e.payload.status === 'skipped');
    expect(skipped?.payload.reason).toBe('no build.test configured');
  }, 60_000);

  it('fails the run at test with the tail of a failing command; cleanup still runs', async () => {
    const marker = `marker-${repo.nonce}-failing`;
    const { run } = await deploy(
      system,
      apps.main,
      { repo: { url: repo.url }, build: { test: `echo ${marker}; exit 3` } },
      'main',
    );
    expect(run).toMatchObject({ status: 'failed', failedStep: 'test' });
    expect(run.error).toContain('build.test exited with 3');
    expect(run.error).toContain(marker);
    // Only one attempt: a failing test is not retried.
    expect((await system.store.steps(run.id)).find((s) => s.name === 'test')?.attempts).toBe(1);
    await expect
      .poll(
        async () => (await system.store.steps(run.id)).find((s) => s.name === 'cleanup')?.status,
        { timeout: 15_000 },
      )
      .toBe('complete');
    expect(existsSync(runDir({ workDir }, run.id))).toBe(false);
    expect(
      await engine.listContainers({ all: true, filters: { label: [`norn.deployment=${run.id}`] } }),
    ).toEqual([]);
  }, 60_000);

  it('refuses a spec without repo.url and an option-like ref at clone; cleanup copes with nothing done', async () => {
    const noRepo = await deploy(system, apps.escape, {}, 'main');
    expect(noRepo.run).toMatchObject({ status: 'failed', failedStep: 'clone' });
    expect(noRepo.run.error).toMatch(/^SPEC_INVALID: app .* has no repo\.url in its infraspec/);
    const optionRef = await deploy(
      system,
      apps.escape,
      { repo: { url: repo.url } },
      '--upload-pack=touch /tmp/pwned',
    );
    expect(optionRef.run).toMatchObject({ status: 'failed', failedStep: 'clone' });
    expect(optionRef.run.error).toMatch(/^BAD_REQUEST: git ref .* refused: it starts with "-"/);
    for (const { run } of [noRepo, optionRef]) {
      await expect
        .poll(async () => (await system.store.steps(run.id)).at(-1)?.status, { timeout: 15_000 })
        .toBe('complete');
      expect((await system.store.outputs(run.id)).cleanup).toEqual({ removed: [] });
    }
  }, 30_000);

  it('removes a test container that a killed worker left behind', async () => {
    const { run } = await deploy(
      system,
      apps.main,
      { repo: { url: repo.url } },
      'main',
      'deploy-leftover',
    );
    expect(run.status, run.error ?? '').toBe('succeeded');
    const { plant: planted, cleanup: done } = (await system.store.outputs(run.id)) as {
      plant: { name: string };
      cleanup: { removed: string[] };
    };
    expect(done.removed).toEqual([runDir({ workDir }, run.id), `container ${planted.name}`]);
    expect(
      await engine.listContainers({ all: true, filters: { label: [`norn.deployment=${run.id}`] } }),
    ).toEqual([]);
  }, 30_000);

  it('refuses a Dockerfile path that leaves the repository, also through symlinks, before building', async () => {
    const cases = [
      ['../x', /points outside the repository/],
      ['/etc/passwd', /is an absolute path/],
      ['Dockerfile.link', /resolves through a symlink to a file outside the repository/],
      ['linked/Dockerfile', /resolves through a symlink to a file outside the repository/],
    ] as const;
    for (const [dockerfile, why] of cases) {
      const { run } = await deploy(
        system,
        apps.escape,
        { repo: { url: repo.url }, build: { dockerfile } },
        'main',
      );
      expect(run).toMatchObject({ status: 'failed', failedStep: 'build' });
      expect(run.error).toMatch(/^SPEC_INVALID: build\.dockerfile ".*" is refused/);
      expect(run.error).toMatch(why);
      expect((await jobLogs(system, run.id, 'build')).some((l) => /^Step \d+/.test(l))).toBe(false);
      await expect
        .poll(async () => (await system.store.steps(run.id)).at(-1)?.status, { timeout: 15_000 })
        .toBe('complete');
    }
    expect(await created(`${OPEN_REGISTRY}/${apps.escape}:${repo.shas.main}`)).toBeNull();
    expect(await registryTags(OPEN_REGISTRY, apps.escape)).toEqual([]);
  }, 60_000);

  it('pushes to a registry behind htpasswd, and its password shows up nowhere', async () => {
    const password = await authRegistryPassword();
    expect(password.length).toBeGreaterThan(8);
    const work = await mkdtemp(join(tmpdir(), 'norn-deploy-auth-'));
    const authed = await startDeploySystem(authDb.url, [deployPipeline], {
      NORN_WORK_DIR: work,
      NORN_REGISTRY_URL: authRegistry(),
      NORN_REGISTRY_USERNAME: AUTH_USER,
      NORN_REGISTRY_PASSWORD: password,
    });
    closeAfterTest(authed);
    const spec = { repo: { url: repo.url }, build: { test: 'test -f /www/index.html' } };
    const { run, sagaId } = await deploy(authed, apps.auth, spec, 'main');
    expect(run.status, run.error ?? '').toBe('succeeded');
    const image = `${authRegistry()}/${apps.auth}:${repo.shas.main}`;
    tags.push(image);
    expect(
      await registryTags(authRegistry(), apps.auth, { username: AUTH_USER, password }),
    ).toContain(repo.shas.main);
    const everything = [
      JSON.stringify(await authed.events.bySaga(sagaId)),
      JSON.stringify(await authed.store.outputs(run.id)),
      JSON.stringify(await authed.store.steps(run.id)),
      JSON.stringify(await authed.store.getRun(run.id)),
      ...(
        await Promise.all(
          ['clone', 'build', 'test', 'cleanup'].map((s) => jobLogs(authed, run.id, s)),
        )
      ).flat(),
    ].join('\n');
    expect(everything).toContain('pushing'); // the logs were read, not empty
    expect(everything).not.toContain(password);
    await rm(work, { recursive: true, force: true });
  }, 90_000);

  it('cancels a deploy during its build: no image, no container, run dir removed', async () => {
    const spec = { repo: { url: repo.url }, build: { dockerfile: 'Dockerfile.slow' } };
    const { deploymentId: id } = await requestDeploy(system, apps.cancel, spec, 'main');
    await waitFor(
      async () =>
        (await jobLogs(system, id, 'build')).some((l) => l.includes(`slow-build-${repo.nonce}`)),
      'the slow RUN to start',
      30_000,
      100,
    );
    const cancelledAt = Date.now();
    await system.runs.cancel(id);
    const run = await waitForRun(
      system as NornSystem,
      id,
      ['cancelled', 'failed', 'succeeded'],
      10_000,
    );
    expect(run.status).toBe('cancelled');
    expect(Date.now() - cancelledAt).toBeLessThan(5_000);

    const image = `${OPEN_REGISTRY}/${apps.cancel}:${repo.shas.main}`;
    tags.push(image);
    expect(await created(image)).toBeNull();
    expect(await registryTags(OPEN_REGISTRY, apps.cancel)).toEqual([]);
    // The engine removes the build's intermediate container once the build is cut off.
    const buildContainers = async () =>
      (await engine.listContainers({ all: true })).filter((c) =>
        c.Command.includes(`slow-build-${repo.nonce}`),
      );
    await waitFor(
      async () => (await buildContainers()).length === 0,
      'the build container to go',
      15_000,
      200,
    );
    await expect
      .poll(async () => (await system.store.steps(id)).find((s) => s.name === 'cleanup')?.status, {
        timeout: 15_000,
      })
      .toBe('complete');
    expect(existsSync(runDir({ workDir }, id))).toBe(false);
    expect(await created(image)).toBeNull();
  }, 90_000);

  it('re-clones the recorded commit when the worker running build lacks the clone', async () => {
    const { run } = await deploy(
      system,
      apps.moved,
      { repo: { url: repo.url } },
      'v1.0',
      'deploy-moved',
    );
    expect(run.status, run.error ?? '').toBe('succeeded');
    const image = `${OPEN_REGISTRY}/${apps.moved}:${repo.shas.tagged}`;
    tags.push(image);
    const out = await outputs(run.id);
    expect(out.build).toMatchObject({ imageRef: image, reused: false });
    const buildLog = await jobLogs(system, run.id, 'build');
    expect(
      buildLog.some((l) =>
        l.includes(
          `source of ${repo.shas.tagged.slice(0, 12)} not on this worker; cloning it again`,
        ),
      ),
    ).toBe(true);
    expect((await engine.getImage(image).inspect()).Config.Labels).toMatchObject({
      'norn.commit': repo.shas.tagged,
    });
    expect(await registryTags(OPEN_REGISTRY, apps.moved)).toEqual([repo.shas.tagged]);
  }, 60_000);
});
