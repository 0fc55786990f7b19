/**
 * Issue 7 on the docker target, through the real engine, the api and the worker: apps never share
 * or destroy each other's containers, ports are owned, a crash-looping release fails fast and says
 * why, and a cancel in submit, healthy or forge leaves the app as it was before the deploy.
 * Apps are named h7d-*, on host ports 19200-19299.
 */
import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDockerDriver } from '../../src/shared/drivers/docker.js';
import { listIngress } from '../../src/shared/drivers/cloudflared.js';
import type { RunningApi } from '../../src/system.js';
import { OPEN_REGISTRY } from '../support/docker/engine.js';
import { registerApp, waitFor, waitForRun } from '../support/norn.js';
import { runCli } from '../support/cli/norn-cli.js';
import {
  appContainers,
  fetchBody,
  replicaBodies,
  type WebImage,
} from '../support/deploy-runtime/fixtures.js';
import type { Runtime } from '../support/deploy-runtime/system.js';
import { runtimeSuite } from '../support/deploy-runtime/suite.js';

const engine = new Docker();
const marker = () => join(suite.tmp, 'tunnel-restarted');
const hold = () => join(suite.tmp, 'hold-restart');
const suite = runtimeSuite({
  imageRepo: 'h7d-images',
  // Restarting the tunnel takes as long as the hold file exists: a cancel can land in forge.
  restartArgv: (dir) => [
    'sh',
    '-c',
    `touch ${join(dir, 'tunnel-restarted')}; while [ -e ${join(dir, 'hold-restart')} ]; do sleep 0.1; done`,
  ],
});
let rt: Runtime;
let api: RunningApi;
let images: Record<WebImage, string>;
const extraContainers: string[] = [];
const cfPath = () => suite.cfPath();

beforeAll(async () => {
  ({ rt, images } = suite);
  api = await rt.system.startApi(0);
});

afterAll(async () => {
  await rm(hold(), { force: true }).catch(() => {});
  for (const name of extraContainers)
    await engine
      .getContainer(name)
      .remove({ force: true })
      .catch(() => {});
});

const app = (name: string) => suite.app(name);
const source = (image: WebImage) => suite.source(image);
const web = (port: number, replicas = 1, extra: Record<string, unknown> = {}) => ({
  port,
  replicas,
  health: { path: '/healthz', timeout: '1s' },
  ...extra,
});
const spec = (processes: Record<string, unknown>, policy: Record<string, unknown> = {}) => ({
  processes,
  deployPolicy: { minHealthyTime: '1s', healthTimeout: '10s', ...policy },
});
const running = async (name: string) => (await appContainers(name)).filter((c) => c.running);
const release = (runId: string) => rt.releases.byDeployment(runId);
const post = (path: string, body: unknown) =>
  fetch(api.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

/** A container norn did not make (or made under an old name), running busybox `cmd`. */
async function foreignContainer(name: string, labels: Record<string, string>, cmd: string) {
  extraContainers.push(name);
  const c = await engine.createContainer({
    name,
    Image: images.v1,
    Cmd: ['/bin/sh', '-c', cmd],
    Labels: labels,
    HostConfig: { NetworkMode: 'host', Init: true },
  });
  await c.start();
  return c.id;
}

describe('container names and ownership', () => {
  it('keeps apps whose app-process names once collided apart', async () => {
    const a = app('h7d-nc');
    const b = app('h7d-nc-b');
    const first = await rt.deploy(a, spec({ 'b-web': web(19200) }), source('v1'));
    expect(first.run.status, first.run.error ?? '').toBe('succeeded');
    const [before] = await running(a);
    const second = await rt.deploy(b, spec({ web: web(19201) }), source('v2'));
    expect(second.run.status, second.run.error ?? '').toBe('succeeded');
    // Both serve, and the first app's container was never touched.
    expect([await fetchBody(19200), await fetchBody(19201)]).toEqual(['v1', 'v2']);
    const [after] = await running(a);
    expect(after).toMatchObject({ id: before!.id, name: `norn.${a}.b-web.0` });
    expect((await running(b)).map((c) => c.name)).toEqual([`norn.${b}.web.0`]);
  }, 90_000);

  it("refuses to replace a container under its name that is another app's", async () => {
    const mine = app('h7d-own');
    const id = await foreignContainer(
      `norn.${mine}.web.0`,
      { 'norn.app': 'h7d-intruder' },
      'sleep 300',
    );
    const result = await rt.deploy(mine, spec({ web: web(19203) }), source('v1'));
    expect(result.run).toMatchObject({ status: 'failed', failedStep: 'submit' });
    expect(result.run.error).toContain(
      `a container named norn.${mine}.web.0 already exists and belongs to app h7d-intruder, not to app ${mine}`,
    );
    const info = await engine.getContainer(id).inspect();
    expect(info.State.Running).toBe(true); // untouched
  }, 60_000);

  it('replaces its own container made under the old name, found by its labels', async () => {
    const mine = app('h7d-old');
    const old = `norn-${mine}-web-0`;
    const labels = { 'norn.app': mine, 'norn.process': 'web', 'norn.replica': '0' };
    await foreignContainer(old, labels, `/bin/busybox httpd -f -p 127.0.0.1:19205 -h /www`);
    await waitFor(async () => (await fetchBody(19205)) === 'v1', 'the old-named container');
    const result = await rt.deploy(mine, spec({ web: web(19205) }), source('v2'));
    expect(result.run.status, result.run.error ?? '').toBe('succeeded');
    expect(await fetchBody(19205)).toBe('v2');
    expect((await appContainers(mine)).map((c) => c.name)).toEqual([`norn.${mine}.web.0`]);
  }, 60_000);
});

describe('ports are owned', () => {
  let listener: Server | undefined;
  afterAll(() => listener?.close());

  it('refuses at registration a port another app is served on, naming it', async () => {
    const a = app('h7d-pa');
    const first = await post('/api/apps', { name: a, processes: { web: web(19210, 2) } });
    expect(first.status).toBe(201);
    const res = await post('/api/apps', { name: 'h7d-pb', processes: { web: web(19210) } });
    expect(res.status).toBe(409);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('CONFLICT');
    expect(body.error.message).toContain(
      `process web wants port 19210, which app ${a}'s process web is served on`,
    );
    // Its own processes may not share a port either: that is a spec error (400, with its path),
    // found by the parser every deploy step uses. A scheduled process and other ports are fine,
    // the one next to a process with two replicas too (they sit behind the proxy).
    const own = await post('/api/apps', {
      name: 'h7d-pb',
      processes: { web: web(19212, 2), api: { port: 19212 } },
    });
    expect(own.status).toBe(400);
    const ownError = ((await own.json()) as { error: { code: string; problems: unknown[] } }).error;
    expect(ownError.code).toBe('SPEC_INVALID');
    expect(ownError.problems).toContainEqual({
      path: 'processes.api.port',
      message: 'it would be served on port 19212, but processes.web is served there already',
    });
    const fine = await post('/api/apps', {
      name: 'h7d-pb',
      processes: { web: web(19211), tick: { schedule: '* * * * *', command: 'true' } },
    });
    expect(fine.status).toBe(201);
    expect((await rt.system.apps.get('h7d-pb'))?.spec).toBeTruthy();
  });

  it('rechecks at submit an app registered past the check', async () => {
    const c = app('h7d-pc');
    const result = await rt.deploy(c, spec({ web: web(19210) }), source('v1'));
    expect(result.run).toMatchObject({ status: 'failed', failedStep: 'submit' });
    expect(result.run.error).toMatch(/^CONFLICT: .*wants port 19210, which app h7d-pa's/);
    expect(await appContainers(c)).toEqual([]);
  }, 60_000);

  it('fails submit at once when something else listens on the port, and never probes it', async () => {
    listener = createServer((_req, res) => res.end('not yours'));
    await new Promise<void>((resolve) => listener!.listen(19215, '127.0.0.1', resolve));
    const d = app('h7d-pd');
    const started = Date.now();
    const result = await rt.deploy(
      d,
      spec({ web: web(19215) }, { healthTimeout: '5m' }),
      source('v1'),
    );
    expect(result.run).toMatchObject({ status: 'failed', failedStep: 'submit' });
    expect(result.run.error).toContain(
      'port 19215 is already in use on the Docker host by a process norn did not start',
    );
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(await running(d)).toEqual([]);
  }, 90_000);

  // Before the ingress proxy, replica 1 held port + 1 and this named that container; now the
  // served port is the proxy's route, and the route names the app that holds it.
  it("names the app whose proxy route holds the port, and leaves that app's replicas serving", async () => {
    const e = app('h7d-pe');
    const first = await rt.deploy(e, spec({ web: web(19220, 2) }), source('v1'));
    expect(first.run.status, first.run.error ?? '').toBe('succeeded');
    await registerApp(rt.system, e, spec({ web: web(19290) })); // re-registered elsewhere, not deployed
    const f = app('h7d-pf');
    const started = Date.now();
    const result = await rt.deploy(
      f,
      spec({ web: web(19220) }, { healthTimeout: '5m' }),
      source('v2'),
    );
    expect(result.run).toMatchObject({ status: 'failed', failedStep: 'submit' });
    expect(result.run.error).toContain(
      `port 19220 is already in use on the Docker host by the ingress proxy's route norn.${e}.web`,
    );
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(await running(f)).toEqual([]);
    expect([await fetchBody(19220), ...(await replicaBodies(e))]).toEqual(['v1', 'v1', 'v1']);
  }, 90_000);

  // Before the proxy this moved onto replica 1's old port 19251; now only the served port moves.
  it('lets an app move its served port, even onto one its replicas held before the proxy', async () => {
    const m = app('h7d-mv');
    const first = await rt.deploy(m, spec({ web: web(19250, 2) }), source('v1'));
    expect(first.run.status, first.run.error ?? '').toBe('succeeded');
    const moved = await rt.deploy(m, spec({ web: web(19251, 2) }), source('v2'));
    expect(moved.run.status, moved.run.error ?? '').toBe('succeeded');
    expect([await fetchBody(19250), await fetchBody(19251)]).toEqual(['down', 'v2']);
    expect(await replicaBodies(m)).toEqual(['v2', 'v2']);
  }, 90_000);
});

describe('a crash-looping release', () => {
  const boom = 'echo "boom: FATAL missing DATABASE_URL"; exit 1';

  it('fails submit within seconds with the exit code and its last lines, everywhere', async () => {
    const name = app('h7d-crash');
    const started = Date.now();
    const result = await rt.deploy(
      name,
      spec({ web: web(19230, 1, { command: `echo starting; ${boom}` }) }, { healthTimeout: '5m' }),
      source('v1'),
    );
    const tookMs = Date.now() - started;
    console.info(`crash-looping replica failed the deploy after ${tookMs} ms`);
    expect(tookMs).toBeLessThan(30_000);
    expect(result.run).toMatchObject({ status: 'failed', failedStep: 'submit' });
    const error = result.run.error!;
    expect(error).toMatch(/web replica 0 \(container norn\.h7d-crash\.web\.0\) exited with code 1/);
    expect(error).toContain('  boom: FATAL missing DATABASE_URL');
    expect(error).toContain('  starting');
    expect(error).toContain('there is no previous release to roll back to');

    const log = (await (
      await fetch(`${api.url}/api/deployments/${result.run.id}/steps/submit/log`)
    ).json()) as { lines: string[] };
    expect(log.lines.join('\n')).toContain('exited with code 1');
    expect(log.lines.join('\n')).toContain('boom: FATAL missing DATABASE_URL');
    const events = await rt.system.events.bySaga(result.run.sagaId);
    const failed = events.find((e) => e.type === 'deploy.failed');
    expect(String(failed?.payload.error)).toContain('boom: FATAL missing DATABASE_URL');
    const cli = await runCli(['logs', result.run.id], { NORN_API_URL: api.url });
    expect(cli.stdout).toContain('exited with code 1');
    expect(cli.stdout).toContain('boom: FATAL missing DATABASE_URL');
  }, 90_000);

  it('fails healthy within seconds when a replica exits after it answered', async () => {
    const name = app('h7d-crash2');
    const late = `/bin/busybox httpd -f -p 127.0.0.1:$PORT -h /www & sleep 2; echo "late boom"; exit 3`;
    const started = Date.now();
    const result = await rt.deploy(
      name,
      spec(
        { web: web(19232, 1, { command: late }) },
        { minHealthyTime: '60s', healthTimeout: '5m' },
      ),
      source('v1'),
    );
    expect(Date.now() - started).toBeLessThan(40_000);
    expect(result.run).toMatchObject({ status: 'failed', failedStep: 'healthy' });
    expect(result.run.error).toMatch(/exited with code 3, restarted \d+ times?; its last/);
    expect(result.run.error).toContain('late boom');
    expect(await running(name)).toEqual([]);
  }, 90_000);

  it("scrubs secret values from a container's output tail", async () => {
    const driver = createDockerDriver({ registryUrl: OPEN_REGISTRY });
    const name = 'h7d-tail-redact';
    const cmd = 'echo "connecting with s3cret-value-42"; echo done; sleep 30';
    await foreignContainer(name, { 'norn.app': 'h7d-tail' }, cmd);
    await waitFor(async () => (await driver.logsTail(name, 20)).includes('done'), 'its output');
    expect(await driver.logsTail(name, 20, ['s3cret-value-42'])).toEqual([
      'connecting with ***',
      'done',
    ]);
  }, 60_000);
});

describe('a cancel after submit began puts the app back as it was', () => {
  const stepRunning = (runId: string, step: string) =>
    waitFor(
      async () =>
        (await rt.system.store.steps(runId)).find((s) => s.name === step && s.status === 'running'),
      `step ${step} of ${runId} running`,
      30_000,
      100,
    );
  /** Cancels the run, then waits for the run to end and the finalizer to settle its release. */
  async function cancelAndSettle(runId: string) {
    await rt.system.runs.cancel(runId);
    const run = await waitForRun(rt.system, runId, ['cancelled'], 30_000);
    const settled = await waitFor(
      async () => {
        const r = await release(runId);
        return r && r.status !== 'deploying' && r.status !== 'active' ? r : undefined;
      },
      `the release of ${runId} to be taken back`,
      60_000,
      200,
    );
    return { run, release: settled };
  }
  const images_ = async (name: string) => (await appContainers(name)).map((c) => c.image);

  it('in submit: the previous release serves again and is the active one', async () => {
    const name = app('h7d-cs');
    const good = await rt.deploy(name, spec({ web: web(19240) }), source('v1'));
    expect(good.run.status, good.run.error ?? '').toBe('succeeded');
    const v1 = (await release(good.run.id))!;
    // Never answers its health path: submit waits on replica 0 until cancelled.
    const { deploymentId } = await rt.start(
      name,
      spec({ web: web(19240) }, { healthTimeout: '60s' }),
      source('nohealth'),
    );
    await stepRunning(deploymentId, 'submit');
    await waitFor(async () => (await images_(name)).includes(images.nohealth), 'the new container');
    const { release: bad } = await cancelAndSettle(deploymentId);
    expect(bad).toMatchObject({ status: 'rolled_back', previousReleaseId: v1.id });
    expect(bad.error).toContain(`rolled back to release ${v1.id}`);
    expect((await rt.releases.byId(v1.id))!.status).toBe('active');
    expect(await images_(name)).toEqual([images.v1]);
    expect(await fetchBody(19240)).toBe('v1');
  }, 120_000);

  it('in submit of a first deploy: the new containers are removed', async () => {
    const name = app('h7d-cs0');
    const { deploymentId } = await rt.start(
      name,
      spec({ web: web(19242) }, { healthTimeout: '60s' }),
      source('nohealth'),
    );
    await stepRunning(deploymentId, 'submit');
    await waitFor(async () => (await images_(name)).length > 0, 'the new container');
    const { release: bad } = await cancelAndSettle(deploymentId);
    expect(bad.status).toBe('failed');
    expect(bad.error).toContain(
      'there is no previous release to roll back to, so the new containers were removed',
    );
    expect(await appContainers(name)).toEqual([]);
    expect(await rt.releases.active(name)).toBeNull();
  }, 120_000);

  it('in healthy: the previous release serves again and is the active one', async () => {
    const name = app('h7d-ch');
    const good = await rt.deploy(name, spec({ web: web(19244, 2) }), source('v1'));
    expect(good.run.status, good.run.error ?? '').toBe('succeeded');
    const v1 = (await release(good.run.id))!;
    const { deploymentId } = await rt.start(
      name,
      spec({ web: web(19244, 2) }, { minHealthyTime: '60s', healthTimeout: '90s' }),
      source('v2'),
    );
    await stepRunning(deploymentId, 'healthy');
    expect([await fetchBody(19244), ...(await replicaBodies(name))]).toEqual(['v2', 'v2', 'v2']);
    const { release: bad } = await cancelAndSettle(deploymentId);
    expect(bad.status).toBe('rolled_back');
    expect((await rt.releases.byId(v1.id))!.status).toBe('active');
    expect(await images_(name)).toEqual([images.v1, images.v1]);
    expect([await fetchBody(19244), ...(await replicaBodies(name))]).toEqual(['v1', 'v1', 'v1']);
  }, 120_000);

  it('in forge: the route the run wrote is reverted and the previous release is active again', async () => {
    const name = app('h7d-cg');
    await writeFile(cfPath(), 'tunnel: t\ningress:\n  - service: http_status:404\n');
    const routed = (host: string) => ({ ...spec({ web: web(19246) }), endpoints: [{ url: host }] });
    const good = await rt.deploy(name, routed('h7d-cg-1.example.com'), source('v1'));
    expect(good.run.status, good.run.error ?? '').toBe('succeeded');
    const v1 = (await release(good.run.id))!;
    const before = await readFile(cfPath(), 'utf8');

    await writeFile(hold(), '');
    await rm(marker(), { force: true });
    const { deploymentId } = await rt.start(name, routed('h7d-cg-2.example.com'), source('v2'));
    await waitFor(async () => existsSync(marker()), 'forge restarting the tunnel', 60_000, 100);
    expect(listIngress(await readFile(cfPath(), 'utf8')).map((r) => r.hostname)).toContain(
      'h7d-cg-2.example.com',
    );
    await rt.system.runs.cancel(deploymentId);
    await waitForRun(rt.system, deploymentId, ['cancelled'], 30_000);
    await rm(hold(), { force: true });
    const bad = await waitFor(
      async () => {
        const r = await release(deploymentId);
        return r?.status === 'rolled_back' ? r : undefined;
      },
      'the forge-cancelled release to be rolled back',
      60_000,
      200,
    );
    expect(bad.error).toContain(`rolled back to release ${v1.id}`);
    expect((await rt.releases.byId(v1.id))!.status).toBe('active');
    expect(listIngress(await readFile(cfPath(), 'utf8'))).toEqual(listIngress(before));
    expect(await fetchBody(19246)).toBe('v1');
  }, 150_000);
});
