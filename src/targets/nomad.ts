/**
 * The nomad target: a release is one service job `<app>` (a task group per long-running process,
 * rolled out by Nomad's own update strategy: MaxParallel 1, MinHealthyTime, AutoRevert) and one
 * periodic batch job `<app>-<process>` per scheduled process (Nomad ticks them, so there is no
 * runScheduled). The translation is nomad/translate.ts (pure); this file submits and reads.
 *
 * - Submit: every job norn would write is read first, and one that another app (or no norn) made
 *   is refused CONFLICT and left alone. Secrets go to a Nomad Variable per job, read by the
 *   job's tasks through a template (never in the job, so never in the plan, the release or
 *   Nomad's UI). Then the job is planned (`/plan`, its diff kept for the step's output) and
 *   registered with EnforceIndex at the JobModifyIndex the plan saw: a change someone made in
 *   between is reported CONFLICT, never overwritten. A job version that already carries the
 *   release is not registered again (a re-run after a worker died mid-step makes no new version).
 * - Healthy: nomad/deployment.ts follows the version's deployment with blocking queries.
 * - Roll back: when Nomad auto-reverted (its deployment failed with AutoRevert on), the job is
 *   already at the version before, and norn does nothing more (the original norn rolled back a
 *   second time, §10 #2). Otherwise the previous release's job is registered again.
 * - Units are replica slots `<job>/<group>/<i>`, running when the job's current version has at
 *   least i+1 running allocations of the group.
 */
import { NornError } from '../shared/errors.js';
import type { Infraspec } from '../shared/spec/infraspec.js';
import { isScheduled } from './docker/runtime.js';
import type { Job } from './nomad/api.js';
import { connectNomad, type NomadConnection, type NomadEnv } from './nomad/client.js';
import { followRelease, jobVersions, releaseOf, type NomadAlloc } from './nomad/deployment.js';
import {
  periodicJobId,
  secretsSha256,
  serviceName,
  translateRelease,
  variablePath,
} from './nomad/translate.js';
import { planSummary } from './nomad/plan.js';
import type {
  Applied,
  LiveState,
  LiveUnit,
  PlanSummary,
  Target,
  TargetCall,
  TargetRelease,
} from './types.js';

export interface NomadTargetDeps {
  /** The connection, made when first needed (throws UNAVAILABLE without NORN_NOMAD_ADDR). */
  connect: () => NomadConnection;
}

export { connectNomad, type NomadEnv };

const enc = encodeURIComponent;
const APP_META = 'norn.app';

interface JobStub {
  ID: string;
  ParentID?: string;
  Stop?: boolean;
  Status?: string;
  Periodic?: boolean;
  Type?: string;
}

/** The job as Nomad has it now, or undefined. */
async function readJob(c: NomadConnection, id: string, signal?: AbortSignal) {
  const a = await c.nomad.request<Job | string>('GET', `/v1/job/${enc(id)}`, {
    signal,
    accept: [404],
  });
  return a.status === 404 || typeof a.body !== 'object' ? undefined : (a.body as Job);
}

/** CONFLICT for a job norn may not write over: another app's, or one norn did not make. */
function assertOurs(job: Job | undefined, id: string, app: string): void {
  if (!job) return; // a stopped job is still someone's: only the app's own is written over
  const owner = job.Meta?.[APP_META];
  if (owner === app) return;
  throw new NornError(
    'CONFLICT',
    owner
      ? `Nomad job ${id} belongs to app ${owner} (its Meta ${APP_META}); norn leaves it alone. Rename one of the apps or processes`
      : `Nomad job ${id} was not made by norn (it has no Meta ${APP_META}); norn leaves it alone. Remove it or rename the app`,
    { details: { job: id, owner: owner ?? null } },
  );
}

/** The app's jobs (its service job and periodic jobs), found by id prefix and Meta. */
async function appJobs(c: NomadConnection, app: string, signal?: AbortSignal): Promise<Job[]> {
  const a = await c.nomad.request<JobStub[]>('GET', '/v1/jobs', { query: { prefix: app }, signal });
  const ids = (a.body ?? [])
    .filter((j) => !j.ParentID && (j.ID === app || j.ID.startsWith(`${app}-`)))
    .map((j) => j.ID);
  const jobs = await Promise.all(ids.map((id) => readJob(c, id, signal)));
  return jobs.filter((j): j is Job => j !== undefined && j.Meta?.[APP_META] === app);
}

/** Puts the job's secrets where its template reads them (or removes them when there are none). */
async function writeSecrets(
  c: NomadConnection,
  jobId: string,
  secrets: Record<string, string>,
  signal: AbortSignal,
): Promise<void> {
  const path = `/v1/var/${variablePath(jobId).split('/').map(enc).join('/')}`;
  if (Object.keys(secrets).length === 0) {
    await c.nomad.request('DELETE', path, { signal, accept: [404] });
    return;
  }
  await c.nomad.request('PUT', path, {
    signal,
    body: { Namespace: c.namespace, Path: variablePath(jobId), Items: secrets },
  });
}

/** Registers `job` with EnforceIndex at `index`; a change made since is CONFLICT. */
async function register(c: NomadConnection, job: Job, index: number, signal: AbortSignal) {
  try {
    await c.nomad.request('POST', `/v1/job/${enc(job.ID!)}`, {
      signal,
      body: { Job: job, EnforceIndex: true, JobModifyIndex: index },
    });
  } catch (err) {
    const said = err instanceof NornError ? String(err.details?.['body'] ?? err.message) : '';
    if (/Enforcing job modify index/i.test(said))
      throw new NornError(
        'CONFLICT',
        `Nomad job ${job.ID} was changed by someone else after norn planned it (${said}); nothing was overwritten: look at the job's versions, then deploy again`,
        { cause: err, details: { job: job.ID } },
      );
    if (err instanceof NornError && err.details?.['status'] === 500)
      throw new NornError('STEP_FAILED', `Nomad refused job ${job.ID}: ${said}`, { cause: err });
    throw err;
  }
}

/** Deregisters a job (purged when NORN_NOMAD_PURGE=true) and its secrets. */
async function deregister(c: NomadConnection, id: string, signal: AbortSignal) {
  await c.nomad.request('DELETE', `/v1/job/${enc(id)}`, {
    signal,
    query: { purge: c.purge },
    accept: [404],
  });
  await writeSecrets(c, id, {}, signal);
}

const slots = (job: string, group: string, count: number) =>
  Array.from({ length: count }, (_, i) => `${job}/${group}/${i}`);

function appliedOf(release: TargetRelease): Applied {
  const units: string[] = [];
  const schedules: string[] = [];
  for (const [process, p] of Object.entries(release.spec.processes)) {
    if (isScheduled(p)) schedules.push(periodicJobId(release.app, process));
    else units.push(...slots(release.app, process, p.replicas));
  }
  return { units, schedules };
}

export function createNomadTarget(deps: NomadTargetDeps): Target {
  let conn: NomadConnection | undefined;
  const c = () => (conn ??= deps.connect());

  function translate(release: TargetRelease) {
    return translateRelease({
      app: release.app,
      releaseId: release.id,
      commitSha: release.commitSha ?? '',
      imageRef: release.imageRef,
      spec: release.spec,
      secretKeys: Object.keys(release.secrets),
      ...(Object.keys(release.secrets).length
        ? { secretsSha256: secretsSha256(release.secrets) }
        : {}),
      serviceProvider: c().serviceProvider,
      ...(c().region ? { region: c().region } : {}),
      ...(c().namespace ? { namespace: c().namespace } : {}),
    });
  }

  /**
   * Puts `release` on. `restore` (a roll back) registers it even when an older version of the
   * job carried it; a submit does not, as that version was the release's own, already tried.
   */
  async function put(
    release: TargetRelease,
    call: TargetCall & { onTouch?: () => void },
    restore: boolean,
  ): Promise<Applied> {
    const nomad = c();
    const { service, periodic } = translate(release);
    const jobs = [...(service ? [service] : []), ...periodic];
    const current = new Map<string, Job | undefined>();
    for (const job of jobs) {
      const now = await readJob(nomad, job.ID!, call.signal);
      assertOurs(now, job.ID!, release.app);
      current.set(job.ID!, now);
    }
    const plan: PlanSummary[] = [];
    let touched = false;
    const touch = () => {
      if (!touched) call.onTouch?.();
      touched = true;
    };
    for (const job of jobs) {
      const id = job.ID!;
      const now = current.get(id);
      if (now && !now.Stop && releaseOf(now) === release.id) {
        call.log(`Nomad job ${id} version ${now.Version} already has release ${release.id}`);
        continue;
      }
      if (!restore && now && job === service) {
        const { versions } = await jobVersions(nomad.nomad, id, { signal: call.signal });
        const earlier = versions.find((v) => releaseOf(v) === release.id);
        if (earlier) {
          call.log(
            `release ${release.id} was registered as Nomad job ${id} version ${earlier.Version}, and the job has moved on to version ${now.Version} since; not registering it again`,
          );
          continue;
        }
      }
      await writeSecrets(nomad, id, release.secrets, call.signal);
      const planned = await nomad.nomad.request<Record<string, unknown>>(
        'POST',
        `/v1/job/${enc(id)}/plan`,
        { signal: call.signal, body: { Job: job, Diff: true } },
      );
      const summary = planSummary(id, planned.body);
      plan.push(summary);
      call.log(
        `plan for Nomad job ${id}: ${summary.change}${summary.changes.length ? ` (${summary.changes.slice(0, 8).join('; ')})` : ''}`,
      );
      if (job === service) touch();
      await register(nomad, job, Number(planned.body['JobModifyIndex'] ?? 0), call.signal);
      const after = await readJob(nomad, id, call.signal);
      call.log(
        `registered Nomad job ${id} version ${after?.Version ?? '?'} (release ${release.id})`,
      );
    }
    // What the spec no longer has: a scheduled process removed, or no long-running one left.
    const keep = new Set(jobs.map((j) => j.ID));
    for (const old of await appJobs(nomad, release.app, call.signal)) {
      if (keep.has(old.ID) || old.Stop) continue;
      touch();
      await deregister(nomad, old.ID!, call.signal);
      call.log(`deregistered Nomad job ${old.ID}: the spec no longer has it`);
    }
    return { ...appliedOf(release), plan };
  }

  async function live(app: string, signal?: AbortSignal): Promise<LiveState> {
    const nomad = c();
    const jobs = (await appJobs(nomad, app, signal)).filter((j) => !j.Stop);
    const units: LiveUnit[] = [];
    const schedules: string[] = [];
    for (const job of jobs) {
      if (job.Periodic) {
        schedules.push(job.ID!);
        continue;
      }
      const allocs = await nomad.nomad.request<NomadAlloc[]>(
        'GET',
        `/v1/job/${enc(job.ID!)}/allocations`,
        { signal },
      );
      for (const g of job.TaskGroups ?? []) {
        const running = (allocs.body ?? []).filter(
          (a) =>
            a.TaskGroup === g.Name &&
            a.JobVersion === job.Version &&
            a.ClientStatus === 'running' &&
            a.DesiredStatus === 'run',
        ).length;
        const image = String(g.Tasks?.[0]?.Config?.['image'] ?? '');
        slots(job.ID!, g.Name!, g.Count ?? 1).forEach((name, replica) =>
          units.push({
            name,
            process: g.Name!,
            replica,
            releaseId: releaseOf(job),
            image,
            running: running > replica,
          }),
        );
      }
    }
    return { units, schedules };
  }

  return {
    name: 'nomad',
    apply: (release, call) => put(release, call, false),

    async waitHealthy(release, call) {
      const nomad = c();
      const verdict = await followRelease({
        api: nomad.nomad,
        jobId: release.app,
        releaseId: release.id,
        spec: release.spec,
        signal: call.signal,
        log: call.log,
        onGroup: (g) =>
          call.onProgress?.({
            ready: g.healthy,
            desired: g.desired,
            group: g.group,
            placed: g.placed,
            unhealthy: g.unhealthy,
          }),
      });
      if (call.signal.aborted)
        throw new NornError('CANCELLED', `stopped while following release ${release.id}`);
      return verdict;
    },

    async rollBack({ app, failed, previous }, call) {
      const nomad = c();
      if (!previous) {
        for (const job of await appJobs(nomad, app, call.signal)) {
          if (job.Stop) continue;
          await deregister(nomad, job.ID!, call.signal);
          call.log(`deregistered Nomad job ${job.ID} (release ${failed.id} had nothing before it)`);
        }
        return;
      }
      const now = await readJob(nomad, app, call.signal);
      if (now && !now.Stop && releaseOf(now) === previous.id)
        call.log(
          `Nomad already reverted job ${app} to version ${now.Version} (release ${previous.id}); putting back only its periodic jobs and secrets`,
        );
      // The service job is registered again only when Nomad did not revert it (put skips a job
      // whose current version already has the release).
      await put(previous, call, true);
    },

    async address(app: string, process: string, spec: Infraspec) {
      const p = spec.processes[process];
      if (!p || isScheduled(p) || p.port === undefined)
        throw new NornError(
          'NOT_FOUND',
          `process ${process} of ${app} ${p ? 'has no port to reach' : 'is not in its spec'}`,
        );
      const nomad = c();
      const name = serviceName(app, process);
      const found: { host: string; port: number }[] = [];
      if (nomad.consul) {
        const a = await nomad.consul.request<
          { Node?: { Address?: string }; Service?: { Address?: string; Port?: number } }[]
        >('GET', `/v1/health/service/${enc(name)}`, { query: { passing: true } });
        for (const e of a.body ?? [])
          if (e.Service?.Port)
            found.push({ host: e.Service.Address || e.Node?.Address || '', port: e.Service.Port });
      } else {
        const a = await nomad.nomad.request<{ Address?: string; Port?: number }[]>(
          'GET',
          `/v1/service/${enc(name)}`,
        );
        for (const r of a.body ?? [])
          if (r.Port && r.Address) found.push({ host: r.Address, port: r.Port });
      }
      const best = found
        .filter((f) => f.host)
        .sort((x, y) => `${x.host}:${x.port}`.localeCompare(`${y.host}:${y.port}`))[0];
      if (!best)
        throw new NornError(
          'NOT_FOUND',
          `service ${name} has no ${nomad.consul ? 'passing instance in Consul' : 'instance in Nomad'} to route to`,
        );
      return best;
    },

    async remove(app, call) {
      const nomad = c();
      const gone: string[] = [];
      const state = await live(app, call.signal);
      for (const job of await appJobs(nomad, app, call.signal)) {
        if (job.Stop && !nomad.purge) continue;
        if (!job.Stop)
          gone.push(
            ...(job.Periodic
              ? [job.ID!]
              : state.units.filter((u) => u.name.startsWith(`${job.ID}/`)).map((u) => u.name)),
          );
        await deregister(nomad, job.ID!, call.signal);
        call.log(`deregistered Nomad job ${job.ID}${nomad.purge ? ' (purged)' : ''}`);
      }
      return gone;
    },

    live,
  };
}
