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
import { HttpError, parseGoDuration } from './http.js';
import { jobRoutes } from './jobs.js';
import type { UnknownFields } from './schema.js';
import { Simulator, node } from './sim.js';
import { type Alloc, type Deployment, type Table, type Variable, Store, jobKey } from './store.js';
import type { Job } from './validate.js';
import { routeVar } from './variables.js';
import { jobStub, nomadService, registrations } from './views.js';

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

const maxWaitMs = 10 * 60_000;
const defaultWaitMs = 5 * 60_000;
const tagOf = (image: string): string => {
  const last = image.slice(image.lastIndexOf('/') + 1);
  return last.includes(':') ? last.slice(last.lastIndexOf(':') + 1) : 'latest';
};

export async function startFakeNomad(opts: FakeNomadOptions = {}): Promise<FakeNomad> {
  const store = new Store();
  const sim = new Simulator(store, opts.tickMs ?? 50);
  const routeJob = jobRoutes(store, sim, opts.unknownFields ?? 'refuse');
  const requests: SeenRequest[] = [];

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
      return asRead(await routeJob(method, '', '', ns, q, req));
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
        return { tables: ['vars'], read: () => routeVar(store, 'GET', path, ns, q, req) };
      const body = await routeVar(store, method, path, ns, q, req);
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
