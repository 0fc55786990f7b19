/**
 * The job routes of the fake: register (with EnforceIndex, PreserveCounts and Nomad's
 * unchanged-spec rule), plan, stop and purge, revert, and the reads of a job and what hangs off
 * it. A read answers the tables it depends on and a function producing the body, so the server
 * can block it.
 */
import type { IncomingMessage } from 'node:http';
import { planDiff } from './diff.js';
import { HttpError, queryMeta, readBody } from './http.js';
import { type UnknownFields, decodeStruct } from './schema.js';
import { type Simulator, node } from './sim.js';
import { type Store, type Table, jobKey, specChanged } from './store.js';
import { type Job, canonicalize, validateJob } from './validate.js';
import { allocStub, jobStub } from './views.js';

export type Read = [Table[], () => unknown];

export function jobRoutes(store: Store, sim: Simulator, mode: UnknownFields) {
  function decodeJobRequest(
    body: unknown,
    type: string,
    pathId: string | undefined,
    namespace: string,
  ): { req: Job; job: Job } {
    const { value, problems } = decodeStruct(body, type, { unknownFields: mode, root: '' });
    if (problems.length) throw new HttpError(400, problems.join('\n'));
    const req = value as Job;
    if (!req.Job) throw new HttpError(400, 'Job must be specified');
    if (!req.Job.ID)
      throw new HttpError(
        400,
        type === 'JobPlanRequest' ? 'Job must have a valid ID' : "Job ID hasn't been provided",
      );
    if (pathId && req.Job.ID !== pathId) {
      throw new HttpError(
        400,
        type === 'JobPlanRequest' ? 'Job ID does not match' : 'Job ID does not match name',
      );
    }
    const job = canonicalize(structuredClone(req.Job), req.Job.Namespace || namespace);
    const invalid = validateJob(job);
    if (invalid) throw new HttpError(500, invalid);
    return { req, job };
  }

  function enforce(existing: Job | undefined, index: number): void {
    const prefix = 'Enforcing job modify index';
    if (existing && index === 0) throw new HttpError(500, `${prefix} 0: job already exists`);
    if (existing && index !== existing.JobModifyIndex) {
      throw new HttpError(
        500,
        `${prefix} ${index}: job exists with conflicting job modify index: ${existing.JobModifyIndex}`,
      );
    }
    if (!existing && index !== 0)
      throw new HttpError(500, `${prefix} ${index}: job does not exist`);
  }

  const meta = queryMeta;

  /** Stores a job the way Job.Register does: a new version only when the spec changed, an evaluation always. */
  function register(job: Job, triggeredBy = 'job-register'): Job {
    const existing = store.jobs.get(jobKey(job.Namespace, job.ID));
    if (!specChanged(existing, job)) {
      const ev = store.createEval(existing!, triggeredBy);
      return {
        EvalID: ev.ID,
        EvalCreateIndex: ev.CreateIndex,
        JobModifyIndex: existing!.ModifyIndex,
        Warnings: '',
        ...meta(ev.CreateIndex as number),
      };
    }
    const index = store.putVersion(job);
    sim.registered(job);
    const periodic = job.Periodic?.Enabled || job.ParameterizedJob;
    const ev = periodic ? undefined : store.createEval(job, triggeredBy);
    return {
      EvalID: ev?.ID ?? '',
      EvalCreateIndex: ev?.CreateIndex ?? 0,
      JobModifyIndex: index,
      Warnings: '',
      ...meta(index),
    };
  }

  function mustJob(namespace: string, id: string): Job {
    const job = store.jobs.get(jobKey(namespace, id));
    if (!job) throw new HttpError(404, 'job not found');
    return job;
  }

  async function routeJob(
    method: string,
    id: string,
    sub: string,
    ns: string,
    q: Record<string, string>,
    req: IncomingMessage,
  ): Promise<Read | unknown> {
    const key = jobKey(ns, id);
    if (sub === '' && (method === 'PUT' || method === 'POST')) {
      const { req: body, job } = decodeJobRequest(
        await readBody(req),
        'JobRegisterRequest',
        id,
        ns,
      );
      const existing = store.jobs.get(jobKey(job.Namespace, job.ID));
      if (body.EnforceIndex) enforce(existing, body.JobModifyIndex ?? 0);
      if (body.PreserveCounts && existing) {
        for (const tg of job.TaskGroups as Job[]) {
          const old = (existing.TaskGroups as Job[]).find((g) => g.Name === tg.Name);
          if (old) tg.Count = old.Count;
        }
      }
      return register(job);
    }
    if (sub === '' && method === 'DELETE') {
      const job = store.jobs.get(key);
      // Job.Deregister answers success with nothing done when the job does not exist.
      if (!job)
        return {
          EvalID: '',
          EvalCreateIndex: 0,
          JobModifyIndex: 0,
          VolumeEvalID: '',
          VolumeEvalIndex: 0,
          ...meta(0),
        };
      const allocs = store.allocsOf(ns, id);
      if (q.purge === 'true') {
        store.jobs.delete(key);
        store.versions.delete(key);
        const index = store.write('jobs');
        for (const a of allocs) sim.stopAlloc(a, 'alloc not needed since job was purged');
        sim.registered({ ...job, Stop: true });
        const ev = store.createEval(job, 'job-deregister');
        return {
          EvalID: ev.ID,
          EvalCreateIndex: ev.CreateIndex,
          JobModifyIndex: index,
          VolumeEvalID: '',
          VolumeEvalIndex: 0,
          ...meta(index),
        };
      }
      const stopped = { ...structuredClone(job), Stop: true };
      const out = register(stopped, 'job-deregister');
      for (const a of allocs) sim.stopAlloc(a, 'alloc not needed since job was stopped');
      return { ...out, VolumeEvalID: '', VolumeEvalIndex: 0 };
    }
    if (sub === '/plan' && (method === 'PUT' || method === 'POST')) {
      const { req: body, job } = decodeJobRequest(await readBody(req), 'JobPlanRequest', id, ns);
      const existing = store.jobs.get(jobKey(job.Namespace, job.ID));
      const live = existing
        ? store
            .allocsOf(job.Namespace, job.ID)
            .filter(
              (a) =>
                a.DesiredStatus === 'run' &&
                !['complete', 'failed', 'lost'].includes(a.ClientStatus),
            )
        : [];
      const { Diff, DesiredTGUpdates } = planDiff(existing, job, live);
      const placeable =
        (job.NodePool === 'default' || job.NodePool === 'all') &&
        (job.Datacenters as string[]).some((d) => d === '*' || d === node.Datacenter);
      const failed = placeable
        ? null
        : Object.fromEntries(
            (job.TaskGroups as Job[]).map((tg) => [
              tg.Name,
              {
                NodesEvaluated: 0,
                NodesFiltered: 0,
                NodesInPool: 0,
                NodesAvailable: {},
                ClassFiltered: null,
                ConstraintFiltered: null,
                NodesExhausted: 0,
                ClassExhausted: null,
                DimensionExhausted: null,
                QuotaExhausted: null,
                ResourcesExhausted: null,
                Scores: null,
                ScoreMetaData: null,
                AllocationTime: 0,
                CoalescedFailures: Math.max(0, tg.Count - 1),
              },
            ]),
          );
      return {
        Annotations: { DesiredTGUpdates, PreemptedAllocs: null },
        FailedTGAllocs: failed,
        JobModifyIndex: existing?.JobModifyIndex ?? 0,
        CreatedEvals: null,
        Diff: body.Diff ? Diff : null,
        NextPeriodicLaunch: '0001-01-01T00:00:00Z',
        Warnings: '',
        Index: store.index,
      };
    }
    if (sub === '/revert' && (method === 'PUT' || method === 'POST')) {
      const body = (await readBody(req)) as Job;
      const job = mustJob(ns, id);
      if (body.EnforcePriorVersion != null && body.EnforcePriorVersion !== job.Version) {
        throw new HttpError(
          500,
          `Current job has version ${job.Version}; enforcing version ${body.EnforcePriorVersion}`,
        );
      }
      if (body.JobVersion === job.Version)
        throw new HttpError(500, `can't revert to current version`);
      const target = (store.versions.get(key) ?? []).find((v) => v.Version === body.JobVersion);
      if (!target)
        throw new HttpError(
          500,
          `job ${JSON.stringify(id)} in namespace ${JSON.stringify(ns)} at version ${body.JobVersion} not found`,
        );
      return register({ ...structuredClone(target), Stop: false }, 'job-register');
    }
    if (method !== 'GET') throw new HttpError(405, 'Invalid method');
    switch (sub) {
      case '':
        return [['jobs'], () => mustJob(ns, id)];
      case '/versions':
        return [
          ['jobs'],
          () => {
            const versions = store.versions.get(key) ?? [];
            if (versions.length === 0) throw new HttpError(404, 'job versions not found');
            const diffs =
              q.diffs === 'true'
                ? versions.slice(0, -1).map((v, i) => planDiff(versions[i + 1], v, []).Diff)
                : null;
            return { Versions: versions, Diffs: diffs, ...meta(store.tables.jobs) };
          },
        ];
      case '/allocations':
        return [['allocs'], () => store.allocsOf(ns, id).map(allocStub)];
      case '/deployments':
        return [['deployment'], () => store.deploymentsOf(ns, id)];
      case '/deployment':
        return [['deployment'], () => store.deploymentsOf(ns, id)[0] ?? null];
      case '/evaluations':
        return [
          ['evals'],
          () => [...store.evals.values()].filter((e) => e.JobID === id && e.Namespace === ns),
        ];
      case '/summary':
        return [['jobs', 'allocs'], () => jobStub(store, mustJob(ns, id)).JobSummary];
    }
    throw new HttpError(404, 'Invalid URL');
  }

  return routeJob;
}
