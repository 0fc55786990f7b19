/**
 * Following a release's rollout with watches, as `kubectl rollout status` does: the Deployments
 * and pods of the app are listed once, then watched from that resourceVersion (listed again when
 * a watch ends or expires), and every change is judged at once. Healthy: each Deployment observed
 * its generation, runs the release, and has every desired replica updated, ready and available
 * (available = ready for minReadySeconds, which is minHealthyTime). Not healthy, at once: a pod
 * of the release in CrashLoopBackOff / ImagePullBackOff (and kin), or a Deployment whose
 * Progressing condition says ProgressDeadlineExceeded; the verdict carries the pods' reasons
 * and the tail of the failing container's log.
 */
import type * as k8s from '@kubernetes/client-node';
import { NornError } from '../../shared/errors.js';
import type { HealthVerdict, OnProgress } from '../types.js';
import type { KubeConnection } from './connection.js';
import { LABELS, appSelector } from './objects.js';

/** Waiting reasons that mean the container will not start by itself. */
const STUCK = new Set([
  'CrashLoopBackOff',
  'ImagePullBackOff',
  'ErrImagePull',
  'InvalidImageName',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
]);

export interface FollowRollout {
  app: string;
  releaseId: number;
  namespace: string;
  deployments: { name: string; desired: number }[];
  minHealthyMs: number;
  timeoutMs: number;
  signal: AbortSignal;
  onProgress?: OnProgress | undefined;
  redact: string[];
  /** Lines of the failing container's log to report. */
  logLines?: number;
}

interface Judgement {
  ready: number;
  desired: number;
  done: boolean;
  problem?: string;
  /** The cluster said the rollout will not finish. */
  failed?: { problem: string; pod?: { name: string; container: string; previous: boolean } };
}

function judge(
  o: FollowRollout,
  deps: Map<string, k8s.V1Deployment>,
  pods: Map<string, k8s.V1Pod>,
): Judgement {
  let ready = 0;
  let desired = 0;
  let done = true;
  const problems: string[] = [];
  for (const want of o.deployments) {
    desired += want.desired;
    const d = deps.get(want.name);
    if (!d) {
      done = false;
      problems.push(`Deployment ${o.namespace}/${want.name} does not exist`);
      continue;
    }
    const release = d.spec?.template.metadata?.labels?.[LABELS.release];
    if (release !== String(o.releaseId)) {
      done = false;
      problems.push(
        `Deployment ${want.name} runs release ${release ?? '(none)'}, not ${o.releaseId}`,
      );
      continue;
    }
    const s = d.status ?? {};
    const observed = (s.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0);
    const stalled = s.conditions?.find(
      (c) =>
        c.type === 'Progressing' && c.status === 'False' && c.reason === 'ProgressDeadlineExceeded',
    );
    if (observed && stalled)
      return {
        ready,
        desired,
        done: false,
        failed: {
          problem: `Deployment ${want.name}: ProgressDeadlineExceeded (${stalled.message ?? ''})`,
        },
      };
    const updated = observed ? (s.updatedReplicas ?? 0) : 0;
    const available = observed ? (s.availableReplicas ?? 0) : 0;
    ready += Math.min(updated, available, want.desired);
    const complete =
      observed &&
      updated === want.desired &&
      (s.readyReplicas ?? 0) === want.desired &&
      available === want.desired &&
      (s.replicas ?? 0) === want.desired;
    if (!complete) {
      done = false;
      problems.push(
        observed
          ? `Deployment ${want.name}: ${updated} of ${want.desired} updated, ${s.readyReplicas ?? 0} ready, ${available} available${(s.replicas ?? 0) > want.desired ? `, ${s.replicas} pods (old ones still going)` : ''}`
          : `Deployment ${want.name}: the cluster has not yet observed generation ${d.metadata?.generation}`,
      );
    }
  }
  const stuck: string[] = [];
  let first: Judgement['failed'];
  for (const pod of pods.values()) {
    if (pod.metadata?.labels?.[LABELS.release] !== String(o.releaseId)) continue;
    for (const c of pod.status?.containerStatuses ?? []) {
      const waiting = c.state?.waiting;
      if (!waiting?.reason || !STUCK.has(waiting.reason)) continue;
      stuck.push(
        `pod ${pod.metadata?.name} container ${c.name}: ${waiting.reason}${waiting.message ? ` (${waiting.message})` : ''}${c.restartCount ? `, ${c.restartCount} restarts` : ''}`,
      );
      first ??= {
        problem: '',
        pod: {
          name: pod.metadata?.name ?? '',
          container: c.name,
          previous: c.lastState?.terminated !== undefined,
        },
      };
    }
  }
  if (first)
    return { ready, desired, done: false, failed: { ...first, problem: stuck.join('; ') } };
  return { ready, desired, done, problem: problems.join('; ') || undefined };
}

const scrub = (text: string, redact: string[]) =>
  redact.filter(Boolean).reduce((t, s) => t.split(s).join('[redacted]'), text);

/** The last lines of a container's log ('' when the cluster has none to give). */
async function logTail(
  conn: KubeConnection,
  namespace: string,
  pod: { name: string; container: string; previous: boolean },
  lines: number,
): Promise<string> {
  const read = (previous: boolean) =>
    conn.call('reading a pod log', () =>
      conn.core.readNamespacedPodLog({
        name: pod.name,
        namespace,
        container: pod.container,
        tailLines: lines,
        ...(previous ? { previous: true } : {}),
      }),
    );
  try {
    return await read(pod.previous);
  } catch {
    return pod.previous ? read(false).catch(() => '') : '';
  }
}

type Informed<T> = Map<string, T>;

/** Keeps `into` equal to the objects at `path` matching the app, calling `changed` on news. */
async function inform<T extends { metadata?: k8s.V1ObjectMeta }>(
  conn: KubeConnection,
  o: {
    path: string;
    selector: string;
    list: () => Promise<{ items: T[]; metadata?: k8s.V1ListMeta }>;
  },
  into: Informed<T>,
  changed: () => void,
  stopped: AbortSignal,
): Promise<() => Promise<void>> {
  const relist = async () => {
    const list = await conn.call(`listing ${o.path}`, o.list, stopped);
    into.clear();
    for (const item of list.items) into.set(item.metadata?.name ?? '', item);
    changed();
    return list.metadata?.resourceVersion;
  };
  // The first list's failure is the caller's (the cluster cannot be used); later ones retry.
  let rv = await relist();
  const loop = async () => {
    while (!stopped.aborted) {
      await new Promise<void>((resolve) => {
        let ac: AbortController | undefined;
        const stop = () => {
          ac?.abort();
          resolve();
        };
        stopped.addEventListener('abort', stop, { once: true });
        conn.watch
          .watch(
            o.path,
            { labelSelector: o.selector, resourceVersion: rv, allowWatchBookmarks: true },
            (type, obj: T) => {
              if (type === 'ERROR') {
                rv = undefined; // expired (410) or refused: list again
                ac?.abort();
                return;
              }
              if (obj?.metadata?.resourceVersion) rv = obj.metadata.resourceVersion;
              if (type === 'BOOKMARK') return;
              const name = obj.metadata?.name ?? '';
              if (type === 'DELETED') into.delete(name);
              else into.set(name, obj);
              changed();
            },
            () => {
              stopped.removeEventListener('abort', stop);
              resolve();
            },
          )
          .then(
            (c) => {
              ac = c;
              if (stopped.aborted) c.abort();
            },
            () => {
              stopped.removeEventListener('abort', stop);
              resolve();
            },
          );
      });
      if (stopped.aborted) return;
      await new Promise((r) => setTimeout(r, 200));
      try {
        if (rv === undefined) rv = await relist();
      } catch {
        // the next round tries again
      }
    }
  };
  const running = loop();
  return () => running;
}

export async function followRollout(
  conn: KubeConnection,
  o: FollowRollout,
): Promise<HealthVerdict> {
  const deps: Informed<k8s.V1Deployment> = new Map();
  const pods: Informed<k8s.V1Pod> = new Map();
  const stop = new AbortController();
  let wake: () => void = () => {};
  let news = true;
  const changed = () => {
    news = true;
    wake();
  };
  const selector = appSelector(o.app);
  const ns = o.namespace;
  const deadline = Date.now() + o.timeoutMs;
  const timer = setTimeout(() => wake(), o.timeoutMs + 20);
  const onAbort = () => wake();
  o.signal.addEventListener('abort', onAbort);
  const running: (() => Promise<void>)[] = [];
  let last: { ready: number; desired: number } | undefined;
  try {
    running.push(
      await inform(
        conn,
        {
          path: `/apis/apps/v1/namespaces/${ns}/deployments`,
          selector,
          list: () =>
            conn.apps.listNamespacedDeployment({ namespace: ns, labelSelector: selector }),
        },
        deps,
        changed,
        stop.signal,
      ),
      await inform(
        conn,
        {
          path: `/api/v1/namespaces/${ns}/pods`,
          selector,
          list: () => conn.core.listNamespacedPod({ namespace: ns, labelSelector: selector }),
        },
        pods,
        changed,
        stop.signal,
      ),
    );
    for (;;) {
      if (o.signal.aborted)
        throw new NornError('CANCELLED', `waiting for ${o.app}'s rollout was cancelled`);
      if (news) {
        news = false;
        const j = judge(o, deps, pods);
        if (!last || last.ready !== j.ready || last.desired !== j.desired) {
          last = { ready: j.ready, desired: j.desired };
          o.onProgress?.({ ...last, ...(j.problem ? { message: j.problem } : {}) });
        }
        if (j.done) return { ok: true, healthyForMs: o.minHealthyMs };
        if (j.failed) {
          let problem = `release ${o.releaseId} of ${o.app} will not roll out: ${j.failed.problem}`;
          if (j.failed.pod) {
            const tail = await logTail(conn, ns, j.failed.pod, o.logLines ?? 20);
            if (tail.trim())
              problem += `\nlast log lines of ${j.failed.pod.name}/${j.failed.pod.container}:\n${tail.trimEnd()}`;
          }
          return { ok: false, healthyForMs: 0, problem: scrub(problem, o.redact) };
        }
        if (Date.now() >= deadline)
          return {
            ok: false,
            healthyForMs: 0,
            problem: scrub(
              `release ${o.releaseId} of ${o.app} not healthy after ${o.timeoutMs} ms: ${j.problem ?? `${j.ready} of ${j.desired} ready`}`,
              o.redact,
            ),
          };
      }
      if (Date.now() >= deadline) news = true;
      else await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    clearTimeout(timer);
    o.signal.removeEventListener('abort', onAbort);
    stop.abort();
    await Promise.all(running.map((r) => r()));
  }
}
