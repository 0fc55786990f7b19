/**
 * The deploy pipeline on the kubernetes target, through the api and a worker: the example app is
 * cloned, built and pushed with the real git, Docker engine and registry, then rolled out on the
 * strict fake cluster (test/support/kube) with a rolling update one pod at a time, followed with
 * watches (deploy.progress events), and routed through the cloudflared ConfigMap. A release whose
 * pods crash-loop fails within seconds with the pods' reasons and log tail, and the previous
 * release's template is put back.
 */
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listIngress } from '../../src/shared/drivers/cloudflared.js';
import type { NornSystem } from '../../src/system.js';
import { startFleet, type Fleet } from '../support/deploy/fleet.js';
import { LABELS, objectName } from '../../src/targets/kubernetes/objects.js';
import { exampleSpecWithoutDatabase } from '../support/example.js';
import { CRASH_ENV } from '../support/kube/rollout.js';
import { deployCloudflared } from '../support/kube/cloudflared.js';
import { replaceFresh } from '../support/kube/replace.js';
import { startFakeKube, type FakeKube } from '../support/kube/server.js';
import { apiCaller, waitFor, waitForRun } from '../support/norn.js';

const TOKEN = 'kube-e2e-token-0123456789abcdef';
const APP = 'kube-hello';
const CLOUDFLARED_CONFIG = [
  'tunnel: norn-test',
  'ingress:',
  '  - hostname: ops.example.com',
  '    service: http://ops.ops.svc.cluster.local:80',
  '  - service: http_status:404',
  '',
].join('\n');

let kube: FakeKube;
let fleet: Fleet;
let apps: k8s.AppsV1Api;
let core: k8s.CoreV1Api;

beforeAll(async () => {
  kube = await startFakeKube({ tickMs: 20, crashLog: 'panic: cannot start: bad setting\n' });
  fleet = await startFleet({
    token: TOKEN,
    name: 'kube-e2e',
    stepEnv: { KUBECONFIG: kube.kubeconfigPath },
  });
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kube.kubeconfigPath);
  apps = kc.makeApiClient(k8s.AppsV1Api);
  core = kc.makeApiClient(k8s.CoreV1Api);
  // The app's namespace, and cloudflared as an operator deployed it in the cluster.
  await core.createNamespace({ body: { metadata: { name: 'shop' } } });
  await deployCloudflared({ core, apps }, CLOUDFLARED_CONFIG);
}, 120_000);

afterAll(async () => {
  await fleet?.close();
  await kube?.close();
});

const call = apiCaller(() => fleet.api, TOKEN);

/** The example's infraspec on the kubernetes target, routed by hosts and an endpoint. */
function kubeSpec(env: Record<string, string> = {}) {
  const spec = exampleSpecWithoutDatabase();
  return {
    ...spec,
    name: APP,
    target: 'kubernetes',
    repo: { ...spec.repo, url: fleet.repoUrl },
    kubernetes: { namespace: 'shop' },
    hosts: { internal: 'kube-hello.internal', external: 'kube-hello.example.test' },
    endpoints: [{ url: 'api.kube-hello.example.test' }],
    env,
    deployPolicy: { ...spec.deployPolicy, minHealthyTime: '1s', healthTimeout: '2m' },
  };
}

type Ev = { type: string; payload: Record<string, unknown> };
const deployment = () =>
  apps.readNamespacedDeployment({ name: objectName(APP, 'web'), namespace: 'shop' });
const rules = async () =>
  listIngress(
    (await core.readNamespacedConfigMap({ name: 'cloudflared', namespace: 'cloudflared' })).data![
      'config.yaml'
    ]!,
  );

describe('deploying to the kubernetes target', () => {
  let firstImage: string;
  let firstRelease: string;

  it('a forged app deploys through the nine steps: rolled out one pod at a time, followed with progress events, routed through the cloudflared ConfigMap', async () => {
    expect((await call('POST', '/api/apps', kubeSpec())).status).toBe(201);
    const forge = await call('POST', `/api/apps/${APP}/forge`, {});
    expect(forge.status, JSON.stringify(forge.body)).toBe(202);
    const forged = await waitForRun(
      fleet.system as NornSystem,
      forge.body.deploymentId,
      undefined,
      60_000,
    );
    expect([forged.status, forged.error]).toEqual(['succeeded', null]);
    await waitFor(async () => {
      const { body } = await call('GET', `/api/apps/${APP}`);
      return body.forge.state === 'forged' ? true : undefined;
    }, 'the app to be forged');

    const restartedBefore = (
      await apps.readNamespacedDeployment({
        name: 'cloudflared',
        namespace: 'cloudflared',
      })
    ).spec!.template.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt'];
    const run = (await call('POST', `/api/apps/${APP}/deploy`, { ref: 'main' })).body;
    const done = await waitForRun(fleet.system as NornSystem, run.deploymentId, undefined, 180_000);
    expect([done.status, done.error]).toEqual(['succeeded', null]);
    const { body } = await call('GET', `/api/runs/${run.deploymentId}`);
    expect(
      body.steps.map((s: { name: string; status: string }) => `${s.name}:${s.status}`),
    ).toEqual([
      'clone:complete',
      'build:complete',
      'test:complete',
      'snapshot:skipped',
      'migrate:skipped',
      'submit:complete',
      'healthy:complete',
      'forge:complete',
      'cleanup:complete',
    ]);

    // submit set the built image on the Deployment forge made, with a one-pod-at-a-time update.
    const d = await deployment();
    firstImage = d.spec!.template.spec!.containers[0]!.image!;
    firstRelease = d.spec!.template.metadata!.labels![LABELS.release]!;
    expect(firstImage).toMatch(new RegExp(`^127\\.0\\.0\\.1:5000/${APP}:[0-9a-f]{40}$`));
    expect(d.spec!.strategy).toEqual({
      type: 'RollingUpdate',
      rollingUpdate: { maxUnavailable: 0, maxSurge: 1 },
    });
    expect(d.spec!.minReadySeconds).toBe(1);
    expect(d.status?.readyReplicas).toBe(2);

    // healthy followed the rollout: progress events inside the step, ending 2 of 2 ready.
    const events: Ev[] = (await call('GET', `/api/runs/${run.deploymentId}/events`)).body.events;
    const at = (step: string, status: string) =>
      events.findIndex((e) => e.payload.step === step && e.payload.status === status);
    const progress = events.filter((e) => e.type === 'deploy.progress');
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress.every((e) => e.payload.step === 'healthy' && e.payload.desired === 2)).toBe(
      true,
    );
    expect(progress.at(-1)!.payload.ready).toBe(2);
    expect(events.indexOf(progress[0]!)).toBeGreaterThan(at('healthy', 'running'));
    expect(events.indexOf(progress.at(-1)!)).toBeLessThan(at('healthy', 'complete'));

    // forge wrote the endpoint (and kept hosts.external's route) to the app's Service, before the
    // catch-all, the operator's rule untouched; the tunnel was restarted.
    const service = `http://${objectName(APP, 'web')}.shop.svc.cluster.local:80`;
    const now = await rules();
    expect(now.map((r) => [r.hostname ?? '*', r.service])).toEqual([
      ['ops.example.com', 'http://ops.ops.svc.cluster.local:80'],
      ['api.kube-hello.example.test', service],
      ['kube-hello.example.test', service],
      ['*', 'http_status:404'],
    ]);
    const restartedAfter = (
      await apps.readNamespacedDeployment({
        name: 'cloudflared',
        namespace: 'cloudflared',
      })
    ).spec!.template.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt'];
    expect(restartedAfter).toBeDefined();
    expect(restartedAfter).not.toBe(restartedBefore);
  }, 240_000);

  it("a release that crash-loops fails within seconds with the pods' reasons and log tail, and the previous release's template is put back", async () => {
    expect(firstImage).toBeDefined();
    // A setting the app cannot start with: its pods crash-loop (the fake's CRASH_ENV).
    expect((await call('POST', '/api/apps', kubeSpec({ [CRASH_ENV]: '1' }))).status).toBe(200);
    const t0 = Date.now();
    const run = (await call('POST', `/api/apps/${APP}/deploy`, { ref: 'main' })).body;
    const done = await waitForRun(fleet.system as NornSystem, run.deploymentId, undefined, 180_000);
    expect(done.status).toBe('failed');
    const { body } = await call('GET', `/api/runs/${run.deploymentId}`);
    const healthy = body.steps.find((s: { name: string }) => s.name === 'healthy');
    expect(healthy.status).toBe('failed');
    expect(healthy.error).toMatch(/container web: CrashLoopBackOff/);
    expect(healthy.error).toContain('panic: cannot start: bad setting'); // the log's tail
    expect(healthy.error).toMatch(/rolled back to release 1/);
    const healthyEnd = new Date(healthy.finishedAt).getTime();
    const healthyStart = new Date(healthy.startedAt).getTime();
    // Long before the 2 minute healthTimeout: Kubernetes said so, the step believed it.
    expect(healthyEnd - healthyStart).toBeLessThan(30_000);
    expect(Date.now() - t0).toBeLessThan(180_000);

    // The previous release's template is back and serving.
    await waitFor(async () => {
      const d = await deployment();
      return d.status?.readyReplicas === 2 && d.status?.updatedReplicas === 2 ? d : undefined;
    }, 'the previous release to be ready again');
    const d = await deployment();
    const c = d.spec!.template.spec!.containers[0]!;
    expect(c.image).toBe(firstImage);
    expect((c.env ?? []).map((e) => e.name)).not.toContain(CRASH_ENV);
    expect(d.spec!.template.metadata!.labels![LABELS.release]).toBe(firstRelease);
    const failedEvent = (
      await call('GET', `/api/runs/${run.deploymentId}/events`)
    ).body.events.find((e: Ev) => e.type === 'deploy.failed');
    expect(failedEvent.payload.step).toBe('healthy');
  }, 240_000);

  it('a cancel while forge restarts cloudflared puts the ConfigMap rules and the previous release back', async () => {
    // Deploy a good release again (the last one was rolled back), then hold cloudflared's rollout:
    // its new image never becomes ready, so the forge step waits in its restart.
    expect((await call('POST', '/api/apps', kubeSpec())).status).toBe(200);
    const good = (await call('POST', `/api/apps/${APP}/deploy`, { ref: 'main' })).body;
    const goodRun = await waitForRun(
      fleet.system as NornSystem,
      good.deploymentId,
      undefined,
      180_000,
    );
    expect([goodRun.status, goodRun.error]).toEqual(['succeeded', null]);
    const goodRelease = (await deployment()).spec!.template.metadata!.labels![LABELS.release]!;
    const rulesBefore = await rules();
    await setCloudflaredImage('cloudflare/cloudflared:crashloop');

    const routed = { ...kubeSpec(), endpoints: [{ url: 'new.kube-hello.example.test' }] };
    expect((await call('POST', '/api/apps', routed)).status).toBe(200);
    const run = (await call('POST', `/api/apps/${APP}/deploy`, { ref: 'main' })).body;
    await waitFor(
      async () =>
        (await rules()).some((r) => r.hostname === 'new.kube-hello.example.test') || undefined,
      'forge to write the new rule',
      120_000,
    );
    expect((await call('POST', `/api/runs/${run.deploymentId}/cancel`)).status).toBeLessThan(300);
    const ended = await waitForRun(
      fleet.system as NornSystem,
      run.deploymentId,
      ['cancelled'],
      60_000,
    );
    expect(ended.status).toBe('cancelled');
    await setCloudflaredImage('cloudflare/cloudflared:2024.1'); // its rollouts finish again

    // The finalizer took the release back: the rules as they were, the good release's template.
    await waitFor(
      async () =>
        JSON.stringify(await rules()) === JSON.stringify(rulesBefore) ? true : undefined,
      'the ConfigMap rules to be reverted',
      60_000,
    );
    await waitFor(
      async () => {
        const d = await deployment();
        return d.spec!.template.metadata!.labels![LABELS.release] === goodRelease &&
          d.status?.updatedReplicas === 2
          ? true
          : undefined;
      },
      'the previous release to be put back',
      60_000,
    );
  }, 300_000);
});

/** Replaces the cloudflared Deployment's image (a crash-looping one holds its rollouts). */
async function setCloudflaredImage(image: string) {
  await replaceFresh(
    () => apps.readNamespacedDeployment({ name: 'cloudflared', namespace: 'cloudflared' }),
    (d) => {
      d.spec!.template.spec!.containers[0]!.image = image;
    },
    (d) =>
      apps.replaceNamespacedDeployment({ name: 'cloudflared', namespace: 'cloudflared', body: d }),
  );
}
