/**
 * The forge and teardown pipelines through the api and a worker, on the kubernetes target against
 * the strict fake cluster (test/support/kube): the objects forge makes and teardown takes away,
 * the forge state their hooks move (GET /api/apps/:id), forge twice (409, then force: two runs),
 * a failing forge resumed with its completed steps skipped, and the cloudflared ConfigMap's rule
 * inserted before the catch-all and removed again, the Secrets (DATABASE_URL and the active
 * release's secrets, keys in the outputs and never values) and the volumes' claims teardown
 * leaves. The worker has no cloudflared CLI on PATH, so create-dns-route is skipped with that
 * reason.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtinPipelines, createStepServices } from '../../src/pipelines/index.js';
import type { DeployServices } from '../../src/pipelines/deploy/types.js';
import { silentLogger } from '../../src/shared/logger.js';
import type { NornSystem } from '../../src/system.js';
import { claimName, objectName } from '../../src/targets/kubernetes/objects.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { REPO_ROOT } from '../support/docker/engine.js';
import { replaceFresh } from '../support/kube/replace.js';
import { deployCloudflared } from '../support/kube/cloudflared.js';
import { startFakeKube, type FakeKube } from '../support/kube/server.js';
import { runCli } from '../support/cli/norn-cli.js';
import { testEnv, testSystem, waitFor, waitForRun } from '../support/norn.js';

let kube: FakeKube;
let tdb: TestDatabase;
let system: NornSystem<DeployServices>;
let api: ReturnType<NornSystem['createApi']>;
let close: () => Promise<void>;
let apps: k8s.AppsV1Api;
let core: k8s.CoreV1Api;
let batch: k8s.BatchV1Api;
let services: DeployServices;

/** The apps' PostgreSQL server; its password must never show outside the Secrets. */
const APP_DB_PASSWORD = 'forge-pw-0451';
const APP_DB_ADMIN = `postgres://norn:${APP_DB_PASSWORD}@db.example:5432/postgres`;

const CATCH_ALL_CONFIG = [
  'tunnel: norn-test',
  'credentials-file: /etc/cloudflared/creds.json',
  'ingress:',
  "  # the operator's own rule",
  '  - hostname: ops.example.com',
  '    service: http://ops.ops.svc.cluster.local:80',
  '  - service: http_status:404',
  '',
].join('\n');

beforeAll(async () => {
  kube = await startFakeKube({ tickMs: 20 });
  tdb = await createTestDatabase();
  const env = testEnv(tdb.url, {
    NORN_HOOK_POLL_MS: '50',
    NORN_HOOK_BACKOFF_MS: '200',
    NORN_REGISTRY_URL: 'registry.test',
    NORN_DEPLOY_PIPELINE: 'deploy',
    NORN_APP_DATABASE_URL: APP_DB_ADMIN,
  });
  system = testSystem<DeployServices>(env, builtinPipelines());
  const step = createStepServices(
    system.config,
    {
      ...process.env,
      KUBECONFIG: kube.kubeconfigPath,
      HOME: '/nonexistent',
      PATH: '/usr/bin:/bin',
      NORN_SOPS_PGP_KEY_FILE: join(REPO_ROOT, 'test/fixtures/sops/sops_functional_tests_key.asc'),
    },
    system.stepDb,
    silentLogger,
  );
  system.setServices(step.services, step.extraQueues);
  services = step.services;
  await system.startWorker();
  api = system.createApi() as unknown as ReturnType<NornSystem['createApi']>;
  close = step.close;
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kube.kubeconfigPath);
  apps = kc.makeApiClient(k8s.AppsV1Api);
  core = kc.makeApiClient(k8s.CoreV1Api);
  batch = kc.makeApiClient(k8s.BatchV1Api);
  // cloudflared as an operator deployed it: its namespace, ConfigMap and Deployment.
  await deployCloudflared({ core, apps }, CATCH_ALL_CONFIG);
}, 60_000);

afterAll(async () => {
  await system?.close();
  await close?.();
  await tdb?.drop();
  await kube?.close();
});

async function register(name: string, extra: Record<string, unknown> = {}) {
  const spec = {
    name,
    target: 'kubernetes',
    processes: { web: { port: 8080, health: { path: '/healthz' } } },
    ...extra,
  };
  const res = await api.request('/api/apps', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(spec),
  });
  expect(res.status, await res.clone().text()).toBeLessThan(300);
}

const post = (path: string, body?: unknown, method = 'POST') =>
  api.request(path, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

async function forgeOf(app: string) {
  const res = await api.request(`/api/apps/${app}`);
  return (
    (await res.json()) as {
      forge: { state: string; runId: string; resources: Record<string, unknown> };
    }
  ).forge;
}

const stateIs = (app: string, state: string) =>
  waitFor(async () => {
    const f = await forgeOf(app);
    return f.state === state ? f : undefined;
  }, `app ${app} to be ${state}`);

async function stepsOf(runId: string) {
  const res = await api.request(`/api/runs/${runId}`);
  const body = (await res.json()) as { steps: { name: string; status: string }[] };
  return Object.fromEntries(body.steps.map((s) => [s.name, s]));
}

async function eventTypes(app: string) {
  const res = await api.request(`/api/apps/${app}/events?limit=200`);
  const body = (await res.json()) as {
    events: { type: string; runId: string; payload: Record<string, unknown> }[];
  };
  return body.events.reverse();
}

const cm = async () =>
  (await core.readNamespacedConfigMap({ name: 'cloudflared', namespace: 'cloudflared' })).data![
    'config.yaml'
  ]!;

/** Sets the cloudflared Deployment's image (one with "crashloop" in it never becomes ready). */
async function tunnelImage(image: string) {
  const where = { name: 'cloudflared', namespace: 'cloudflared' };
  // Redone on a 409: the rollout moves the resourceVersion meanwhile.
  await replaceFresh(
    () => apps.readNamespacedDeployment(where),
    (tunnel) => {
      tunnel.spec!.template.spec!.containers[0]!.image = image;
    },
    (body) => apps.replaceNamespacedDeployment({ ...where, body }),
  );
}

const gone = (p: Promise<unknown>) =>
  p.then(
    () => false,
    (err: unknown) => (err as { code?: number }).code === 404,
  );

describe('forge and teardown on the kubernetes target', () => {
  it('forges an app: its Deployment and Service, the ingress rule before the catch-all, a restarted tunnel; teardown takes them away', async () => {
    await register('shop', { hosts: { internal: 'shop', external: 'shop.example.com' } });
    expect((await forgeOf('shop')).state).toBe('unforged');
    const res = await post('/api/apps/shop/forge');
    expect(res.status).toBe(202);
    const accepted = (await res.json()) as { runId: string; deploymentId: string; sagaId: string };
    expect(accepted.deploymentId).toBe(accepted.runId);
    const run = await waitForRun(system, accepted.runId, undefined, 60_000);
    expect(run.status, run.error ?? '').toBe('succeeded');
    const name = objectName('shop', 'web');

    const d = await apps.readNamespacedDeployment({ name, namespace: 'default' });
    expect(d.spec?.template.spec?.containers[0]?.image).toBe('registry.test/shop:latest');
    expect(d.metadata?.labels?.['app.kubernetes.io/managed-by']).toBe('norn');
    const svc = await core.readNamespacedService({ name, namespace: 'default' });
    expect(svc.spec?.ports?.[0]?.port).toBe(80);

    const text = await cm();
    const rule = `http://${name}.default.svc.cluster.local:80`;
    expect(text).toContain(`hostname: shop.example.com`);
    expect(text.indexOf('shop.example.com')).toBeLessThan(text.indexOf('http_status:404'));
    expect(text.indexOf('ops.example.com')).toBeLessThan(text.indexOf('shop.example.com'));
    expect(text).toContain(rule);
    expect(text.startsWith(CATCH_ALL_CONFIG.split('  - service: http_status:404')[0]!)).toBe(true);
    const tunnel = await apps.readNamespacedDeployment({
      name: 'cloudflared',
      namespace: 'cloudflared',
    });
    expect(
      tunnel.spec?.template.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt'],
    ).toBeTruthy();

    const steps = await stepsOf(accepted.runId);
    expect(Object.keys(steps)).toEqual([
      'create-deployment',
      'create-service',
      'patch-cloudflared',
      'create-dns-route',
      'restart-cloudflared',
    ]);
    expect(steps['create-dns-route']!.status).toBe('skipped');

    const forged = await stateIs('shop', 'forged');
    expect(forged.runId).toBe(accepted.runId);
    expect(forged.resources).toMatchObject({
      namespace: 'default',
      deployments: [name],
      service: name,
      rule: { hostname: 'shop.example.com', service: rule },
      dnsRoute: null,
    });
    // The events, with DESIGN's payloads: forge.queued {app}, forge.step {step, status, output?,
    // durationMs?} (a completed step's output is what it recorded), forge.completed.
    const events = (await eventTypes('shop')).filter((e) => e.runId === accepted.runId);
    expect(events[0]).toMatchObject({ type: 'forge.queued', payload: { app: 'shop' } });
    const created = events.find(
      (e) => e.payload.step === 'create-deployment' && e.payload.status === 'complete',
    );
    expect(created?.type).toBe('forge.step');
    expect(created?.payload.durationMs).toEqual(expect.any(Number));
    expect(created?.payload.output).toMatchObject({ namespace: 'default', deployments: [name] });
    const patched = events.find(
      (e) => e.payload.step === 'patch-cloudflared' && e.payload.status === 'complete',
    );
    expect(patched?.payload.output).toMatchObject({ rule: { hostname: 'shop.example.com' } });
    const skippedDns = events.find(
      (e) => e.payload.step === 'create-dns-route' && e.payload.status === 'skipped',
    );
    expect(skippedDns?.payload.reason).toMatch(/cloudflared CLI is not installed/);
    expect(events.at(-1)?.type).toBe('forge.completed');

    // Forged: again without force is refused, saying to use force.
    const again = await post('/api/apps/shop/forge');
    expect(again.status).toBe(409);
    expect(JSON.stringify(await again.json())).toMatch(/force/);

    const down = await post('/api/apps/shop/forge', undefined, 'DELETE');
    expect(down.status).toBe(202);
    const td = (await down.json()) as { runId: string };
    const tdRun = await waitForRun(system, td.runId, undefined, 60_000);
    expect(tdRun.status, tdRun.error ?? '').toBe('succeeded');
    expect(await gone(apps.readNamespacedDeployment({ name, namespace: 'default' }))).toBe(true);
    expect(await gone(core.readNamespacedService({ name, namespace: 'default' }))).toBe(true);
    expect(await cm()).toBe(CATCH_ALL_CONFIG);
    const tdSteps = await stepsOf(td.runId);
    expect(tdSteps['remove-dns-route']!.status).toBe('complete');
    const { rows } = await system.stepDb.query<{ output: unknown }>(
      `SELECT output FROM run_steps WHERE run_id = $1 AND name = 'remove-dns-route'`,
      [td.runId],
    );
    expect(JSON.stringify(rows[0]?.output)).toMatch(/not installed/);
    const unforged = await stateIs('shop', 'unforged');
    expect(unforged.resources).toEqual({});
    const tdEvents = (await eventTypes('shop')).filter((e) => e.runId === td.runId);
    expect(tdEvents[0]).toMatchObject({ type: 'teardown.queued', payload: { app: 'shop' } });
    // remove-dns-route is best effort: it completed, its output warning why the route may stay.
    const dns = tdEvents.find(
      (e) => e.payload.step === 'remove-dns-route' && e.payload.status === 'complete',
    );
    expect(dns?.type).toBe('teardown.step');
    expect(dns?.payload.output).toMatchObject({
      removed: false,
      warning: expect.stringMatching(/not installed/),
    });
    expect(tdEvents.at(-1)?.type).toBe('teardown.completed');

    // Nothing left to tear down.
    expect((await post('/api/apps/shop/forge', undefined, 'DELETE')).status).toBe(409);
  }, 120_000);

  it('with force on a forged app runs a teardown and then a fresh forge: one request, two runs', async () => {
    await register('again', { hosts: { internal: 'again' } });
    const first = (await (await post('/api/apps/again/forge')).json()) as { runId: string };
    await waitForRun(system, first.runId, undefined, 60_000);
    await stateIs('again', 'forged');
    const res = await post('/api/apps/again/forge', { force: true });
    expect(res.status).toBe(202);
    const both = (await res.json()) as { runId: string; teardown: { runId: string } };
    expect(both.teardown.runId).not.toBe(both.runId);
    // While they run, another request is refused naming the run.
    const busy = await post('/api/apps/again/forge', { force: true });
    expect(busy.status).toBe(409);
    expect(JSON.stringify(await busy.json())).toMatch(/run [0-9a-f-]{36}/);
    const td = await waitForRun(system, both.teardown.runId, undefined, 60_000);
    const fg = await waitForRun(system, both.runId, undefined, 60_000);
    expect([td.status, fg.status]).toEqual(['succeeded', 'succeeded']);
    const runs = (await (await api.request('/api/apps/again/runs')).json()) as {
      runs: { id: string; pipeline: string }[];
    };
    expect(runs.runs.slice(0, 2).map((r) => r.pipeline)).toEqual(['forge', 'teardown']);
    const forged = await stateIs('again', 'forged');
    expect(forged.runId).toBe(both.runId);
    await apps.readNamespacedDeployment({ name: objectName('again', 'web'), namespace: 'default' });
  }, 120_000);

  it('a failing forge is forge_failed; forging again resumes it with the completed steps skipped', async () => {
    // The ConfigMap has no catch-all rule: patch-cloudflared refuses to guess where the rule goes.
    await core.replaceNamespacedConfigMap({
      name: 'cloudflared',
      namespace: 'cloudflared',
      body: {
        ...(await core.readNamespacedConfigMap({ name: 'cloudflared', namespace: 'cloudflared' })),
        data: {
          'config.yaml': 'ingress:\n  - hostname: ops.example.com\n    service: http://ops:80\n',
        },
      },
    });
    await register('flaky', { hosts: { internal: 'flaky', external: 'flaky.example.com' } });
    const first = (await (await post('/api/apps/flaky/forge')).json()) as { runId: string };
    const failed = await waitForRun(system, first.runId, undefined, 60_000);
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatch(/catch-all/);
    const ff = await stateIs('flaky', 'forge_failed');
    expect(ff.runId).toBe(first.runId);
    const failedEvent = (await eventTypes('flaky')).find(
      (e) => e.runId === first.runId && e.type === 'forge.failed',
    );
    expect(failedEvent?.payload).toMatchObject({ step: 'patch-cloudflared' });
    expect(failedEvent?.payload.error).toMatch(/catch-all/);

    await core.replaceNamespacedConfigMap({
      name: 'cloudflared',
      namespace: 'cloudflared',
      body: {
        ...(await core.readNamespacedConfigMap({ name: 'cloudflared', namespace: 'cloudflared' })),
        data: { 'config.yaml': CATCH_ALL_CONFIG },
      },
    });
    const res = await post('/api/apps/flaky/forge');
    expect(res.status).toBe(202);
    const resumed = (await res.json()) as { runId: string; resumedFrom: string };
    expect(resumed.resumedFrom).toBe(first.runId);
    const run = await waitForRun(system, resumed.runId, undefined, 60_000);
    expect(run.status, run.error ?? '').toBe('succeeded');
    const steps = await stepsOf(resumed.runId);
    expect(steps['create-deployment']!.status).toBe('skipped');
    expect(steps['create-service']!.status).toBe('skipped');
    expect(steps['patch-cloudflared']!.status).toBe('complete');
    const forged = await stateIs('flaky', 'forged');
    // The resources come from both runs: the objects the first made, the rule the second.
    expect(forged.resources).toMatchObject({
      deployments: [objectName('flaky', 'web')],
      service: objectName('flaky', 'web'),
      rule: { hostname: 'flaky.example.com' },
    });
    expect(await cm()).toContain('flaky.example.com');

    const td = (await (await post('/api/apps/flaky/forge', undefined, 'DELETE')).json()) as {
      runId: string;
    };
    expect((await waitForRun(system, td.runId, undefined, 60_000)).status).toBe('succeeded');
    expect(await cm()).toBe(CATCH_ALL_CONFIG);
  }, 120_000);

  it('a cron app is forged as CronJobs', async () => {
    await register('ticker', {
      processes: { tick: { command: 'tick', schedule: '*/5 * * * *' } },
    });
    const res = (await (await post('/api/apps/ticker/forge')).json()) as { runId: string };
    const run = await waitForRun(system, res.runId, undefined, 60_000);
    expect(run.status, run.error ?? '').toBe('succeeded');
    const cj = await batch.readNamespacedCronJob({
      name: objectName('ticker', 'tick'),
      namespace: 'default',
    });
    expect(cj.spec?.schedule).toBe('*/5 * * * *');
    const forged = await stateIs('ticker', 'forged');
    expect(forged.resources).toMatchObject({
      cronJobs: [objectName('ticker', 'tick')],
      deployments: [],
    });
  }, 120_000);

  it('norn forge and norn teardown follow their runs live, with exit codes as norn deploy has', async () => {
    const running = await system.startApi(0);
    const cliEnv = { NORN_API_URL: running.url };
    await register('clia', { hosts: { internal: 'clia' } });
    const f = await runCli(['forge', 'clia'], cliEnv);
    expect(f.code, f.stderr).toBe(0);
    expect(f.stdout).toMatch(/^forging clia: deployment [0-9a-f-]{36}$/m);
    for (const step of ['create-deployment', 'create-service', 'restart-cloudflared'])
      expect(f.stdout).toContain(step);
    expect(f.stdout.trim().split('\n').at(-1)).toMatch(/^forge of clia completed/);
    await stateIs('clia', 'forged');

    const again = await runCli(['forge', 'clia'], cliEnv);
    expect(again.code).toBe(3);
    expect(again.stderr).toMatch(/--force/);

    const forced = await runCli(['forge', 'clia', '--force'], cliEnv);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toMatch(/^tearing down clia: deployment /m);
    expect(forced.stdout).toMatch(/^teardown of clia completed/m);
    expect(forced.stdout.trim().split('\n').at(-1)).toMatch(/^forge of clia completed/);
    await stateIs('clia', 'forged');

    const t = await runCli(['teardown', 'clia'], cliEnv);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toContain('delete-deployment');
    await stateIs('clia', 'unforged');
    const none = await runCli(['teardown', 'clia'], cliEnv);
    expect(none.code).toBe(3);
    expect(none.stderr).toMatch(/not forged/);
  }, 120_000);

  it('a teardown cancelled while the tunnel restarts puts the state back: forged', async () => {
    await register('halt', { hosts: { internal: 'halt', external: 'halt.example.com' } });
    const f = (await (await post('/api/apps/halt/forge')).json()) as { runId: string };
    expect((await waitForRun(system, f.runId, undefined, 60_000)).status).toBe('succeeded');
    await stateIs('halt', 'forged');
    // The tunnel's next pods crash-loop: its rollout after the restart never completes.
    await tunnelImage('cloudflare/cloudflared:crashloop');
    const td = (await (await post('/api/apps/halt/forge', undefined, 'DELETE')).json()) as {
      runId: string;
    };
    await waitFor(async () => {
      const steps = await stepsOf(td.runId);
      return steps['restart-cloudflared']?.status === 'running';
    }, 'restart-cloudflared to run');
    await stateIs('halt', 'tearing_down');
    expect((await post(`/api/runs/${td.runId}/cancel`)).status).toBeLessThan(300);
    expect((await waitForRun(system, td.runId, undefined, 60_000)).status).toBe('cancelled');
    const back = await stateIs('halt', 'forged');
    expect(back.runId).toBe(td.runId);
    expect(back.resources).toMatchObject({ rule: { hostname: 'halt.example.com' } });
    // The tunnel heals; what the cancelled teardown began can be finished.
    await tunnelImage('cloudflare/cloudflared:2024.1');
    const again = (await (await post('/api/apps/halt/forge', undefined, 'DELETE')).json()) as {
      runId: string;
    };
    const done = await waitForRun(system, again.runId, undefined, 60_000);
    expect(done.status, done.error ?? '').toBe('succeeded');
    await stateIs('halt', 'unforged');
  }, 120_000);

  it('deploys only a forged app: an unforged one is a 409 saying to forge it first', async () => {
    await register('unforged');
    const refused = await post('/api/apps/unforged/deploy', {});
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toBe(
      'app unforged is not forged (its forge state is unforged): forge it first (norn forge unforged, POST /api/apps/unforged/forge)',
    );
    const forged = (await (await post('/api/apps/unforged/forge')).json()) as { runId: string };
    expect((await waitForRun(system, forged.runId, undefined, 60_000)).status).toBe('succeeded');
    await stateIs('unforged', 'forged');
    // Forged: the gate lets the deploy through (this app has no repository, so its clone fails).
    const accepted = await post('/api/apps/unforged/deploy', {});
    expect(accepted.status, await accepted.clone().text()).toBe(202);
    const run = await waitForRun(
      system,
      ((await accepted.json()) as { runId: string }).runId,
      undefined,
      60_000,
    );
    expect(run).toMatchObject({ status: 'failed', failedStep: 'clone' });
  }, 120_000);

  it("forges an app's Secret (DATABASE_URL, then the active release's secrets) and its volumes' claims; the outputs, events and logs name keys, never values; teardown leaves the claims", async () => {
    const app = 'vault';
    await register(app, {
      infrastructure: { postgres: { database: 'vault_db' } },
      processes: {
        web: { port: 8080, health: { path: '/healthz' } },
        nightly: { command: 'backup', schedule: '0 3 * * *' },
      },
      volumes: [
        { name: 'Data_dir', mount: '/data', size: '2Gi' },
        { name: 'scratch', mount: '/scratch', hostPath: '/srv/vault', readOnly: true },
      ],
    });
    const forging = await post(`/api/apps/${app}/forge`);
    expect(forging.status, await forging.clone().text()).toBe(202);
    const first = (await forging.json()) as { runId: string };
    const run = await waitForRun(system, first.runId, undefined, 60_000);
    expect(run.status, run.error ?? '').toBe('succeeded');
    const web = objectName(app, 'web');
    const nightly = objectName(app, 'nightly');
    const claim = claimName(app, 'Data_dir');
    const secretData = async (name: string) => {
      const secret = await core.readNamespacedSecret({ name, namespace: 'default' });
      return Object.fromEntries(
        Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
      );
    };
    const dbUrl = `postgres://norn:${APP_DB_PASSWORD}@db.example:5432/vault_db`;
    // No release yet: DATABASE_URL only; the repository's secrets come with the first deploy.
    for (const name of [web, nightly])
      expect(await secretData(name)).toEqual({ DATABASE_URL: dbUrl });
    const d = await apps.readNamespacedDeployment({ name: web, namespace: 'default' });
    const pod = d.spec!.template.spec!;
    expect(pod.containers[0]!.envFrom).toEqual([{ secretRef: { name: web } }]);
    expect(pod.volumes?.map((v) => v.persistentVolumeClaim?.claimName ?? v.hostPath?.path)).toEqual(
      [claim, '/srv/vault'],
    );
    const cj = await batch.readNamespacedCronJob({ name: nightly, namespace: 'default' });
    expect(cj.spec?.jobTemplate.spec?.template.spec?.containers[0]?.envFrom).toEqual([
      { secretRef: { name: nightly } },
    ]);
    const pvc = await core.readNamespacedPersistentVolumeClaim({
      name: claim,
      namespace: 'default',
    });
    expect(pvc.spec?.resources?.requests?.storage).toBe('2Gi');
    expect(pvc.metadata?.labels?.['app.kubernetes.io/name']).toBe(app);

    const output = async (runId: string) =>
      (await system.store.outputs(runId))['create-deployment'] as Record<string, unknown>;
    const out = await output(first.runId);
    expect(out).toMatchObject({
      secrets: [
        { name: web, keys: ['DATABASE_URL'] },
        { name: nightly, keys: ['DATABASE_URL'] },
      ],
      claims: [claim],
      deployments: [web],
      cronJobs: [nightly],
    });
    expect(out.created).toEqual(
      expect.arrayContaining([
        { kind: 'Secret', namespace: 'default', name: web },
        { kind: 'PersistentVolumeClaim', namespace: 'default', name: claim },
        { kind: 'Deployment', namespace: 'default', name: web },
      ]),
    );
    const log = async (runId: string) => {
      const res = await api.request(`/api/runs/${runId}/steps/create-deployment/log`);
      return ((await res.json()) as { lines: string[] }).lines;
    };
    const lines = await log(first.runId);
    expect(lines.join('\n')).toContain(
      "vault has no release yet; the repository's secrets (secrets.enc.yaml) come with its first deploy",
    );
    expect(lines).toContain(`PersistentVolumeClaim default/${claim} created`);
    expect(lines).toContain('the Secrets hold DATABASE_URL');

    // Deployed since (a release with a secrets file), forged afresh: the release's secrets too.
    await services.releases.upsertDeploying({
      appId: app,
      deploymentId: first.runId,
      target: 'kubernetes',
      imageRef: 'registry.test/vault:abc',
      commitSha: 'a'.repeat(40),
      digest: null,
      spec: {},
      secretsEnc: readFileSync(join(REPO_ROOT, 'test/fixtures/sops/format.enc.yaml'), 'utf8'),
      secretsFormat: 'yaml',
      previousReleaseId: null,
      migrationsApplied: [],
      snapshotTs: null,
    });
    await services.releases.activate(first.runId);
    await stateIs(app, 'forged');
    const forced = (await (await post(`/api/apps/${app}/forge`, { force: true })).json()) as {
      runId: string;
      teardown: { runId: string };
    };
    const td = await waitForRun(system, forced.teardown.runId, undefined, 60_000);
    expect(td.status, td.error ?? '').toBe('succeeded');
    const tdOut = (await system.store.outputs(td.id))['delete-deployment'] as {
      deleted: { kind: string; name: string }[];
    };
    expect(tdOut.deleted.map((o) => `${o.kind}/${o.name}`).sort()).toEqual(
      [`CronJob/${nightly}`, `Deployment/${web}`, `Secret/${nightly}`, `Secret/${web}`].sort(),
    );
    const again = await waitForRun(system, forced.runId, undefined, 60_000);
    expect(again.status, again.error ?? '').toBe('succeeded');
    expect(await secretData(web)).toEqual({ DATABASE_URL: dbUrl, foo: 'bar' });
    const againOut = await output(forced.runId);
    expect(againOut.secrets).toEqual([
      { name: web, keys: ['DATABASE_URL', 'foo'] },
      { name: nightly, keys: ['DATABASE_URL', 'foo'] },
    ]);
    // The claim survived the teardown: the same object, found existing.
    expect(againOut.existing).toEqual([
      { kind: 'PersistentVolumeClaim', namespace: 'default', name: claim },
    ]);
    expect((await log(forced.runId)).join('\n')).toContain(`secrets: those of release`);
    const kept = await core.readNamespacedPersistentVolumeClaim({
      name: claim,
      namespace: 'default',
    });
    expect(kept.metadata?.uid).toBe(pvc.metadata?.uid);

    // Teardown once more: the claim stays, and no value went anywhere but the Secrets.
    await stateIs(app, 'forged');
    const tearing = await post(`/api/apps/${app}/forge`, undefined, 'DELETE');
    expect(tearing.status, await tearing.clone().text()).toBe(202);
    const down = (await tearing.json()) as { runId: string };
    expect((await waitForRun(system, down.runId, undefined, 60_000)).status).toBe('succeeded');
    expect(await gone(core.readNamespacedSecret({ name: web, namespace: 'default' }))).toBe(true);
    expect(await gone(apps.readNamespacedDeployment({ name: web, namespace: 'default' }))).toBe(
      true,
    );
    const still = await core.readNamespacedPersistentVolumeClaim({
      name: claim,
      namespace: 'default',
    });
    expect(still.metadata?.uid).toBe(pvc.metadata?.uid);
    const everything = JSON.stringify({
      outputs: await Promise.all(
        [first.runId, forced.runId, forced.teardown.runId, down.runId].map((id) =>
          system.store.outputs(id),
        ),
      ),
      events: await (await api.request(`/api/apps/${app}/events?limit=200`)).json(),
      logs: [await log(first.runId), await log(forced.runId)],
      app: await (await api.request(`/api/apps/${app}`)).json(),
    });
    expect(everything).toContain('DATABASE_URL');
    expect(everything).not.toContain(APP_DB_PASSWORD);
    expect(everything).not.toContain('db.example');
    expect(everything).not.toContain(': bar');
    expect(everything).not.toMatch(/"bar"/);
  }, 120_000);

  it('refuses an app on another target', async () => {
    const spec = { name: 'dockery', processes: { web: { port: 8080 } } };
    await api.request('/api/apps', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(spec),
    });
    const res = await post('/api/apps/dockery/forge');
    expect(res.status).toBe(409);
    expect(JSON.stringify(await res.json())).toMatch(/target: kubernetes/);
  });
});
