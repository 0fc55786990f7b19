/**
 * The fake Nomad (test/support/nomad) against what real Nomad does: the API docs' two example jobs
 * are accepted unchanged, decoding and validation refuse what Nomad refuses with its status codes
 * and go-multierror text, EnforceIndex and re-registration keep Nomad's version semantics,
 * blocking queries block, and the simulated scheduler rolls, fails and auto-reverts deployments.
 */
import { readFileSync } from 'node:fs';
import { onTestFinished, describe, expect, it } from 'vitest';
import { checkJob } from '../support/nomad/schema.js';
import { type FakeNomad, type FakeNomadOptions, startFakeNomad } from '../support/nomad/server.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- Nomad's JSON */
type Json = any;

const fixture = (name: string): Json =>
  JSON.parse(readFileSync(new URL(`../fixtures/nomad/${name}`, import.meta.url), 'utf8'));
const ms = 1_000_000;

async function start(opts: FakeNomadOptions = {}): Promise<FakeNomad> {
  const nomad = await startFakeNomad({ tickMs: 20, ...opts });
  onTestFinished(() => nomad.close());
  return nomad;
}

async function call(
  nomad: FakeNomad,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const token: Record<string, string> = nomad.token ? { 'X-Nomad-Token': nomad.token } : {};
  const res = await fetch(nomad.addr + path, {
    method,
    headers: { 'Content-Type': 'application/json', ...token, ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: Json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json, index: Number(res.headers.get('X-Nomad-Index')) };
}

async function until<T>(
  what: string,
  fn: () => T | undefined | false,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const rolling = {
  MaxParallel: 1,
  MinHealthyTime: 200 * ms,
  HealthyDeadline: 2000 * ms,
  ProgressDeadline: 5000 * ms,
  AutoRevert: true,
};

function webJob(
  id: string,
  image: string,
  opts: { update?: Json; count?: number; provider?: string } = {},
): Json {
  const group: Json = {
    Name: 'web',
    Count: opts.count ?? 2,
    Networks: [{ DynamicPorts: [{ Label: 'http', To: 8080 }] }],
    Services: [{ Name: `${id}-web`, PortLabel: 'http', Provider: opts.provider ?? 'nomad' }],
    Tasks: [
      {
        Name: 'app',
        Driver: 'docker',
        Config: { image, ports: ['http'] },
        Resources: { CPU: 100, MemoryMB: 64 },
      },
    ],
  };
  if (opts.update !== undefined) group.Update = opts.update;
  return { ID: id, Name: id, Type: 'service', Datacenters: ['dc1'], TaskGroups: [group] };
}

const live = (nomad: FakeNomad, id: string): Json[] =>
  nomad
    .allocations(id)
    .filter((a) => a.DesiredStatus === 'run' && ['pending', 'running'].includes(a.ClientStatus));

describe('fake Nomad: decoding and validation', () => {
  it('accepts both API-docs example jobs unchanged, with Nomad defaults filled in', async () => {
    const nomad = await start();
    for (const name of ['jobs-create-sample-payload.json', 'json-jobs-syntax-example.json']) {
      const body = fixture(name);
      expect(Object.keys(body)).toEqual(['Job']);
      const res = await call(nomad, 'PUT', '/v1/jobs', body);
      expect(res.status, res.text).toBe(200);
      expect(res.json.EvalID).toMatch(/^[0-9a-f-]{36}$/);
      expect(res.json.JobModifyIndex).toBeGreaterThan(0);
    }
    const cache = (await call(nomad, 'GET', '/v1/job/cache')).json;
    expect(cache).toMatchObject({
      Type: 'service',
      Name: 'cache',
      NodePool: 'prod',
      Priority: 50,
      Region: 'global',
      Namespace: 'default',
    });
    expect(cache.TaskGroups[0].Count).toBe(1);
    expect(cache.TaskGroups[0].Tasks[0].Resources).toMatchObject({ CPU: 100, MemoryMB: 300 });
    expect(cache.TaskGroups[0].Services[0].Provider).toBe('consul');
    expect(cache.TaskGroups[0].Update).toMatchObject({
      MaxParallel: 1,
      MinHealthyTime: 10_000 * ms,
    });
    const example = (await call(nomad, 'GET', '/v1/job/example')).json;
    expect(example.TaskGroups[0].Update).toMatchObject({
      MaxParallel: 1,
      HealthyDeadline: 180_000 * ms,
    });
    expect(example.TaskGroups[0].Services[0].Provider).toBe('nomad');
    const noPool = fixture('jobs-create-sample-payload.json');
    noPool.Job.NodePool = 'staging';
    const refused = await call(nomad, 'PUT', '/v1/jobs', noPool);
    expect(refused.status).toBe(500);
    expect(refused.text).toBe(
      '1 error occurred:\n\t* job "cache" is in nonexistent node pool "staging"\n\n',
    );
  });

  it('refuses an unknown field naming its path, and drops it with unknownFields "ignore"', async () => {
    const job = webJob('typo', 'app:v1');
    job.TaskGroups[0].Tasks[0].Resources.Memory = 128;
    job.TaskGroups[0].Tasks[0].Resources.memorymb = 128;
    delete job.TaskGroups[0].Tasks[0].Resources.MemoryMB;
    const strict = await start();
    const res = await call(strict, 'PUT', '/v1/jobs', { Job: job });
    expect(res.status).toBe(400);
    expect(res.text).toContain('Job.TaskGroups[0].Tasks[0].Resources.Memory: unknown field');
    expect(res.text).toContain(
      'Job.TaskGroups[0].Tasks[0].Resources.memorymb: field is spelled MemoryMB',
    );
    expect(strict.job('typo')).toBeUndefined();

    const lax = await start({ unknownFields: 'ignore' });
    const ok = await call(lax, 'PUT', '/v1/jobs', { Job: job, Bogus: true });
    expect(ok.status, ok.text).toBe(200);
    const stored = lax.job('typo')!;
    expect(stored.TaskGroups[0].Tasks[0].Resources).not.toHaveProperty('Memory');
    // encoding/json matches field names case-insensitively
    expect(stored.TaskGroups[0].Tasks[0].Resources.MemoryMB).toBe(128);
  });

  it('refuses a wrong JSON type naming its path (HTTP 400, as a decode error)', async () => {
    const nomad = await start({ unknownFields: 'ignore' });
    const job = webJob('types', 'app:v1');
    job.TaskGroups[0].Tasks[0].Resources.MemoryMB = '256';
    job.TaskGroups[0].Update = { MinHealthyTime: '10s' };
    const res = await call(nomad, 'PUT', '/v1/jobs', { Job: job });
    expect(res.status).toBe(400);
    expect(res.text).toContain(
      'Job.TaskGroups[0].Tasks[0].Resources.MemoryMB: expected integer, got string',
    );
    expect(res.text).toContain(
      'Job.TaskGroups[0].Update.MinHealthyTime: expected integer nanoseconds, got string',
    );
    expect(
      checkJob({
        ID: 'x',
        Version: -1,
        Meta: { a: 1 },
        TaskGroups: [{ Tasks: [{ Config: { any: [1] } }] }],
      }),
    ).toEqual([
      'Job.Version: expected unsigned integer, got integer',
      'Job.Meta.a: expected string, got integer',
    ]);
    expect(checkJob({ Datacenters: null, Periodic: null })).toEqual([]);
  });

  it("answers validation failures with HTTP 500 and go-multierror's text, nested for groups and tasks", async () => {
    const nomad = await start();
    const none = await call(nomad, 'PUT', '/v1/jobs', { Job: { ID: 'empty', TaskGroups: [] } });
    expect(none.status).toBe(500);
    expect(none.text).toBe('1 error occurred:\n\t* Missing job task groups\n\n');
    const two = await call(nomad, 'PUT', '/v1/jobs', {
      Job: { ID: 'bad id', Type: 'bogus', TaskGroups: [] },
    });
    expect(two.text).toBe(
      '3 errors occurred:\n\t* Job ID contains a space\n\t* Invalid job type: "bogus"\n\t* Missing job task groups\n\n',
    );
    const job = webJob('nested', 'app:v1', {
      update: { MinHealthyTime: 10_000 * ms, HealthyDeadline: 5_000 * ms },
    });
    job.TaskGroups[0].Tasks[0].Driver = '';
    job.TaskGroups[0].Tasks[0].Resources.MemoryMB = 5;
    const nested = await call(nomad, 'PUT', '/v1/jobs', { Job: job });
    expect(nested.status).toBe(500);
    // Resources' and MeetsMinResources' lists are appended unflattened, so they nest twice.
    const minimum = '1 error occurred:\n\t* minimum MemoryMB value is 10; got 5\n\n';
    const task = `2 errors occurred:\n\t* Missing task driver\n\t* 1 error occurred:\n\t* ${minimum}\n\n\n\n`;
    const update = 'Minimum healthy time must be less than healthy deadline: 10s > 5s';
    const group = `2 errors occurred:\n\t* ${update}\n\t* Task app validation failed: ${task}\n\n`;
    expect(nested.text).toBe(
      `1 error occurred:\n\t* Task group web validation failed: ${group}\n\n`,
    );
    const check = webJob('checks', 'app:v1');
    check.TaskGroups[0].Services[0].Checks = [
      { Type: 'http', Interval: 500 * ms, Timeout: 1000 * ms, Path: '/health' },
    ];
    check.TaskGroups[0].Tasks[0].Services = [
      { Name: 'task-svc', PortLabel: 'nope', Provider: 'nomad' },
    ];
    const bad = await call(nomad, 'PUT', '/v1/jobs', { Job: check });
    expect(bad.status).toBe(500);
    expect(bad.text).toContain(
      'Service[0] checks-web validation failed: 1 error occurred:\n\t* interval (500ms) cannot be lower than 1s',
    );
    expect(bad.text).toContain('port label "nope" referenced by services task-svc does not exist');
    const groupPort = webJob('gport', 'app:v1');
    groupPort.TaskGroups[0].Services[0].PortLabel = 'nope';
    // Nomad checks only task services' port labels at submission.
    expect((await call(nomad, 'PUT', '/v1/jobs', { Job: groupPort })).status).toBe(200);
    const periodic = {
      ...webJob('cron', 'app:v1'),
      Periodic: { Spec: 'not a cron', TimeZone: 'Mars/Olympus' },
    };
    const p = await call(nomad, 'PUT', '/v1/jobs', { Job: periodic });
    expect(p.text).toContain('Periodic can only be used with "batch" or "sysbatch" scheduler');
    expect(p.text).toContain('Invalid time zone "Mars/Olympus"');
    expect(p.text).toContain('Invalid cron spec "not a cron"');
    const plan = await call(nomad, 'POST', '/v1/job/empty/plan', {
      Job: { ID: 'empty', TaskGroups: [] },
      Diff: true,
    });
    expect(plan.status).toBe(500);
    expect(plan.text).toBe(none.text);
  });

  it('stores a periodic batch job without placing allocations; datacenters default to ["*"]', async () => {
    const nomad = await start();
    const job = {
      ...webJob('nightly', 'app:v1'),
      Type: 'batch',
      Datacenters: [],
      Periodic: { Spec: '0 3 * * *', TimeZone: 'Europe/Berlin' },
    };
    delete job.TaskGroups[0].Update;
    const res = await call(nomad, 'PUT', '/v1/jobs', { Job: job });
    expect(res.status, res.text).toBe(200);
    await new Promise((r) => setTimeout(r, 150));
    expect(nomad.job('nightly')).toMatchObject({
      Datacenters: ['*'],
      Periodic: { SpecType: 'cron', Enabled: true },
    });
    expect(nomad.allocations('nightly')).toEqual([]);
  });
});

describe('fake Nomad: registration semantics', () => {
  it('enforces the job modify index with Nomad messages; plan answers the index to enforce and a diff', async () => {
    const nomad = await start();
    const v1 = webJob('idx', 'app:v1', { update: rolling });
    const planNew = await call(nomad, 'POST', '/v1/job/idx/plan', { Job: v1, Diff: true });
    expect(planNew.json).toMatchObject({ JobModifyIndex: 0, Diff: { Type: 'Added', ID: 'idx' } });
    expect(planNew.json.Annotations.DesiredTGUpdates.web).toMatchObject({ Place: 2, Stop: 0 });
    const first = await call(nomad, 'PUT', '/v1/jobs', {
      Job: v1,
      EnforceIndex: true,
      JobModifyIndex: 0,
    });
    expect(first.status, first.text).toBe(200);
    const again = await call(nomad, 'PUT', '/v1/jobs', {
      Job: v1,
      EnforceIndex: true,
      JobModifyIndex: 0,
    });
    expect(again).toMatchObject({
      status: 500,
      text: 'Enforcing job modify index 0: job already exists',
    });
    const current = nomad.job('idx')!.JobModifyIndex;
    const v2 = webJob('idx', 'app:v2', { update: rolling });
    const plan = await call(nomad, 'POST', '/v1/job/idx/plan', { Job: v2, Diff: true });
    expect(plan.json.JobModifyIndex).toBe(current);
    expect(plan.json.Diff.Type).toBe('Edited');
    expect(plan.json.Diff.TaskGroups[0].Tasks[0]).toMatchObject({ Type: 'Edited', Name: 'app' });
    expect(plan.json.Diff.TaskGroups[0].Tasks[0].Objects[0]).toMatchObject({
      Name: 'Config',
      Fields: [{ Name: 'image', Old: 'app:v1', New: 'app:v2' }],
    });
    const wrong = await call(nomad, 'POST', '/v1/job/idx', {
      Job: v2,
      EnforceIndex: true,
      JobModifyIndex: current + 7,
    });
    expect(wrong.text).toBe(
      `Enforcing job modify index ${current + 7}: job exists with conflicting job modify index: ${current}`,
    );
    const missing = await call(nomad, 'PUT', '/v1/jobs', {
      Job: webJob('other', 'a:1'),
      EnforceIndex: true,
      JobModifyIndex: 5,
    });
    expect(missing.text).toBe('Enforcing job modify index 5: job does not exist');
    const ok = await call(nomad, 'POST', '/v1/job/idx', {
      Job: v2,
      EnforceIndex: true,
      JobModifyIndex: plan.json.JobModifyIndex,
    });
    expect(ok.status, ok.text).toBe(200);
    expect(nomad.job('idx')!.Version).toBe(1);
    const mismatch = await call(nomad, 'POST', '/v1/job/elsewhere', { Job: v2 });
    expect(mismatch).toMatchObject({ status: 400, text: 'Job ID does not match name' });
  });

  it('keeps the Version when an identical job is re-registered, but still creates an evaluation', async () => {
    const nomad = await start();
    const job = webJob('same', 'app:v1', { update: rolling });
    const a = await call(nomad, 'PUT', '/v1/jobs', { Job: job });
    const b = await call(nomad, 'PUT', '/v1/jobs', { Job: structuredClone(job) });
    expect(b.json.EvalID).not.toBe(a.json.EvalID);
    expect((await call(nomad, 'GET', `/v1/evaluation/${b.json.EvalID}`)).json.TriggeredBy).toBe(
      'job-register',
    );
    expect(nomad.job('same')!.Version).toBe(0);
    expect((await call(nomad, 'GET', '/v1/job/same/versions')).json.Versions).toHaveLength(1);
    await call(nomad, 'PUT', '/v1/jobs', { Job: webJob('same', 'app:v2', { update: rolling }) });
    const versions = (await call(nomad, 'GET', '/v1/job/same/versions')).json.Versions;
    expect(versions.map((v: Json) => v.Version)).toEqual([1, 0]);
  });

  it('blocks a query until the index passes, then answers a higher X-Nomad-Index', async () => {
    const nomad = await start();
    await call(nomad, 'PUT', '/v1/jobs', { Job: webJob('block', 'app:v1', { update: rolling }) });
    // Status changes write the job too; block only once the deployment is done.
    await until('deployed', () => nomad.deployments('block')[0]?.Status === 'successful');
    const first = await call(nomad, 'GET', '/v1/job/block');
    expect(first.index).toBeGreaterThan(0);
    const t0 = Date.now();
    const idle = await call(nomad, 'GET', `/v1/job/block?index=${first.index + 1000}&wait=300ms`);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(280);
    expect(idle.status).toBe(200);
    const t1 = Date.now();
    const blocked = call(
      nomad,
      'GET',
      `/v1/job/block/versions?index=${(await call(nomad, 'GET', '/v1/job/block')).index}&wait=5s`,
    );
    await new Promise((r) => setTimeout(r, 300));
    const write = await call(nomad, 'PUT', '/v1/jobs', {
      Job: webJob('block', 'app:v2', { update: rolling }),
    });
    expect(write.status).toBe(200);
    const woke = await blocked;
    expect(Date.now() - t1).toBeGreaterThanOrEqual(280);
    expect(Date.now() - t1).toBeLessThan(4000);
    expect(woke.index).toBeGreaterThan(first.index);
    expect(woke.json.Versions[0].Version).toBe(1);
    expect(nomad.requests.some((r) => r.query.index !== undefined && r.query.wait === '5s')).toBe(
      true,
    );
    expect((await call(nomad, 'GET', '/v1/job/block?index=1&wait=5')).status).toBe(400);
  });
});

describe('fake Nomad: deployments', () => {
  it('rolls MaxParallel 1 at a time to a successful deployment and marks the version stable', async () => {
    const nomad = await start();
    await call(nomad, 'PUT', '/v1/jobs', {
      Job: webJob('roll', 'registry.test/app:v1', { update: rolling }),
    });
    await until('v0 deployed', () => nomad.deployments('roll')[0]?.Status === 'successful');
    await call(nomad, 'PUT', '/v1/jobs', {
      Job: webJob('roll', 'registry.test/app:v2', { update: rolling }),
    });
    let maxLive = 0;
    let maxInflight = 0;
    const d = await until('v1 deployed', () => {
      maxLive = Math.max(maxLive, live(nomad, 'roll').length);
      maxInflight = Math.max(
        maxInflight,
        live(nomad, 'roll').filter((a) => a.JobVersion === 1 && !a.DeploymentStatus).length,
      );
      const dep = nomad.deployments('roll')[0];
      return dep?.JobVersion === 1 && dep.Status !== 'running' && dep;
    });
    expect(d).toMatchObject({
      Status: 'successful',
      StatusDescription: 'Deployment completed successfully',
    });
    expect(d.TaskGroups.web).toMatchObject({
      DesiredTotal: 2,
      PlacedAllocs: 2,
      HealthyAllocs: 2,
      UnhealthyAllocs: 0,
      AutoRevert: true,
    });
    expect(maxLive).toBeLessThanOrEqual(3);
    expect(maxInflight).toBe(1);
    const allocs = nomad.allocations('roll');
    expect(live(nomad, 'roll').map((a) => a.JobVersion)).toEqual([1, 1]);
    expect(
      allocs
        .filter((a) => a.JobVersion === 0)
        .every((a) => a.DesiredStatus === 'stop' && a.ClientStatus === 'complete'),
    ).toBe(true);
    expect(nomad.versions('roll').map((v) => [v.Version, v.Stable])).toEqual([
      [1, true],
      [0, true],
    ]);
    const port = live(nomad, 'roll')[0].AllocatedResources.Shared.Ports[0];
    expect(port).toMatchObject({ Label: 'http', To: 8080 });
    expect(port.Value).toBeGreaterThanOrEqual(20000);
    expect(nomad.bodyAt('127.0.0.1', port.Value)).toBe('v2');
    const latest = await call(nomad, 'GET', '/v1/job/roll/deployment');
    expect(latest.json.ID).toBe(d.ID);
    expect((await call(nomad, 'GET', `/v1/deployment/${d.ID}`)).json.JobVersion).toBe(1);
    const stubs = (await call(nomad, 'GET', '/v1/job/roll/allocations')).json;
    expect(stubs[0]).not.toHaveProperty('Job');
    expect((await call(nomad, 'GET', `/v1/allocation/${stubs[0].ID}`)).json.Job.ID).toBe('roll');
  });

  it('fails a crash-looping deployment with task events and auto-reverts to the last stable version', async () => {
    const nomad = await start();
    await call(nomad, 'PUT', '/v1/jobs', {
      Job: webJob('crash', 'registry.test/app:v1', { update: rolling, count: 1 }),
    });
    await until('v0 deployed', () => nomad.deployments('crash')[0]?.Status === 'successful');
    await call(nomad, 'PUT', '/v1/jobs', {
      Job: webJob('crash', 'registry.test/app:crashloop', { update: rolling, count: 1 }),
    });
    const failed = await until('v1 failed', () =>
      nomad.deployments('crash').find((d) => d.JobVersion === 1 && d.Status === 'failed'),
    );
    expect(failed.StatusDescription).toBe(
      'Failed due to unhealthy allocations - rolling back to job version 0',
    );
    const bad = nomad.allocations('crash').find((a) => a.JobVersion === 1)!;
    expect(bad).toMatchObject({ ClientStatus: 'failed', DeploymentStatus: { Healthy: false } });
    const state = bad.TaskStates.app;
    expect(state).toMatchObject({ State: 'dead', Failed: true, Restarts: 2 });
    const types = state.Events.map((e: Json) => e.Type);
    expect(types.slice(0, 4)).toEqual(['Received', 'Task Setup', 'Started', 'Terminated']);
    expect(types).toContain('Restarting');
    expect(state.Events.find((e: Json) => e.Type === 'Terminated')).toMatchObject({
      ExitCode: 1,
      DisplayMessage: 'Exit Code: 1',
    });
    expect(state.Events.at(-1)).toMatchObject({
      Type: 'Not Restarting',
      FailsTask: true,
      DisplayMessage: 'Exceeded allowed attempts 2 in interval 30m0s and mode is "fail"',
    });
    const reverted = await until('v2 deployed', () =>
      nomad.deployments('crash').find((d) => d.JobVersion === 2 && d.Status === 'successful'),
    );
    expect(reverted.StatusDescription).toBe('Deployment completed successfully');
    const job = nomad.job('crash')!;
    expect(job.Version).toBe(2);
    expect(job.TaskGroups[0].Tasks[0].Config.image).toBe('registry.test/app:v1');
    expect(nomad.versions('crash').map((v) => [v.Version, v.Stable])).toEqual([
      [2, true],
      [1, false],
      [0, true],
    ]);
  });

  it('replaces all at once without a deployment when MaxParallel is 0; no update block means the default one', async () => {
    const nomad = await start();
    const once = { MaxParallel: 0 };
    await call(nomad, 'PUT', '/v1/jobs', { Job: webJob('bulk', 'app:v1', { update: once }) });
    await until(
      'v0 running',
      () => live(nomad, 'bulk').filter((a) => a.ClientStatus === 'running').length === 2,
    );
    await call(nomad, 'PUT', '/v1/jobs', { Job: webJob('bulk', 'app:v2', { update: once }) });
    await until(
      'v1 running',
      () =>
        live(nomad, 'bulk').filter((a) => a.JobVersion === 1 && a.ClientStatus === 'running')
          .length === 2,
    );
    expect(live(nomad, 'bulk').every((a) => a.JobVersion === 1)).toBe(true);
    expect(nomad.deployments('bulk')).toEqual([]);
    expect((await call(nomad, 'GET', '/v1/job/bulk/deployment')).json).toBeNull();

    await call(nomad, 'PUT', '/v1/jobs', { Job: webJob('plain', 'app:v1') });
    expect(nomad.job('plain')!.TaskGroups[0].Update).toMatchObject({
      MaxParallel: 1,
      MinHealthyTime: 10_000 * ms,
      HealthCheck: 'checks',
    });
    expect(nomad.deployments('plain')).toHaveLength(1);
  });
  it('places one allocation per static port on its one node; the list stub has only its fields', async () => {
    const nomad = await start();
    const job = webJob('pinned', 'app:v1', { update: rolling });
    job.TaskGroups[0].Networks = [{ ReservedPorts: [{ Label: 'http', Value: 18080, To: 18080 }] }];
    await call(nomad, 'PUT', '/v1/jobs', { Job: job });
    await until('one running', () => live(nomad, 'pinned').length === 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(live(nomad, 'pinned')).toHaveLength(1);
    expect(nomad.deployments('pinned')[0]!.TaskGroups.web.PlacedAllocs).toBe(1);
    const stubs = (await call(nomad, 'GET', '/v1/job/pinned/allocations')).json as Json[];
    expect(Object.keys(stubs[0]!)).not.toContain('DeploymentID');
    expect(Object.keys(stubs[0]!)).not.toContain('Job');
    expect(stubs[0]).toMatchObject({ JobVersion: 0, TaskGroup: 'web', JobType: 'service' });
  });

  it('fails by healthy deadline when a task never turns healthy, and by progress deadline under manual health', async () => {
    const nomad = await start();
    const quick = {
      MaxParallel: 1,
      MinHealthyTime: 100 * ms,
      HealthyDeadline: 300 * ms,
      ProgressDeadline: 600 * ms,
    };
    const sick = webJob('sick', 'app:v1', { update: quick, count: 1 });
    sick.TaskGroups[0].Tasks[0].Env = { FAKE_NOMAD_UNHEALTHY: '1' };
    await call(nomad, 'PUT', '/v1/jobs', { Job: sick });
    const unhealthy = await until('sick failed', () =>
      nomad.deployments('sick').find((d) => d.Status === 'failed'),
    );
    expect(unhealthy.StatusDescription).toBe('Failed due to unhealthy allocations');
    expect(nomad.allocations('sick')[0]).toMatchObject({
      ClientStatus: 'running',
      DeploymentStatus: { Healthy: false },
    });
    const manual = webJob('manual', 'app:v1', {
      update: { ...quick, HealthCheck: 'manual', AutoRevert: true },
      count: 1,
    });
    await call(nomad, 'PUT', '/v1/jobs', { Job: manual });
    const stuck = await until('manual failed', () =>
      nomad.deployments('manual').find((d) => d.Status === 'failed'),
    );
    expect(stuck.StatusDescription).toBe(
      'Failed due to progress deadline - no stable job version to auto revert to',
    );
  });

  it('accepts a docker task without an image, as Nomad does not check driver config, and fails its allocation', async () => {
    const nomad = await start();
    const job = webJob('noimage', 'app:v1', { update: { MaxParallel: 0 }, count: 1 });
    delete job.TaskGroups[0].Tasks[0].Config.image;
    expect((await call(nomad, 'PUT', '/v1/jobs', { Job: job })).status).toBe(200);
    const alloc = await until('failed', () =>
      nomad.allocations('noimage').find((a) => a.ClientStatus === 'failed'),
    );
    const events = alloc.TaskStates.app.Events;
    expect(events.find((e: Json) => e.Type === 'Driver Failure').DriverError).toContain('image');
    expect((await call(nomad, 'DELETE', '/v1/job/never-registered')).json).toMatchObject({
      EvalID: '',
      JobModifyIndex: 0,
    });
  });
});

describe('fake Nomad: variables, services, tokens', () => {
  it('checks and sets variables, answering 409 with the current variable', async () => {
    const nomad = await start();
    const put = await call(nomad, 'PUT', '/v1/var/apps/web?cas=0', {
      Namespace: 'default',
      Path: 'apps/web',
      Items: { a: '1' },
    });
    expect(put.status, put.text).toBe(200);
    expect(put.json).toMatchObject({ Path: 'apps/web', Items: { a: '1' } });
    const m = put.json.ModifyIndex;
    const conflict = await call(nomad, 'PUT', '/v1/var/apps/web?cas=0', { Items: { a: '2' } });
    expect(conflict.status).toBe(409);
    expect(conflict.json).toMatchObject({ ModifyIndex: m, Items: { a: '1' } });
    const next = await call(nomad, 'PUT', `/v1/var/apps/web?cas=${m}`, { Items: { a: '2' } });
    expect(next.json.ModifyIndex).toBeGreaterThan(m);
    expect(next.json.CreateIndex).toBe(put.json.CreateIndex);
    expect((await call(nomad, 'GET', '/v1/var/apps/web')).json.Items).toEqual({ a: '2' });
    const list = (await call(nomad, 'GET', '/v1/vars?prefix=apps')).json;
    expect(list).toHaveLength(1);
    expect(list[0]).not.toHaveProperty('Items');
    expect((await call(nomad, 'DELETE', `/v1/var/apps/web?cas=${m}`)).status).toBe(409);
    expect(
      (await call(nomad, 'DELETE', `/v1/var/apps/web?cas=${next.json.ModifyIndex}`)).status,
    ).toBe(204);
    expect(await call(nomad, 'GET', '/v1/var/apps/web')).toMatchObject({
      status: 404,
      text: 'variable not found',
    });
    expect(nomad.variable('apps/web')).toBeUndefined();
  });

  it('registers native and Consul services of running allocations, passing once healthy; stop and purge', async () => {
    const nomad = await start({ consulToken: 'c0nsul' });
    const slow = { ...rolling, MinHealthyTime: 600 * ms };
    const job = webJob('svc', 'app:v1', { update: slow, count: 1 });
    const consulGroup = structuredClone(
      webJob('svc', 'app:v1', { update: slow, count: 1, provider: 'consul' }).TaskGroups[0],
    );
    consulGroup.Name = 'api';
    consulGroup.Services[0].Name = 'svc-api';
    job.TaskGroups.push(consulGroup);
    expect((await call(nomad, 'PUT', '/v1/jobs', { Job: job })).status).toBe(200);
    const consul = (path: string, token = 'c0nsul') =>
      fetch(nomad.consulAddr + path, { headers: { 'X-Consul-Token': token } });
    await until('api running', () =>
      live(nomad, 'svc').some((a) => a.TaskGroup === 'api' && a.ClientStatus === 'running'),
    );
    const early = await (await consul('/v1/health/service/svc-api?passing=true')).json();
    expect(early).toEqual([]);
    await until('deployed', () => nomad.deployments('svc')[0]?.Status === 'successful');
    const alloc = live(nomad, 'svc').find((a) => a.TaskGroup === 'web')!;
    const native = (await call(nomad, 'GET', '/v1/service/svc-web')).json;
    expect(native).toEqual([
      expect.objectContaining({
        ServiceName: 'svc-web',
        JobID: 'svc',
        AllocID: alloc.ID,
        Address: '127.0.0.1',
        Port: alloc.AllocatedResources.Shared.Ports[0].Value,
        Namespace: 'default',
        Datacenter: 'dc1',
      }),
    ]);
    expect((await call(nomad, 'GET', '/v1/service/svc-api')).json).toEqual([]);
    const catalog = await (await consul('/v1/catalog/service/svc-api')).json();
    expect(catalog).toEqual([
      expect.objectContaining({
        Node: 'fake-node',
        Address: '127.0.0.1',
        ServiceName: 'svc-api',
        ServiceAddress: '127.0.0.1',
      }),
    ]);
    const health = await (await consul('/v1/health/service/svc-api?passing=true')).json();
    expect(health).toHaveLength(1);
    expect(health[0].Service).toMatchObject({ Service: 'svc-api', Port: catalog[0].ServicePort });
    expect(health[0].Checks.every((c: Json) => c.Status === 'passing')).toBe(true);
    expect((await consul('/v1/catalog/service/svc-api', 'wrong')).status).toBe(403);

    const stop = await call(nomad, 'DELETE', '/v1/job/svc');
    expect(stop.status).toBe(200);
    expect(nomad.job('svc')).toMatchObject({ Stop: true, Version: 1 });
    expect(live(nomad, 'svc')).toEqual([]);
    expect((await call(nomad, 'GET', '/v1/service/svc-web')).json).toEqual([]);
    expect(await (await consul('/v1/catalog/service/svc-api')).json()).toEqual([]);
    await until('dead', () => nomad.job('svc')?.Status === 'dead');
    expect((await call(nomad, 'DELETE', '/v1/job/svc?purge=true')).status).toBe(200);
    expect(await call(nomad, 'GET', '/v1/job/svc')).toMatchObject({
      status: 404,
      text: 'job not found',
    });
  });

  it('refuses requests without the configured token with 403', async () => {
    const nomad = await start({ token: 's3cret' });
    const bare = await fetch(`${nomad.addr}/v1/jobs`);
    expect(bare.status).toBe(403);
    expect(await bare.text()).toBe('Permission denied');
    const wrong = await fetch(`${nomad.addr}/v1/jobs`, { headers: { 'X-Nomad-Token': 'nope' } });
    expect(wrong.status).toBe(403);
    const ok = await call(nomad, 'GET', '/v1/jobs');
    expect(ok).toMatchObject({ status: 200, json: [] });
    expect(nomad.requests.at(-1)!.headers['x-nomad-token']).toBe('s3cret');
  });
});
