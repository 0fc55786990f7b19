/**
 * The objects the kubernetes target writes for a release, and their names and labels. Per
 * long-running process: a Deployment (and a Service when it has a port); per scheduled process:
 * a CronJob; per process with secrets: a Secret its pods take their environment from; per volume
 * that is not a host path: a PersistentVolumeClaim every pod of the app mounts.
 *
 * Names: `<app>-<process>-<hash>`, where the hash (5 chars of sha256 of `app/process`) keeps
 * them unambiguous: app names and process names are DNS labels that may contain "-", so a bare
 * `<app>-<process>` made app `a-b` process `c` and app `a` process `b-c` the same object. The
 * readable part is cut so the name stays a 63-char DNS label (what a Service name must be).
 * Claims are `<app>-<volume>-<hash>`, the volume name made a DNS label (lowercase, "_" and "."
 * as "-"), its hash of app and the volume name as written; in the pod spec a volume is
 * `<volume>-<hash>`. What an object is and whose, its labels say; norn refuses to touch one
 * another app owns.
 */
import { createHash } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';
import { durationMs, type Infraspec, type InfraspecProcess } from '../../shared/spec/infraspec.js';
import { isScheduled, processCmd, processEnv } from '../docker/runtime.js';
import type { TargetRelease } from '../types.js';

export const LABELS = {
  managedBy: 'app.kubernetes.io/managed-by',
  app: 'app.kubernetes.io/name',
  process: 'norn.dev/process',
  release: 'norn.dev/release',
} as const;
export const MANAGER = 'norn';
const SECRET_SUM = 'norn.dev/secret-sha256';
/** On a PersistentVolumeClaim: the spec's name of the volume it holds. */
const VOLUME = 'norn.dev/volume';

/** Every object norn made for `app`, as a label selector. */
export const appSelector = (app: string) => `${LABELS.managedBy}=${MANAGER},${LABELS.app}=${app}`;

/** `<readable>-<hash of key>`, cut to a 63-char DNS label; the hash keeps `key`s apart. */
function hashedName(readable: string, key: string): string {
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 5);
  return `${readable.slice(0, 63 - 6).replace(/-+$/, '')}-${hash}`;
}

export const objectName = (app: string, process: string) =>
  hashedName(`${app}-${process}`, `${app}/${process}`);

/** A spec volume name (it may hold "_", "." and capitals) as the readable part of a DNS label. */
const dnsPart = (name: string) =>
  name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');

/** The PersistentVolumeClaim of the app's volume `volume` (hashed: `Data` and `data` differ). */
export const claimName = (app: string, volume: string) =>
  hashedName(`${app}-${dnsPart(volume)}`, `${app}/volumes/${volume}`);

/** What volume `volume` is called inside the pod spec (a DNS label too). */
export const podVolumeName = (volume: string) => hashedName(dnsPart(volume), `volumes/${volume}`);

export const namespaceOf = (spec: Pick<Infraspec, 'kubernetes'>) => spec.kubernetes.namespace;

/** The long-running processes (those without a schedule). */
export const longRunning = (spec: Infraspec) =>
  Object.entries(spec.processes).filter(([, p]) => !isScheduled(p));

const appLabels = (app: string): Record<string, string> => ({
  [LABELS.managedBy]: MANAGER,
  [LABELS.app]: app,
});

const ownLabels = (app: string, process: string): Record<string, string> => ({
  ...appLabels(app),
  [LABELS.process]: process,
});

/** Whose an object is, or why norn may not touch it (undefined: it is `app`'s own). */
export function foreignOwner(
  obj: { metadata?: k8s.V1ObjectMeta },
  app: string,
): string | undefined {
  const labels = obj.metadata?.labels ?? {};
  if (labels[LABELS.managedBy] !== MANAGER)
    return `not managed by norn (${LABELS.managedBy}=${labels[LABELS.managedBy] ?? 'unset'})`;
  if (labels[LABELS.app] !== app) return `app ${labels[LABELS.app] ?? '(none)'}`;
  return undefined;
}

function secretSum(secrets: Record<string, string>): string {
  const sorted = Object.keys(secrets)
    .sort()
    .map((k) => [k, secrets[k]]);
  return createHash('sha256').update(JSON.stringify(sorted)).digest('hex');
}

function envOf(release: TargetRelease, process: string, p: InfraspecProcess): k8s.V1EnvVar[] {
  // Secrets are not in the pod spec: they come from the Secret (envFrom); PORT last wins.
  const env = processEnv(release.spec, process, {}, p.port);
  return Object.entries(env).map(([name, value]) => ({ name, value }));
}

/** The pod's volumes (one per volume name: a claim or a node directory) and their mounts. */
function volumesOf(release: Pick<TargetRelease, 'app' | 'spec'>) {
  const volumes = new Map<string, k8s.V1Volume>();
  const mounts: k8s.V1VolumeMount[] = [];
  for (const v of release.spec.volumes ?? []) {
    const name = podVolumeName(v.name);
    if (!volumes.has(name))
      volumes.set(
        name,
        v.hostPath !== undefined
          ? { name, hostPath: { path: v.hostPath, type: 'DirectoryOrCreate' } }
          : { name, persistentVolumeClaim: { claimName: claimName(release.app, v.name) } },
      );
    mounts.push({ name, mountPath: v.mount, ...(v.readOnly ? { readOnly: true } : {}) });
  }
  return { volumes: [...volumes.values()], mounts };
}

function podSpec(
  release: TargetRelease,
  process: string,
  p: InfraspecProcess,
  name: string,
  restartPolicy: 'Always' | 'Never',
): k8s.V1PodSpec {
  const hasSecrets = Object.keys(release.secrets).length > 0;
  const probe = (): k8s.V1Probe | undefined =>
    p.health && p.port !== undefined
      ? {
          httpGet: { path: p.health.path, port: p.port },
          periodSeconds: Math.max(1, Math.round(durationMs(p.health.interval) / 1000)),
          timeoutSeconds: Math.max(1, Math.ceil(durationMs(p.health.timeout) / 1000)),
        }
      : undefined;
  const container: k8s.V1Container = {
    name: process,
    image: release.imageRef,
    env: envOf(release, process, p),
    resources: {
      requests: { cpu: `${p.resources.cpu}m`, memory: `${p.resources.memory}Mi` },
      limits: { memory: `${p.resources.memory}Mi` },
    },
  };
  const cmd = processCmd(p);
  if (cmd) container.command = cmd;
  if (p.port !== undefined) container.ports = [{ containerPort: p.port, protocol: 'TCP' }];
  if (restartPolicy === 'Always') {
    const readiness = probe();
    const liveness = probe();
    if (readiness) container.readinessProbe = readiness;
    if (liveness) container.livenessProbe = { ...liveness, failureThreshold: 3 };
  }
  if (hasSecrets) container.envFrom = [{ secretRef: { name } }];
  const { volumes, mounts } = volumesOf(release);
  if (mounts.length === 0) return { containers: [container], restartPolicy };
  container.volumeMounts = mounts;
  return { containers: [container], volumes, restartPolicy };
}

function templateMeta(release: TargetRelease, process: string): k8s.V1ObjectMeta {
  const annotations: Record<string, string> = {};
  // A changed secret value rolls the pods (they read the Secret only when they start).
  if (Object.keys(release.secrets).length > 0) annotations[SECRET_SUM] = secretSum(release.secrets);
  return {
    labels: { ...ownLabels(release.app, process), [LABELS.release]: String(release.id) },
    annotations,
  };
}

export function deploymentOf(release: TargetRelease, process: string): k8s.V1Deployment {
  const p = release.spec.processes[process]!;
  const name = objectName(release.app, process);
  const policy = release.spec.deployPolicy;
  const minReadySeconds = Math.ceil(durationMs(policy.minHealthyTime) / 1000);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name,
      namespace: namespaceOf(release.spec),
      labels: { ...ownLabels(release.app, process), [LABELS.release]: String(release.id) },
    },
    spec: {
      replicas: p.replicas,
      selector: { matchLabels: ownLabels(release.app, process) },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      minReadySeconds,
      // The cluster gives up on a rollout that makes no progress this long (and says so).
      progressDeadlineSeconds: Math.max(
        minReadySeconds + 1,
        Math.ceil(durationMs(policy.healthTimeout) / 1000),
      ),
      template: {
        metadata: templateMeta(release, process),
        spec: podSpec(release, process, p, name, 'Always'),
      },
    },
  };
}

export function serviceOf(release: TargetRelease, process: string): k8s.V1Service | undefined {
  const p = release.spec.processes[process]!;
  if (p.port === undefined) return undefined;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: objectName(release.app, process),
      namespace: namespaceOf(release.spec),
      labels: ownLabels(release.app, process),
    },
    spec: {
      type: 'ClusterIP',
      selector: ownLabels(release.app, process),
      ports: [{ name: 'http', port: 80, targetPort: p.port, protocol: 'TCP' }],
    },
  };
}

export function secretOf(release: TargetRelease, process: string): k8s.V1Secret | undefined {
  if (Object.keys(release.secrets).length === 0) return undefined;
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: objectName(release.app, process),
      namespace: namespaceOf(release.spec),
      labels: ownLabels(release.app, process),
    },
    type: 'Opaque',
    stringData: release.secrets,
  };
}

export function cronJobOf(release: TargetRelease, process: string): k8s.V1CronJob {
  const p = release.spec.processes[process]!;
  const name = objectName(release.app, process);
  const spec: k8s.V1CronJobSpec = {
    schedule: p.schedule!,
    concurrencyPolicy: 'Forbid',
    jobTemplate: {
      metadata: { labels: ownLabels(release.app, process) },
      spec: {
        backoffLimit: 0,
        template: {
          metadata: templateMeta(release, process),
          spec: podSpec(release, process, p, name, 'Never'),
        },
      },
    },
  };
  if (p.timezone) spec.timeZone = p.timezone;
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: {
      name,
      namespace: namespaceOf(release.spec),
      labels: { ...ownLabels(release.app, process), [LABELS.release]: String(release.id) },
    },
    spec,
  };
}

/**
 * The PersistentVolumeClaims of the release's volumes that are not host paths, one per volume
 * name. Created when missing and then left alone: a claim's spec is immutable, and its data
 * outlives releases, so norn never replaces or deletes one.
 */
export function claimsOf(
  release: Pick<TargetRelease, 'app' | 'spec'>,
): k8s.V1PersistentVolumeClaim[] {
  const claims = new Map<string, k8s.V1PersistentVolumeClaim>();
  for (const v of release.spec.volumes ?? []) {
    const name = claimName(release.app, v.name);
    if (v.hostPath !== undefined || claims.has(name)) continue;
    claims.set(name, {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: {
        name,
        namespace: namespaceOf(release.spec),
        labels: appLabels(release.app),
        annotations: { [VOLUME]: v.name },
      },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: v.size } } },
    });
  }
  return [...claims.values()];
}
