/**
 * The strict fake cluster (test/support/kube) against the real @kubernetes/client-node and the
 * real kubectl: what it stores, what it refuses and with which Status, its watches, and its
 * rollouts (ready one pod at a time; a crash-looping image never ready).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replaceFresh } from '../support/kube/replace.js';
import { startFakeKube, type FakeKube } from '../support/kube/server.js';

const run = promisify(execFile);

let kube: FakeKube;
let kc: k8s.KubeConfig;
let apps: k8s.AppsV1Api;
let core: k8s.CoreV1Api;
let batch: k8s.BatchV1Api;

const smp = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch);
const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

beforeAll(async () => {
  kube = await startFakeKube({ tickMs: 40, secondMs: 100 });
  kc = new k8s.KubeConfig();
  kc.loadFromFile(kube.kubeconfigPath);
  apps = kc.makeApiClient(k8s.AppsV1Api);
  core = kc.makeApiClient(k8s.CoreV1Api);
  batch = kc.makeApiClient(k8s.BatchV1Api);
});

afterAll(async () => {
  await kube?.close();
});

interface Refusal {
  code: number;
  status: k8s.V1Status & { details?: k8s.V1StatusDetails };
}

async function refused(p: Promise<unknown>): Promise<Refusal> {
  try {
    await p;
  } catch (err) {
    if (err instanceof k8s.ApiException) {
      const body = typeof err.body === 'string' ? JSON.parse(err.body) : err.body;
      return { code: err.code, status: body };
    }
    throw err;
  }
  throw new Error('expected the API server to refuse the request');
}

let seq = 0;
function unique(prefix: string): string {
  seq += 1;
  return `${prefix}-${seq}`;
}

async function namespace(): Promise<string> {
  const name = unique('ns');
  await core.createNamespace({ body: { metadata: { name } } });
  return name;
}

function deployment(
  name: string,
  image = 'nginx:1.25',
  extra: Partial<k8s.V1DeploymentSpec> = {},
): k8s.V1Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, labels: { app: name, tier: 'web' } },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          containers: [
            { name: 'app', image, ports: [{ containerPort: 8080 }] },
            { name: 'sidecar', image: 'busybox:1.36' },
          ],
        },
      },
      ...extra,
    },
  };
}

/** A JSON Patch setting the first container's first port of Deployment `strict`. */
function setPort(namespace: string, value: unknown): Promise<k8s.V1Deployment> {
  return apps.patchNamespacedDeployment({
    name: 'strict',
    namespace,
    body: [
      { op: 'replace', path: '/spec/template/spec/containers/0/ports/0/containerPort', value },
    ],
  });
}

async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('the fake cluster through @kubernetes/client-node over HTTPS with a bearer token', () => {
  it('creates, gets, lists by label, replaces, patches (JSON, strategic, merge) and deletes a Deployment', async () => {
    const ns = await namespace();
    const created = await apps.createNamespacedDeployment({
      namespace: ns,
      body: deployment('web'),
    });
    expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.metadata?.namespace).toBe(ns);
    expect(created.metadata?.generation).toBe(1);
    expect(created.metadata?.creationTimestamp).toBeInstanceOf(Date);
    expect(created.spec?.strategy).toEqual({
      type: 'RollingUpdate',
      rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' },
    });
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        ...deployment('api'),
        metadata: { name: 'api', labels: { app: 'api', tier: 'backend' } },
      },
    });

    const got = await apps.readNamespacedDeployment({ name: 'web', namespace: ns });
    expect(got.spec?.template.spec?.containers.map((c) => c.image)).toEqual([
      'nginx:1.25',
      'busybox:1.36',
    ]);
    const web = await apps.listNamespacedDeployment({ namespace: ns, labelSelector: 'tier=web' });
    expect(web.items.map((d) => d.metadata?.name)).toEqual(['web']);
    const notWeb = await apps.listNamespacedDeployment({
      namespace: ns,
      labelSelector: 'tier!=web,app in (api,x)',
    });
    expect(notWeb.items.map((d) => d.metadata?.name)).toEqual(['api']);
    expect(Number(web.metadata?.resourceVersion)).toBeGreaterThan(0);

    // Redone on a 409: the rollout moves the resourceVersion meanwhile (a stale one: tested below).
    const { current, replaced } = await replaceFresh(
      () => apps.readNamespacedDeployment({ name: 'web', namespace: ns }),
      (d) => {
        d.spec!.replicas = 3;
      },
      (body) => apps.replaceNamespacedDeployment({ name: 'web', namespace: ns, body }),
    );
    expect(replaced.spec?.replicas).toBe(3);
    expect(replaced.metadata?.generation).toBe(2);
    expect(Number(replaced.metadata?.resourceVersion)).toBeGreaterThan(
      Number(current.metadata?.resourceVersion),
    );

    // client-node 1.x sends JSON Patch unless told otherwise.
    const jsonPatched = await apps.patchNamespacedDeployment({
      name: 'web',
      namespace: ns,
      body: [
        { op: 'replace', path: '/spec/template/spec/containers/0/image', value: 'nginx:1.26' },
      ],
    });
    expect(jsonPatched.spec?.template.spec?.containers[0]?.image).toBe('nginx:1.26');
    expect(jsonPatched.metadata?.generation).toBe(3);

    // Strategic merge: containers merge by name, so the sidecar stays.
    const strategic = await apps.patchNamespacedDeployment(
      {
        name: 'web',
        namespace: ns,
        body: {
          spec: { template: { spec: { containers: [{ name: 'app', image: 'nginx:1.27' }] } } },
        },
      },
      smp,
    );
    expect(strategic.spec?.template.spec?.containers.map((c) => `${c.name}=${c.image}`)).toEqual([
      'app=nginx:1.27',
      'sidecar=busybox:1.36',
    ]);
    expect(strategic.spec?.template.spec?.containers[0]?.ports).toEqual([
      { containerPort: 8080, protocol: 'TCP' },
    ]);
    // ... and `$patch: delete` removes one element.
    const deleted = await apps.patchNamespacedDeployment(
      {
        name: 'web',
        namespace: ns,
        body: {
          spec: { template: { spec: { containers: [{ name: 'sidecar', $patch: 'delete' }] } } },
        },
      },
      smp,
    );
    expect(deleted.spec?.template.spec?.containers.map((c) => c.name)).toEqual(['app']);

    // A merge patch replaces lists whole.
    const merged = await apps.patchNamespacedDeployment(
      {
        name: 'web',
        namespace: ns,
        body: {
          metadata: { labels: { tier: null, owner: 'team' } },
          spec: { template: { spec: { containers: [{ name: 'only', image: 'redis:7' }] } } },
        },
      },
      mergePatch,
    );
    expect(merged.metadata?.labels).toEqual({ app: 'web', owner: 'team' });
    expect(merged.spec?.template.spec?.containers.map((c) => c.name)).toEqual(['only']);

    const gone = await apps.deleteNamespacedDeployment({ name: 'web', namespace: ns });
    expect(gone).toMatchObject({
      kind: 'Status',
      status: 'Success',
      details: { name: 'web', group: 'apps', kind: 'deployments' },
    });
    const missing = await refused(apps.readNamespacedDeployment({ name: 'web', namespace: ns }));
    expect(missing.code).toBe(404);
    expect(missing.status).toMatchObject({
      kind: 'Status',
      apiVersion: 'v1',
      status: 'Failure',
      reason: 'NotFound',
      code: 404,
      message: 'deployments.apps "web" not found',
      details: { name: 'web', group: 'apps', kind: 'deployments' },
    });
  });

  it('answers AlreadyExists, NotFound and Conflict (a stale resourceVersion) with real Status objects', async () => {
    const ns = await namespace();
    await apps.createNamespacedDeployment({ namespace: ns, body: deployment('dup') });
    const again = await refused(
      apps.createNamespacedDeployment({ namespace: ns, body: deployment('dup') }),
    );
    expect(again.code).toBe(409);
    expect(again.status).toMatchObject({
      kind: 'Status',
      status: 'Failure',
      reason: 'AlreadyExists',
      code: 409,
      message: 'deployments.apps "dup" already exists',
      details: { name: 'dup', group: 'apps', kind: 'deployments' },
    });

    const stale = await apps.readNamespacedDeployment({ name: 'dup', namespace: ns });
    await apps.patchNamespacedDeployment(
      { name: 'dup', namespace: ns, body: { spec: { replicas: 1 } } },
      smp,
    );
    stale.spec!.replicas = 5;
    const conflict = await refused(
      apps.replaceNamespacedDeployment({ name: 'dup', namespace: ns, body: stale }),
    );
    expect(conflict.code).toBe(409);
    expect(conflict.status).toMatchObject({
      reason: 'Conflict',
      message:
        'Operation cannot be fulfilled on deployments.apps "dup": the object has been modified; please apply your changes to the latest version and try again',
      details: { name: 'dup', group: 'apps', kind: 'deployments' },
    });
    expect(
      (await apps.readNamespacedDeployment({ name: 'dup', namespace: ns })).spec?.replicas,
    ).toBe(1);

    const noService = await refused(core.readNamespacedService({ name: 'nope', namespace: ns }));
    expect(noService.status).toMatchObject({
      reason: 'NotFound',
      message: 'services "nope" not found',
      details: { name: 'nope', kind: 'services' },
    });
    const noNamespace = await refused(
      core.createNamespacedConfigMap({
        namespace: 'no-such-ns',
        body: { metadata: { name: 'c' } },
      }),
    );
    expect(noNamespace.status).toMatchObject({
      code: 404,
      reason: 'NotFound',
      message: 'namespaces "no-such-ns" not found',
    });
    const putMissing = await refused(
      core.replaceNamespacedConfigMap({
        name: 'c',
        namespace: ns,
        body: { metadata: { name: 'c' } },
      }),
    );
    expect(putMissing.code).toBe(404);
  });

  it('refuses unknown fields as fieldValidation=Strict does, and invalid objects as the apiserver validates them', async () => {
    const ns = await namespace();
    await apps.createNamespacedDeployment({ namespace: ns, body: deployment('strict') });

    const typo = await refused(
      apps.patchNamespacedDeployment(
        { name: 'strict', namespace: ns, body: { spec: { replica: 2 } } },
        smp,
      ),
    );
    expect(typo.code).toBe(400);
    expect(typo.status).toMatchObject({
      kind: 'Status',
      status: 'Failure',
      reason: 'BadRequest',
      message:
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.replica"',
    });
    const deep = await refused(
      apps.patchNamespacedDeployment({
        name: 'strict',
        namespace: ns,
        body: [
          { op: 'add', path: '/spec/template/spec/containers/0/imagePolicy', value: 'Always' },
        ],
      }),
    );
    expect(deep.status.message).toContain(
      'strict decoding error: unknown field "spec.template.spec.containers[0].imagePolicy"',
    );
    // Warn keeps the write, drops the field and says so; the stored object never has it.
    const warned = await apps.patchNamespacedDeployment(
      { name: 'strict', namespace: ns, fieldValidation: 'Warn', body: { spec: { replica: 2 } } },
      smp,
    );
    expect(warned.spec?.replicas).toBe(2);
    expect(
      JSON.stringify(await apps.readNamespacedDeployment({ name: 'strict', namespace: ns })),
    ).not.toContain('"replica"');

    const noImage = deployment('no-image');
    delete noImage.spec!.template.spec!.containers[0]!.image;
    const invalid = await refused(
      apps.createNamespacedDeployment({ namespace: ns, body: noImage }),
    );
    expect(invalid.code).toBe(422);
    expect(invalid.status).toMatchObject({
      kind: 'Status',
      status: 'Failure',
      reason: 'Invalid',
      code: 422,
      message:
        'Deployment.apps "no-image" is invalid: spec.template.spec.containers[0].image: Required value',
      details: {
        name: 'no-image',
        group: 'apps',
        kind: 'Deployment',
        causes: [
          {
            reason: 'FieldValueRequired',
            message: 'Required value',
            field: 'spec.template.spec.containers[0].image',
          },
        ],
      },
    });

    const badPort = await refused(setPort(ns, 'http'));
    expect(badPort.code).toBe(400);
    expect(badPort.status.message).toMatch(
      /^Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field .*containerPort of type int32$/,
    );
    const outOfRange = await refused(setPort(ns, 70000));
    expect(outOfRange.status).toMatchObject({ code: 422, reason: 'Invalid' });
    expect(outOfRange.status.message).toContain(
      'spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive',
    );

    const mismatch = deployment('mismatch');
    mismatch.spec!.template.metadata!.labels = { app: 'other' };
    const selector = await refused(
      apps.createNamespacedDeployment({ namespace: ns, body: mismatch }),
    );
    expect(selector.status.message).toContain('spec.template.metadata.labels: Invalid value');
    expect(selector.status.message).toContain('`selector` does not match template `labels`');

    const immutable = await refused(
      apps.patchNamespacedDeployment(
        {
          name: 'strict',
          namespace: ns,
          body: {
            spec: {
              selector: { matchLabels: { app: 'x' } },
              template: { metadata: { labels: { app: 'x' } } },
            },
          },
        },
        smp,
      ),
    );
    expect(immutable.status.message).toContain('spec.selector: Invalid value');
    expect(immutable.status.message).toContain('field is immutable');

    // What norn's forge writes: probes, resources, env, volumes.
    const container = (extra: Partial<k8s.V1Container>): k8s.V1Deployment => {
      const d = deployment('probed');
      Object.assign(d.spec!.template.spec!.containers[0]!, extra);
      return d;
    };
    const noHandler = await refused(
      apps.createNamespacedDeployment({
        namespace: ns,
        body: container({ readinessProbe: { periodSeconds: 1 } }),
      }),
    );
    expect(noHandler.status.message).toBe(
      'Deployment.apps "probed" is invalid: spec.template.spec.containers[0].readinessProbe: Required value: must specify a handler type',
    );
    const liveness = await refused(
      apps.createNamespacedDeployment({
        namespace: ns,
        body: container({
          livenessProbe: { httpGet: { path: '/health', port: 8080 }, successThreshold: 2 },
        }),
      }),
    );
    expect(liveness.status.message).toContain(
      'spec.template.spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1',
    );
    const overLimit = await refused(
      apps.createNamespacedDeployment({
        namespace: ns,
        body: container({ resources: { requests: { cpu: '2' }, limits: { cpu: '500m' } } }),
      }),
    );
    expect(overLimit.status.message).toContain('must be less than or equal to cpu limit of 500m');
    const badQuantity = await refused(
      apps.createNamespacedDeployment({
        namespace: ns,
        body: container({ resources: { limits: { memory: 'lots' } } }),
      }),
    );
    expect(badQuantity.status).toMatchObject({ code: 400, reason: 'BadRequest' });
    expect(badQuantity.status.message).toContain('quantities must match the regular expression');
    const noVolume = await refused(
      apps.createNamespacedDeployment({
        namespace: ns,
        body: container({ volumeMounts: [{ name: 'data', mountPath: '/data' }] }),
      }),
    );
    expect(noVolume.status.message).toContain(
      'spec.template.spec.containers[0].volumeMounts[0].name: Not found: "data"',
    );
    const fine = container({
      readinessProbe: { httpGet: { path: '/health', port: 8080 } },
      livenessProbe: { httpGet: { path: '/health', port: 8080 }, failureThreshold: 3 },
      resources: {
        requests: { cpu: '100m', memory: '64Mi' },
        limits: { cpu: '1', memory: '128Mi' },
      },
      env: [{ name: 'DATABASE_URL', value: 'postgres://db' }],
      envFrom: [{ secretRef: { name: 'app-secrets' } }],
      volumeMounts: [{ name: 'data', mountPath: '/data' }],
    });
    fine.spec!.template.spec!.volumes = [
      { name: 'data', persistentVolumeClaim: { claimName: 'data' } },
    ];
    await apps.createNamespacedDeployment({ namespace: ns, body: fine });

    // Volumes as the apiserver checks them: DNS-label names, each once, one source, no "..".
    const withVolumes = (volumes: k8s.V1Volume[], mounts: k8s.V1VolumeMount[]) => {
      const d = container({ volumeMounts: mounts });
      d.metadata!.name = 'mounted';
      d.spec!.template.spec!.volumes = volumes;
      return apps.createNamespacedDeployment({ namespace: ns, body: d });
    };
    const volumeRefusal = await refused(
      withVolumes(
        [
          { name: 'Media_files', persistentVolumeClaim: { claimName: 'media' } },
          { name: 'cache', hostPath: { path: '/srv/../etc', type: 'DirectoryOrCreate' } },
          { name: 'cache', emptyDir: {} },
        ],
        [
          { name: 'cache', mountPath: '/cache' },
          { name: 'cache', mountPath: '/cache', readOnly: true },
        ],
      ),
    );
    expect(volumeRefusal.status.details?.causes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          field: 'spec.template.spec.volumes[0].name',
          message: expect.stringContaining(
            'Invalid value: "Media_files": a lowercase RFC 1123 label',
          ),
        }),
        {
          reason: 'FieldValueInvalid',
          field: 'spec.template.spec.volumes[1].hostPath.path',
          message: `Invalid value: "/srv/../etc": must not contain '..'`,
        },
        {
          reason: 'FieldValueDuplicate',
          field: 'spec.template.spec.volumes[2].name',
          message: 'Duplicate value: "cache"',
        },
        {
          reason: 'FieldValueInvalid',
          field: 'spec.template.spec.containers[0].volumeMounts[1].mountPath',
          message: 'Invalid value: "/cache": must be unique',
        },
      ]),
    );
    const badHostPathType = await refused(
      withVolumes(
        [{ name: 'node', hostPath: { path: '/srv', type: 'Folder' } }],
        [{ name: 'node', mountPath: '/srv' }],
      ),
    );
    expect(badHostPathType.status.message).toContain(
      'spec.template.spec.volumes[0].hostPath.type: Unsupported value: "Folder"',
    );
    const mounted = await withVolumes(
      [
        { name: 'media', persistentVolumeClaim: { claimName: 'media' } },
        { name: 'node', hostPath: { path: '/srv/node', type: 'DirectoryOrCreate' } },
      ],
      [
        { name: 'media', mountPath: '/media' },
        { name: 'node', mountPath: '/node', readOnly: true },
      ],
    );
    expect(mounted.spec?.template.spec?.volumes?.[1]?.hostPath).toEqual({
      path: '/srv/node',
      type: 'DirectoryOrCreate',
    });

    const badName = await refused(
      core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'Not_Valid' } } }),
    );
    expect(badName.status).toMatchObject({ code: 422, reason: 'Invalid' });
    expect(badName.status.details?.causes?.[0]?.field).toBe('metadata.name');

    const cron = await refused(
      batch.createNamespacedCronJob({
        namespace: ns,
        body: {
          metadata: { name: 'nightly' },
          spec: {
            schedule: '0 3 * * *',
            jobTemplate: {
              spec: { template: { spec: { containers: [{ name: 'job', image: 'busybox' }] } } },
            },
          },
        },
      }),
    );
    expect(cron.status.message).toBe(
      'CronJob.batch "nightly" is invalid: spec.jobTemplate.spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"',
    );

    const noPorts = await refused(
      core.createNamespacedService({
        namespace: ns,
        body: { metadata: { name: 'svc' }, spec: { selector: { app: 'x' } } },
      }),
    );
    expect(noPorts.status.message).toBe('Service "svc" is invalid: spec.ports: Required value');
  });

  it('stores Services, ConfigMaps, Secrets, PVCs, CronJobs and Namespaces with the server-side defaults', async () => {
    const ns = await namespace();
    const svc = await core.createNamespacedService({
      namespace: ns,
      body: {
        metadata: { name: 'web' },
        spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] },
      },
    });
    expect(svc.spec?.type).toBe('ClusterIP');
    expect(svc.spec?.clusterIP).toMatch(/^10\.96\./);
    expect(svc.spec?.ports?.[0]).toMatchObject({ port: 80, targetPort: 8080, protocol: 'TCP' });
    const cm = await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'cloudflared' }, data: { 'config.yaml': 'ingress: []\n' } },
    });
    expect(cm.data).toEqual({ 'config.yaml': 'ingress: []\n' });
    const secret = await core.createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: 'env' }, stringData: { TOKEN: 'hunter2' } },
    });
    expect(secret.type).toBe('Opaque');
    expect(secret.data).toEqual({ TOKEN: Buffer.from('hunter2').toString('base64') });
    const pvc = await core.createNamespacedPersistentVolumeClaim({
      namespace: ns,
      body: {
        metadata: { name: 'data' },
        spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
      },
    });
    expect(pvc.status?.phase).toBe('Bound');
    // A claim's spec is immutable but for its requests (a bound claim may grow).
    const grown = await core.replaceNamespacedPersistentVolumeClaim({
      name: 'data',
      namespace: ns,
      body: { ...pvc, spec: { ...pvc.spec, resources: { requests: { storage: '2Gi' } } } },
    });
    expect(grown.spec?.resources?.requests?.storage).toBe('2Gi');
    const remoded = await refused(
      core.replaceNamespacedPersistentVolumeClaim({
        name: 'data',
        namespace: ns,
        body: { ...grown, spec: { ...grown.spec, accessModes: ['ReadWriteMany'] } },
      }),
    );
    expect(remoded.status.message).toBe(
      'PersistentVolumeClaim "data" is invalid: spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims',
    );
    const cron = await batch.createNamespacedCronJob({
      namespace: ns,
      body: {
        metadata: { name: 'nightly' },
        spec: {
          schedule: '0 3 * * *',
          jobTemplate: {
            spec: {
              template: {
                spec: {
                  restartPolicy: 'OnFailure',
                  containers: [{ name: 'job', image: 'busybox' }],
                },
              },
            },
          },
        },
      },
    });
    expect(cron.spec?.concurrencyPolicy).toBe('Allow');
    expect(cron.metadata?.generation).toBe(1);
    expect((await core.readNamespace({ name: ns })).status?.phase).toBe('Active');

    const wrongToken = new k8s.KubeConfig();
    wrongToken.loadFromFile(kube.kubeconfigPath);
    wrongToken.users = [{ name: 'fake', token: 'not-the-token' }];
    const unauthorized = await refused(wrongToken.makeApiClient(k8s.CoreV1Api).listNamespace());
    expect(unauthorized.code).toBe(401);

    await core.deleteNamespace({ name: ns });
    const terminating = await core.readNamespace({ name: ns }).catch(() => undefined);
    if (terminating) expect(terminating.status?.phase).toBe('Terminating');
    await waitFor('the namespace to go', async () =>
      (await core.listNamespace()).items.some((n) => n.metadata?.name === ns) ? undefined : true,
    );
    expect((await core.listNamespacedConfigMap({ namespace: ns })).items).toEqual([]);
  });

  it('starts a Pod created through the API, and crash-loops one whose image carries the marker', async () => {
    const ns = await namespace();
    const pod = (name: string, image: string): k8s.V1Pod => ({
      metadata: { name },
      spec: { containers: [{ name: 'main', image }] },
    });
    const created = await core.createNamespacedPod({
      namespace: ns,
      body: pod('bare', 'busybox:1.36'),
    });
    expect(created.status?.phase).toBe('Pending');
    await core.createNamespacedPod({ namespace: ns, body: pod('bad', 'example/x:crashloop') });
    const running = await waitFor('the pod to run', async () => {
      const p = await core.readNamespacedPod({ name: 'bare', namespace: ns });
      return p.status?.phase === 'Running' ? p : undefined;
    });
    expect(running.status?.containerStatuses?.[0]?.ready).toBe(true);
    const crashing = await waitFor('restarts', async () => {
      const p = await core.readNamespacedPod({ name: 'bad', namespace: ns });
      return (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 2 ? p : undefined;
    });
    expect(crashing.status?.containerStatuses?.[0]?.state?.waiting?.reason).toBe(
      'CrashLoopBackOff',
    );
    const deleted = await core.deleteNamespacedPod({ name: 'bare', namespace: ns });
    expect(deleted.metadata?.name).toBe('bare');
  });

  it('leaves a pod whose PersistentVolumeClaim does not exist Pending, unschedulable, until the claim is made', async () => {
    const ns = await namespace();
    const d = deployment('claims', 'nginx:1.25', { replicas: 1 });
    d.spec!.template.spec!.volumes = [
      { name: 'data', persistentVolumeClaim: { claimName: 'data' } },
    ];
    d.spec!.template.spec!.containers[0]!.volumeMounts = [{ name: 'data', mountPath: '/data' }];
    await apps.createNamespacedDeployment({ namespace: ns, body: d });
    const pending = await waitFor('the pod to be unschedulable', async () => {
      const pods = await core.listNamespacedPod({ namespace: ns });
      const p = pods.items[0];
      return p?.status?.conditions?.[0]?.reason === 'Unschedulable' ? p : undefined;
    });
    expect(pending.status?.phase).toBe('Pending');
    expect(pending.status?.conditions?.[0]).toMatchObject({
      type: 'PodScheduled',
      status: 'False',
      message: expect.stringContaining('persistentvolumeclaim "data" not found'),
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(
      (await apps.readNamespacedDeployment({ name: 'claims', namespace: ns })).status,
    ).not.toMatchObject({ readyReplicas: 1 });
    await core.createNamespacedPersistentVolumeClaim({
      namespace: ns,
      body: {
        metadata: { name: 'data' },
        spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
      },
    });
    await waitFor('the pod to be ready', async () => {
      const now = await apps.readNamespacedDeployment({ name: 'claims', namespace: ns });
      return now.status?.readyReplicas === 1 ? now : undefined;
    });
  });

  it('serves watches: ADDED, MODIFIED and DELETED, by fieldSelector, resuming from a resourceVersion', async () => {
    const ns = await namespace();
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'other' }, data: { a: '1' } },
    });
    const list = await core.listNamespacedConfigMap({ namespace: ns });
    const seen: string[] = [];
    const watch = new k8s.Watch(kc);
    const abort = await watch.watch(
      `/api/v1/namespaces/${ns}/configmaps`,
      { fieldSelector: 'metadata.name=watched', resourceVersion: list.metadata?.resourceVersion },
      (type, obj: k8s.V1ConfigMap) =>
        seen.push(`${type} ${obj.metadata?.name} ${obj.data?.a ?? '-'}`),
      () => undefined,
    );
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'watched' }, data: { a: '1' } },
    });
    await core.patchNamespacedConfigMap(
      { name: 'watched', namespace: ns, body: { data: { a: '2' } } },
      mergePatch,
    );
    await core.patchNamespacedConfigMap(
      { name: 'other', namespace: ns, body: { data: { a: '9' } } },
      mergePatch,
    );
    await core.deleteNamespacedConfigMap({ name: 'watched', namespace: ns });
    await waitFor('three events', async () => (seen.length >= 3 ? true : undefined));
    abort.abort();
    expect(seen).toEqual(['ADDED watched 1', 'MODIFIED watched 2', 'DELETED watched 2']);

    // Without a resourceVersion a watch starts with the current objects.
    const initial: string[] = [];
    const again = await watch.watch(
      `/api/v1/namespaces/${ns}/configmaps`,
      {},
      (type, obj: k8s.V1ConfigMap) => initial.push(`${type} ${obj.metadata?.name}`),
      () => undefined,
    );
    await waitFor('the initial list', async () => (initial.length >= 1 ? true : undefined));
    again.abort();
    expect(initial).toEqual(['ADDED other']);
  });

  it('ends a watch from a resourceVersion the event log no longer holds with 410 Expired', async () => {
    const ns = await namespace();
    const { metadata } = await core.listNamespacedConfigMap({ namespace: ns });
    const limit = kube.store.logLimit;
    kube.store.logLimit = 3;
    try {
      for (const name of ['a', 'b', 'c', 'd', 'e'])
        await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name } } });
      const events: { type: string; object: k8s.V1Status }[] = [];
      const ended = new Promise<void>((resolve) => {
        void new k8s.Watch(kc).watch(
          `/api/v1/namespaces/${ns}/configmaps`,
          { resourceVersion: metadata?.resourceVersion },
          (type, object: k8s.V1Status) => events.push({ type, object }),
          () => resolve(),
        );
      });
      await ended;
      expect(events).toHaveLength(1);
      expect(events[0]?.type).toBe('ERROR');
      expect(events[0]?.object).toMatchObject({
        kind: 'Status',
        status: 'Failure',
        reason: 'Expired',
        code: 410,
      });
      expect(events[0]?.object.message).toMatch(/^too old resource version: \d+ \(\d+\)$/);
    } finally {
      kube.store.logLimit = limit;
    }
  });

  it('scales a Deployment through its /scale subresource', async () => {
    const ns = await namespace();
    await apps.createNamespacedDeployment({ namespace: ns, body: deployment('scaled') });
    const scale = await apps.readNamespacedDeploymentScale({ name: 'scaled', namespace: ns });
    expect(scale).toMatchObject({
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      spec: { replicas: 2 },
    });
    expect(scale.status?.selector).toBe('app=scaled');
    await apps.patchNamespacedDeploymentScale(
      { name: 'scaled', namespace: ns, body: { spec: { replicas: 4 } } },
      mergePatch,
    );
    const d = await apps.readNamespacedDeployment({ name: 'scaled', namespace: ns });
    expect(d.spec?.replicas).toBe(4);
    expect(d.metadata?.generation).toBe(2);
    const negative = await refused(
      apps.replaceNamespacedDeploymentScale({
        name: 'scaled',
        namespace: ns,
        body: { metadata: { name: 'scaled' }, spec: { replicas: -1 } },
      }),
    );
    expect(negative.status).toMatchObject({ code: 422, reason: 'Invalid' });
  });

  it('rolls a Deployment out one ready pod at a time, honouring maxSurge 1 / maxUnavailable 0 and minReadySeconds', async () => {
    const ns = await namespace();
    const spec = deployment('roll', 'example/app:v1', {
      replicas: 3,
      minReadySeconds: 1,
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
    });
    const statuses: k8s.V1DeploymentStatus[] = [];
    const watch = new k8s.Watch(kc);
    const abort = await watch.watch(
      `/apis/apps/v1/namespaces/${ns}/deployments`,
      { fieldSelector: 'metadata.name=roll' },
      (_t, d: k8s.V1Deployment) => {
        if (d.status) statuses.push(d.status);
      },
      () => undefined,
    );
    await apps.createNamespacedDeployment({ namespace: ns, body: spec });
    const done = (d: k8s.V1Deployment): boolean =>
      d.status?.observedGeneration === d.metadata?.generation &&
      d.status?.availableReplicas === 3 &&
      d.status?.updatedReplicas === 3 &&
      d.status?.replicas === 3;
    await waitFor('the first rollout', async () =>
      done(await apps.readNamespacedDeployment({ name: 'roll', namespace: ns })) ? true : undefined,
    );
    const ready = statuses.map((s) => s.readyReplicas ?? 0);
    for (let i = 1; i < ready.length; i++) expect(ready[i]! - ready[i - 1]!).toBeLessThanOrEqual(1);
    expect(ready).toContain(1);
    expect(ready).toContain(2);
    const first = await apps.readNamespacedDeployment({ name: 'roll', namespace: ns });
    expect(
      first.status?.conditions?.map((c) => `${c.type}=${c.status}/${c.reason}`).sort(),
    ).toEqual([
      'Available=True/MinimumReplicasAvailable',
      'Progressing=True/NewReplicaSetAvailable',
    ]);
    const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=roll' });
    expect(pods.items).toHaveLength(3);
    for (const p of pods.items) {
      expect(p.metadata?.name).toMatch(
        /^roll-[bcdfghjklmnpqrstvwxz2456789]{10}-[bcdfghjklmnpqrstvwxz2456789]{5}$/,
      );
      expect(p.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    }

    // A template change (here: kubectl rollout restart's annotation) rolls out again, never
    // below 3 available nor above 4 pods.
    statuses.length = 0;
    await apps.patchNamespacedDeployment(
      {
        name: 'roll',
        namespace: ns,
        body: {
          spec: {
            template: {
              metadata: {
                annotations: { 'kubectl.kubernetes.io/restartedAt': new Date().toISOString() },
              },
            },
          },
        },
      },
      smp,
    );
    await waitFor('the second rollout', async () => {
      const d = await apps.readNamespacedDeployment({ name: 'roll', namespace: ns });
      return done(d) && d.metadata?.generation === 2 ? true : undefined;
    });
    abort.abort();
    const during = statuses.filter((s) => s.observedGeneration === 2);
    expect(during.length).toBeGreaterThan(3);
    for (const s of during) {
      expect(s.availableReplicas ?? 0).toBeGreaterThanOrEqual(3);
      expect(s.replicas ?? 0).toBeLessThanOrEqual(4);
    }
    const after = await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=roll' });
    expect(after.items).toHaveLength(3);
    expect(new Set(after.items.map((p) => p.metadata?.labels?.['pod-template-hash'])).size).toBe(1);
    expect(after.items[0]?.metadata?.labels?.['pod-template-hash']).not.toBe(
      pods.items[0]?.metadata?.labels?.['pod-template-hash'],
    );
  });

  it('never readies a crash-looping image: CrashLoopBackOff, rising restarts, a log tail, then ProgressDeadlineExceeded; an image that cannot be pulled sits in ImagePullBackOff', async () => {
    const ns = await namespace();
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: deployment('crash', 'example/app:crashloop', {
        replicas: 2,
        progressDeadlineSeconds: 3,
      }),
    });
    const crashing = await waitFor('a restarting pod', async () => {
      const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=crash' });
      const pod = pods.items.find(
        (p) => (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 2,
      );
      return pod;
    });
    const app = crashing.status?.containerStatuses?.find((c) => c.name === 'app');
    expect(app?.state?.waiting?.reason).toBe('CrashLoopBackOff');
    expect(app?.ready).toBe(false);
    expect(crashing.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'ContainersNotReady',
    });
    const log = await core.readNamespacedPodLog({
      name: crashing.metadata!.name!,
      namespace: ns,
      container: 'app',
      tailLines: 1,
    });
    expect(log).toBe('panic: cannot start: crashloop marker in the image\n');

    const failed = await waitFor('the progress deadline', async () => {
      const d = await apps.readNamespacedDeployment({ name: 'crash', namespace: ns });
      const progressing = d.status?.conditions?.find((c) => c.type === 'Progressing');
      return progressing?.reason === 'ProgressDeadlineExceeded' ? { d, progressing } : undefined;
    });
    expect(failed.progressing.status).toBe('False');
    expect(failed.progressing.message).toMatch(
      /^ReplicaSet "crash-[a-z0-9]{10}" has timed out progressing\.$/,
    );
    expect(failed.d.status?.readyReplicas ?? 0).toBe(0);
    expect(failed.d.status?.availableReplicas ?? 0).toBe(0);

    await apps.createNamespacedDeployment({
      namespace: ns,
      body: deployment('pull', 'example/app:pullfail', { replicas: 1 }),
    });
    const pulling = await waitFor('an image pull failure', async () => {
      const pods = await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=pull' });
      return pods.items.find(
        (p) => p.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'ImagePullBackOff',
      );
    });
    expect(pulling.status?.phase).toBe('Pending');
    expect(pulling.status?.containerStatuses?.[0]?.state?.waiting?.message).toBe(
      'Back-off pulling image "example/app:pullfail"',
    );
  });
});

describe('the fake cluster through kubectl', () => {
  // KUBECTL picks another kubectl (e.g. Debian's kubernetes-client 1.20 next to a newer one).
  const kubectl =
    process.env.KUBECTL ?? (existsSync('/usr/bin/kubectl') ? '/usr/bin/kubectl' : 'kubectl');
  /**
   * kubectl before 1.25 (Debian 12's kubernetes-client is 1.20) validates client-side against the
   * protobuf OpenAPI v2 document, which the fake does not serve, and sends no fieldValidation: it
   * applies with --validate=false, and the fake's own strict validation (its default when no
   * fieldValidation is sent) refuses what a real apiserver with Strict refuses.
   */
  let legacy = false;
  beforeAll(async () => {
    const { stdout } = await run(kubectl, ['version', '--client', '-o', 'json']);
    const minor = Number.parseInt(
      (JSON.parse(stdout) as { clientVersion: { minor: string } }).clientVersion.minor,
      10,
    );
    legacy = minor < 25;
  });
  const apply = (file: string) =>
    legacy ? ['apply', '--validate=false', '-f', file] : ['apply', '-f', file];
  const manifest = (name: string, image: string, extra = ''): string => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
spec:
  replicas: 2
  selector:
    matchLabels: {app: ${name}}
  template:
    metadata:
      labels: {app: ${name}}
    spec:
      containers:
      - name: app
        image: ${image}
        ports:
        - containerPort: 8080${extra}
---
apiVersion: v1
kind: Service
metadata:
  name: ${name}
spec:
  selector: {app: ${name}}
  ports:
  - port: 80
    targetPort: 8080
`;

  it('kubectl apply -f and kubectl rollout status work, an update and a restart roll out again, and an unknown field is refused', async () => {
    const ns = await namespace();
    const dir = mkdtempSync(join(tmpdir(), 'kube-fake-apply-'));
    const file = join(dir, 'app.yaml');
    const k = (...args: string[]) =>
      run(kubectl, ['--kubeconfig', kube.kubeconfigPath, '-n', ns, ...args], { timeout: 60_000 });

    writeFileSync(file, manifest('shop', 'example/shop:v1'));
    const applied = await k(...apply(file));
    expect(applied.stdout).toBe('deployment.apps/shop created\nservice/shop created\n');
    const status = await k('rollout', 'status', 'deployment/shop', '--timeout=30s');
    expect(status.stdout).toContain('deployment "shop" successfully rolled out');

    writeFileSync(file, manifest('shop', 'example/shop:v2'));
    const updated = await k(...apply(file));
    expect(updated.stdout).toBe('deployment.apps/shop configured\nservice/shop unchanged\n');
    await k('rollout', 'status', 'deployment/shop', '--timeout=30s');
    const d = await apps.readNamespacedDeployment({ name: 'shop', namespace: ns });
    expect(d.spec?.template.spec?.containers[0]?.image).toBe('example/shop:v2');
    expect(d.metadata?.annotations?.['kubectl.kubernetes.io/last-applied-configuration']).toContain(
      'example/shop:v2',
    );

    await k('rollout', 'restart', 'deployment/shop');
    const restarted = await apps.readNamespacedDeployment({ name: 'shop', namespace: ns });
    expect(
      restarted.spec?.template.metadata?.annotations?.['kubectl.kubernetes.io/restartedAt'],
    ).toBeDefined();
    expect(restarted.metadata?.generation).toBe(3);
    expect((await k('rollout', 'status', 'deployment/shop', '--timeout=30s')).stdout).toContain(
      'successfully rolled out',
    );

    writeFileSync(file, manifest('typo', 'example/shop:v1', '\n          hostPortt: 80'));
    const refusal = await k(...apply(file)).then(
      () => undefined,
      (err: { stderr: string }) => err.stderr,
    );
    expect(refusal).toContain('Error from server (BadRequest)');
    expect(refusal).toContain(
      'strict decoding error: unknown field "spec.template.spec.containers[0].ports[0].hostPortt"',
    );
    // A kubectl that validates server-side asks for Strict itself.
    if (!legacy)
      expect(
        kube.requests.some((r) => r.startsWith('POST') && r.includes('fieldValidation=Strict')),
      ).toBe(true);
  });

  it('kubectl rollout status fails on a crash-looping image once the progress deadline passes', async () => {
    const ns = await namespace();
    const dir = mkdtempSync(join(tmpdir(), 'kube-fake-apply-'));
    const file = join(dir, 'app.yaml');
    writeFileSync(
      file,
      manifest('broken', 'example/shop:crashloop').replace(
        'replicas: 2',
        'replicas: 2\n  progressDeadlineSeconds: 3',
      ),
    );
    const k = (...args: string[]) =>
      run(kubectl, ['--kubeconfig', kube.kubeconfigPath, '-n', ns, ...args], { timeout: 60_000 });
    await k(...apply(file));
    const failure = await k('rollout', 'status', 'deployment/broken', '--timeout=30s').then(
      () => undefined,
      (err: { stderr: string }) => err.stderr,
    );
    expect(failure).toContain('deployment "broken" exceeded its progress deadline');
  });
});
