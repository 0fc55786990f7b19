/**
 * The dashboard's api client. Every answer is typed with the api's own contract (src/shared/api:
 * the zod schemas the handlers validate with and the OpenAPI document is generated from), imported
 * as types only. The session cookie goes with every request (same origin); the token never does.
 */
import type {
  AppDetail,
  AppList,
  DriftView,
  ErrorBody,
  EventPage,
  PlanList,
  ReleaseList,
  RunAccepted,
  RunCancelled,
  RunDetail,
  RunList,
  RunResumed,
  RunStepLog,
  ScopeView,
  SessionView,
  SnapshotList,
  StackList,
} from '../../src/shared/api/index.js';

export type {
  AppDetail,
  AppSummary,
  DriftState,
  Event,
  ForgeState,
  PlanSummary,
  Release,
  Run,
  RunDetail,
  ScopeView,
  Snapshot,
  Stack,
  Step,
} from '../../src/shared/api/index.js';

/** An answer other than 2xx, with the api's error code and message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Called when any request answers 401: the session ended (logout elsewhere, expiry). */
let onUnauthorized: () => void = () => {};
export const setUnauthorizedHandler = (f: () => void) => {
  onUnauthorized = f;
};

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, 'OFFLINE', `the api is unreachable (${(err as Error).message})`);
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const error = (parsed as ErrorBody | undefined)?.error;
    if (res.status === 401 && path !== '/api/session') onUnauthorized();
    throw new ApiError(res.status, error?.code ?? 'HTTP', error?.message ?? `HTTP ${res.status}`);
  }
  return parsed as T;
}

const enc = encodeURIComponent;

export const api = {
  login: (token: string) => request<SessionView>('POST', '/api/session', { token }),
  session: () => request<SessionView>('GET', '/api/session'),
  logout: () => request<void>('DELETE', '/api/session'),

  apps: () => request<AppList>('GET', '/api/apps'),
  app: (id: string) => request<AppDetail>('GET', `/api/apps/${enc(id)}`),
  runs: (id: string, limit = 20) =>
    request<RunList>('GET', `/api/apps/${enc(id)}/runs?limit=${limit}`),
  releases: (id: string) => request<ReleaseList>('GET', `/api/apps/${enc(id)}/releases`),
  snapshots: (id: string) => request<SnapshotList>('GET', `/api/apps/${enc(id)}/snapshots`),
  drift: (id: string) => request<DriftView>('GET', `/api/apps/${enc(id)}/drift`),
  events: (id: string, limit = 100) =>
    request<EventPage>('GET', `/api/apps/${enc(id)}/events?limit=${limit}`),
  deploy: (id: string, ref: string | undefined) =>
    request<RunAccepted>('POST', `/api/apps/${enc(id)}/deploy`, ref ? { ref } : {}),
  driftCheck: (id: string) => request<RunAccepted>('POST', `/api/apps/${enc(id)}/drift-check`),
  forge: (id: string, force: boolean) =>
    request<RunAccepted>('POST', `/api/apps/${enc(id)}/forge`, force ? { force: true } : {}),
  teardown: (id: string) => request<RunAccepted>('DELETE', `/api/apps/${enc(id)}/forge`),
  restore: (id: string, ts: string) =>
    request<RunAccepted>('POST', `/api/apps/${enc(id)}/snapshots/${enc(ts)}/restore`),

  run: (runId: string) => request<RunDetail>('GET', `/api/runs/${enc(runId)}`),
  stepLog: (runId: string, step: string) =>
    request<RunStepLog>('GET', `/api/runs/${enc(runId)}/steps/${enc(step)}/log`),
  cancel: (runId: string) => request<RunCancelled>('POST', `/api/runs/${enc(runId)}/cancel`),
  resume: (runId: string) => request<RunResumed>('POST', `/api/runs/${enc(runId)}/resume`),
  scope: (scope: string) => request<ScopeView>('GET', `/api/scopes/${enc(scope)}`),

  stacks: () => request<StackList>('GET', '/api/stacks'),
  stackRuns: (id: string) => request<RunList>('GET', `/api/stacks/${enc(id)}/runs?limit=20`),
  stackPlans: (id: string) => request<PlanList>('GET', `/api/stacks/${enc(id)}/plans`),
  stackDrift: (id: string) => request<DriftView>('GET', `/api/stacks/${enc(id)}/drift`),
  stackDriftCheck: (id: string) =>
    request<RunAccepted>('POST', `/api/stacks/${enc(id)}/drift-check`),
};
