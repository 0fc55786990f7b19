/**
 * The set-up a deploy runtime test file shares: dockerd, a database of its own, a temp folder with
 * a cloudflared config path, the busybox web images pushed to the open registry, a plain app repo
 * and norn's runtime; all removed afterwards with the containers of every app the file used.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { createDockerDriver } from '../../../src/shared/drivers/docker.js';
import { createTestDatabase, type TestDatabase } from '../db.js';
import { OPEN_REGISTRY, REPO_ROOT, dockerUp } from '../docker/engine.js';
import {
  appName,
  buildWebImages,
  makeAppRepo,
  removeAppContainers,
  type FakeSource,
  type WebImage,
} from './fixtures.js';
import { startRuntime, type Runtime } from './system.js';

export const SOPS = join(REPO_ROOT, 'test/fixtures/sops');

export interface RuntimeSuite {
  tdb: TestDatabase;
  rt: Runtime;
  tmp: string;
  images: Record<WebImage, string>;
  repo: { repoUrl: string; commitSha: string };
  /** Remembers `app` so that its containers are removed after the file. */
  app(app: string): string;
  source(image: WebImage, repo?: { repoUrl: string; commitSha: string }): FakeSource;
  cfPath(): string;
}

/**
 * Registers the file's beforeAll/afterAll; the returned object is filled in by beforeAll.
 * `restartArgv` is the tunnel restart command, given the temp folder.
 */
export function runtimeSuite(o: {
  imageRepo: string;
  restartArgv: (tmp: string) => string[];
}): RuntimeSuite {
  const apps: string[] = [];
  const s = {
    app: (app: string) => {
      apps.push(app);
      return app;
    },
    source: (image: WebImage, repo = s.repo): FakeSource => ({
      ...repo,
      imageRef: s.images[image],
    }),
    cfPath: () => join(s.tmp, 'cloudflared.yml'),
  } as RuntimeSuite;

  beforeAll(async () => {
    await dockerUp();
    s.tdb = await createTestDatabase();
    s.tmp = await mkdtemp(join(tmpdir(), 'norn-deploy-rt-'));
    const driver = createDockerDriver({ registryUrl: OPEN_REGISTRY });
    s.images = await buildWebImages(driver, appName(o.imageRepo), { 'norn.test.runtime': '1' });
    s.repo = await makeAppRepo(s.tmp, 'plain', {});
    s.rt = await startRuntime({
      databaseUrl: s.tdb.url,
      workDir: join(s.tmp, 'work'),
      cloudflaredConfig: s.cfPath(),
      restartArgv: o.restartArgv(s.tmp),
      pgpKeyFile: join(SOPS, 'sops_functional_tests_key.asc'),
    });
  }, 180_000);

  afterAll(async () => {
    await s.rt?.close();
    await removeAppContainers(apps);
    const docker = createDockerDriver({ registryUrl: OPEN_REGISTRY });
    for (const ref of Object.values(s.images ?? {})) await docker.removeImage(ref).catch(() => {});
    await s.tdb?.drop();
    if (s.tmp) await rm(s.tmp, { recursive: true, force: true });
  }, 60_000);

  return s;
}
