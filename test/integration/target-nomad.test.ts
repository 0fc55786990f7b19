/**
 * The nomad target against the strict fake Nomad (test/support/nomad) over its HTTP API, with an
 * ACL token and the Consul slice, as a worker's registry builds it from NORN_NOMAD_* variables:
 * first the target contract (test/support/targets/contract.ts), then what is the nomad target's
 * own: secrets in a Variable and never in the job, the plan's diff, EnforceIndex against a
 * change made between plan and register, no second job version on a re-run, periodic jobs
 * (and their deregistration), a crash loop failing with task events and Nomad's own auto-revert
 * (which norn does not double), a job without a deployment, native service discovery, a refused
 * token, and a spec refused before any request.
 *
 * The fake runs no containers: what an address serves (fetchBody) is the fake's answer for the
 * running, healthy allocation listening there (its image's tag: `…:v1` serves `v1`).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNornError } from '../../src/shared/errors.js';
import { parseInfraspec, type Infraspec } from '../../src/shared/spec/infraspec.js';
import {
  createTargets,
  targetFor,
  type Target,
  type TargetCall,
  type TargetProgress,
  type TargetRelease,
} from '../../src/targets/index.js';
import type { NomadEnv } from '../../src/shared/config.js';
import { startFakeNomad, type FakeNomad } from '../support/nomad/server.js';
import { targetContract } from '../support/targets/contract.js';

const noCron = { upsert: async () => 'x', prune: async () => [] };
const IMAGES = { v1: 'registry.test/norn-tc:v1', v2: 'registry.test/norn-tc:v2' };
const TOKEN = 'nomad-secret-token-0123456789';

const nomadTarget = (env: NomadEnv): Target =>
  targetFor(
    createTargets({ docker: { docker: undefined, cron: noCron, pollMs: 10 }, nomad: env }),
    { target: 'nomad' },
  );

/** Registers a job straight on the fake, as another tool (or app) would. */
async function registerRaw(nomad: FakeNomad, job: Record<string, unknown>) {
  const res = await fetch(`${nomad.addr}/v1/jobs`, {
    method: 'POST',
    headers: { 'X-Nomad-Token': nomad.token ?? '', 'Content-Type': 'application/json' },
    body: JSON.stringify({ Job: job }),
  });
  if (!res.ok) throw new Error(`register ${String(job['ID'])}: ${res.status} ${await res.text()}`);
}

/** A valid job of `meta`; with `noDeployment`, Update MaxParallel 0 (Nomad makes no deployment). */
const rawJob = (id: string, meta: Record<string, string>, noDeployment = false) => ({
  ID: id,
  Name: id,
  Type: 'service',
  Datacenters: ['dc1'],
  Meta: meta,
  TaskGroups: [
    {
      Name: 'web',
      Count: 1,
      ...(noDeployment ? { Update: { MaxParallel: 0 } } : {}),
      Tasks: [
        {
          Name: 'web',
          Driver: 'docker',
          Config: { image: IMAGES.v1 },
          Resources: { CPU: 100, MemoryMB: 64 },
        },
      ],
    },
  ],
});

let contractNomad: FakeNomad | undefined;

targetContract('nomad', async () => {
  const nomad = (contractNomad = await startFakeNomad({ token: TOKEN, tickMs: 20 }));
  return {
    target: nomadTarget({
      NORN_NOMAD_ADDR: nomad.addr,
      NORN_NOMAD_TOKEN: TOKEN,
      NORN_CONSUL_ADDR: nomad.consulAddr,
    }),
    images: IMAGES,
    rollsOutInApply: false,
    // Dynamic ports: Nomad picks each allocation's host port.
    freePorts: async () => 8080,
    fetchBody: async ({ host, port }) => nomad.bodyAt(host, port) ?? 'down',
    async plantForeign(app, _process, owner) {
      await registerRaw(nomad, rawJob(app, { 'norn.app': owner }));
      const planted = nomad.job(app)!;
      return async () => {
        const now = nomad.job(app);
        return (
          now?.['Meta']?.['norn.app'] === owner &&
          now['JobModifyIndex'] === planted['JobModifyIndex'] &&
          !now['Stop']
        );
      };
    },
    close: async () => {},
  };
});

afterAll(async () => {
  await contractNomad?.close();
});

function spec(o: Record<string, unknown>): Infraspec {
  const parsed = parseInfraspec(o);
  if (!parsed.ok) throw new Error(`test spec invalid: ${JSON.stringify(parsed.problems)}`);
  return parsed.spec;
}

const webSpec = (app: string, extra: Record<string, unknown> = {}) =>
  spec({
    name: app,
    target: 'nomad',
    processes: {
      web: { port: 8080, replicas: 1, health: { path: '/healthz', interval: '1s', timeout: '1s' } },
    },
    deployPolicy: { minHealthyTime: '200ms', healthTimeout: '10s' },
    ...extra,
  });

let nextId = 1;
const release = (
  app: string,
  image: string,
  s: Infraspec,
  secrets: Record<string, string> = {},
): TargetRelease => {
  const id = nextId++;
  return {
    app,
    id,
    deploymentId: `d${id}`,
    imageRef: image,
    commitSha: 'c0ffee',
    spec: s,
    secrets,
  };
};

describe('the nomad target', () => {
  let nomad: FakeNomad;
  let target: Target;
  const lines: string[] = [];
  const call = (): TargetCall => ({
    signal: AbortSignal.timeout(30_000),
    log: (l) => lines.push(l),
    redact: [],
  });
  const versions = (id: string) => nomad.versions(id).length;

  beforeAll(async () => {
    nomad = await startFakeNomad({ token: TOKEN, tickMs: 20 });
    target = nomadTarget({
      NORN_NOMAD_ADDR: nomad.addr,
      NORN_NOMAD_TOKEN: TOKEN,
      NORN_CONSUL_ADDR: nomad.consulAddr,
    });
  });
  afterAll(async () => {
    await nomad?.close();
  });

  it('keeps secrets in a Variable the job reads, never in the job, and the token only in its header', async () => {
    const app = 'nt-secrets';
    const secrets = { API_KEY: 'sk-live-5up3r-s3cret', DATABASE_URL: 'postgres://u:pw-9x@db/app' };
    const r = release(app, IMAGES.v1, webSpec(app, { secrets: ['API_KEY'] }), secrets);
    const applied = await target.apply(r, call());
    const job = JSON.stringify(nomad.job(app));
    for (const v of Object.values(secrets)) expect(job).not.toContain(v);
    expect(JSON.stringify(applied)).not.toContain(secrets.API_KEY);
    expect(nomad.variable(`nomad/jobs/${app}`)?.['Items']).toEqual(secrets);
    expect(job).toContain(`nomadVar \\"nomad/jobs/${app}\\"`);
    expect(nomad.job(app)!['Meta']).toMatchObject({
      'norn.app': app,
      'norn.release': String(r.id),
      'norn.commit': 'c0ffee',
    });
    // Every request carried the token, and nothing norn logged did.
    const mine = nomad.requests.filter((q) => q.path.includes(app));
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.every((q) => q.headers['x-nomad-token'] === TOKEN)).toBe(true);
    expect(lines.join('\n')).not.toContain(TOKEN);
    expect((await target.waitHealthy(r, call())).ok).toBe(true);
    // Teardown takes the Variable too.
    await target.remove(app, call());
    expect(nomad.variable(`nomad/jobs/${app}`)).toBeUndefined();
  }, 30_000);

  it('plans before it registers, keeping the diff, and registers nothing again for the same release', async () => {
    const app = 'nt-plan';
    const s = webSpec(app);
    const r1 = release(app, IMAGES.v1, s);
    const first = await target.apply(r1, call());
    expect(first.plan).toEqual([expect.objectContaining({ object: app, change: 'Added' })]);
    const planned = nomad.requests.filter(
      (q) => q.method === 'POST' && q.path === `/v1/job/${app}/plan`,
    );
    expect(planned).toHaveLength(1);
    expect(versions(app)).toBe(1);
    // A re-run of submit (the worker died after register): no plan, no register, no version.
    const again = await target.apply(r1, call());
    expect(again.plan).toEqual([]);
    expect(versions(app)).toBe(1);
    expect(lines.at(-1)).toMatch(/already has release/);

    await target.waitHealthy(r1, call());
    const r2 = release(app, IMAGES.v2, s);
    const second = await target.apply(r2, call());
    expect(second.plan![0]).toMatchObject({ object: app, change: 'Edited' });
    expect(second.plan![0]!.changes.join('\n')).toContain(IMAGES.v2);
    expect(versions(app)).toBe(2);
  }, 30_000);

  it('refuses to overwrite a change someone made between plan and register (EnforceIndex)', async () => {
    const app = 'nt-race';
    const s = webSpec(app);
    await target.apply(release(app, IMAGES.v1, s), call());
    // A proxy that, once norn has planned, registers another version of the job first.
    const proxy = await raceProxy(nomad, app);
    const racing = nomadTarget({ NORN_NOMAD_ADDR: proxy.addr, NORN_NOMAD_TOKEN: TOKEN });
    const err = await racing.apply(release(app, IMAGES.v2, s), call()).catch((e: unknown) => e);
    await proxy.close();
    expect(isNornError(err) && err.code).toBe('CONFLICT');
    expect((err as Error).message).toMatch(
      /changed by someone else after norn planned it.*nothing was overwritten/,
    );
    expect((err as Error).message).toMatch(/conflicting job modify index/);
    // The other change stands: norn's image never got in.
    expect(JSON.stringify(nomad.job(app))).not.toContain(IMAGES.v2);
    expect(nomad.job(app)!['Meta']!['racer']).toBe('yes');
  }, 30_000);

  it('registers a periodic job per scheduled process and deregisters one the spec dropped', async () => {
    const app = 'nt-cron';
    const withCron = webSpec(app, {
      processes: {
        web: { port: 8080, health: { path: '/healthz' } },
        report: { command: 'echo report', schedule: '*/5 * * * *', timezone: 'Europe/Oslo' },
      },
    });
    const applied = await target.apply(release(app, IMAGES.v1, withCron), call());
    expect(applied.schedules).toEqual([`${app}-report`]);
    const periodic = nomad.job(`${app}-report`)!;
    expect(periodic['Type']).toBe('batch');
    expect(periodic['Periodic']).toMatchObject({
      Enabled: true,
      Spec: '*/5 * * * *',
      SpecType: 'cron',
      TimeZone: 'Europe/Oslo',
      ProhibitOverlap: true,
    });
    expect((nomad.job(app)!['TaskGroups'] as { Name: string }[]).map((g) => g.Name)).toEqual([
      'web',
    ]);
    expect((await target.live(app)).schedules).toEqual([`${app}-report`]);

    await target.apply(release(app, IMAGES.v1, webSpec(app)), call());
    expect(nomad.job(`${app}-report`)!['Stop']).toBe(true);
    expect((await target.live(app)).schedules).toEqual([]);
    expect(lines.join('\n')).toContain(`deregistered Nomad job ${app}-report`);
  }, 30_000);

  it("fails a crash loop with its task events and exit code, reports Nomad's auto-revert, and does not roll back a second time", async () => {
    const app = 'nt-crash';
    const s = webSpec(app);
    const r1 = release(app, IMAGES.v1, s);
    await target.apply(r1, call());
    expect((await target.waitHealthy(r1, call())).ok).toBe(true);
    const r2 = release(app, 'registry.test/norn-tc:crashloop', s);
    await target.apply(r2, call());
    const seen: TargetProgress[] = [];
    const t0 = Date.now();
    const verdict = await target.waitHealthy(r2, { ...call(), onProgress: (p) => seen.push(p) });
    expect(verdict.ok).toBe(false);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(verdict.problem).toMatch(/Failed due to unhealthy allocations/);
    expect(verdict.problem).toMatch(/task web dead \(failed\).*Terminated \(exit code 1\)/);
    expect(verdict.problem).toMatch(/Not Restarting/);
    expect(verdict.problem).toContain(`Nomad reverted to job version 0 (release ${r1.id})`);
    expect(seen.some((p) => p.group === 'web' && (p.unhealthy ?? 0) > 0)).toBe(true);
    // Nomad's revert is the roll back: norn registers nothing more for the service job.
    await waitFor(() =>
      nomad.job(app)!['Meta']!['norn.release'] === String(r1.id) ? true : undefined,
    );
    const before = versions(app);
    await target.rollBack({ app, failed: { id: r2.id }, previous: r1 }, call());
    expect(versions(app)).toBe(before);
    expect(lines.join('\n')).toMatch(/Nomad already reverted job nt-crash to version 2/);
    // A re-run of submit for the failed release does not register it again either.
    await target.apply(r2, call());
    expect(versions(app)).toBe(before);
  }, 40_000);

  it('reports progress per task group while the deployment rolls', async () => {
    const app = 'nt-progress';
    const s = webSpec(app, {
      processes: {
        web: { port: 8080, replicas: 2, health: { path: '/healthz' } },
        worker: { replicas: 1 },
      },
    });
    const r = release(app, IMAGES.v1, s);
    await target.apply(r, call());
    const seen: TargetProgress[] = [];
    expect((await target.waitHealthy(r, { ...call(), onProgress: (p) => seen.push(p) })).ok).toBe(
      true,
    );
    const last = (g: string) => seen.filter((p) => p.group === g).at(-1);
    expect(last('web')).toMatchObject({
      group: 'web',
      desired: 2,
      placed: 2,
      ready: 2,
      unhealthy: 0,
    });
    expect(last('worker')).toMatchObject({ group: 'worker', desired: 1, ready: 1 });
    expect(seen.some((p) => p.group === 'web' && p.ready < 2)).toBe(true);
    // Followed with blocking queries, not polled.
    const blocking = nomad.requests.filter(
      (q) => q.path.startsWith('/v1/deployment/') && q.query['index'],
    );
    expect(blocking.length).toBeGreaterThan(0);
    expect(blocking.every((q) => q.query['wait'])).toBe(true);
  }, 30_000);

  it('watches the allocations of a job Nomad makes no deployment for, within healthTimeout', async () => {
    const app = 'nt-nodeploy';
    const r = release(app, IMAGES.v1, webSpec(app));
    await registerRaw(nomad, rawJob(app, { 'norn.app': app, 'norn.release': String(r.id) }, true));
    expect(nomad.deployments(app)).toEqual([]);
    const verdict = await target.waitHealthy(r, call());
    expect(verdict.ok).toBe(true);
    expect(verdict.healthyForMs).toBeGreaterThanOrEqual(200);
    expect(lines.join('\n')).toMatch(/no update block, so Nomad makes no deployment/);
  }, 30_000);

  it("routes through Nomad's own service discovery when there is no Consul", async () => {
    const native = nomadTarget({ NORN_NOMAD_ADDR: nomad.addr, NORN_NOMAD_TOKEN: TOKEN });
    const app = 'nt-native';
    const r = release(app, IMAGES.v2, webSpec(app));
    await native.apply(r, call());
    const job = nomad.job(app)!;
    expect(
      (job['TaskGroups'] as { Services: { Provider: string }[] }[])[0]!.Services[0]!.Provider,
    ).toBe('nomad');
    expect((await native.waitHealthy(r, call())).ok).toBe(true);
    const address = await native.address(app, 'web', r.spec);
    expect(nomad.bodyAt(address.host, address.port)).toBe('v2');
    expect(nomad.requests.some((q) => q.path === `/v1/service/${app}-web`)).toBe(true);
  }, 30_000);

  it('stops the jobs on remove, or purges them with NORN_NOMAD_PURGE=true', async () => {
    const app = 'nt-purge';
    const withCron = webSpec(app, {
      processes: {
        web: { port: 8080, health: { path: '/healthz' } },
        nightly: { command: 'echo', schedule: '0 3 * * *' },
      },
    });
    await target.apply(release(app, IMAGES.v1, withCron), call());
    const purging = nomadTarget({
      NORN_NOMAD_ADDR: nomad.addr,
      NORN_NOMAD_TOKEN: TOKEN,
      NORN_NOMAD_PURGE: 'true',
    });
    expect((await purging.remove(app, call())).sort()).toEqual([`${app}-nightly`, `${app}/web/0`]);
    expect(nomad.job(app)).toBeUndefined();
    expect(nomad.job(`${app}-nightly`)).toBeUndefined();

    const kept = 'nt-stop';
    await target.apply(release(kept, IMAGES.v1, webSpec(kept)), call());
    await target.remove(kept, call());
    expect(nomad.job(kept)!['Stop']).toBe(true);
    expect(nomad.versions(kept).length).toBeGreaterThan(0);
  }, 30_000);

  it('says a refused token is the token, without the token', async () => {
    const wrong = nomadTarget({ NORN_NOMAD_ADDR: nomad.addr, NORN_NOMAD_TOKEN: 'wrong-token-xyz' });
    const err = await wrong.live('nt-any').catch((e: unknown) => e);
    expect(isNornError(err) && err.code).toBe('UNAVAILABLE');
    expect((err as Error).message).toMatch(/403.*check that NORN_NOMAD_TOKEN/);
    expect((err as Error).message).not.toContain('wrong-token-xyz');
  });

  it('refuses what Nomad cannot run before sending anything, naming the infraspec path', async () => {
    const app = 'nt-refused';
    const s = webSpec(app, { volumes: [{ name: 'data', mount: '/data', hostPath: '/srv/data' }] });
    const before = nomad.requests.length;
    const err = await target.apply(release(app, IMAGES.v1, s), call()).catch((e: unknown) => e);
    expect(isNornError(err) && err.code).toBe('SPEC_INVALID');
    expect((err as Error).message).toContain('volumes[0].hostPath');
    expect(nomad.requests.slice(before).filter((q) => q.method !== 'GET')).toEqual([]);
  });
});

async function waitFor<T>(fn: () => T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A proxy to the fake that, right after it answered norn's plan of `app`, registers another
 * version of the job (as a colleague's `nomad job run` would): norn's register then comes with a
 * JobModifyIndex that is no longer the job's.
 */
async function raceProxy(nomad: FakeNomad, app: string) {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      const answer = await fetch(`${nomad.addr}${req.url}`, {
        method: req.method,
        headers: Object.fromEntries(
          Object.entries(req.headers).filter(
            ([k]) => !['host', 'content-length', 'connection'].includes(k),
          ),
        ) as Record<string, string>,
        ...(body.length ? { body } : {}),
      });
      const text = await answer.text();
      if (req.method === 'POST' && req.url?.startsWith(`/v1/job/${app}/plan`)) {
        const job = nomad.job(app)!;
        await registerRaw(nomad, {
          ...stripServerFields(job),
          Meta: { ...(job['Meta'] as Record<string, string>), racer: 'yes' },
        });
      }
      res.writeHead(answer.status, {
        'Content-Type': answer.headers.get('content-type') ?? 'application/json',
      });
      res.end(text);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    addr: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** What the server sets on a job it read back (a register may not carry those). */
const SERVER_FIELDS = [
  'Version',
  'CreateIndex',
  'ModifyIndex',
  'JobModifyIndex',
  'SubmitTime',
  'Status',
  'StatusDescription',
  'Stable',
  'Stop',
];

/** A job as read back, without what the server sets. */
const stripServerFields = (job: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(job).filter(([k]) => !SERVER_FIELDS.includes(k)));
