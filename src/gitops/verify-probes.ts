/**
 * One try of each verify check (verify.ts retries them until their deadline): an HTTP answer, the
 * readiness of a namespace's pods, a GitLab runner online with the right tags. A probe never
 * throws for what it finds; it says what it saw in one line, the line a failure shows.
 */
import type * as k8s from '@kubernetes/client-node';
import { apiMessage, type KubeConnection } from '../targets/kubernetes/connection.js';

export interface HttpCheck {
  url: string;
  /** Expected status (default 200). */
  status?: number;
  /** A substring the body must contain. */
  contains?: string;
  /** How long to keep trying (default `2m`). */
  deadline?: string;
  /** Wait between tries (default `5s`). */
  interval?: string;
}

export interface PodsCheck {
  namespace: string;
  /** A label selector, as `kubectl get pods -l` takes it: `app=web,tier!=db`. */
  selector: string;
  deadline?: string;
  interval?: string;
}

export interface RunnerCheck {
  /** GitLab's runners list, e.g. `https://gitlab.example.com/api/v4/runners`. */
  url: string;
  /** The variable holding the token sent as `PRIVATE-TOKEN`. */
  tokenEnv?: string;
  tags: string[];
  deadline?: string;
  interval?: string;
}

export interface Probe {
  ok: boolean;
  detail: string;
  /** Trying again cannot help (a refused token): stop before the deadline. */
  final?: boolean;
}

const EXCERPT = 200;
const excerpt = (text: string) => {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > EXCERPT ? `${line.slice(0, EXCERPT)}…` : line || '(empty body)';
};

/** A failed request in one line: the network error's code, or that it timed out. */
export function requestError(err: unknown): string {
  const e = err as {
    name?: string;
    message?: string;
    cause?: { code?: unknown; message?: unknown };
  };
  if (e?.name === 'TimeoutError') return 'no answer before the deadline';
  const cause = typeof e?.cause?.code === 'string' ? e.cause.code : e?.cause?.message;
  return typeof cause === 'string' ? `${e.message} (${cause})` : (e?.message ?? String(err));
}

export async function probeHttp(check: HttpCheck, signal: AbortSignal): Promise<Probe> {
  const want = check.status ?? 200;
  let res: Response;
  try {
    res = await fetch(check.url, { signal });
  } catch (err) {
    return { ok: false, detail: requestError(err) };
  }
  const body = await res.text().catch(() => '');
  if (res.status !== want)
    return { ok: false, detail: `HTTP ${res.status} (expected ${want}): ${excerpt(body)}` };
  if (check.contains !== undefined && !body.includes(check.contains))
    return {
      ok: false,
      detail: `HTTP ${res.status} but the body does not contain ${JSON.stringify(check.contains)}: ${excerpt(body)}`,
    };
  return {
    ok: true,
    detail: `HTTP ${res.status}${check.contains ? ' with the expected body' : ''}`,
  };
}

const isReady = (p: k8s.V1Pod) =>
  (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

/** Why a pod is not ready: each unready container's waiting or terminated reason, else the pod's. */
export function notReadyReason(p: k8s.V1Pod): string {
  const reasons = [
    ...(p.status?.initContainerStatuses ?? []),
    ...(p.status?.containerStatuses ?? []),
  ]
    .filter((c) => !c.ready)
    .map((c) => {
      const why =
        c.state?.waiting?.reason ??
        c.state?.terminated?.reason ??
        (c.state?.running ? 'Running, not ready' : 'not started');
      return `${c.name}: ${why}${c.restartCount ? `, ${c.restartCount} restarts` : ''}`;
    });
  if (reasons.length > 0) return reasons.join('; ');
  const cond = (p.status?.conditions ?? []).find((c) => c.status !== 'True');
  const what = cond
    ? `${cond.type} ${cond.reason ?? cond.status}${cond.message ? `: ${cond.message}` : ''}`
    : undefined;
  return what ?? p.status?.phase ?? 'no status yet';
}

export async function probePods(
  check: PodsCheck,
  kube: KubeConnection,
  signal: AbortSignal,
): Promise<Probe> {
  const { namespace, selector } = check;
  let list: k8s.V1PodList;
  try {
    list = await kube.call(
      `listing pods ${selector} in ${namespace}`,
      () => kube.core.listNamespacedPod({ namespace, labelSelector: selector }),
      signal,
    );
  } catch (err) {
    return { ok: false, detail: apiMessage(err) };
  }
  // A pod being deleted is on its way out (a rollout's old pod): it neither counts nor blocks.
  const pods = list.items.filter((p) => !p.metadata?.deletionTimestamp);
  if (pods.length === 0)
    return { ok: false, detail: `no pods match ${selector} in namespace ${namespace}` };
  const unready = pods.filter((p) => !isReady(p));
  if (unready.length === 0)
    return { ok: true, detail: `${pods.length} of ${pods.length} pods ready` };
  const named = unready.map((p) => `${p.metadata?.name ?? '?'} (${notReadyReason(p)})`);
  return {
    ok: false,
    detail: `${unready.length} of ${pods.length} pods not ready: ${named.join(', ')}`,
  };
}

interface GitlabRunner {
  id?: unknown;
  description?: unknown;
  online?: unknown;
  status?: unknown;
  paused?: unknown;
  active?: unknown;
  tag_list?: unknown;
  tags?: unknown;
}

const tagsOf = (r: GitlabRunner): string[] | undefined => {
  const t = Array.isArray(r.tag_list) ? r.tag_list : Array.isArray(r.tags) ? r.tags : undefined;
  return t?.map(String);
};
// GitLab: `online` (and `status: "online"`) is whether it contacted GitLab lately; `paused`
// (older: `active: false`) whether it takes jobs.
const isOnline = (r: GitlabRunner) => r.online === true || r.status === 'online';
const isPaused = (r: GitlabRunner) =>
  r.paused === true || r.active === false || r.status === 'paused';
const label = (r: GitlabRunner) =>
  `#${String(r.id)}${typeof r.description === 'string' && r.description ? ` ${r.description}` : ''}`;

/** `/api/v4/runners/:id` for a runner of a list at `/runners`, `/runners/all` or `/projects/…/runners`. */
function detailUrl(listUrl: string, id: unknown): string {
  const u = new URL(listUrl);
  const api = u.pathname.replace(
    /\/(projects|groups)\/[^/]+\/runners\/?$|\/runners(\/all)?\/?$/,
    '',
  );
  u.pathname = `${api}/runners/${encodeURIComponent(String(id))}`;
  u.search = '';
  return u.toString();
}

async function getJson(url: string, token: string | undefined, signal: AbortSignal) {
  const res = await fetch(url, { headers: token ? { 'PRIVATE-TOKEN': token } : {}, signal });
  const text = await res.text().catch(() => '');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, text, body };
}

/**
 * GitLab's list (`GET /runners?tag_list=a,b`, filtered by the server) does not include each
 * runner's tags; `GET /runners/:id` has `tag_list`. Tags in the list (`tag_list` or `tags`) are
 * used as they are; otherwise the candidates' details are read.
 */
export async function probeRunner(
  check: RunnerCheck,
  token: string | undefined,
  signal: AbortSignal,
): Promise<Probe> {
  const url = new URL(check.url);
  if (check.tags.length > 0) url.searchParams.set('tag_list', check.tags.join(','));
  let list;
  try {
    list = await getJson(url.toString(), token, signal);
  } catch (err) {
    return { ok: false, detail: requestError(err) };
  }
  if (list.status === 401 || list.status === 403)
    return {
      ok: false,
      final: true,
      detail: `HTTP ${list.status}: the token was refused (${excerpt(list.text)})`,
    };
  if (list.status !== 200 || !Array.isArray(list.body))
    return {
      ok: false,
      detail: `HTTP ${list.status}, not a list of runners: ${excerpt(list.text)}`,
    };
  const seen: string[] = [];
  for (const r of (list.body as GitlabRunner[]).slice(0, 50)) {
    if (!isOnline(r)) {
      seen.push(`${label(r)} offline`);
      continue;
    }
    if (isPaused(r)) {
      seen.push(`${label(r)} paused`);
      continue;
    }
    let tags = tagsOf(r);
    if (!tags) {
      const detail = await getJson(detailUrl(check.url, r.id), token, signal).catch(
        () => undefined,
      );
      tags = detail?.status === 200 ? tagsOf(detail.body as GitlabRunner) : undefined;
    }
    const missing = check.tags.filter((t) => !tags?.includes(t));
    if (tags && missing.length === 0)
      return {
        ok: true,
        detail: `runner ${label(r)} is online with tags ${check.tags.join(', ')}`,
      };
    seen.push(tags ? `${label(r)} lacks ${missing.join(', ')}` : `${label(r)} tags unknown`);
  }
  const found = seen.length > 0 ? seen.join(', ') : 'no runners listed';
  return {
    ok: false,
    detail: `no online, unpaused runner has tags ${check.tags.join(', ')}: ${found}`,
  };
}
