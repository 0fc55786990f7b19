/**
 * Fixtures for the deploy runtime tests (submit, healthy, forge, cleanup, cron): busybox web images FROM
 * scratch pushed to the open registry, small real git repositories, and test-only `clone`/`build`
 * steps that only report outputs (a real repo and a real pushed image), so the real submit,
 * healthy and forge steps run through the real engine without another engineer's steps.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import Docker from 'dockerode';
import type { StepDefinition, PipelineDefinition } from '../../../src/queues/pipeline.js';
import type { DockerDriver } from '../../../src/shared/drivers/docker.js';
import type {
  BuildOutput,
  CloneOutput,
  DeployServices,
} from '../../../src/pipelines/deploy/types.js';
import { submit } from '../../../src/pipelines/deploy/steps/submit.js';
import { healthy } from '../../../src/pipelines/deploy/steps/healthy.js';
import { forge } from '../../../src/pipelines/deploy/steps/forge.js';
import { cleanup } from '../../../src/pipelines/deploy/steps/cleanup.js';
import { createCaddyDriver } from '../../../src/shared/drivers/caddy.js';
import { routePrefix } from '../../../src/targets/docker/names.js';
import { busyboxContext, fakeSha } from '../docker/engine.js';
import { git } from '../git/repos.js';

/** What the fake clone/build steps report, passed as run params. */
export interface FakeSource {
  repoUrl: string;
  commitSha: string;
  imageRef: string;
}

const fake = (ctx: { run: { params: Record<string, unknown> } }) =>
  ctx.run.params.fake as FakeSource;

export const fakeClone: StepDefinition<DeployServices> = {
  name: 'clone',
  async run(ctx): Promise<CloneOutput> {
    const f = fake(ctx);
    return { commitSha: f.commitSha, ref: 'main', repoUrl: f.repoUrl };
  },
};

export const fakeBuild: StepDefinition<DeployServices> = {
  name: 'build',
  async run(ctx): Promise<BuildOutput> {
    return { imageRef: fake(ctx).imageRef, digest: null, reused: true };
  },
};

/** The real submit, healthy, forge and cleanup (also the finalizer, as in the deploy pipeline). */
export const runtimePipeline: PipelineDefinition<DeployServices> = {
  name: 'deploy',
  version: 'rt2',
  finalizer: 'cleanup',
  steps: [fakeClone, fakeBuild, submit, healthy, forge, cleanup],
};

/** How long the web images take to start serving: a rollout that does not wait for health shows. */
export const STARTUP_MS = 600;

/**
 * Serves /www on 127.0.0.1:$PORT after STARTUP_MS. sh is PID 1 and traps TERM, so a replaced
 * container stops at once instead of after the 10 s stop timeout (busybox httpd ignores TERM as PID 1).
 */
const serve = (extra = '') =>
  `trap 'exit 0' TERM; sleep ${STARTUP_MS / 1000}; /bin/busybox httpd -f -p 127.0.0.1:$PORT -h /www & ${extra} wait`;

export const WEB_IMAGES = {
  v1: { body: 'v1', health: true, cmd: serve() },
  v2: { body: 'v2', health: true, cmd: serve() },
  /**
   * Healthy for ~3 s after it starts (long enough for a rolling submit on a slow machine), then
   * its health path answers 404 for good, within the healthy step's minHealthyTime.
   */
  degrading: { body: 'v3', health: true, cmd: serve('(sleep 3; rm /www/healthz) &') },
  /** Never serves its health path. */
  nohealth: { body: 'v4', health: false, cmd: serve() },
} as const;
export type WebImage = keyof typeof WEB_IMAGES;

/** Builds every WEB_IMAGES variant under `repository` and pushes it; returns variant → image ref. */
export async function buildWebImages(
  driver: DockerDriver,
  repository: string,
  labels: Record<string, string>,
) {
  const refs = {} as Record<WebImage, string>;
  for (const [variant, v] of Object.entries(WEB_IMAGES) as Array<
    [WebImage, (typeof WEB_IMAGES)[WebImage]]
  >) {
    const steps = [
      `RUN mkdir /www && echo ${v.body} > /www/index.html${v.health ? ' && echo ok > /www/healthz' : ''}`,
      `CMD ["/bin/sh", "-c", ${JSON.stringify(v.cmd)}]`,
    ];
    const ctx = await busyboxContext(steps);
    try {
      const tag = driver.imageRef(repository, fakeSha());
      await driver.build({ contextDir: ctx.dir, dockerfile: 'Dockerfile', tag, labels });
      await driver.push({ tag });
      refs[variant] = tag;
    } finally {
      await ctx.remove();
    }
  }
  return refs;
}

/** A git repository with `files` committed on main; returns its path and commit. */
export async function makeAppRepo(parent: string, name: string, files: Record<string, string>) {
  const path = join(parent, name);
  await mkdir(path, { recursive: true });
  await git(path, 'init', '-q', '-b', 'main');
  for (const [file, text] of Object.entries({ 'README.md': `# ${name}\n`, ...files })) {
    await writeFile(join(path, file), text);
    await git(path, 'add', '--', file);
  }
  await git(path, 'commit', '-q', '-m', 'app');
  return { repoUrl: path, commitSha: await git(path, 'rev-parse', 'HEAD') };
}

const portFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });

/**
 * A base port P with P..P+count-1 all free on 127.0.0.1 (replicas use consecutive ports), below
 * the kernel's ephemeral range (32768-60999 on Linux): a server another test starts on port 0 is
 * given one from that range, and must not land on an app's port between this check and its start.
 */
export async function freePorts(count: number): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const base = 20_000 + Math.floor(Math.random() * (12_000 - count));
    let ok = true;
    for (let i = 0; i < count && ok; i++) ok = await portFree(base + i);
    if (ok) return base;
  }
  throw new Error(`no ${count} consecutive free ports found`);
}

export const appName = (base: string) => `${base}-${randomBytes(3).toString('hex')}`;

/** GET http://127.0.0.1:port/path → trimmed body, or `down` when nothing answers 2xx. */
export async function fetchBody(port: number, path = '/'): Promise<string> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      signal: AbortSignal.timeout(1_000),
    });
    const text = (await res.text()).trim();
    return res.ok ? text : `http ${res.status}`;
  } catch {
    return 'down';
  }
}

/** Containers the steps made for `app`, with what the tests look at. */
export async function appContainers(app: string) {
  const docker = new Docker();
  const list = await docker.listContainers({ all: true, filters: { label: [`norn.app=${app}`] } });
  const found = await Promise.all(
    list.map(async (c) => {
      // One-off cron containers come and go while we look.
      const info = await docker
        .getContainer(c.Id)
        .inspect()
        .catch(() => undefined);
      return (
        info && {
          id: c.Id,
          name: info.Name.replace(/^\//, ''),
          image: info.Config.Image,
          env: info.Config.Env ?? [],
          labels: info.Config.Labels ?? {},
          running: info.State.Running,
          created: info.Created,
          startedAt: info.State.StartedAt,
        }
      );
    }),
  );
  return found.filter((c) => c !== undefined);
}

/** Removes the apps' containers, and their routes on the ingress proxy (which hold their ports). */
export async function removeAppContainers(apps: string[]): Promise<void> {
  const docker = new Docker();
  const proxy = createCaddyDriver();
  for (const app of apps) {
    for (const id of await proxy.routeIds(routePrefix(app)).catch(() => []))
      await proxy.removeRoute(id).catch(() => {});
    for (const c of await docker.listContainers({
      all: true,
      filters: { label: [`norn.app=${app}`] },
    })) {
      await docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => {});
    }
  }
}

/**
 * What each running replica of `app`'s `process` serves on its own port (recorded on its
 * container as norn.port), in replica order: replicas sit behind the ingress proxy on ports of
 * their own, so the served port (the proxy's) answers for all of them at once.
 */
export async function replicaBodies(app: string, path = '/', process = 'web'): Promise<string[]> {
  const replicas = (await appContainers(app))
    .filter((c) => c.running && c.labels['norn.process'] === process)
    .sort((a, b) => Number(a.labels['norn.replica']) - Number(b.labels['norn.replica']));
  return Promise.all(replicas.map((c) => fetchBody(Number(c.labels['norn.port']), path)));
}
