/**
 * Zero-downtime deploys on a Docker host, with the real ingress proxy (Caddy, started by
 * script/docker-up) and a real dockerd: each process with a port is one route whose upstreams are
 * its replicas; a redeploy under a steady request stream loses no request; a redeploy that fails
 * leaves the old replicas serving; the proxy's routes survive its restart.
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestStream } from '../../bench/request-stream.js';
import { createCaddyDriver } from '../../src/shared/drivers/caddy.js';
import { createDockerDriver, PORT_LABEL } from '../../src/shared/drivers/docker.js';
import { isNornError } from '../../src/shared/errors.js';
import { runCommand } from '../../src/shared/exec.js';
import { parseInfraspec, type Infraspec } from '../../src/shared/spec/infraspec.js';
import { createDockerTarget } from '../../src/targets/docker.js';
import { routeId } from '../../src/targets/docker/names.js';
import type { TargetCall, TargetRelease } from '../../src/targets/index.js';
import {
  appContainers,
  appName,
  buildWebImages,
  fetchBody,
  freePorts,
  removeAppContainers,
  type WebImage,
} from '../support/deploy-runtime/fixtures.js';
import { OPEN_REGISTRY, REPO_ROOT, dockerUp, freePort, waitFor } from '../support/docker/engine.js';

const noCron = { upsert: async () => '', prune: async () => [], list: async () => [] };
const call = (): TargetCall => ({
  signal: AbortSignal.timeout(120_000),
  log: () => {},
  redact: [],
});
const proxy = createCaddyDriver();

function webSpec(app: string, port: number, healthTimeout = '30s'): Infraspec {
  const parsed = parseInfraspec({
    name: app,
    processes: { web: { port, replicas: 2, health: { path: '/healthz', timeout: '1s' } } },
    deployPolicy: { minHealthyTime: '1s', healthTimeout },
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  return parsed.spec;
}

describe('zero-downtime deploys through the ingress proxy', () => {
  const docker = createDockerDriver({ registryUrl: OPEN_REGISTRY });
  const target = createDockerTarget({ docker, cron: noCron, pollMs: 100, proxy, drainMs: 300 });
  const apps: string[] = [];
  let images: Record<WebImage, string>;
  let nextId = 5_000_000 + Math.floor(Math.random() * 1_000_000);
  const release = (app: string, image: WebImage, spec: Infraspec): TargetRelease => {
    const id = nextId++;
    return { app, id, deploymentId: `d${id}`, imageRef: images[image], spec, secrets: {} };
  };
  const newApp = (base: string) => {
    const app = appName(base);
    apps.push(app);
    return app;
  };

  beforeAll(async () => {
    await dockerUp();
    images = await buildWebImages(docker, appName('norn-zdt'), { 'norn.test.zdt': '1' });
  }, 240_000);
  afterAll(async () => {
    for (const app of apps) await target.remove(app, call()).catch(() => undefined);
    await removeAppContainers(apps);
    for (const ref of Object.values(images ?? {})) await docker.removeImage(ref).catch(() => {});
  }, 60_000);

  it('routes the declared port to both replicas, each on a port of its own', async () => {
    const app = newApp('zdt-route');
    const port = await freePorts(1);
    await target.apply(release(app, 'v1', webSpec(app, port)), call());
    const route = await proxy.route(routeId(app, 'web'));
    const ports = (await appContainers(app)).map((c) => Number(c.labels[PORT_LABEL]));
    expect(route?.listenPort).toBe(port);
    expect(route?.upstreams).toHaveLength(2);
    expect([...route!.upstreams].sort()).toEqual([...ports].sort());
    expect(ports).not.toContain(port);
    // Both replicas answer through the proxy (round robin), and each on its own port.
    for (const p of ports) expect(await fetchBody(p)).toBe('v1');
    expect(await fetchBody(port)).toBe('v1');
  }, 120_000);

  it('redeploys under a steady stream of requests without one failing', async () => {
    const app = newApp('zdt-roll');
    const port = await freePorts(1);
    const spec = webSpec(app, port);
    await target.apply(release(app, 'v1', spec), call());
    const r2 = release(app, 'v2', spec);
    const deploy = target.apply(r2, call());
    const stream = await requestStream(
      { port, concurrency: 4, intervalMs: 5, accept: (b) => /^v[12]$/.test(b.trim()) },
      deploy.then(() => new Promise((resolve) => setTimeout(resolve, 500))),
    );
    await deploy;
    expect(stream.failures).toEqual([]);
    expect(stream.failed).toBe(0);
    expect(stream.ok).toBeGreaterThan(50);
    expect(await fetchBody(port)).toBe('v2');
    const live = await appContainers(app);
    expect(live.map((c) => c.labels['norn.release'])).toEqual([String(r2.id), String(r2.id)]);
  }, 180_000);

  it('a redeploy that never gets healthy leaves the old replicas serving', async () => {
    const app = newApp('zdt-fail');
    const port = await freePorts(1);
    const r1 = release(app, 'v1', webSpec(app, port));
    await target.apply(r1, call());
    const before = await proxy.route(routeId(app, 'web'));
    const bad = release(app, 'nohealth', webSpec(app, port, '3s'));
    const deploy = target.apply(bad, call());
    const stream = await requestStream(
      { port, concurrency: 2, intervalMs: 10, accept: (b) => b.trim() === 'v1' },
      deploy.catch(() => undefined),
    );
    const err = await deploy.catch((e: unknown) => e);
    expect(isNornError(err) && err.code).toBe('STEP_FAILED');
    expect(stream.failures).toEqual([]);
    expect(stream.ok).toBeGreaterThan(20);
    expect(await proxy.route(routeId(app, 'web'))).toEqual(before);
    // The failed replica went; the deploy's rollback puts the previous release on again.
    await target.rollBack({ app, failed: { id: bad.id }, previous: r1 }, call());
    const live = await appContainers(app);
    expect(live.map((c) => c.labels['norn.release'])).toEqual([String(r1.id), String(r1.id)]);
    expect(await fetchBody(port)).toBe('v1');
  }, 180_000);
});

describe('the ingress proxy script/docker-up starts', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'norn-caddy-'));
  });
  afterAll(async () => {
    const pid = Number(await readFile(path.join(dir, '.norn/docker-up/caddy.pid'), 'utf8'));
    if (pid) process.kill(pid);
    await rm(dir, { recursive: true, force: true });
  });

  /** script/docker-up from a checkout of its own, with a Caddy of its own (not the shared one). */
  const up = async (admin: string) => {
    await mkdir(path.join(dir, 'script'), { recursive: true });
    await runCommand(
      ['cp', path.join(REPO_ROOT, 'script/docker-up'), path.join(dir, 'script')],
      {},
    );
    const result = await runCommand(['bash', path.join(dir, 'script/docker-up')], {
      cwd: dir,
      env: { ...process.env, NORN_CADDY_ADMIN: admin, NORN_CADDY_STATE: path.join(dir, 'caddy') },
      tailLines: 30,
    });
    expect(result.code, result.tail.join('\n')).toBe(0);
  };

  it('keeps its routes across a restart of the proxy', async () => {
    const admin = `127.0.0.1:${await freePort()}`;
    await up(admin);
    const own = createCaddyDriver({ adminUrl: `http://${admin}` });
    const [listen, upstream] = [await freePorts(1), await freePort()];
    const id = `norn.zdt-restart.web`;
    await own.setRoute(id, { listenPort: listen, upstreams: [upstream] });

    const pid = Number(await readFile(path.join(dir, '.norn/docker-up/caddy.pid'), 'utf8'));
    process.kill(pid);
    const down = await waitFor(
      async () => (await own.route(id).catch(() => 'down')) === 'down',
      10_000,
    );
    expect(down).toBe(true);
    const err = await own.route(id).catch((e: unknown) => e);
    expect(isNornError(err) && err.code).toBe('UNAVAILABLE');
    expect(String((err as Error).message)).toContain('run script/docker-up');

    await up(admin);
    expect(await own.route(id)).toEqual({ listenPort: listen, upstreams: [upstream] });
    // And it serves there again: nothing listens upstream, so the proxy answers 502 itself.
    const res = await fetch(`http://127.0.0.1:${listen}/`, { signal: AbortSignal.timeout(15_000) });
    expect(res.status).toBe(502);
  }, 120_000);
});
