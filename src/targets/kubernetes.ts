/**
 * The kubernetes target: each long-running process of an app as a Deployment (rolling update,
 * maxUnavailable 0 / maxSurge 1, minReadySeconds = minHealthyTime, HTTP probes on the health
 * path) with a ClusterIP Service (port 80 → the process's port) when it has a port; each
 * scheduled process as a CronJob (the cluster ticks it, so there is no runScheduled); secrets as
 * a Secret the pods take their environment from; volumes as PersistentVolumeClaims (created when
 * missing, never replaced or deleted: the data outlives releases) or host paths. Objects are
 * named and labelled in kubernetes/objects.ts; rollouts are followed with watches in
 * kubernetes/rollout.ts; the connection (config, retries, unreachable clusters) is
 * kubernetes/connection.ts.
 *
 * Where the Target interface is docker-shaped, the mapping: a "unit" is one replica slot of a
 * Deployment, `<deployment>/<i>` (pods come and go under random names; slots do not), running
 * when at least i+1 pods of the Deployment's current release are Ready. `apply` writes the
 * objects and returns; the rollout itself is `waitHealthy`'s to follow. `remove` and `live` get
 * no spec, so they look for the app's objects (by label) in every namespace.
 */
import * as k8s from '@kubernetes/client-node';
import { NornError } from '../shared/errors.js';
import { durationMs } from '../shared/spec/infraspec.js';
import { isScheduled } from './docker/runtime.js';
import { apiMessage, statusOf, type KubeConnection } from './kubernetes/connection.js';
import {
  LABELS,
  appSelector,
  claimsOf,
  cronJobOf,
  deploymentOf,
  foreignOwner,
  longRunning,
  namespaceOf,
  objectName,
  secretOf,
  serviceOf,
} from './kubernetes/objects.js';
import { followRollout } from './kubernetes/rollout.js';
import type { Applied, LiveUnit, Target, TargetCall, TargetRelease } from './types.js';

export interface KubernetesTargetDeps {
  /** The cluster connection, made when first needed (throws UNAVAILABLE without a config). */
  connect: () => KubeConnection;
}

export type Kind = 'Deployment' | 'Service' | 'Secret' | 'CronJob' | 'PersistentVolumeClaim';
type Obj = { metadata?: k8s.V1ObjectMeta };

const strict = { fieldValidation: 'Strict' } as const;

interface KindApi {
  read(name: string, namespace: string): Promise<Obj>;
  create(namespace: string, body: Obj): Promise<Obj>;
  replace(name: string, namespace: string, body: Obj): Promise<Obj>;
  remove(name: string, namespace: string): Promise<unknown>;
  listAll(labelSelector: string): Promise<{ items: Obj[] }>;
}

/** What norn reads and writes of one kind of object, in one namespace (forge's steps too). */
export function kindApi(conn: KubeConnection, kind: Kind): KindApi {
  const { apps, core, batch } = conn;
  switch (kind) {
    case 'Deployment':
      return {
        read: (name: string, namespace: string) =>
          apps.readNamespacedDeployment({ name, namespace }),
        create: (namespace: string, body: Obj) =>
          apps.createNamespacedDeployment({ namespace, body: body as k8s.V1Deployment, ...strict }),
        replace: (name: string, namespace: string, body: Obj) =>
          apps.replaceNamespacedDeployment({
            name,
            namespace,
            body: body as k8s.V1Deployment,
            ...strict,
          }),
        remove: (name: string, namespace: string) =>
          apps.deleteNamespacedDeployment({ name, namespace, propagationPolicy: 'Background' }),
        listAll: (labelSelector: string) => apps.listDeploymentForAllNamespaces({ labelSelector }),
      };
    case 'Service':
      return {
        read: (name: string, namespace: string) => core.readNamespacedService({ name, namespace }),
        create: (namespace: string, body: Obj) =>
          core.createNamespacedService({ namespace, body: body as k8s.V1Service, ...strict }),
        replace: (name: string, namespace: string, body: Obj) =>
          core.replaceNamespacedService({
            name,
            namespace,
            body: body as k8s.V1Service,
            ...strict,
          }),
        remove: (name: string, namespace: string) =>
          core.deleteNamespacedService({ name, namespace }),
        listAll: (labelSelector: string) => core.listServiceForAllNamespaces({ labelSelector }),
      };
    case 'Secret':
      return {
        read: (name: string, namespace: string) => core.readNamespacedSecret({ name, namespace }),
        create: (namespace: string, body: Obj) =>
          core.createNamespacedSecret({ namespace, body: body as k8s.V1Secret, ...strict }),
        replace: (name: string, namespace: string, body: Obj) =>
          core.replaceNamespacedSecret({ name, namespace, body: body as k8s.V1Secret, ...strict }),
        remove: (name: string, namespace: string) =>
          core.deleteNamespacedSecret({ name, namespace }),
        listAll: (labelSelector: string) => core.listSecretForAllNamespaces({ labelSelector }),
      };
    case 'CronJob':
      return {
        read: (name: string, namespace: string) => batch.readNamespacedCronJob({ name, namespace }),
        create: (namespace: string, body: Obj) =>
          batch.createNamespacedCronJob({ namespace, body: body as k8s.V1CronJob, ...strict }),
        replace: (name: string, namespace: string, body: Obj) =>
          batch.replaceNamespacedCronJob({
            name,
            namespace,
            body: body as k8s.V1CronJob,
            ...strict,
          }),
        remove: (name: string, namespace: string) =>
          batch.deleteNamespacedCronJob({ name, namespace, propagationPolicy: 'Background' }),
        listAll: (labelSelector: string) => batch.listCronJobForAllNamespaces({ labelSelector }),
      };
    case 'PersistentVolumeClaim':
      return {
        read: (name: string, namespace: string) =>
          core.readNamespacedPersistentVolumeClaim({ name, namespace }),
        create: (namespace: string, body: Obj) =>
          core.createNamespacedPersistentVolumeClaim({
            namespace,
            body: body as k8s.V1PersistentVolumeClaim,
            ...strict,
          }),
        replace: (name: string, namespace: string, body: Obj) =>
          core.replaceNamespacedPersistentVolumeClaim({
            name,
            namespace,
            body: body as k8s.V1PersistentVolumeClaim,
            ...strict,
          }),
        remove: (name: string, namespace: string) =>
          core.deleteNamespacedPersistentVolumeClaim({ name, namespace }),
        listAll: (labelSelector: string) =>
          core.listPersistentVolumeClaimForAllNamespaces({ labelSelector }),
      };
  }
}

/** An API refusal as the step's error (network trouble is already UNAVAILABLE). */
function failed(what: string, err: unknown): Error {
  if (err instanceof k8s.ApiException)
    return new NornError('STEP_FAILED', `${what}: ${apiMessage(err)}`, {
      cause: err,
      details: { status: err.code },
    });
  return err as Error;
}

/** What norn writes over and deletes: never claims (made once, then left alone). */
export type Written = Exclude<Kind, 'PersistentVolumeClaim'>;

interface Desired<K extends Kind = Kind> {
  kind: K;
  name: string;
  namespace: string;
  body: Obj;
}

/** Every object `release` consists of, in the order they are written. */
function desiredOf(release: TargetRelease): Desired<Written>[] {
  const namespace = namespaceOf(release.spec);
  const out: Desired<Written>[] = [];
  const add = (kind: Written, body: Obj | undefined) => {
    if (body) out.push({ kind, name: body.metadata!.name!, namespace, body });
  };
  for (const [process, p] of Object.entries(release.spec.processes)) {
    add('Secret', secretOf(release, process));
    if (isScheduled(p)) add('CronJob', cronJobOf(release, process));
    else {
      add('Deployment', deploymentOf(release, process));
      add('Service', serviceOf(release, process));
    }
  }
  return out;
}

const slots = (name: string, replicas: number) =>
  Array.from({ length: replicas }, (_, i) => `${name}/${i}`);

function appliedOf(release: TargetRelease): Applied {
  const units: string[] = [];
  const schedules: string[] = [];
  for (const [process, p] of Object.entries(release.spec.processes)) {
    const name = objectName(release.app, process);
    if (isScheduled(p)) schedules.push(name);
    else units.push(...slots(name, p.replicas));
  }
  return { units, schedules };
}

const isReady = (pod: k8s.V1Pod) =>
  !pod.metadata?.deletionTimestamp &&
  (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

type Where = Pick<Desired, 'kind' | 'name' | 'namespace'>;

/** An object as it is in the cluster; undefined when there is none (forge's steps too). */
export async function readObject(
  c: KubeConnection,
  d: Where,
  signal?: AbortSignal,
): Promise<Obj | undefined> {
  const what = `reading ${d.kind} ${d.namespace}/${d.name}`;
  try {
    return (await c.call(what, () => kindApi(c, d.kind).read(d.name, d.namespace), signal)) as Obj;
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw failed(what, err);
  }
}

function refuse(app: string, d: Where, owner: string): NornError {
  return new NornError(
    'CONFLICT',
    `${d.kind} ${d.namespace}/${d.name}, where ${app}'s objects go, belongs to ${owner}; norn leaves it alone`,
    { details: { kind: d.kind, namespace: d.namespace, name: d.name } },
  );
}

const whereOf = (kind: Kind, body: Obj): Desired => ({
  kind,
  name: body.metadata!.name!,
  namespace: body.metadata!.namespace!,
  body,
});

/**
 * Creates or replaces `body` as `app`'s (its current resourceVersion kept; a stale one read
 * again); CONFLICT when another app's or nobody's object has its name. Never a claim: its spec
 * is immutable (ensureObject).
 */
export async function writeObject(
  c: KubeConnection,
  kind: Written,
  app: string,
  body: Obj,
  signal: AbortSignal,
): Promise<'created' | 'updated'> {
  const d = whereOf(kind, body);
  const api = kindApi(c, d.kind);
  const what = `writing ${d.kind} ${d.namespace}/${d.name}`;
  for (let attempt = 1; ; attempt++) {
    const current = await readObject(c, d, signal);
    try {
      if (!current) {
        await c.call(what, () => api.create(d.namespace, d.body), signal);
        return 'created';
      }
      const owner = foreignOwner(current, app);
      if (owner) throw refuse(app, d, owner);
      const next = structuredClone(d.body) as Obj & { spec?: k8s.V1ServiceSpec };
      next.metadata!.resourceVersion = current.metadata?.resourceVersion;
      if (d.kind === 'Service') {
        // The cluster allocated these; a replace must carry them back unchanged.
        const spec = (current as k8s.V1Service).spec;
        if (spec?.clusterIP) next.spec!.clusterIP = spec.clusterIP;
        if (spec?.clusterIPs) next.spec!.clusterIPs = spec.clusterIPs;
      }
      await c.call(what, () => api.replace(d.name, d.namespace, next), signal);
      return 'updated';
    } catch (err) {
      if (statusOf(err) === 409 && attempt < 3) continue; // someone wrote in between
      throw failed(what, err);
    }
  }
}

/**
 * Creates `body` unless it exists: 'existing' when the app's own object is there already (left
 * as it is), CONFLICT when another app's or nobody's object has its name. What PVCs get (never
 * replaced: their spec is immutable), and forge's objects (deploys change them).
 */
export async function ensureObject(
  c: KubeConnection,
  kind: Kind,
  app: string,
  body: Obj,
  signal: AbortSignal,
): Promise<'created' | 'existing'> {
  const d = whereOf(kind, body);
  const current = await readObject(c, d, signal);
  if (current) {
    const owner = foreignOwner(current, app);
    if (owner) throw refuse(app, d, owner);
    return 'existing';
  }
  const what = `creating ${kind} ${d.namespace}/${d.name}`;
  try {
    await c.call(what, () => kindApi(c, kind).create(d.namespace, body), signal);
    return 'created';
  } catch (err) {
    // Created in between (an earlier attempt's request that did land): the same object.
    if (statusOf(err) === 409) {
      const now = await readObject(c, d, signal);
      if (now && !foreignOwner(now, app)) return 'existing';
    }
    throw failed(what, err);
  }
}

export function createKubernetesTarget(deps: KubernetesTargetDeps): Target {
  let conn: KubeConnection | undefined;
  const connection = () => (conn ??= deps.connect());

  /** Deletes one object; already gone counts as deleted. */
  async function drop(c: KubeConnection, kind: Kind, o: Obj, signal: AbortSignal) {
    const name = o.metadata?.name ?? '';
    const namespace = o.metadata?.namespace ?? 'default';
    const what = `deleting ${kind} ${namespace}/${name}`;
    try {
      await c.call(what, () => kindApi(c, kind).remove(name, namespace), signal);
    } catch (err) {
      if (statusOf(err) !== 404) throw failed(what, err);
    }
  }

  /** The app's objects of `kind` in every namespace (only ones labelled as norn's and its). */
  async function owned(c: KubeConnection, kind: Kind, app: string, signal?: AbortSignal) {
    const what = `listing ${app}'s ${kind}s`;
    try {
      const list = (await c.call(
        what,
        () => kindApi(c, kind).listAll(appSelector(app)),
        signal,
      )) as {
        items: Obj[];
      };
      return list.items.filter((o) => foreignOwner(o, app) === undefined);
    } catch (err) {
      throw failed(what, err);
    }
  }

  // What the target deletes: never PersistentVolumeClaims (the app's data outlives releases).
  const KINDS: Kind[] = ['CronJob', 'Deployment', 'Service', 'Secret'];

  /** Deletes the app's objects `which` picks; returns the names (units for Deployments). */
  async function removeWhere(
    c: KubeConnection,
    app: string,
    which: (kind: Kind, o: Obj) => boolean,
    signal: AbortSignal,
  ): Promise<string[]> {
    const removed: string[] = [];
    for (const kind of KINDS) {
      for (const o of await owned(c, kind, app, signal)) {
        if (!which(kind, o)) continue;
        await drop(c, kind, o, signal);
        const name = o.metadata?.name ?? '';
        if (kind === 'Deployment')
          removed.push(...slots(name, (o as k8s.V1Deployment).spec?.replicas ?? 0));
        else if (kind === 'CronJob') removed.push(name);
        else removed.push(`${kind.toLowerCase()}/${name}`);
      }
    }
    return removed;
  }

  /**
   * Puts `release` on: its volumes' claims made when missing (never replaced), its objects
   * written, the app's objects it no longer has removed (claims stay).
   */
  async function put(release: TargetRelease, call: TargetCall, onTouch?: () => void) {
    const c = connection();
    const desired = desiredOf(release);
    const claims = claimsOf(release).map((body) => whereOf('PersistentVolumeClaim', body));
    // Look before touching anything: one object of another app refuses the whole release.
    for (const d of [...claims, ...desired]) {
      const current = await readObject(c, d, call.signal);
      const owner = current && foreignOwner(current, release.app);
      if (owner) throw refuse(release.app, d, owner);
    }
    onTouch?.();
    const cancelled = () => {
      if (call.signal.aborted)
        throw new NornError('CANCELLED', `applying ${release.app} was cancelled`);
    };
    // Before the pods that mount them: a pod whose claim is missing is never scheduled.
    for (const d of claims) {
      cancelled();
      const result = await ensureObject(c, d.kind, release.app, d.body, call.signal);
      call.log(`${d.kind} ${d.namespace}/${d.name} ${result === 'created' ? 'created' : 'kept'}`);
    }
    for (const d of desired) {
      cancelled();
      await writeObject(c, d.kind, release.app, d.body, call.signal);
      call.log(`${d.kind} ${d.namespace}/${d.name} written`);
    }
    const keep = new Set(desired.map((d) => `${d.kind}/${d.namespace}/${d.name}`));
    const stale = await removeWhere(
      c,
      release.app,
      (kind, o) => !keep.has(`${kind}/${o.metadata?.namespace}/${o.metadata?.name}`),
      call.signal,
    );
    for (const name of stale) call.log(`${name} removed (not in release ${release.id})`);
    return appliedOf(release);
  }

  return {
    name: 'kubernetes',
    apply: (release, call) => put(release, call, call.onTouch),

    async waitHealthy({ app, id, spec }, call) {
      const deployments = longRunning(spec).map(([process, p]) => ({
        name: objectName(app, process),
        desired: p.replicas,
      }));
      if (deployments.length === 0) return { ok: true, healthyForMs: 0 };
      return followRollout(connection(), {
        app,
        releaseId: id,
        namespace: namespaceOf(spec),
        deployments,
        minHealthyMs: durationMs(spec.deployPolicy.minHealthyTime),
        timeoutMs: durationMs(spec.deployPolicy.healthTimeout),
        signal: call.signal,
        onProgress: call.onProgress,
        redact: call.redact,
      });
    },

    async rollBack({ app, failed: bad, previous }, call) {
      if (previous) {
        await put(previous, call);
        return;
      }
      const c = connection();
      const names = new Set<string>();
      for (const kind of ['Deployment', 'CronJob'] as const)
        for (const o of await owned(c, kind, app, call.signal))
          if (o.metadata?.labels?.[LABELS.release] === String(bad.id))
            names.add(`${o.metadata.namespace}/${o.metadata.name}`);
      // The release's Deployments and CronJobs, and the Services and Secrets named after them.
      await removeWhere(
        c,
        app,
        (_kind, o) => names.has(`${o.metadata?.namespace}/${o.metadata?.name}`),
        call.signal,
      );
    },

    async address(app, process, spec) {
      const p = spec.processes[process];
      if (!p) throw new NornError('NOT_FOUND', `app ${app} has no process ${process}`);
      if (p.port === undefined || isScheduled(p))
        throw new NornError(
          'SPEC_INVALID',
          `process ${process} of app ${app} has no port (and Service) to be reached on`,
        );
      return {
        host: `${objectName(app, process)}.${namespaceOf(spec)}.svc.cluster.local`,
        port: 80,
      };
    },

    remove: (app, call) => removeWhere(connection(), app, () => true, call.signal),

    async live(app, signal) {
      const c = connection();
      const deployments = (await owned(c, 'Deployment', app, signal)) as k8s.V1Deployment[];
      const what = `listing ${app}'s pods`;
      const pods = deployments.length
        ? await c
            .call(
              what,
              () => c.core.listPodForAllNamespaces({ labelSelector: appSelector(app) }),
              signal,
            )
            .catch((err: unknown) => {
              throw failed(what, err);
            })
        : { items: [] };
      const units: LiveUnit[] = [];
      for (const d of deployments) {
        const name = d.metadata?.name ?? '';
        const labels = d.spec?.template.metadata?.labels ?? {};
        const release = labels[LABELS.release];
        const ready = pods.items.filter(
          (p) =>
            p.metadata?.namespace === d.metadata?.namespace &&
            p.metadata?.labels?.[LABELS.process] === labels[LABELS.process] &&
            p.metadata?.labels?.[LABELS.release] === release &&
            isReady(p),
        ).length;
        for (let i = 0; i < (d.spec?.replicas ?? 0); i++)
          units.push({
            name: `${name}/${i}`,
            process: labels[LABELS.process] ?? '',
            replica: i,
            releaseId: release ? Number(release) : undefined,
            image: d.spec?.template.spec?.containers[0]?.image ?? '',
            running: i < ready,
          });
      }
      const schedules = (await owned(c, 'CronJob', app, signal)).map((o) => o.metadata?.name ?? '');
      return { units, schedules };
    },
  };
}
