/**
 * Following a release's rollout on Nomad: the job version that carries the release, the
 * deployment Nomad made for that version, and its verdict. Everything is read with blocking
 * queries (`?index=&wait=`): Nomad answers as soon as something changed, so a rollout is seen as
 * it happens without polling in a loop. The release is pinned by job version (the latest version
 * whose Meta `norn.release` is the release's id), never by job id alone: right after a register,
 * or after Nomad reverted, the allocations of an older version are healthy too, and the original
 * norn counted them (its weak spot §10 #1).
 *
 * What ends the watch: the deployment's own status (successful, failed, cancelled), or, when
 * Nomad makes no deployment (a group without an Update block, or a register Nomad found
 * unchanged), the allocations of the version themselves running for minHealthyTime; and in every
 * case a deadline, so nothing is waited on forever.
 */
import { durationMs, type Infraspec } from '../../shared/spec/infraspec.js';
import type {
  AllocationListStub as NomadAlloc,
  Deployment as NomadDeployment,
  Job,
} from './api.js';
import type { HttpApi } from './client.js';

export type { NomadAlloc, NomadDeployment };

/** One group's rollout, as `deploy.progress` reports it. */
export interface GroupProgress {
  group: string;
  desired: number;
  placed: number;
  healthy: number;
  unhealthy: number;
}

export interface Verdict {
  ok: boolean;
  healthyForMs: number;
  problem?: string;
  /** The job version Nomad reverted to, when it did. */
  revertedTo?: number;
}

export interface Follow {
  api: HttpApi;
  jobId: string;
  releaseId: number;
  spec: Infraspec;
  signal: AbortSignal;
  log: (line: string) => void;
  onGroup: (p: GroupProgress) => void;
}

/** How long a blocking query waits before Nomad answers unchanged. */
const WAIT_MS = 10_000;
/** How long after a register Nomad may take to make the version's deployment. */
const DEPLOYMENT_GRACE_MS = 10_000;
/** How far past a group's RequireProgressBy Nomad may be late to fail the deployment itself. */
const PROGRESS_SLACK_MS = 30_000;

const enc = encodeURIComponent;
const TERMINAL = new Set(['successful', 'failed', 'cancelled']);

/** The job's versions, newest first (`GET /v1/job/:id/versions`), or [] when there is no job. */
export async function jobVersions(
  api: HttpApi,
  jobId: string,
  o: { signal?: AbortSignal; index?: number; waitMs?: number } = {},
): Promise<{ versions: Job[]; index: number }> {
  const a = await api.request<{ Versions?: Job[] } | string>(
    'GET',
    `/v1/job/${enc(jobId)}/versions`,
    { ...o, accept: [404] },
  );
  if (a.status === 404 || typeof a.body !== 'object' || a.body === null)
    return { versions: [], index: a.index };
  const versions = [...(a.body.Versions ?? [])].sort((x, y) => (y.Version ?? 0) - (x.Version ?? 0));
  return { versions, index: a.index };
}

export const releaseOf = (job: Pick<Job, 'Meta'> | undefined): number | undefined => {
  const v = job?.Meta?.['norn.release'];
  return v === undefined ? undefined : Number(v);
};

const remaining = (deadline: number) => Math.max(0, deadline - Date.now());

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });
}

/** Follows the release's rollout to Nomad's verdict (or a deadline); progress on the way. */
export async function followRelease(f: Follow): Promise<Verdict> {
  const healthTimeoutMs = durationMs(f.spec.deployPolicy.healthTimeout);
  const minMs = durationMs(f.spec.deployPolicy.minHealthyTime);
  const desired = Object.entries(f.spec.processes)
    .filter(([, p]) => p.schedule === undefined)
    .reduce((n, [, p]) => n + p.replicas, 0);
  const started = Date.now();

  // 1. The version carrying the release (it may not be registered yet, or ever).
  let version: Job | undefined;
  let index = 0;
  const findBy = started + healthTimeoutMs;
  for (;;) {
    const found = await jobVersions(f.api, f.jobId, {
      signal: f.signal,
      index,
      waitMs: Math.min(WAIT_MS, remaining(findBy)),
    });
    version = found.versions.find((v) => releaseOf(v) === f.releaseId);
    if (version || f.signal.aborted || Date.now() >= findBy) break;
    if (found.index === index) await sleep(Math.min(250, remaining(findBy)), f.signal);
    index = found.index;
  }
  if (!version) {
    f.onGroup({ group: f.jobId, desired, placed: 0, healthy: 0, unhealthy: 0 });
    return {
      ok: false,
      healthyForMs: 0,
      problem: `Nomad job ${f.jobId} has no version of release ${f.releaseId}: it was never registered (waited ${Math.round(healthTimeoutMs / 1000)} s)`,
    };
  }
  const groups = version.TaskGroups ?? [];
  if (groups.every((g) => (g.Count ?? 1) === 0)) return { ok: true, healthyForMs: 0 };
  const updates = groups.some(
    (g) => (g.Update?.MaxParallel ?? version!.Update?.MaxParallel ?? 0) > 0,
  );

  // 2. Its deployment, unless Nomad makes none.
  const deployment = updates ? await deploymentOf(f, version, started) : undefined;
  if (!deployment) {
    f.log(
      updates
        ? `Nomad made no deployment for job ${f.jobId} version ${version.Version} within ${DEPLOYMENT_GRACE_MS / 1000} s; watching its allocations instead`
        : `job ${f.jobId} has no update block, so Nomad makes no deployment; watching its allocations`,
    );
    return watchAllocations(f, version, started + healthTimeoutMs, minMs);
  }
  // However slowly Nomad's deployment progresses, it has this long: each allocation its
  // healthTimeout (MaxParallel 1), and a minute of slack.
  const hardStop = started + healthTimeoutMs * Math.max(1, desired) + 60_000;
  return followDeployment(f, deployment, version, minMs, hardStop);
}

/** The deployment of `version` (same job instance: JobCreateIndex), or undefined after the grace. */
async function deploymentOf(f: Follow, version: Job, started: number) {
  const by = started + DEPLOYMENT_GRACE_MS;
  let index = 0;
  for (;;) {
    const a = await f.api.request<NomadDeployment[] | null>(
      'GET',
      `/v1/job/${enc(f.jobId)}/deployments`,
      { signal: f.signal, index, waitMs: Math.min(WAIT_MS, remaining(by)), accept: [404] },
    );
    const mine = (Array.isArray(a.body) ? a.body : []).find(
      (d) =>
        d.JobVersion === version.Version &&
        (version.CreateIndex === undefined || d.JobCreateIndex === version.CreateIndex),
    );
    if (mine) return mine;
    if (f.signal.aborted || Date.now() >= by) return undefined;
    if (a.index === index) await sleep(Math.min(250, remaining(by)), f.signal);
    index = a.index;
  }
}

async function followDeployment(
  f: Follow,
  first: NomadDeployment,
  version: Job,
  minMs: number,
  hardStop: number,
): Promise<Verdict> {
  let d = first;
  let index = 0;
  f.log(`following Nomad deployment ${d.ID.slice(0, 8)} of job ${f.jobId} version ${d.JobVersion}`);
  for (;;) {
    for (const [group, s] of Object.entries(d.TaskGroups ?? {}).sort(([a], [b]) =>
      a.localeCompare(b),
    ))
      f.onGroup({
        group,
        desired: s.DesiredTotal,
        placed: s.PlacedAllocs,
        healthy: s.HealthyAllocs,
        unhealthy: s.UnhealthyAllocs,
      });
    if (TERMINAL.has(d.Status) || f.signal.aborted) break;
    const stuckAt = Math.max(
      ...Object.values(d.TaskGroups ?? {})
        .map((s) => (s.RequireProgressBy ? Date.parse(s.RequireProgressBy) : Number.NaN))
        .filter(Number.isFinite),
    );
    if (Date.now() > hardStop)
      return {
        ok: false,
        healthyForMs: 0,
        problem: `Nomad deployment ${d.ID.slice(0, 8)} of job ${f.jobId} is still ${d.Status} (${d.StatusDescription}) at norn's limit (healthTimeout for each allocation, and a minute); norn stops waiting`,
      };
    if (Number.isFinite(stuckAt) && Date.now() > stuckAt + PROGRESS_SLACK_MS)
      return {
        ok: false,
        healthyForMs: 0,
        problem: `Nomad deployment ${d.ID.slice(0, 8)} of job ${f.jobId} is still ${d.Status} ${PROGRESS_SLACK_MS / 1000} s after its progress deadline (${d.StatusDescription}); norn stops waiting`,
      };
    const a = await f.api.request<NomadDeployment>('GET', `/v1/deployment/${enc(d.ID)}`, {
      signal: f.signal,
      index,
      waitMs: WAIT_MS,
    });
    d = a.body;
    index = a.index;
  }
  if (d.Status === 'successful') return { ok: true, healthyForMs: minMs };
  if (f.signal.aborted) return { ok: false, healthyForMs: 0, problem: 'stopped' };
  // The allocations of the deployment's job version (the list stub names no deployment).
  const allocs = await f.api.request<NomadAlloc[]>('GET', `/v1/job/${enc(f.jobId)}/allocations`, {
    signal: f.signal,
  });
  const ofDeployment = (allocs.body ?? []).filter((a) => a.JobVersion === d.JobVersion);
  const reverted = /rolling back to job version (\d+)/.exec(d.StatusDescription ?? '');
  const revertedTo = reverted ? Number(reverted[1]) : undefined;
  const parts = [
    `Nomad deployment ${d.ID.slice(0, 8)} of release ${f.releaseId} (job ${f.jobId} version ${version.Version}) ${d.Status}: ${d.StatusDescription}`,
    ...unhealthyAllocs(ofDeployment),
  ];
  if (revertedTo !== undefined) {
    const { versions } = await jobVersions(f.api, f.jobId, { signal: f.signal });
    const to = versions.find((v) => v.Version === revertedTo);
    const release = releaseOf(to);
    parts.push(
      `Nomad reverted to job version ${revertedTo}${release !== undefined ? ` (release ${release})` : ''}`,
    );
  }
  return { ok: false, healthyForMs: 0, problem: parts.join('; '), revertedTo };
}

/** What happened to the allocations that failed: their tasks' telling events and exit codes. */
export function unhealthyAllocs(allocs: NomadAlloc[]): string[] {
  const telling = new Set([
    'Terminated',
    'Restarting',
    'Not Restarting',
    'Driver Failure',
    'Killed',
    'Failed Validation',
    'Setup Failure',
    'Failed Artifact Download',
  ]);
  return allocs
    .filter((a) => a.DeploymentStatus?.Healthy === false || a.ClientStatus === 'failed')
    .slice(0, 5)
    .map((a) => {
      const tasks = Object.entries(a.TaskStates ?? {}).map(([task, s]) => {
        const events = (s.Events ?? [])
          .filter((e) => telling.has(e.Type))
          .slice(-4)
          .map((e) => {
            const said = e.DisplayMessage || e.DriverError || e.Message;
            const code = e.Type === 'Terminated' ? ` (exit code ${e.ExitCode ?? '?'})` : '';
            return `${e.Type}${code}${said && !said.startsWith('Exit Code') ? `: ${said}` : ''}`;
          });
        return `task ${task} ${s.State}${s.Failed ? ' (failed)' : ''}${s.Restarts ? `, ${s.Restarts} restarts` : ''}${events.length ? `: ${events.join(', ')}` : ''}`;
      });
      return `allocation ${a.ID.slice(0, 8)} of group ${a.TaskGroup} ${a.ClientStatus}${tasks.length ? `: ${tasks.join('; ')}` : ''}`;
    });
}

/**
 * Without a deployment: the version's allocations, each of its groups' Count running with every
 * task running, for minHealthyTime without a break; a failed allocation ends it at once.
 */
async function watchAllocations(
  f: Follow,
  version: Job,
  deadline: number,
  minMs: number,
): Promise<Verdict> {
  const counts = new Map((version.TaskGroups ?? []).map((g) => [g.Name ?? '', g.Count ?? 1]));
  let index = 0;
  let allUpSince: number | undefined;
  for (;;) {
    const a = await f.api.request<NomadAlloc[]>('GET', `/v1/job/${enc(f.jobId)}/allocations`, {
      signal: f.signal,
      index,
      waitMs: Math.max(1, Math.min(WAIT_MS, remaining(deadline), allUpSince ? minMs : WAIT_MS)),
    });
    index = a.index;
    const mine = (a.body ?? []).filter(
      (x) => x.JobVersion === version.Version && x.DesiredStatus === 'run',
    );
    const failed = mine.filter((x) => x.ClientStatus === 'failed');
    if (failed.length > 0)
      return {
        ok: false,
        healthyForMs: 0,
        problem: [
          `job ${f.jobId} version ${version.Version} (release ${f.releaseId}) has failed allocations`,
          ...unhealthyAllocs(failed),
        ].join('; '),
      };
    let up = true;
    for (const [group, count] of counts) {
      const running = mine.filter(
        (x) =>
          x.TaskGroup === group &&
          x.ClientStatus === 'running' &&
          Object.values(x.TaskStates ?? {}).every((t) => t.State === 'running'),
      ).length;
      f.onGroup({
        group,
        desired: count,
        placed: mine.filter((x) => x.TaskGroup === group).length,
        healthy: running,
        unhealthy: 0,
      });
      if (running < count) up = false;
    }
    if (!up) allUpSince = undefined;
    else allUpSince ??= Date.now();
    if (allUpSince !== undefined && Date.now() - allUpSince >= minMs)
      return { ok: true, healthyForMs: Date.now() - allUpSince };
    if (f.signal.aborted) return { ok: false, healthyForMs: 0, problem: 'stopped' };
    if (Date.now() >= deadline)
      return {
        ok: false,
        healthyForMs: 0,
        problem: `job ${f.jobId} version ${version.Version} (release ${f.releaseId}) did not have every allocation running for ${minMs} ms within its healthTimeout`,
      };
  }
}
