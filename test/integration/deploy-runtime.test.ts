/**
 * The deploy steps submit, healthy and forge, rollback and scheduled processes, through the real
 * engine against a real dockerd, the local registry, PostgreSQL and Redis. `clone` and `build` are
 * test steps that report a real local git repo and a real pushed busybox image.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { listIngress } from '../../src/shared/drivers/cloudflared.js';
import { cronSchedulerId } from '../../src/pipelines/deploy/cron.js';
import type { ForgeOutput, SubmitOutput } from '../../src/pipelines/deploy/types.js';
import { waitFor } from '../support/norn.js';
import {
  STARTUP_MS,
  appContainers,
  appName,
  fetchBody,
  replicaBodies,
  freePorts,
  makeAppRepo,
  type WebImage,
} from '../support/deploy-runtime/fixtures.js';
import type { Runtime } from '../support/deploy-runtime/system.js';
import { SOPS, runtimeSuite } from '../support/deploy-runtime/suite.js';

const suite = runtimeSuite({
  imageRepo: 'norn-rt',
  restartArgv: (dir) => ['touch', join(dir, 'tunnel-restarted')],
});
let rt: Runtime;
let tmp: string;
let images: Record<WebImage, string>;
beforeAll(() => {
  ({ rt, tmp, images } = suite);
});
const cfPath = () => suite.cfPath();
const marker = () => join(tmp, 'tunnel-restarted');
const newApp = (base: string) => suite.app(appName(base));
const source = (image: WebImage, repo?: { repoUrl: string; commitSha: string }) =>
  suite.source(image, repo);
const webSpec = (port: number, replicas: number, policy: Record<string, unknown> = {}) => ({
  processes: { web: { port, replicas, health: { path: '/healthz', timeout: '1s' } } },
  deployPolicy: { minHealthyTime: '1s', healthTimeout: '10s', ...policy },
});
const byName = async (app: string) =>
  Object.fromEntries((await appContainers(app)).map((c) => [c.name, c]));

describe('submit and healthy on the docker target', () => {
  it('starts every replica with its own PORT, activates the release, and replaces replicas one at a time', async () => {
    const app = newApp('rt-web');
    const port = await freePorts(2);
    const first = await rt.deploy(app, webSpec(port, 2), source('v1'));
    expect(first.run.status, first.run.error ?? '').toBe('succeeded');
    const c1 = await byName(app);
    expect(Object.keys(c1).sort()).toEqual([`norn.${app}.web.0`, `norn.${app}.web.1`]);
    // Behind the ingress proxy, each replica listens on a port of its own (recorded on it).
    const ports = [0, 1].map((i) => Number(c1[`norn.${app}.web.${i}`]!.labels['norn.port']));
    expect(c1[`norn.${app}.web.0`]!.env).toContain(`PORT=${ports[0]}`);
    expect(c1[`norn.${app}.web.1`]!.env).toContain(`PORT=${ports[1]}`);
    expect(new Set([port, ...ports]).size).toBe(3);
    expect(c1[`norn.${app}.web.1`]!.labels).toMatchObject({
      'norn.app': app,
      'norn.process': 'web',
      'norn.replica': '1',
      'norn.deployment': first.run.id,
    });
    expect([
      await fetchBody(port),
      ...(await replicaBodies(app)),
      await fetchBody(port, '/healthz'),
    ]).toEqual(['v1', 'v1', 'v1', 'ok']);
    const sub1 = first.outputs.submit as SubmitOutput;
    expect(sub1).toMatchObject({
      previousReleaseId: null,
      containers: [`norn.${app}.web.0`, `norn.${app}.web.1`],
      schedulers: [],
    });
    expect(await rt.releases.byId(sub1.releaseId)).toMatchObject({
      status: 'active',
      imageRef: images.v1,
      commitSha: suite.repo.commitSha,
    });
    expect((first.outputs.healthy as { healthyForMs: number }).healthyForMs).toBeGreaterThanOrEqual(
      1_000,
    );

    // Watch the served port (the proxy) while v2 rolls out: it always answers, v1 then v2. A GET
    // whose keep-alive connection the proxy closed as it reloaded is sent once more on a new one,
    // as HTTP clients (cloudflared's Go transport, browsers) do for idempotent requests.
    const seen: string[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const body = await fetchBody(port);
        seen.push(body === 'down' ? await fetchBody(port) : body);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const second = await rt.deploy(app, webSpec(port, 2), source('v2'));
    watching = false;
    await watcher;
    expect(second.run.status, second.run.error ?? '').toBe('succeeded');
    const states = seen.filter((s, i) => s !== seen[i - 1]);
    console.info(`port ${port} during the v2 rollout: ${states.join(' → ')}`);
    expect(states[0]).toBe('v1');
    expect(states.at(-1)).toBe('v2');
    expect(seen).not.toContain('down');
    expect(await replicaBodies(app)).toEqual(['v2', 'v2']);
    // Each slot's new container runs next to its old one until it took over: the second name.
    const c2 = await byName(app);
    const [r0, r1] = [c2[`norn.${app}.web.0.b`]!, c2[`norn.${app}.web.1.b`]!];
    expect(r0.image).toBe(images.v2);
    // Replica 1 was created only after replica 0 had started and answered its health path.
    console.info(
      `rolling replace: web-0 created ${r0.created}, started ${r0.startedAt}; web-1 created ${r1.created}`,
    );
    expect(Date.parse(r1.created) - Date.parse(r0.startedAt)).toBeGreaterThanOrEqual(STARTUP_MS);
    const sub2 = second.outputs.submit as SubmitOutput;
    expect(sub2.previousReleaseId).toBe(sub1.releaseId);
    expect((await rt.releases.byId(sub1.releaseId))!.status).toBe('superseded');
    expect((await rt.releases.byId(sub2.releaseId))!.status).toBe('active');

    // Scale down: replica 1 goes away.
    const third = await rt.deploy(app, webSpec(port, 1), source('v2'));
    expect(third.run.status, third.run.error ?? '').toBe('succeeded');
    expect(Object.keys(await byName(app))).toEqual([`norn.${app}.web.0`]);
  }, 90_000);

  it('puts the previous release back when the new one does not stay healthy, and fails the run clearly', async () => {
    const app = newApp('rt-rollback');
    const port = await freePorts(2);
    const good = await rt.deploy(app, webSpec(port, 2), source('v1'));
    expect(good.run.status, good.run.error ?? '').toBe('succeeded');
    const v1 = (good.outputs.submit as SubmitOutput).releaseId;

    // Healthy at submit, then its health path goes away: the healthy step gives up and rolls back.
    const bad = await rt.deploy(
      app,
      webSpec(port, 2, { minHealthyTime: '3s', healthTimeout: '4s' }),
      source('degrading'),
    );
    expect(bad.run).toMatchObject({ status: 'failed', failedStep: 'healthy' });
    expect(bad.run.error).toMatch(
      /web replica \d not healthy: .*answered 404.*; rolled back to release \d+/,
    );
    expect(bad.run.error).toContain(`rolled back to release ${v1} (${images.v1})`);
    expect(await replicaBodies(app)).toEqual(['v1', 'v1']);
    expect(Object.values(await byName(app)).map((c) => c.image)).toEqual([images.v1, images.v1]);
    const badRelease = await rt.releases.byDeployment(bad.run.id);
    expect(badRelease).toMatchObject({ status: 'rolled_back' });
    expect((await rt.releases.byId(v1))!.status).toBe('active');

    // Never healthy: submit itself gives up on replica 0 and rolls back before failing.
    const never = await rt.deploy(
      app,
      webSpec(port, 2, { healthTimeout: '2s' }),
      source('nohealth'),
    );
    expect(never.run).toMatchObject({ status: 'failed', failedStep: 'submit' });
    expect(never.run.error).toMatch(
      /web replica 0 not healthy within 2000 ms: .*404.*; rolled back to release/,
    );
    expect(await replicaBodies(app)).toEqual(['v1', 'v1']);
    expect((await rt.releases.byDeployment(never.run.id))!.status).toBe('rolled_back');

    // Without autoRollback the run fails, the release is failed, and v1 stays the last known good.
    const kept = await rt.deploy(
      app,
      webSpec(port, 2, { minHealthyTime: '3s', healthTimeout: '4s', autoRollback: false }),
      source('degrading'),
    );
    expect(kept.run).toMatchObject({ status: 'failed', failedStep: 'healthy' });
    expect(kept.run.error).toContain('autoRollback is off');
    expect((await rt.releases.byDeployment(kept.run.id))!.status).toBe('failed');
    expect((await rt.releases.byId(v1))!.status).toBe('active');
    expect(await fetchBody(port)).toBe('v3');
  }, 90_000);

  it('fails at submit, before anything runs, a nomad app on a worker with no Nomad', async () => {
    const app = newApp('rt-nomad');
    const result = await rt.deploy(
      app,
      { ...webSpec(await freePorts(1), 1), target: 'nomad' },
      source('v1'),
    );
    expect(result.run).toMatchObject({ status: 'failed', failedStep: 'submit' });
    expect(result.run.error).toMatch(
      /^UNAVAILABLE: the nomad target needs a Nomad cluster, and this worker has none: set NORN_NOMAD_ADDR/,
    );
    expect((await rt.releases.byDeployment(result.run.id))?.status).toBe('failed');
    expect(await appContainers(app)).toEqual([]);
  });
});

describe('secrets', () => {
  it('decrypts secrets.enc.yaml into the environment, stores only the encrypted file, and refuses a tampered one', async () => {
    const app = newApp('rt-secrets');
    const port = await freePorts(1);
    const encrypted = await readFile(join(SOPS, 'format.enc.yaml'), 'utf8');
    const repo = await makeAppRepo(tmp, `${app}-ok`, { 'secrets.enc.yaml': encrypted });
    const spec = { ...webSpec(port, 1), env: { GREETING: 'hello' }, secrets: ['foo'] };
    const ok = await rt.deploy(app, spec, source('v1', repo));
    expect(ok.run.status, ok.run.error ?? '').toBe('succeeded');
    const [before] = await appContainers(app);
    expect(before!.env).toEqual(
      expect.arrayContaining(['foo=bar', 'GREETING=hello', `PORT=${before!.labels['norn.port']}`]),
    );
    const release = (await rt.releases.byDeployment(ok.run.id))!;
    expect(release.secretsEnc).toBe(encrypted);
    expect(release.secretsFormat).toBe('yaml');
    expect(release.secretsEnc).toMatch(/^foo: ENC\[AES256_GCM,data:/);

    // A key the spec declares but the file lacks: named, and nothing touched.
    const lacking = await rt.deploy(
      app,
      { ...spec, secrets: ['foo', 'DATABASE_PASSWORD'] },
      source('v2', repo),
    );
    expect(lacking.run).toMatchObject({ status: 'failed', failedStep: 'submit' });
    expect(lacking.run.error).toContain(
      'secrets.enc.yaml lacks keys declared in spec.secrets: DATABASE_PASSWORD',
    );

    const tampered = encrypted.replace('data:8CvE', 'data:8CvF');
    expect(tampered).not.toBe(encrypted);
    const badRepo = await makeAppRepo(tmp, `${app}-bad`, { 'secrets.enc.yaml': tampered });
    const bad = await rt.deploy(app, spec, source('v2', badRepo));
    expect(bad.run).toMatchObject({ status: 'failed', failedStep: 'submit' });
    expect(bad.run.error).toMatch(/^SECRETS_INVALID: MAC mismatch/);
    expect(await rt.releases.byDeployment(bad.run.id)).toBeNull();
    const [after] = await appContainers(app);
    expect({ id: after!.id, image: after!.image, startedAt: after!.startedAt }).toEqual({
      id: before!.id,
      image: images.v1,
      startedAt: before!.startedAt,
    });
    expect(await fetchBody(port)).toBe('v1');
  }, 60_000);
});

describe('scheduled processes', () => {
  it('runs a schedule as one BullMQ job scheduler whose jobs run the command in one-off containers', async () => {
    const app = newApp('rt-cron');
    const port = await freePorts(1);
    const repo = await makeAppRepo(tmp, `${app}-repo`, {
      'secrets.enc.yaml': await readFile(join(SOPS, 'format.enc.yaml'), 'utf8'),
    });
    const spec = {
      ...webSpec(port, 1),
      env: { GREETING: 'hello' },
      processes: {
        ...webSpec(port, 1).processes,
        tick: { schedule: '* * * * * *', command: 'echo "tick $GREETING $foo"' },
        oops: { schedule: '* * * * * *', command: 'echo "going wrong"; exit 3' },
      },
    };
    const first = await rt.deploy(app, spec, source('v1', repo));
    expect(first.run.status, first.run.error ?? '').toBe('succeeded');
    const sub = first.outputs.submit as SubmitOutput;
    expect(sub.schedulers.sort()).toEqual([
      cronSchedulerId(app, 'oops'),
      cronSchedulerId(app, 'tick'),
    ]);
    const scheduler = await rt.cron.queue.getJobScheduler(`${app}.tick`);
    expect(scheduler).toMatchObject({
      pattern: '* * * * * *',
      tz: 'UTC',
      template: { data: { appId: app, process: 'tick', releaseId: sub.releaseId } },
    });
    expect(JSON.stringify(scheduler)).not.toContain('hello'); // no env (nor secrets) in Redis

    const done = await waitFor(
      async () =>
        (await rt.cron.queue.getCompleted()).find(
          (j) => j.data.appId === app && j.data.process === 'tick',
        ),
      'a completed tick job',
      20_000,
      200,
    );
    expect(done.returnvalue).toEqual({ exitCode: 0, tail: ['tick hello bar'] });
    const failed = await waitFor(
      async () =>
        (await rt.cron.queue.getFailed()).find(
          (j) => j.data.appId === app && j.data.process === 'oops',
        ),
      'a failed oops job',
      20_000,
      200,
    );
    expect(failed.failedReason).toBe(`${app}.oops exited with 3:\ngoing wrong`);
    // A job's one-off container is gone once the job finished.
    const finished = [done, failed].map(
      (j) => `norn.${app}.${j.data.process}.cron_${j.id!.replace(/[^a-zA-Z0-9_.-]/g, '-')}`,
    );
    const names = (await appContainers(app)).map((c) => c.name);
    for (const name of finished) expect(names).not.toContain(name);
    expect(names).toContain(`norn.${app}.web.0`);

    // Re-deploying updates the schedulers in place; dropping a schedule prunes it.
    const again = await rt.deploy(app, spec, source('v2', repo));
    expect(again.run.status, again.run.error ?? '').toBe('succeeded');
    const mine = async () =>
      (await rt.cron.queue.getJobSchedulers(0, -1))
        .map((s) => s.id ?? s.key)
        .filter((id) => id.startsWith(`${app}.`));
    expect((await mine()).sort()).toEqual([`${app}.oops`, `${app}.tick`]);
    const againId = (again.outputs.submit as SubmitOutput).releaseId;
    expect((await rt.cron.queue.getJobScheduler(`${app}.tick`))!.template!.data!.releaseId).toBe(
      againId,
    );

    const { oops: _dropped, ...kept } = spec.processes;
    const pruned = await rt.deploy(app, { ...spec, processes: kept }, source('v2', repo));
    expect(pruned.run.status, pruned.run.error ?? '').toBe('succeeded');
    expect(await mine()).toEqual([`${app}.tick`]);
    const { tick: _tick, ...webOnly } = kept;
    await rt.deploy(app, { ...spec, processes: webOnly }, source('v2', repo));
    expect(await mine()).toEqual([]);
  }, 90_000);
});

describe('forge', () => {
  it("routes the app's endpoints before the catch-all, leaves other rules alone, and restarts only on change", async () => {
    const app = newApp('rt-forge');
    const port = await freePorts(1);
    await writeFile(
      cfPath(),
      [
        'tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef',
        'ingress:',
        '  # norn:app=other',
        '  - hostname: other.example.com',
        '    service: http://127.0.0.1:9999',
        '  - service: http_status:404',
        '',
      ].join('\n'),
    );
    const spec = { ...webSpec(port, 1), endpoints: [{ url: `${app}.example.com` }] };
    const first = await rt.deploy(app, spec, source('v1'));
    expect(first.run.status, first.run.error ?? '').toBe('succeeded');
    const out = first.outputs.forge as ForgeOutput;
    expect(out).toEqual({
      routes: [{ hostname: `${app}.example.com`, service: `http://127.0.0.1:${port}` }],
      changed: true,
      restarted: true,
    });
    const text = await readFile(cfPath(), 'utf8');
    expect(listIngress(text)).toEqual([
      { hostname: 'other.example.com', service: 'http://127.0.0.1:9999', app: 'other' },
      { hostname: `${app}.example.com`, service: `http://127.0.0.1:${port}`, app },
      { service: 'http_status:404' },
    ]);
    expect(text).toContain('tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef');
    expect(existsSync(marker())).toBe(true);

    await rm(marker());
    const second = await rt.deploy(app, spec, source('v2'));
    expect(second.outputs.forge).toEqual({ ...out, changed: false, restarted: false });
    expect(existsSync(marker())).toBe(false);
    expect(await readFile(cfPath(), 'utf8')).toBe(text);

    const none = await rt.deploy(app, webSpec(port, 1), source('v2'));
    expect(none.steps.forge).toMatchObject({ status: 'skipped' });
    const events = await rt.system.events.bySaga(none.run.sagaId);
    expect(
      events.find((e) => e.payload.step === 'forge' && e.payload.status === 'skipped')?.payload
        .reason,
    ).toBe('no endpoints');
  }, 60_000);
});
