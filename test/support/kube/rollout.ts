/**
 * A deployment controller and kubelet in one loop. Every tick, each Deployment moves one step
 * towards its spec, as a RollingUpdate does: a new pod is created while the surge allows, one
 * pending pod becomes ready, an old pod is removed while availability allows. Pods are named
 * `<deployment>-<pod-template-hash>-<5 chars>`. An image whose name contains the crash marker, or a
 * container whose env sets FAKE_KUBE_CRASH (as a bad setting makes a real app exit), never becomes
 * ready: its container is in CrashLoopBackOff with a rising restartCount, and the
 * Deployment's Progressing condition turns False (ProgressDeadlineExceeded) once
 * progressDeadlineSeconds pass without progress. A pod mounting a PersistentVolumeClaim that
 * does not exist stays Pending, unschedulable, until the claim is made. One "second" of Kubernetes
 * time lasts `secondMs` milliseconds, so tests can shrink minReadySeconds and
 * progressDeadlineSeconds.
 */
import { createHash, randomUUID } from 'node:crypto';
import { resourceTypes, type ResourceType } from './resources.js';
import { meta, randomSuffix, type Obj, type Store } from './store.js';

export interface RolloutOptions {
  /** How often the controller acts (ms). */
  tickMs: number;
  /** The length of one Kubernetes second (minReadySeconds, progressDeadlineSeconds), in ms. */
  secondMs: number;
  /** An image containing this never becomes ready (CrashLoopBackOff). */
  crashMarker: string;
  /** An image containing this is never pulled (ImagePullBackOff). */
  pullFailMarker: string;
}

interface Tracked {
  /** The Deployment's uid: one deleted and created again under its name starts afresh. */
  uid: unknown;
  hash: string;
  revision: number;
  lastProgress: number;
  readyAt: Map<string, number>;
}

function typeOf(kind: string): ResourceType {
  const rt = resourceTypes.find((t) => t.kind === kind);
  if (!rt) throw new Error(`no type ${kind}`);
  return rt;
}

const alphabet = 'bcdfghjklmnpqrstvwxz2456789';

export function templateHash(template: unknown): string {
  const digest = createHash('sha256').update(JSON.stringify(template)).digest();
  return Array.from(digest.subarray(0, 10), (b) => alphabet[b % alphabet.length]).join('');
}

function resolve(v: unknown, total: number, roundUp: boolean): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.endsWith('%')) {
    const x = (Number(v.slice(0, -1)) * total) / 100;
    return roundUp ? Math.ceil(x) : Math.floor(x);
  }
  return Number(v ?? 0);
}

function isoAt(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
}

/** The Deployment a pod belongs to: its ReplicaSet owner is `<deployment>-<hash>`. */
export function deploymentOf(pod: Obj): string | undefined {
  const refs = (meta(pod).ownerReferences ?? []) as Obj[];
  const rs = refs.find((r) => r.kind === 'ReplicaSet' && r.controller === true);
  const m = typeof rs?.name === 'string' ? /^(.+)-[^-]+$/.exec(rs.name) : null;
  return m?.[1];
}

/** The env variable that makes a container crash-loop here, whatever its image. */
export const CRASH_ENV = 'FAKE_KUBE_CRASH';

export interface PodContainer {
  name: string;
  image: string;
  /** Names of the env variables set in the pod spec (envFrom is not looked into). */
  envNames: string[];
}

export function podImages(pod: Obj): PodContainer[] {
  const spec = (pod.spec ?? {}) as Obj;
  return ((spec.containers ?? []) as Obj[]).map((c) => ({
    name: String(c.name),
    image: String(c.image),
    envNames: ((c.env ?? []) as Obj[]).map((e) => String(e.name)),
  }));
}

/** A stable uid for a derived object (the ReplicaSet of one Deployment and template). */
function uuidOf(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function waiting(c: { name: string; image: string }, reason: string, message?: string): Obj {
  return {
    name: c.name,
    image: c.image,
    imageID: '',
    ready: false,
    started: false,
    restartCount: 0,
    state: { waiting: message === undefined ? { reason } : { reason, message } },
    lastState: {},
  };
}

export class RolloutController {
  private readonly tracked = new Map<string, Tracked>();
  private timer: NodeJS.Timeout | undefined;
  private readonly deployments = typeOf('Deployment');
  private readonly pods = typeOf('Pod');
  private readonly namespaces = typeOf('Namespace');
  private readonly claims = typeOf('PersistentVolumeClaim');
  private ticks = 0;

  constructor(
    private readonly store: Store,
    private readonly options: RolloutOptions,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.tick(), this.options.tickMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  crashes(c: PodContainer): boolean {
    return c.image.includes(this.options.crashMarker) || c.envNames.includes(CRASH_ENV);
  }

  tick(): void {
    this.ticks += 1;
    this.reapNamespaces();
    for (const d of this.store.list(this.deployments)) this.reconcile(d);
    this.reapOrphans();
    this.startBarePods();
  }

  /** Pods created through the API (no ReplicaSet) start as the kubelet would start them. */
  private startBarePods(): void {
    for (const pod of this.store.list(this.pods)) {
      if (deploymentOf(pod)) continue;
      const status = (pod.status ?? {}) as Obj;
      const claim = this.missingClaim(pod);
      if (claim) this.unschedulable(pod, claim);
      else if (this.failing(pod)) this.failPod(pod);
      else if (status.phase === 'Pending' && status.containerStatuses === undefined)
        this.startPod(pod, undefined, Date.now());
    }
  }

  private reapNamespaces(): void {
    for (const ns of this.store.list(this.namespaces)) {
      if ((ns.status as Obj | undefined)?.phase !== 'Terminating') continue;
      const name = String(meta(ns).name);
      for (const rt of resourceTypes.filter((t) => t.namespaced))
        for (const o of this.store.list(rt, name))
          this.store.remove(rt, name, String(meta(o).name));
      this.store.remove(this.namespaces, undefined, name);
    }
  }

  /** Pods whose Deployment is gone (garbage collection of the ReplicaSet's pods). */
  private reapOrphans(): void {
    for (const pod of this.store.list(this.pods)) {
      const m = meta(pod);
      const owner = deploymentOf(pod);
      if (!owner) continue;
      const ns = String(m.namespace);
      if (!this.store.find(this.deployments, ns, owner)) {
        this.store.remove(this.pods, ns, String(m.name));
        this.tracked.delete(`${ns}/${owner}`);
      }
    }
  }

  private reconcile(d: Obj): void {
    const m = meta(d);
    const ns = String(m.namespace);
    const name = String(m.name);
    const key = `${ns}/${name}`;
    const spec = d.spec as Obj;
    const template = spec.template as Obj;
    const hash = templateHash(template);
    const now = Date.now();
    let t = this.tracked.get(key);
    if (t && t.uid !== m.uid) {
      for (const p of this.store.list(this.pods, ns))
        if (deploymentOf(p) === name) this.removePod(p, t);
      t = undefined;
    }
    if (!t || t.hash !== hash) {
      t = {
        uid: m.uid,
        hash,
        revision: (t?.revision ?? 0) + 1,
        lastProgress: now,
        readyAt: t?.readyAt ?? new Map(),
      };
      this.tracked.set(key, t);
    }
    const desired = Number(spec.replicas ?? 1);
    const strategy = (spec.strategy ?? {}) as Obj;
    const ru = (strategy.rollingUpdate ?? {}) as Obj;
    const recreate = strategy.type === 'Recreate';
    const surge = recreate ? 0 : resolve(ru.maxSurge, desired, true);
    let unavailable = recreate ? desired : resolve(ru.maxUnavailable, desired, false);
    if (surge === 0 && unavailable === 0) unavailable = 1;
    const minReadyMs = Number(spec.minReadySeconds ?? 0) * this.options.secondMs;
    const deadlineMs = Number(spec.progressDeadlineSeconds ?? 600) * this.options.secondMs;

    const all = this.store.list(this.pods, ns).filter((p) => deploymentOf(p) === name);
    const labelOf = (p: Obj): unknown => (meta(p).labels as Obj)['pod-template-hash'];
    const isReady = (p: Obj): boolean => t.readyAt.has(String(meta(p).name));
    const isAvailable = (p: Obj): boolean =>
      isReady(p) && now - (t.readyAt.get(String(meta(p).name)) ?? now) >= minReadyMs;

    if (!spec.paused) {
      let progressed = false;
      // scheduler: a pod whose claim does not exist stays Pending, unscheduled.
      const unplaced = new Set<Obj>();
      for (const p of all) {
        const claim = this.missingClaim(p);
        if (!claim) continue;
        this.unschedulable(p, claim);
        unplaced.add(p);
      }
      // kubelet: one new pod starts per tick; crash-looping ones restart.
      const starting = all.find(
        (p) =>
          labelOf(p) === hash &&
          !isReady(p) &&
          (p.status as Obj).phase === 'Pending' &&
          !unplaced.has(p) &&
          !this.failing(p),
      );
      if (starting) {
        this.startPod(starting, t, now);
        progressed = true;
      }
      for (const p of all.filter((p) => this.failing(p))) this.failPod(p);
      const fresh = this.store.list(this.pods, ns).filter((p) => deploymentOf(p) === name);
      const current = fresh.filter((p) => labelOf(p) === hash);
      const old = fresh.filter((p) => labelOf(p) !== hash);
      const available = fresh.filter(isAvailable).length;
      // Scale down an old pod while enough stay available (unready old pods go first).
      const victim = old.find((p) => !isAvailable(p)) ?? old[0];
      if (victim && (!isAvailable(victim) || available - 1 >= desired - unavailable)) {
        this.removePod(victim, t);
        progressed = true;
      } else if (
        current.length < desired &&
        fresh.length < desired + surge &&
        (!recreate || old.length === 0)
      ) {
        this.createPod(d, hash, t.revision);
        progressed = true;
      } else if (current.length > desired) {
        const extra = current.find((p) => !isReady(p)) ?? current[current.length - 1];
        if (extra) this.removePod(extra, t);
        progressed = true;
      }
      if (progressed) t.lastProgress = now;
    }
    this.writeStatus(d, t, { desired, unavailable, minReadyMs, deadlineMs, now });
  }

  /** A claim the pod mounts that does not exist, which keeps it from being scheduled. */
  private missingClaim(p: Obj): string | undefined {
    const ns = String(meta(p).namespace);
    for (const v of ((p.spec as Obj | undefined)?.volumes ?? []) as Obj[]) {
      const claim = (v.persistentVolumeClaim as Obj | undefined)?.claimName;
      if (typeof claim === 'string' && !this.store.find(this.claims, ns, claim)) return claim;
    }
    return undefined;
  }

  /** What the scheduler writes on a pod it cannot place for a missing claim. */
  private unschedulable(p: Obj, claim: string): void {
    const message = `0/1 nodes are available: persistentvolumeclaim "${claim}" not found. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.`;
    const status = (p.status ?? {}) as Obj;
    if ((status.conditions as Obj[] | undefined)?.[0]?.message === message) return;
    p.status = {
      phase: 'Pending',
      qosClass: 'BestEffort',
      conditions: [
        {
          type: 'PodScheduled',
          status: 'False',
          lastProbeTime: null,
          lastTransitionTime: isoAt(Date.now()),
          reason: 'Unschedulable',
          message,
        },
      ],
    };
    this.store.write(this.pods, p, 'MODIFIED');
  }

  private failing(p: Obj): boolean {
    return podImages(p).some(
      (c) => this.crashes(c) || c.image.includes(this.options.pullFailMarker),
    );
  }

  private createPod(d: Obj, hash: string, revision: number): void {
    const dm = meta(d);
    const ns = String(dm.namespace);
    const template = structuredClone((d.spec as Obj).template as Obj);
    const tm = (template.metadata ?? {}) as Obj;
    const rsName = `${String(dm.name)}-${hash}`;
    const pod: Obj = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `${rsName}-${randomSuffix(5)}`,
        generateName: `${rsName}-`,
        namespace: ns,
        uid: randomUUID(),
        creationTimestamp: isoAt(Date.now()),
        labels: { ...((tm.labels ?? {}) as Obj), 'pod-template-hash': hash },
        annotations: {
          ...((tm.annotations ?? {}) as Obj),
          'deployment.kubernetes.io/revision': String(revision),
        },
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'ReplicaSet',
            name: rsName,
            uid: uuidOf(`${String(dm.uid)}/${hash}`),
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: { ...((template.spec ?? {}) as Obj), nodeName: 'fake-node' },
      status: {
        phase: 'Pending',
        qosClass: 'BestEffort',
        conditions: [
          {
            type: 'PodScheduled',
            status: 'True',
            lastProbeTime: null,
            lastTransitionTime: isoAt(Date.now()),
          },
        ],
        containerStatuses: podImages({ spec: template.spec }).map((c) =>
          waiting(c, 'ContainerCreating'),
        ),
      },
    };
    this.store.write(this.pods, pod, 'ADDED');
  }

  private startPod(p: Obj, t: Tracked | undefined, now: number): void {
    const at = isoAt(now);
    p.status = {
      phase: 'Running',
      qosClass: 'BestEffort',
      hostIP: '10.0.0.1',
      podIP: `10.244.0.${(this.ticks % 250) + 2}`,
      startTime: at,
      conditions: ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready'].map((type) => ({
        type,
        status: 'True',
        lastProbeTime: null,
        lastTransitionTime: at,
      })),
      containerStatuses: podImages(p).map((c) => ({
        name: c.name,
        image: c.image,
        imageID: `docker.io/${c.image}@sha256:${createHash('sha256').update(c.image).digest('hex')}`,
        containerID: `containerd://${createHash('sha256')
          .update(String(meta(p).name) + c.name)
          .digest('hex')}`,
        ready: true,
        started: true,
        restartCount: 0,
        state: { running: { startedAt: at } },
        lastState: {},
      })),
    };
    t?.readyAt.set(String(meta(p).name), now);
    this.store.write(this.pods, p, 'MODIFIED');
  }

  private failPod(p: Obj): void {
    const status = p.status as Obj;
    const previous = (status.containerStatuses ?? []) as Obj[];
    const pullFail = podImages(p).some((c) => c.image.includes(this.options.pullFailMarker));
    // A crash-looping container restarts every other tick.
    if (status.phase === 'Running' && this.ticks % 2 === 1 && !pullFail) return;
    const at = isoAt(Date.now());
    const names = podImages(p).map((c) => c.name);
    p.status = {
      phase: pullFail ? 'Pending' : 'Running',
      qosClass: 'BestEffort',
      hostIP: '10.0.0.1',
      startTime: status.startTime ?? at,
      conditions: [
        { type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: at },
        { type: 'Initialized', status: 'True', lastProbeTime: null, lastTransitionTime: at },
        {
          type: 'ContainersReady',
          status: 'False',
          lastProbeTime: null,
          lastTransitionTime: at,
          reason: 'ContainersNotReady',
          message: `containers with unready status: [${names.join(' ')}]`,
        },
        {
          type: 'Ready',
          status: 'False',
          lastProbeTime: null,
          lastTransitionTime: at,
          reason: 'ContainersNotReady',
          message: `containers with unready status: [${names.join(' ')}]`,
        },
      ],
      containerStatuses: podImages(p).map((c, i) => {
        const restarts = Number(previous[i]?.restartCount ?? 0);
        if (c.image.includes(this.options.pullFailMarker))
          return waiting(c, 'ImagePullBackOff', `Back-off pulling image "${c.image}"`);
        if (!this.crashes(c))
          return {
            name: c.name,
            image: c.image,
            imageID: '',
            ready: true,
            started: true,
            restartCount: 0,
            state: { running: { startedAt: at } },
            lastState: {},
          };
        return {
          name: c.name,
          image: c.image,
          imageID: `docker.io/${c.image}@sha256:${createHash('sha256').update(c.image).digest('hex')}`,
          ready: false,
          started: false,
          restartCount: status.phase === 'Running' ? restarts + 1 : restarts,
          state: {
            waiting: {
              reason: 'CrashLoopBackOff',
              message: `back-off ${Math.min(300, 10 * 2 ** restarts)}s restarting failed container=${c.name} pod=${String(meta(p).name)}_${String(meta(p).namespace)}(${String(meta(p).uid)})`,
            },
          },
          lastState: {
            terminated: {
              exitCode: 1,
              reason: 'Error',
              startedAt: at,
              finishedAt: at,
              containerID: `containerd://${restarts}`,
            },
          },
        };
      }),
    };
    this.store.write(this.pods, p, 'MODIFIED');
  }

  private removePod(p: Obj, t: Tracked): void {
    t.readyAt.delete(String(meta(p).name));
    this.store.remove(this.pods, String(meta(p).namespace), String(meta(p).name));
  }

  private writeStatus(
    d: Obj,
    t: Tracked,
    c: {
      desired: number;
      unavailable: number;
      minReadyMs: number;
      deadlineMs: number;
      now: number;
    },
  ): void {
    const m = meta(d);
    const ns = String(m.namespace);
    const name = String(m.name);
    const pods = this.store.list(this.pods, ns).filter((p) => deploymentOf(p) === name);
    const updated = pods.filter((p) => (meta(p).labels as Obj)['pod-template-hash'] === t.hash);
    const ready = pods.filter((p) => t.readyAt.has(String(meta(p).name)));
    const available = ready.filter(
      (p) => c.now - (t.readyAt.get(String(meta(p).name)) ?? c.now) >= c.minReadyMs,
    );
    const old = (d.status ?? {}) as Obj;
    const oldConditions = (old.conditions ?? []) as Obj[];
    const rsName = `${name}-${t.hash}`;
    const complete =
      updated.length === c.desired && pods.length === c.desired && available.length === c.desired;
    const prevProgressing = oldConditions.find((x) => x.type === 'Progressing');
    const sameRollout =
      typeof prevProgressing?.message === 'string' &&
      prevProgressing.message.includes(`"${rsName}"`);
    let progressing: [string, string, string];
    if (complete)
      progressing = [
        'True',
        'NewReplicaSetAvailable',
        `ReplicaSet "${rsName}" has successfully progressed.`,
      ];
    else if (
      (sameRollout && prevProgressing?.reason === 'ProgressDeadlineExceeded') ||
      c.now - t.lastProgress > c.deadlineMs
    )
      progressing = [
        'False',
        'ProgressDeadlineExceeded',
        `ReplicaSet "${rsName}" has timed out progressing.`,
      ];
    else if (sameRollout)
      progressing = ['True', 'ReplicaSetUpdated', `ReplicaSet "${rsName}" is progressing.`];
    else progressing = ['True', 'NewReplicaSetCreated', `Created new replica set "${rsName}"`];
    const availableOk = available.length >= c.desired - c.unavailable;
    const want: [string, string, string, string][] = [
      [
        'Available',
        ...(availableOk
          ? (['True', 'MinimumReplicasAvailable', 'Deployment has minimum availability.'] as const)
          : ([
              'False',
              'MinimumReplicasUnavailable',
              'Deployment does not have minimum availability.',
            ] as const)),
      ],
      ['Progressing', ...progressing],
    ];
    const at = isoAt(c.now);
    const conditions = want.map(([type, status, reason, message]) => {
      const prev = oldConditions.find((x) => x.type === type);
      const unchanged =
        prev?.status === status && prev.reason === reason && prev.message === message;
      if (unchanged) return prev;
      return {
        type,
        status,
        lastUpdateTime: at,
        lastTransitionTime: prev?.status === status ? prev.lastTransitionTime : at,
        reason,
        message,
      };
    });
    const status: Obj = { observedGeneration: m.generation };
    const counts: [string, number][] = [
      ['replicas', pods.length],
      ['updatedReplicas', updated.length],
      ['readyReplicas', ready.length],
      ['availableReplicas', available.length],
      ['unavailableReplicas', Math.max(0, pods.length - available.length)],
    ];
    for (const [k, v] of counts) if (v > 0) status[k] = v;
    status.conditions = conditions;
    const annotations = (m.annotations ?? {}) as Obj;
    const revision = String(t.revision);
    if (
      JSON.stringify(status) === JSON.stringify(old) &&
      annotations['deployment.kubernetes.io/revision'] === revision
    )
      return;
    d.status = status;
    m.annotations = { ...annotations, 'deployment.kubernetes.io/revision': revision };
    this.store.writeStatus(this.deployments, d);
  }
}
