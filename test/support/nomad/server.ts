/**
 * A fake Nomad HTTP API on 127.0.0.1 for norn's Nomad target: jobs (register, plan, read,
 * versions, stop, purge, revert), allocations, deployments, evaluations, variables with
 * check-and-set, native service discovery, and blocking queries, with Nomad's response shapes
 * and status codes: 400 for a body that does not decode, 500 with go-multierror text for a job
 * that fails validation, 403 without the token, 404 with Nomad's `… not found` texts. The Consul
 * slice norn reads (catalog and health of services) listens on its own port (consul.ts).
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startFakeConsul } from './consul.js';
import { planDiff } from './diff.js';
import { type UnknownFields, decodeStruct } from './schema.js';
import { Simulator, node } from './sim.js';
import {
  type Alloc,
  type Deployment,
  type Table,
  type Variable,
  Store,
  jobKey,
  nowNs,
  specChanged,
} from './store.js';
import { type Job, canonicalize, validateJob } from './validate.js';
import { allocStub, jobStub, nomadService, registrations } from './views.js';

export interface FakeNomadOptions {
  /** When set, every /v1 request needs X-Nomad-Token equal to it (403 otherwise). */
  token?: string;
  /** Simulation step in ms (default 50). */
  tickMs?: number;
  /** 'refuse' (default) refuses unknown and miscased fields; 'ignore' drops them, as real Nomad does. */
  unknownFields?: UnknownFields;
  /** Also start the Consul slice on its own port (default true). */
  consul?: boolean;
  /** When set, the Consul slice needs X-Consul-Token equal to it. */
  consulToken?: string;
}

export interface SeenRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
}

export interface FakeNomad {
  addr: string;
  token: string | undefined;
  consulAddr: string | undefined;
  consulToken: string | undefined;
  requests: SeenRequest[];
  job(id: string, namespace?: string): Job | undefined;
  versions(id: string, namespace?: string): Job[];
  allocations(jobId: string, namespace?: string): Alloc[];
  deployments(jobId: string, namespace?: string): Deployment[];
  variable(path: string, namespace?: string): Variable | undefined;
  /** What a running, healthy allocation listening at host:port serves: its first task image's tag. */
  bodyAt(host: string, port: number): string | undefined;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body?: unknown,
  ) {
    super(message);
  }
}

/** time.ParseDuration for the units a wait uses; undefined when Go would refuse it. */
export function parseGoDuration(text: string): number | undefined {
  if (text === '0') return 0;
  const units: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    µs: 1e-3,
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
  };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) return undefined;
  return parts.reduce((ms, p) => ms + Number(p[1]) * units[p[2]!]!, 0);
}

const maxWaitMs = 10 * 60_000;
const defaultWaitMs = 5 * 60_000;
const tagOf = (image: string): string => {
  const last = image.slice(image.lastIndexOf('/') + 1);
  return last.includes(':') ? last.slice(last.lastIndexOf(':') + 1) : 'latest';
};

export async function startFakeNomad(opts: FakeNomadOptions = {}): Promise<FakeNomad> {
  const store = new Store();
  const sim = new Simulator(store, opts.tickMs ?? 50);
  const mode = opts.unknownFields ?? 'refuse';
  const requests: SeenRequest[] = [];

  async function readBody(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    if (!text) throw new HttpError(400, 'Request body is empty');
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new HttpError(400, `invalid character in request body: ${(err as Error).message}`);
    }
  }

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

  const meta = (index: number): Job => ({
    Index: index,
    LastContact: 0,
    KnownLeader: true,
    NextToken: '',
  });

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
  ): Promise<[Table[], () => unknown] | unknown> {
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
      const job = mustJob(ns, id);
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
            mustJob(ns, id);
            const versions = store.versions.get(key) ?? [];
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

  async function routeVar(
    method: string,
    path: string,
    ns: string,
    q: Record<string, string>,
    req: IncomingMessage,
  ): Promise<unknown> {
    const key = jobKey(ns, path);
    const current = store.vars.get(key);
    const cas = q.cas === undefined ? undefined : Number(q.cas);
    if (cas !== undefined && !Number.isInteger(cas))
      throw new HttpError(400, `can not parse cas: invalid syntax`);
    const conflict = (): never => {
      throw new HttpError(
        409,
        'conflict',
        current ?? {
          Namespace: ns,
          Path: path,
          CreateIndex: 0,
          ModifyIndex: 0,
          CreateTime: 0,
          ModifyTime: 0,
          Items: null,
        },
      );
    };
    if (method === 'GET') {
      if (!current) throw new HttpError(404, 'variable not found');
      return current;
    }
    if (method === 'PUT' || method === 'POST') {
      const body = (await readBody(req)) as Job;
      const items = body?.Items;
      if (
        typeof items !== 'object' ||
        items === null ||
        Object.values(items).some((v) => typeof v !== 'string')
      ) {
        throw new HttpError(400, 'json: cannot unmarshal Items: expected an object of strings');
      }
      if (cas !== undefined && (current?.ModifyIndex ?? 0) !== cas) conflict();
      const index = store.write('vars');
      const now = nowNs();
      const v: Variable = {
        Namespace: ns,
        Path: path,
        CreateIndex: current?.CreateIndex ?? index,
        ModifyIndex: index,
        CreateTime: current?.CreateTime ?? now,
        ModifyTime: now,
        Items: items as Record<string, string>,
      };
      store.vars.set(key, v);
      return v;
    }
    if (method === 'DELETE') {
      if (cas !== undefined && (current?.ModifyIndex ?? 0) !== cas) conflict();
      store.vars.delete(key);
      store.write('vars');
      return undefined;
    }
    throw new HttpError(405, 'Invalid method');
  }

  async function route(
    req: IncomingMessage,
  ): Promise<{ tables?: Table[]; read?: () => unknown; status?: number; body?: unknown }> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const q = Object.fromEntries(url.searchParams);
    const method = req.method ?? 'GET';
    const ns = q.namespace || 'default';
    const p = url.pathname;
    let m: RegExpExecArray | null;
    const asRead = (r: unknown): { tables?: Table[]; read?: () => unknown; body?: unknown } =>
      Array.isArray(r) && r.length === 2 && typeof r[1] === 'function'
        ? { tables: r[0] as Table[], read: r[1] as () => unknown }
        : { body: r };
    if ((p === '/v1/jobs' || p === '/v1/jobs/') && (method === 'PUT' || method === 'POST')) {
      return asRead(await routeJob(method, '', '', ns, q, req).then((r) => r));
    }
    if (p === '/v1/jobs' && method === 'GET') {
      const prefix = q.prefix ?? '';
      return {
        tables: ['jobs', 'allocs'],
        read: () =>
          [...store.jobs.values()]
            .filter((j) => (ns === '*' || j.Namespace === ns) && String(j.ID).startsWith(prefix))
            .sort((a, b) => String(a.ID).localeCompare(String(b.ID)))
            .map((j) => jobStub(store, j)),
      };
    }
    if ((m = /^\/v1\/job\/([^/]+)(\/[a-z]+)?$/.exec(p))) {
      return asRead(await routeJob(method, decodeURIComponent(m[1]!), m[2] ?? '', ns, q, req));
    }
    const one = (table: Table, map: Map<string, unknown>, what: string) => (id: string) => ({
      tables: [table],
      read: () => {
        const x = map.get(id);
        if (!x) throw new HttpError(404, `${what} not found`);
        return x;
      },
    });
    if ((m = /^\/v1\/allocation\/([^/]+)$/.exec(p)))
      return one('allocs', store.allocs, 'alloc')(m[1]!);
    if ((m = /^\/v1\/deployment\/([^/]+)$/.exec(p)))
      return one('deployment', store.deployments, 'deployment')(m[1]!);
    if ((m = /^\/v1\/evaluation\/([^/]+)$/.exec(p)))
      return one('evals', store.evals, 'eval')(m[1]!);
    if (p === '/v1/vars' && method === 'GET') {
      const prefix = q.prefix ?? '';
      return {
        tables: ['vars'],
        read: () =>
          [...store.vars.values()]
            .filter((v) => (ns === '*' || v.Namespace === ns) && v.Path.startsWith(prefix))
            .sort((a, b) => a.Path.localeCompare(b.Path))
            .map(({ Items: _items, ...metadata }) => metadata),
      };
    }
    if ((m = /^\/v1\/var\/(.+)$/.exec(p))) {
      const path = decodeURIComponent(m[1]!);
      if (method === 'GET')
        return { tables: ['vars'], read: () => routeVar('GET', path, ns, q, req) };
      const body = await routeVar(method, path, ns, q, req);
      return body === undefined ? { status: 204 } : { body };
    }
    if ((m = /^\/v1\/service\/([^/]+)$/.exec(p)) && method === 'GET') {
      const name = decodeURIComponent(m[1]!);
      return {
        tables: ['services'],
        read: () =>
          registrations(store)
            .filter((r) => r.provider === 'nomad' && r.ServiceName === name && r.Namespace === ns)
            .map(nomadService),
      };
    }
    if (p === '/v1/services' && method === 'GET') {
      return {
        tables: ['services'],
        read: () => {
          const regs = registrations(store).filter(
            (r) => r.provider === 'nomad' && r.Namespace === ns,
          );
          const names = [...new Set(regs.map((r) => r.ServiceName))].sort();
          const services = names.map((n) => ({
            ServiceName: n,
            Tags: [...new Set(regs.filter((r) => r.ServiceName === n).flatMap((r) => r.Tags))],
          }));
          return regs.length ? [{ Namespace: ns, Services: services }] : [];
        },
      };
    }
    throw new HttpError(404, 'Invalid URL');
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const query = Object.fromEntries(url.searchParams);
    requests.push({
      method: req.method ?? 'GET',
      path: url.pathname,
      query,
      headers: { ...req.headers },
    });
    const send = (status: number, body: unknown, index?: number): void => {
      if (index !== undefined) {
        res.setHeader('X-Nomad-Index', String(index));
        res.setHeader('X-Nomad-KnownLeader', 'true');
        res.setHeader('X-Nomad-LastContact', '0');
      }
      if (status === 204) return void res.writeHead(204).end();
      const text = typeof body === 'string' ? body : JSON.stringify(body);
      res
        .writeHead(status, {
          'Content-Type':
            typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json',
        })
        .end(text);
    };
    try {
      if (opts.token !== undefined) {
        const given = req.headers['x-nomad-token'];
        if (!given) throw new HttpError(403, 'Permission denied');
        if (given !== opts.token) throw new HttpError(403, 'ACL token not found');
      }
      let waitMs = defaultWaitMs;
      if (query.wait !== undefined) {
        const w = parseGoDuration(query.wait);
        if (w === undefined) throw new HttpError(400, 'Invalid wait time');
        waitMs = Math.min(w, maxWaitMs);
      }
      const after = query.index === undefined ? undefined : Number(query.index);
      if (after !== undefined && !(Number.isInteger(after) && after >= 0))
        throw new HttpError(400, 'Invalid index');
      const r = await route(req);
      if (!r.read) return send(r.status ?? 200, r.body ?? null);
      if (after !== undefined && after > 0) await store.waitFor(r.tables!, after, waitMs);
      const index = store.indexOf(r.tables!);
      try {
        send(200, await r.read(), index);
      } catch (err) {
        if (err instanceof HttpError) send(err.status, err.message, index);
        else throw err;
      }
    } catch (err) {
      if (err instanceof HttpError) return send(err.status, err.body ?? err.message);
      send(500, (err as Error).stack ?? String(err));
    }
  }

  const server: Server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const consul = opts.consul === false ? undefined : await startFakeConsul(store, opts.consulToken);
  sim.start();

  return {
    addr: `http://127.0.0.1:${port}`,
    token: opts.token,
    consulAddr: consul?.addr,
    consulToken: opts.consulToken,
    requests,
    job: (id, namespace = 'default') => store.jobs.get(jobKey(namespace, id)),
    versions: (id, namespace = 'default') => store.versions.get(jobKey(namespace, id)) ?? [],
    allocations: (jobId, namespace = 'default') => store.allocsOf(namespace, jobId),
    deployments: (jobId, namespace = 'default') => store.deploymentsOf(namespace, jobId),
    variable: (path, namespace = 'default') => store.vars.get(jobKey(namespace, path)),
    bodyAt(host, port) {
      if (host !== node.Address && host !== 'localhost') return undefined;
      for (const a of store.allocs.values()) {
        if (a.DesiredStatus !== 'run' || a.ClientStatus !== 'running') continue;
        if (a.DeploymentID && a.DeploymentStatus?.Healthy !== true) continue;
        if (!(a.AllocatedResources.Shared.Ports as Job[]).some((p) => p.Value === port)) continue;
        const tg = (a.Job.TaskGroups as Job[]).find((g) => g.Name === a.TaskGroup)!;
        const image = (tg.Tasks as Job[]).find((t) => t.Config?.image)?.Config.image as
          string | undefined;
        return image ? tagOf(image) : undefined;
      }
      return undefined;
    },
    async close() {
      sim.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await consul?.close();
    },
  };
}
