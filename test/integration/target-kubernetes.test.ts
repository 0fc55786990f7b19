/**
 * The kubernetes target against the strict fake cluster (test/support/kube) over HTTPS with a
 * bearer token, through a kubeconfig file as a worker would load it: first the target contract
 * (test/support/targets/contract.ts), then what is the kubernetes target's own: the objects it
 * writes (secrets and DATABASE_URL in a Secret, volumes as claims or host paths), a crash loop
 * failing fast with reasons and a log tail, rolling back to the previous template,
 * NORN_KUBE_CONTEXT, an unreachable cluster, and transient API errors retried.
 *
 * The fake runs no containers, so where the contract asks what a process serves (fetchBody),
 * the fixture does what kube-proxy would: the Service's ready endpoints (pods matching its
 * selector, Ready, on its targetPort), and each serves its image's tag (`…:v1` serves `v1`).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNornError } from '../../src/shared/errors.js';
import { parseInfraspec, type Infraspec } from '../../src/shared/spec/infraspec.js';
import { createTargets, targetFor, type Target, type TargetCall } from '../../src/targets/index.js';
import { withDatabaseUrl } from '../../src/pipelines/deploy/docker-runtime.js';
import { claimName, objectName, podVolumeName } from '../../src/targets/kubernetes/objects.js';
import { resourceTypes } from '../support/kube/resources.js';
import { startFakeKube, type FakeKube } from '../support/kube/server.js';
import { targetContract } from '../support/targets/contract.js';

const noCron = { upsert: async () => 'x', prune: async () => [] };

/** The registry a worker builds, with the kubernetes target reading `env`. */
const kubeTarget = (env: { KUBECONFIG?: string; NORN_KUBE_CONTEXT?: string }): Target =>
  targetFor(
    createTargets({
      docker: { docker: undefined, cron: noCron, pollMs: 10 },
      kubernetes: { HOME: '/nonexistent', ...env },
    }),
    { target: 'kubernetes' },
  );

function clients(kube: FakeKube) {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kube.kubeconfigPath);
  return { apps: kc.makeApiClient(k8s.AppsV1Api), core: kc.makeApiClient(k8s.CoreV1Api) };
}

const isReady = (p: k8s.V1Pod) =>
  !p.metadata?.deletionTimestamp &&
  (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

const IMAGES = { v1: 'registry.test/norn-tc:v1', v2: 'registry.test/norn-tc:v2' };

let contractKube: FakeKube | undefined;

targetContract('kubernetes', async () => {
  // Real Kubernetes seconds: minReadySeconds is the contract's minHealthyTime (1s).
  const kube = (contractKube = await startFakeKube({ tickMs: 50 }));
  const { apps, core } = clients(kube);
  return {
    target: kubeTarget({ KUBECONFIG: kube.kubeconfigPath }),
    images: IMAGES,
    rollsOutInApply: false,
    // Every pod has its own network: the same port never clashes.
    freePorts: async () => 8080,
    async fetchBody({ host, port }) {
      const m = /^([^.]+)\.([^.]+)\.svc\.cluster\.local$/.exec(host);
      if (!m || port !== 80) return 'down';
      const [, name, namespace] = m as unknown as [string, string, string];
      const svc = await core.readNamespacedService({ name, namespace }).catch(() => undefined);
      if (!svc?.spec?.selector) return 'down';
      const targetPort = svc.spec.ports?.find((p) => p.port === 80)?.targetPort;
      const selector = Object.entries(svc.spec.selector)
        .map(([k, v]) => `${k}=${v}`)
        .join(',');
      const pods = await core.listNamespacedPod({ namespace, labelSelector: selector });
      const bodies = new Set(
        pods.items
          .filter(isReady)
          .flatMap((p) => p.spec?.containers ?? [])
          .filter((c) => c.ports?.some((cp) => cp.containerPort === targetPort))
          .map((c) => c.image?.split(':').at(-1) ?? ''),
      );
      if (bodies.size === 0) return 'down';
      return [...bodies].sort().join('|');
    },
    async plantForeign(app, process, owner) {
      const name = objectName(app, process);
      const planted = await apps.createNamespacedDeployment({
        namespace: 'default',
        body: {
          metadata: {
            name,
            labels: { 'app.kubernetes.io/managed-by': 'norn', 'app.kubernetes.io/name': owner },
          },
          spec: {
            replicas: 1,
            selector: { matchLabels: { owner } },
            template: {
              metadata: { labels: { owner } },
              spec: { containers: [{ name: 'web', image: IMAGES.v1 }] },
            },
          },
        },
      });
      return async () => {
        const now = await apps.readNamespacedDeployment({ name, namespace: 'default' });
        return (
          now.metadata?.uid === planted.metadata?.uid &&
          now.metadata?.labels?.['app.kubernetes.io/name'] === owner &&
          now.spec?.template.spec?.containers[0]?.image === IMAGES.v1
        );
      };
    },
    async close() {
      await kube.close();
    },
  };
});

const call = (): TargetCall => ({ signal: AbortSignal.timeout(60_000), log: () => {}, redact: [] });

function spec(app: string, extra: Record<string, unknown> = {}): Infraspec {
  const parsed = parseInfraspec({
    name: app,
    target: 'kubernetes',
    processes: { web: { port: 8080, replicas: 2, health: { path: '/healthz' } } },
    deployPolicy: { minHealthyTime: '2s', healthTimeout: '5m' },
    ...extra,
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  return parsed.spec;
}

let nextId = 7_000_000;
const release = (
  app: string,
  image: string,
  s: Infraspec,
  secrets: Record<string, string> = {},
) => {
  const id = nextId++;
  return { app, id, deploymentId: `d${id}`, imageRef: image, spec: s, secrets };
};

describe('the kubernetes target on its own', () => {
  let kube: FakeKube;
  let target: Target;
  let apps: k8s.AppsV1Api;
  let core: k8s.CoreV1Api;

  const batchClient = () => {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kube.kubeconfigPath);
    return kc.makeApiClient(k8s.BatchV1Api);
  };

  beforeAll(async () => {
    // One Kubernetes second lasts 100 ms here, so minReadySeconds and deadlines pass quickly.
    kube = await startFakeKube({ tickMs: 40, secondMs: 100 });
    target = kubeTarget({ KUBECONFIG: kube.kubeconfigPath });
    ({ apps, core } = clients(kube));
  });
  afterAll(async () => {
    await kube?.close();
    await contractKube?.close().catch(() => {});
  });

  it('writes a labelled Deployment (rolling update, probes, minReadySeconds), a Service 80 → port and a Secret, in the spec namespace', async () => {
    await core.createNamespace({ body: { metadata: { name: 'shop' } } });
    const s = spec('kt-shape', {
      env: { MODE: 'prod' },
      secrets: ['TOKEN'],
      kubernetes: { namespace: 'shop' },
    });
    const r = release('kt-shape', IMAGES.v1, s, { TOKEN: 's3cret' });
    const applied = await target.apply(r, call());
    const name = objectName('kt-shape', 'web');
    expect(applied.units).toEqual([`${name}/0`, `${name}/1`]);
    const d = await apps.readNamespacedDeployment({ name, namespace: 'shop' });
    expect(d.metadata?.labels).toMatchObject({
      'app.kubernetes.io/managed-by': 'norn',
      'app.kubernetes.io/name': 'kt-shape',
      'norn.dev/process': 'web',
    });
    expect(d.spec).toMatchObject({
      replicas: 2,
      minReadySeconds: 2,
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
    });
    const c = d.spec!.template.spec!.containers[0]!;
    expect(c.image).toBe(IMAGES.v1);
    expect(c.readinessProbe?.httpGet).toMatchObject({ path: '/healthz', port: 8080 });
    expect(c.livenessProbe?.httpGet).toMatchObject({ path: '/healthz', port: 8080 });
    expect(c.env).toEqual(
      expect.arrayContaining([
        { name: 'MODE', value: 'prod' },
        { name: 'PORT', value: '8080' },
      ]),
    );
    expect(JSON.stringify(d)).not.toContain('s3cret');
    expect(c.envFrom).toEqual([{ secretRef: { name } }]);
    const secret = await core.readNamespacedSecret({ name, namespace: 'shop' });
    expect(Buffer.from(secret.data!.TOKEN!, 'base64').toString()).toBe('s3cret');
    const svc = await core.readNamespacedService({ name, namespace: 'shop' });
    expect(svc.spec).toMatchObject({ type: 'ClusterIP' });
    expect(svc.spec?.ports?.[0]).toMatchObject({ port: 80, targetPort: 8080 });
    expect(await target.address('kt-shape', 'web', s)).toEqual({
      host: `${name}.shop.svc.cluster.local`,
      port: 80,
    });
    const seen: { ready: number; desired: number }[] = [];
    const verdict = await target.waitHealthy(r, { ...call(), onProgress: (p) => seen.push(p) });
    expect(verdict).toMatchObject({ ok: true, healthyForMs: 2_000 });
    expect(seen.at(-1)).toMatchObject({ ready: 2, desired: 2 });
    // It followed the rollout with watches, not by asking again and again.
    expect(kube.requests.some((q) => /deployments\?.*watch=true/.test(q))).toBe(true);
    expect(
      kube.requests.filter((q) => q.startsWith('GET /apis/apps/v1/namespaces/shop/deployments?'))
        .length,
    ).toBeLessThan(6);
    expect((await target.remove('kt-shape', call())).sort()).toEqual(
      [`${name}/0`, `${name}/1`, `secret/${name}`, `service/${name}`].sort(),
    );
  }, 60_000);

  it('fails a crash-looping release within seconds, with the pods’ reasons and the log tail, and rolls back to the previous template', async () => {
    const app = 'kt-crash';
    const s = spec(app);
    const good = release(app, IMAGES.v1, s);
    await target.apply(good, call());
    expect(await target.waitHealthy(good, call())).toMatchObject({ ok: true });

    const bad = release(app, 'registry.test/kt-crash:crashloop-v2', s);
    await target.apply(bad, call());
    const started = Date.now();
    const verdict = await target.waitHealthy(bad, call());
    expect(Date.now() - started).toBeLessThan(10_000); // healthTimeout is 5m
    expect(verdict.ok).toBe(false);
    expect(verdict.problem).toContain('CrashLoopBackOff');
    expect(verdict.problem).toContain('panic: cannot start: crashloop marker in the image');

    await target.rollBack({ app, failed: { id: bad.id }, previous: good }, call());
    const d = await apps.readNamespacedDeployment({
      name: objectName(app, 'web'),
      namespace: 'default',
    });
    expect(d.spec?.template.spec?.containers[0]?.image).toBe(IMAGES.v1);
    expect(d.spec?.template.metadata?.labels?.['norn.dev/release']).toBe(String(good.id));
    expect(await target.waitHealthy(good, call())).toMatchObject({ ok: true });
    expect((await target.live(app)).units.map((u) => [u.releaseId, u.running])).toEqual([
      [good.id, true],
      [good.id, true],
    ]);
  }, 60_000);

  it('fails an image that cannot be pulled within seconds, saying ImagePullBackOff', async () => {
    const app = 'kt-pull';
    const s = spec(app);
    const r = release(app, 'registry.test/kt-pull:pullfail', s);
    await target.apply(r, call());
    const started = Date.now();
    const verdict = await target.waitHealthy(r, call());
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(verdict).toMatchObject({ ok: false });
    expect(verdict.problem).toMatch(/ImagePullBackOff \(Back-off pulling image/);
  }, 30_000);

  it('fails a rollout the moment its Deployment says ProgressDeadlineExceeded', async () => {
    // A cluster of its own whose controller does not run: the test writes the status it reports.
    const still = await startFakeKube();
    still.controller.stop();
    try {
      const app = 'kt-deadline';
      const r = release(app, IMAGES.v1, spec(app));
      const t = kubeTarget({ KUBECONFIG: still.kubeconfigPath });
      await t.apply(r, call());
      const started = Date.now();
      const waiting = t.waitHealthy(r, call());
      await new Promise((done) => setTimeout(done, 300));
      const rt = resourceTypes.find((x) => x.kind === 'Deployment')!;
      const d = still.store.get(rt, 'default', objectName(app, 'web'));
      const m = d.metadata as { generation: number };
      d.status = {
        observedGeneration: m.generation,
        replicas: 1,
        updatedReplicas: 1,
        unavailableReplicas: 1,
        conditions: [
          {
            type: 'Progressing',
            status: 'False',
            reason: 'ProgressDeadlineExceeded',
            message: 'ReplicaSet "x" has timed out progressing.',
          },
        ],
      };
      still.store.writeStatus(rt, d);
      const verdict = await waiting;
      expect(Date.now() - started).toBeLessThan(3_000); // healthTimeout is 5m
      expect(verdict).toMatchObject({ ok: false });
      expect(verdict.problem).toContain(
        'ProgressDeadlineExceeded (ReplicaSet "x" has timed out progressing.)',
      );
    } finally {
      await still.close();
    }
  }, 30_000);

  it('puts a scheduled process on as a CronJob, and remove takes it and the rest but never a PVC', async () => {
    const app = 'kt-cron';
    const s = spec(app, {
      processes: {
        web: { port: 8080, replicas: 1, health: { path: '/healthz' } },
        nightly: { command: 'echo hi', schedule: '0 3 * * *', timezone: 'Europe/Berlin' },
      },
    });
    const applied = await target.apply(release(app, IMAGES.v1, s), call());
    const cron = objectName(app, 'nightly');
    expect(applied.schedules).toEqual([cron]);
    const batch = batchClient();
    const job = await batch.readNamespacedCronJob({ name: cron, namespace: 'default' });
    expect(job.spec).toMatchObject({ schedule: '0 3 * * *', timeZone: 'Europe/Berlin' });
    expect(job.spec?.jobTemplate.spec?.template.spec?.containers[0]).toMatchObject({
      image: IMAGES.v1,
      command: ['/bin/sh', '-c', 'echo hi'],
    });
    expect((await target.live(app)).schedules).toEqual([cron]);
    await core.createNamespacedPersistentVolumeClaim({
      namespace: 'default',
      body: {
        metadata: {
          name: `${app}-data`,
          labels: { 'app.kubernetes.io/managed-by': 'norn', 'app.kubernetes.io/name': app },
        },
        spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
      },
    });
    const web = objectName(app, 'web');
    expect((await target.remove(app, call())).sort()).toEqual(
      [cron, `${web}/0`, `service/${web}`].sort(),
    );
    expect(await target.live(app)).toEqual({ units: [], schedules: [] });
    const pvc = await core.readNamespacedPersistentVolumeClaim({
      name: `${app}-data`,
      namespace: 'default',
    });
    expect(pvc.metadata?.name).toBe(`${app}-data`);
  }, 30_000);

  it("gives the pods the app's secrets and DATABASE_URL through a Secret (envFrom), never in the pod spec", async () => {
    const app = 'kt-dburl';
    const s = spec(app, {
      env: { MODE: 'prod' },
      secrets: ['TOKEN'],
      infrastructure: { postgres: { database: 'kt_dburl' } },
      processes: {
        web: { port: 8080, replicas: 1, health: { path: '/healthz' } },
        nightly: { command: 'echo hi', schedule: '0 3 * * *' },
      },
    });
    // What submit (loadSecrets) and a rollback (releaseSecrets) hand the target.
    const admin = 'postgres://norn:hunter2-pw@db.internal:5432/postgres';
    const secrets = withDatabaseUrl({ appDatabaseUrl: admin }, app, s, { TOKEN: 's3cret' });
    const r = release(app, IMAGES.v1, s, secrets);
    await target.apply(r, call());
    for (const process of ['web', 'nightly']) {
      const name = objectName(app, process);
      const secret = await core.readNamespacedSecret({ name, namespace: 'default' });
      expect(secret.metadata?.labels?.['app.kubernetes.io/name']).toBe(app);
      const data = Object.fromEntries(
        Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
      );
      expect(data).toEqual({
        DATABASE_URL: 'postgres://norn:hunter2-pw@db.internal:5432/kt_dburl',
        TOKEN: 's3cret',
      });
    }
    const d = await apps.readNamespacedDeployment({
      name: objectName(app, 'web'),
      namespace: 'default',
    });
    const batch = batchClient();
    const cron = await batch.readNamespacedCronJob({
      name: objectName(app, 'nightly'),
      namespace: 'default',
    });
    const containers = [
      [d.spec!.template.spec!.containers[0]!, objectName(app, 'web')],
      [cron.spec!.jobTemplate.spec!.template.spec!.containers[0]!, objectName(app, 'nightly')],
    ] as const;
    for (const [c, name] of containers) {
      expect(c.envFrom).toEqual([{ secretRef: { name } }]);
      expect(c.env?.map((e) => e.name)).not.toContain('DATABASE_URL');
      expect(c.env).toContainEqual({ name: 'MODE', value: 'prod' });
    }
    for (const o of [d, cron]) {
      expect(JSON.stringify(o)).not.toContain('hunter2');
      expect(JSON.stringify(o)).not.toContain('s3cret');
    }
    expect(await target.waitHealthy(r, call())).toMatchObject({ ok: true });
    await target.remove(app, call());
  }, 60_000);

  it('mounts volumes as PersistentVolumeClaims (made once, never replaced) or host paths, in Deployments and CronJobs; remove, rollBack and a release without them leave the claims', async () => {
    const app = 'kt-vol';
    const volumes = [
      { name: 'Media_files.v2', mount: '/media' },
      { name: 'Media_files.v2', mount: '/srv/media', readOnly: true },
      { name: 'db', mount: '/var/lib/db', size: '5Gi' },
      { name: 'node-cache', mount: '/cache', hostPath: '/srv/kt-vol/cache', readOnly: true },
    ];
    const processes = {
      web: { port: 8080, replicas: 2, health: { path: '/healthz' } },
      nightly: { command: 'echo hi', schedule: '0 3 * * *' },
    };
    // First without volumes, then the spec gains them: its pods must not wait for a claim.
    const first = release(app, IMAGES.v1, spec(app, { processes }));
    await target.apply(first, call());
    expect(await target.waitHealthy(first, call())).toMatchObject({ ok: true });
    const logged: string[] = [];
    const withVolumes = release(app, IMAGES.v2, spec(app, { processes, volumes }));
    await target.apply(withVolumes, { ...call(), log: (l) => logged.push(l) });
    const media = claimName(app, 'Media_files.v2');
    const db = claimName(app, 'db');
    expect(media).toMatch(/^kt-vol-media-files-v2-[0-9a-f]{5}$/);
    expect(logged).toEqual(
      expect.arrayContaining([
        `PersistentVolumeClaim default/${media} created`,
        `PersistentVolumeClaim default/${db} created`,
      ]),
    );
    // Made before the pods that mount them, so none is left Pending.
    expect(logged.findIndex((l) => l.includes(db))).toBeLessThan(
      logged.findIndex((l) => l.startsWith('Deployment')),
    );
    const claims = async () =>
      (await core.listNamespacedPersistentVolumeClaim({ namespace: 'default' })).items
        .filter((c) => c.metadata?.labels?.['app.kubernetes.io/name'] === app)
        .sort((a, b) => a.metadata!.name!.localeCompare(b.metadata!.name!));
    const made = await claims();
    expect(made.map((c) => c.metadata?.name)).toEqual([db, media].sort());
    const mediaClaim = made.find((c) => c.metadata?.name === media)!;
    expect(mediaClaim.metadata?.labels).toEqual({
      'app.kubernetes.io/managed-by': 'norn',
      'app.kubernetes.io/name': app,
    });
    expect(mediaClaim.metadata?.annotations?.['norn.dev/volume']).toBe('Media_files.v2');
    expect(mediaClaim.spec).toMatchObject({
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '1Gi' } },
    });
    expect(made.find((c) => c.metadata?.name === db)!.spec?.resources?.requests?.storage).toBe(
      '5Gi',
    );

    const d = await apps.readNamespacedDeployment({
      name: objectName(app, 'web'),
      namespace: 'default',
    });
    const cron = await batchClient().readNamespacedCronJob({
      name: objectName(app, 'nightly'),
      namespace: 'default',
    });
    const mediaVol = podVolumeName('Media_files.v2');
    const cacheVol = podVolumeName('node-cache');
    for (const pod of [d.spec!.template.spec!, cron.spec!.jobTemplate.spec!.template.spec!]) {
      expect(pod.volumes).toEqual([
        { name: mediaVol, persistentVolumeClaim: { claimName: media } },
        { name: podVolumeName('db'), persistentVolumeClaim: { claimName: db } },
        { name: cacheVol, hostPath: { path: '/srv/kt-vol/cache', type: 'DirectoryOrCreate' } },
      ]);
      expect(pod.containers[0]!.volumeMounts).toEqual([
        { name: mediaVol, mountPath: '/media' },
        { name: mediaVol, mountPath: '/srv/media', readOnly: true },
        { name: podVolumeName('db'), mountPath: '/var/lib/db' },
        { name: cacheVol, mountPath: '/cache', readOnly: true },
      ]);
    }
    expect(await target.waitHealthy(withVolumes, call())).toMatchObject({ ok: true });

    // Another release, asking for more: the claims stay as they were made (never replaced).
    const bigger = volumes.map((v) => (v.name === 'db' ? { ...v, size: '50Gi' } : v));
    const again = release(app, IMAGES.v1, spec(app, { processes, volumes: bigger }));
    const relogged: string[] = [];
    await target.apply(again, { ...call(), log: (l) => relogged.push(l) });
    expect(relogged).toContain(`PersistentVolumeClaim default/${db} kept`);
    const kept = await claims();
    expect(kept.map((c) => [c.metadata?.uid, c.metadata?.resourceVersion])).toEqual(
      made.map((c) => [c.metadata?.uid, c.metadata?.resourceVersion]),
    );
    expect(kept.find((c) => c.metadata?.name === db)!.spec?.resources?.requests?.storage).toBe(
      '5Gi',
    );
    // Neither a release without volumes, a rollback with nothing before it, nor remove takes them.
    await target.apply(release(app, IMAGES.v1, spec(app, { processes })), call());
    await target.rollBack({ app, failed: { id: again.id }, previous: null }, call());
    const removed = await target.remove(app, call());
    expect(removed.some((n) => n.includes('volume') || n.includes(media))).toBe(false);
    expect((await claims()).map((c) => c.metadata?.uid)).toEqual(made.map((c) => c.metadata?.uid));
  }, 60_000);

  it("refuses a release whose claim name holds another app's PersistentVolumeClaim, before touching anything", async () => {
    const app = 'kt-volclash';
    const name = claimName(app, 'data');
    await core.createNamespacedPersistentVolumeClaim({
      namespace: 'default',
      body: {
        metadata: {
          name,
          labels: { 'app.kubernetes.io/managed-by': 'norn', 'app.kubernetes.io/name': 'other' },
        },
        spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
      },
    });
    const r = release(app, IMAGES.v1, spec(app, { volumes: [{ name: 'data', mount: '/data' }] }));
    const err = await target.apply(r, call()).catch((e: unknown) => e);
    expect(isNornError(err) && err.code).toBe('CONFLICT');
    expect((err as Error).message).toBe(
      `PersistentVolumeClaim default/${name}, where ${app}'s objects go, belongs to app other; norn leaves it alone`,
    );
    expect(
      await apps
        .readNamespacedDeployment({ name: objectName(app, 'web'), namespace: 'default' })
        .then(
          () => 'there',
          () => 'absent',
        ),
    ).toBe('absent');
  }, 30_000);

  it('picks the context NORN_KUBE_CONTEXT names, and an unreachable cluster fails naming its URL and why', async () => {
    const dir = join(kube.kubeconfigPath, '..');
    const config = JSON.parse(readFileSync(kube.kubeconfigPath, 'utf8')) as {
      clusters: object[];
      contexts: object[];
      'current-context': string;
    };
    config.clusters.push({ name: 'gone', cluster: { server: 'https://127.0.0.1:1' } });
    config.contexts.push({ name: 'gone', context: { cluster: 'gone', user: 'fake' } });
    config['current-context'] = 'gone';
    const path = join(dir, 'two-contexts');
    writeFileSync(path, JSON.stringify(config));

    expect(
      await kubeTarget({ KUBECONFIG: path, NORN_KUBE_CONTEXT: 'fake' }).live('kt-none'),
    ).toEqual({ units: [], schedules: [] });
    const unreachable = await kubeTarget({ KUBECONFIG: path })
      .live('kt-none')
      .catch((e: unknown) => e);
    expect(isNornError(unreachable) && unreachable.code).toBe('UNAVAILABLE');
    expect((unreachable as Error).message).toMatch(
      /cluster at https:\/\/127\.0\.0\.1:1 cannot be reached .*ECONNREFUSED/,
    );
    const unknown = await kubeTarget({ KUBECONFIG: path, NORN_KUBE_CONTEXT: 'nope' })
      .live('kt-none')
      .catch((e: unknown) => e);
    expect(isNornError(unknown) && unknown.code).toBe('UNAVAILABLE');
    expect((unknown as Error).message).toContain('NORN_KUBE_CONTEXT names context nope');
    expect((unknown as Error).message).toContain('fake, gone');
  }, 30_000);

  it('retries 429 and 503 answers from the API, and gives up UNAVAILABLE when they do not stop', async () => {
    const app = 'kt-retry';
    const s = spec(app);
    kube.failNext({ code: 429, method: 'GET', path: `/deployments/${objectName(app, 'web')}` });
    kube.failNext({ code: 503, method: 'POST', path: '/deployments' });
    const before = kube.requests.length;
    await target.apply(release(app, IMAGES.v1, s), call());
    const sent = kube.requests.slice(before);
    expect(
      sent.filter((q) => q.startsWith('POST /apis/apps/v1/namespaces/default/deployments')).length,
    ).toBe(2);
    expect((await target.live(app)).units).toHaveLength(2);

    // Four retries after the first try: five 503s in a row exhaust them.
    kube.failNext({ code: 503, method: 'GET', path: '/deployments', times: 5 });
    const err = await target.live(app).catch((e: unknown) => e);
    expect(isNornError(err) && err.code).toBe('UNAVAILABLE');
    expect((err as Error).message).toMatch(/kept failing .*HTTP 503/);
  }, 30_000);
});
