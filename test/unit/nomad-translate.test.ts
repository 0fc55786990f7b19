import { describe, expect, it } from 'vitest';
import { isNornError } from '../../src/shared/errors.js';
import { parseInfraspec, type Infraspec } from '../../src/shared/spec/infraspec.js';
import type {
  DockerConfig,
  Job,
  NetworkResource,
  PeriodicConfig,
  Port,
  Resources,
  RestartPolicy,
  Service,
  ServiceCheck,
  Task,
  TaskGroup,
  Template,
  UpdateStrategy,
  VolumeMount,
  VolumeRequest,
} from '../../src/targets/nomad/api.js';
import { ns } from '../../src/targets/nomad/api.js';
import { toCronexpr } from '../../src/targets/nomad/cron.js';
import {
  periodicJobId,
  secretsSha256,
  serviceName,
  translateRelease,
  variablePath,
  type TranslateInput,
} from '../../src/targets/nomad/translate.js';

function specOf(doc: Record<string, unknown>): Infraspec {
  const parsed = parseInfraspec({ name: 'shop', ...doc });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  return parsed.spec;
}

const SECRET_VALUES = { API_KEY: 'sk-live-"quoted"\nline2', DATABASE_URL: 'postgres://u:pw@db/x' };

function inputOf(doc: Record<string, unknown>, over: Partial<TranslateInput> = {}): TranslateInput {
  return {
    app: 'shop',
    releaseId: 42,
    commitSha: 'abc123',
    imageRef: 'registry.local/shop:abc123',
    spec: specOf(doc),
    secretKeys: [],
    serviceProvider: 'consul',
    ...over,
  };
}

const web = { port: 8080, command: 'node server.js', health: { path: '/healthz' } };

/** The thrown SPEC_INVALID's problems (fails the test when nothing or something else is thrown). */
function refusal(input: TranslateInput): Array<{ path: string; message: string }> {
  try {
    translateRelease(input);
  } catch (err) {
    if (isNornError(err) && err.code === 'SPEC_INVALID')
      return (err.details as { problems: Array<{ path: string; message: string }> }).problems;
    throw err;
  }
  throw new Error('translateRelease did not refuse');
}

const group = (job: Job | null, name: string): TaskGroup => {
  const found = job?.TaskGroups?.find((g) => g.Name === name);
  if (!found) throw new Error(`no group ${name}`);
  return found;
};

describe('translateRelease: the service job', () => {
  it('is one job named after the app with a group per long-running process', () => {
    const { service, periodic } = translateRelease(
      inputOf(
        { processes: { web, worker: { command: 'node worker.js', replicas: 3 } } },
        { region: 'eu', namespace: 'apps', datacenters: ['dc1', 'dc2'] },
      ),
    );
    expect(periodic).toEqual([]);
    expect(service).toMatchObject({
      ID: 'shop',
      Name: 'shop',
      Type: 'service',
      Region: 'eu',
      Namespace: 'apps',
      Datacenters: ['dc1', 'dc2'],
      Meta: { 'norn.app': 'shop', 'norn.release': '42', 'norn.commit': 'abc123' },
    });
    expect(service!.TaskGroups!.map((g) => [g.Name, g.Count])).toEqual([
      ['web', 1],
      ['worker', 3],
    ]);
  });

  it('leaves Region, Namespace and Datacenters to Nomad when not given', () => {
    const job = translateRelease(inputOf({ processes: { web } })).service!;
    expect(Object.keys(job)).not.toContain('Region');
    expect(Object.keys(job)).not.toContain('Namespace');
    expect(Object.keys(job)).not.toContain('Datacenters');
  });

  it('builds the docker task: image, port label, /bin/sh -c command, resources', () => {
    const job = translateRelease(
      inputOf({
        processes: { web: { ...web, resources: { cpu: 250, memory: 512 } }, plain: {} },
      }),
    ).service!;
    expect(group(job, 'web').Tasks).toEqual([
      {
        Name: 'web',
        Driver: 'docker',
        Config: {
          image: 'registry.local/shop:abc123',
          ports: ['http'],
          command: '/bin/sh',
          args: ['-c', 'node server.js'],
        },
        Env: { PORT: '8080' },
        Resources: { CPU: 250, MemoryMB: 512 },
      },
    ]);
    // No command: the image's CMD; no port: no port label and no PORT.
    expect(group(job, 'plain').Tasks![0]).toMatchObject({
      Config: { image: 'registry.local/shop:abc123' },
      Env: {},
      Resources: { CPU: 100, MemoryMB: 128 },
    });
    expect(Object.keys(group(job, 'plain').Tasks![0]!.Config!)).toEqual(['image']);
  });

  it('gives env as the other targets do: app env, overlaid by process env, then PORT', () => {
    const job = translateRelease(
      inputOf({
        env: { LOG: 'info', SHARED: 'app', PORT: '1' },
        processes: { web: { ...web, env: { SHARED: 'web', EXTRA: 'x' } } },
      }),
    ).service!;
    expect(group(job, 'web').Tasks![0]!.Env).toEqual({
      LOG: 'info',
      SHARED: 'web',
      EXTRA: 'x',
      PORT: '8080',
    });
  });

  it('gives the endpoints’ process a static port and every other port a dynamic one', () => {
    const processes = { web, api: { port: 9000 }, worker: {} };
    const routed = translateRelease(
      inputOf({ processes, endpoints: [{ url: 'https://shop.example.com' }] }),
    ).service!;
    expect(group(routed, 'web').Networks).toEqual([
      { ReservedPorts: [{ Label: 'http', Value: 8080, To: 8080 }] },
    ]);
    expect(group(routed, 'api').Networks).toEqual([
      { DynamicPorts: [{ Label: 'http', To: 9000 }] },
    ]);
    expect(group(routed, 'worker').Networks).toBeUndefined();
    // Without endpoints nothing needs a stable port.
    const internal = translateRelease(inputOf({ processes })).service!;
    expect(group(internal, 'web').Networks).toEqual([
      { DynamicPorts: [{ Label: 'http', To: 8080 }] },
    ]);
  });

  it('registers a service per process with a port, with an HTTP check when it has health', () => {
    const job = translateRelease(
      inputOf(
        {
          processes: {
            web: { ...web, health: { path: '/up', interval: '15s', timeout: '2s' } },
            api: { port: 9000 },
            worker: {},
          },
        },
        { serviceProvider: 'nomad' },
      ),
    ).service!;
    expect(group(job, 'web').Services).toEqual([
      {
        Name: 'shop-web',
        PortLabel: 'http',
        Provider: 'nomad',
        Tags: ['norn', 'norn-app=shop'],
        Checks: [
          {
            Type: 'http',
            Path: '/up',
            Interval: 15_000_000_000,
            Timeout: 2_000_000_000,
            PortLabel: 'http',
          },
        ],
      },
    ]);
    expect(group(job, 'api').Services).toEqual([
      { Name: 'shop-api', PortLabel: 'http', Provider: 'nomad', Tags: ['norn', 'norn-app=shop'] },
    ]);
    expect(group(job, 'worker').Services).toBeUndefined();
    expect(serviceName('shop', 'web')).toBe('shop-web');
  });

  it('sets the update strategy from deployPolicy, with HealthyDeadline 1s before ProgressDeadline', () => {
    const job = translateRelease(
      inputOf({
        processes: { web, worker: {} },
        deployPolicy: { minHealthyTime: '10s', healthTimeout: '2m', autoRollback: false },
      }),
    ).service!;
    const expected: UpdateStrategy = {
      MaxParallel: 1,
      HealthCheck: 'checks',
      MinHealthyTime: 10_000_000_000,
      HealthyDeadline: 119_000_000_000,
      ProgressDeadline: 120_000_000_000,
      AutoRevert: false,
    };
    expect(group(job, 'web').Update).toEqual(expected);
    expect(group(job, 'worker').Update).toEqual({ ...expected, HealthCheck: 'task_states' });
    // Defaults (30s / 5m / autoRollback true) satisfy min < healthy < progress.
    const u = group(translateRelease(inputOf({ processes: { web } })).service, 'web').Update!;
    expect(u).toMatchObject({ MinHealthyTime: ns(30_000), ProgressDeadline: ns(300_000) });
    expect(u.MinHealthyTime!).toBeLessThan(u.HealthyDeadline!);
    expect(u.HealthyDeadline!).toBeLessThan(u.ProgressDeadline!);
    expect(u.AutoRevert).toBe(true);
  });

  it('fails a crash loop instead of restarting it forever', () => {
    const g = group(translateRelease(inputOf({ processes: { web } })).service, 'web');
    const expected: RestartPolicy = {
      Attempts: 2,
      Interval: ns(300_000),
      Delay: ns(5_000),
      Mode: 'fail',
    };
    expect(g.RestartPolicy).toEqual(expected);
    // Nomad's RestartPolicy.Validate: Attempts × Delay must fit in Interval.
    expect(expected.Attempts! * expected.Delay!).toBeLessThanOrEqual(expected.Interval!);
  });

  it('records the secrets digest in Meta, and no timestamp: the same input gives the same job', () => {
    const input = () =>
      inputOf(
        { processes: { web, nightly: { schedule: '0 3 * * *' } } },
        { secretKeys: Object.keys(SECRET_VALUES), secretsSha256: secretsSha256(SECRET_VALUES) },
      );
    const first = translateRelease(input());
    expect(first.service!.Meta).toEqual({
      'norn.app': 'shop',
      'norn.release': '42',
      'norn.commit': 'abc123',
      'norn.secrets-sha256': secretsSha256(SECRET_VALUES),
    });
    expect(translateRelease(input())).toEqual(first);
    expect(JSON.stringify(translateRelease(input()))).toBe(JSON.stringify(first));
  });

  it('gives no service job for an app with only scheduled processes', () => {
    const out = translateRelease(inputOf({ processes: { nightly: { schedule: '0 3 * * *' } } }));
    expect(out.service).toBeNull();
    expect(out.periodic.map((j) => j.ID)).toEqual(['shop-nightly']);
  });
});

describe('translateRelease: periodic jobs', () => {
  it('makes each scheduled process its own periodic batch job, outside the service job', () => {
    const { service, periodic } = translateRelease(
      inputOf({
        processes: {
          web,
          nightly: { schedule: '0 3 * * *', timezone: 'Europe/Paris', command: 'node job.js' },
          report: { schedule: '*/30 * * * * *' },
        },
      }),
    );
    expect(service!.TaskGroups!.map((g) => g.Name)).toEqual(['web']);
    expect(periodic.map((j) => [j.ID, j.Name, j.Type])).toEqual([
      ['shop-nightly', 'shop-nightly', 'batch'],
      ['shop-report', 'shop-report', 'batch'],
    ]);
    const nightly = periodic[0]!;
    expect(nightly.Periodic).toEqual({
      Enabled: true,
      Spec: '0 3 * * *',
      SpecType: 'cron',
      TimeZone: 'Europe/Paris',
      ProhibitOverlap: true,
    } satisfies PeriodicConfig);
    expect(periodic[1]!.Periodic).toMatchObject({ Spec: '*/30 * * * * * *', TimeZone: 'UTC' });
    expect(nightly.Meta).toMatchObject({ 'norn.app': 'shop', 'norn.release': '42' });
    const g = nightly.TaskGroups![0]!;
    expect(g).toMatchObject({ Name: 'nightly', Count: 1 });
    expect(g.RestartPolicy).toMatchObject({ Attempts: 0, Mode: 'fail' });
    expect(g.Networks).toBeUndefined();
    expect(g.Services).toBeUndefined();
    expect(g.Update).toBeUndefined();
    expect(g.Tasks![0]!.Config).toEqual({
      image: 'registry.local/shop:abc123',
      command: '/bin/sh',
      args: ['-c', 'node job.js'],
    });
    expect(periodicJobId('shop', 'nightly')).toBe('shop-nightly');
  });

  it('leaves out a scheduled process with 0 replicas (it is off, as on the docker target)', () => {
    const out = translateRelease(
      inputOf({ processes: { web, paused: { schedule: '@daily', replicas: 0 } } }),
    );
    expect(out.periodic).toEqual([]);
  });
});

describe('toCronexpr: norn schedules (cron-parser) in hashicorp/cronexpr’s dialect', () => {
  it.each([
    // 5 fields mean the same to both.
    ['0 3 * * *', '0 3 * * *'],
    ['*/15  9-17 * * 1-5', '*/15 9-17 * * 1-5'],
    // 6 fields are seconds-first to cron-parser but minute…year to cronexpr: add the year.
    ['30 0 3 * * *', '30 0 3 * * * *'],
    ['*/10 * * * * *', '*/10 * * * * * *'],
    // Macros, written out as cron-parser defines them.
    ['@daily', '0 0 0 * * * *'],
    ['@hourly', '0 0 * * * * *'],
    ['@weekly', '0 0 0 * * 0 *'],
    ['@minutely', '0 * * * * * *'],
    ['@weekdays', '0 0 0 * * 1-5 *'],
  ])('%s → %s', (schedule, spec) => {
    expect(toCronexpr(schedule)).toEqual({ ok: true, spec });
  });

  it.each([['H 3 * * *'], ['0 H/2 * * *'], ['1,H * * * *'], ['@midnight'], ['* * *']])(
    'refuses %s',
    (schedule) => {
      expect(toCronexpr(schedule).ok).toBe(false);
    },
  );
});

describe('translateRelease: secrets', () => {
  const input = inputOf(
    { processes: { web, worker: {}, nightly: { schedule: '@daily' } } },
    { secretKeys: Object.keys(SECRET_VALUES), secretsSha256: secretsSha256(SECRET_VALUES) },
  );

  it('puts no secret value in any job', () => {
    const json = JSON.stringify(translateRelease(input));
    for (const value of Object.values(SECRET_VALUES)) {
      expect(json).not.toContain(value);
      expect(json).not.toContain(JSON.stringify(value).slice(1, -1));
    }
    for (const g of translateRelease(input).service!.TaskGroups!)
      expect(Object.keys(g.Tasks![0]!.Env!)).not.toContain('DATABASE_URL');
  });

  it('renders every key of the job’s Variable as env, PORT left to the process port', () => {
    const { service, periodic } = translateRelease(input);
    expect(group(service, 'web').Tasks![0]!.Templates).toEqual([
      {
        DestPath: 'secrets/norn.env',
        EmbeddedTmpl:
          '{{ range $key, $item := nomadVar "nomad/jobs/shop" }}{{ if ne $key "PORT" }}{{ $key }}={{ $item.Value | toJSON }}\n{{ end }}{{ end }}',
        Envvars: true,
        ChangeMode: 'noop',
      },
    ] satisfies Template[]);
    expect(group(service, 'worker').Tasks![0]!.Templates![0]!.EmbeddedTmpl).toBe(
      '{{ range $key, $item := nomadVar "nomad/jobs/shop" }}{{ $key }}={{ $item.Value | toJSON }}\n{{ end }}',
    );
    // A periodic job reads its own path (its launches' identity names it).
    expect(periodic[0]!.TaskGroups![0]!.Tasks![0]!.Templates![0]!.EmbeddedTmpl).toContain(
      'nomadVar "nomad/jobs/shop-nightly"',
    );
    expect(variablePath('shop-nightly')).toBe('nomad/jobs/shop-nightly');
  });

  it('adds no template when the release has no secrets', () => {
    const job = translateRelease(inputOf({ processes: { web } })).service!;
    expect(group(job, 'web').Tasks![0]!.Templates).toBeUndefined();
    expect(job.Meta).not.toHaveProperty('norn.secrets-sha256');
  });

  it('digests sorted key=value pairs: order does not matter, a changed value does', () => {
    expect(secretsSha256({ A: '1', B: '2' })).toBe(secretsSha256({ B: '2', A: '1' }));
    expect(secretsSha256({ A: '1', B: '2' })).not.toBe(secretsSha256({ A: '1', B: '3' }));
    expect(secretsSha256({ A: '1=B' })).not.toBe(secretsSha256({ A: '1', B: '' }));
    expect(secretsSha256({})).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('translateRelease: volumes', () => {
  it('declares every volume in every group and mounts every one in every task', () => {
    const { service, periodic } = translateRelease(
      inputOf({
        processes: { web, nightly: { schedule: '@daily' } },
        volumes: [
          { name: 'data', mount: '/data' },
          { name: 'assets', mount: '/srv/assets', readOnly: true },
          { name: 'data', mount: '/mirror', readOnly: true },
        ],
      }),
    );
    for (const g of [group(service, 'web'), periodic[0]!.TaskGroups![0]!]) {
      expect(g.Volumes).toEqual({
        data: { Name: 'data', Type: 'host', Source: 'data', ReadOnly: false },
        assets: { Name: 'assets', Type: 'host', Source: 'assets', ReadOnly: true },
      } satisfies Record<string, VolumeRequest>);
      expect(g.Tasks![0]!.VolumeMounts).toEqual([
        { Volume: 'data', Destination: '/data', ReadOnly: false },
        { Volume: 'assets', Destination: '/srv/assets', ReadOnly: true },
        { Volume: 'data', Destination: '/mirror', ReadOnly: true },
      ] satisfies VolumeMount[]);
    }
  });
});

describe('translateRelease: refusals', () => {
  it('refuses checks below Nomad’s 1s minimum, with the infraspec path', () => {
    const problems = refusal(
      inputOf({
        processes: { web: { ...web, health: { path: '/', interval: '500ms', timeout: '999ms' } } },
      }),
    );
    expect(problems.map((p) => p.path)).toEqual([
      'processes.web.health.interval',
      'processes.web.health.timeout',
    ]);
  });

  it('refuses a minHealthyTime that leaves no room for the healthy deadline', () => {
    const problems = refusal(
      inputOf({
        processes: { web },
        deployPolicy: { minHealthyTime: '4500ms', healthTimeout: '5s' },
      }),
    );
    expect(problems.map((p) => p.path)).toEqual(['deployPolicy.minHealthyTime']);
    // Only scheduled processes: no update strategy, so nothing to refuse.
    expect(() =>
      translateRelease(
        inputOf({
          processes: { nightly: { schedule: '@daily' } },
          deployPolicy: { minHealthyTime: '4500ms', healthTimeout: '5s' },
        }),
      ),
    ).not.toThrow();
  });

  it('refuses hostPath volumes, a schedule Nomad cannot parse and a too-long service name, all at once', () => {
    const long = 'p'.repeat(60);
    const problems = refusal(
      inputOf({
        processes: { [long]: { port: 7000 }, web, nightly: { schedule: 'H 3 * * *' } },
        volumes: [
          { name: 'data', mount: '/data' },
          { name: 'logs', mount: '/logs', hostPath: '/var/log/shop' },
        ],
      }),
    );
    expect(problems.map((p) => p.path)).toEqual([
      `processes.${long}`,
      'processes.nightly.schedule',
      'volumes[1].hostPath',
    ]);
    expect(problems.every((p) => p.message.length > 20)).toBe(true);
  });
});

/**
 * Every key the translation emits must be a field of api.ts's interfaces (the fake Nomad refuses
 * unknown fields). Each list is typed `Record<keyof T, true>`, so it cannot name a field the
 * interface lacks nor miss one it has: the lists are the interfaces, checked by the compiler.
 */
describe('translateRelease emits only fields of the Nomad API', () => {
  const keys = <T>(fields: Record<keyof T, true>) => new Set(Object.keys(fields));
  const JOB = keys<Job>({
    Region: true,
    Namespace: true,
    ID: true,
    Name: true,
    Type: true,
    Datacenters: true,
    TaskGroups: true,
    Update: true,
    Periodic: true,
    Meta: true,
    Stop: true,
    Status: true,
    Stable: true,
    Version: true,
    CreateIndex: true,
    ModifyIndex: true,
    JobModifyIndex: true,
  });
  const GROUP = keys<TaskGroup>({
    Name: true,
    Count: true,
    Tasks: true,
    Volumes: true,
    RestartPolicy: true,
    Update: true,
    Networks: true,
    Meta: true,
    Services: true,
  });
  const TASK = keys<Task>({
    Name: true,
    Driver: true,
    Config: true,
    Env: true,
    Services: true,
    Resources: true,
    RestartPolicy: true,
    Meta: true,
    Templates: true,
    VolumeMounts: true,
  });
  const shapes: Record<string, { fields: Set<string>; children?: Record<string, string> }> = {
    Job: {
      fields: JOB,
      children: { TaskGroups: 'TaskGroup', Update: 'Update', Periodic: 'Periodic' },
    },
    TaskGroup: {
      fields: GROUP,
      children: {
        Tasks: 'Task',
        Volumes: 'VolumeRequest{}',
        RestartPolicy: 'RestartPolicy',
        Update: 'Update',
        Networks: 'NetworkResource',
        Services: 'Service',
      },
    },
    Task: {
      fields: TASK,
      children: {
        Config: 'DockerConfig',
        Resources: 'Resources',
        RestartPolicy: 'RestartPolicy',
        Templates: 'Template',
        VolumeMounts: 'VolumeMount',
        Services: 'Service',
      },
    },
    DockerConfig: {
      fields: keys<DockerConfig>({ image: true, ports: true, command: true, args: true }),
    },
    Resources: {
      fields: keys<Resources>({ CPU: true, MemoryMB: true, MemoryMaxMB: true, DiskMB: true }),
    },
    RestartPolicy: {
      fields: keys<RestartPolicy>({
        Interval: true,
        Attempts: true,
        Delay: true,
        Mode: true,
        RenderTemplates: true,
      }),
    },
    Update: {
      fields: keys<UpdateStrategy>({
        Stagger: true,
        MaxParallel: true,
        HealthCheck: true,
        MinHealthyTime: true,
        HealthyDeadline: true,
        ProgressDeadline: true,
        Canary: true,
        AutoRevert: true,
        AutoPromote: true,
      }),
    },
    Periodic: {
      fields: keys<PeriodicConfig>({
        Enabled: true,
        Spec: true,
        Specs: true,
        SpecType: true,
        ProhibitOverlap: true,
        TimeZone: true,
      }),
    },
    Template: {
      fields: keys<Template>({
        SourcePath: true,
        DestPath: true,
        EmbeddedTmpl: true,
        ChangeMode: true,
        ChangeSignal: true,
        Perms: true,
        Envvars: true,
        ErrMissingKey: true,
      }),
    },
    VolumeRequest: {
      fields: keys<VolumeRequest>({ Name: true, Type: true, Source: true, ReadOnly: true }),
    },
    VolumeMount: {
      fields: keys<VolumeMount>({
        Volume: true,
        Destination: true,
        ReadOnly: true,
        PropagationMode: true,
      }),
    },
    NetworkResource: {
      fields: keys<NetworkResource>({ Mode: true, ReservedPorts: true, DynamicPorts: true }),
      children: { ReservedPorts: 'Port', DynamicPorts: 'Port' },
    },
    Port: { fields: keys<Port>({ Label: true, Value: true, To: true, HostNetwork: true }) },
    Service: {
      fields: keys<Service>({
        Name: true,
        Tags: true,
        PortLabel: true,
        AddressMode: true,
        Checks: true,
        Meta: true,
        TaskName: true,
        Provider: true,
      }),
      children: { Checks: 'ServiceCheck' },
    },
    ServiceCheck: {
      fields: keys<ServiceCheck>({
        Name: true,
        Type: true,
        Path: true,
        Protocol: true,
        PortLabel: true,
        Method: true,
        Interval: true,
        Timeout: true,
        InitialStatus: true,
      }),
    },
  };

  /** Every `path: key` that is not a field of the shape found there. */
  function unknownKeys(value: unknown, shape: string, path: string, out: string[]): string[] {
    if (shape.endsWith('{}')) {
      for (const [k, v] of Object.entries(value as object))
        unknownKeys(v, shape.slice(0, -2), `${path}[${k}]`, out);
      return out;
    }
    if (Array.isArray(value)) {
      value.forEach((v, i) => unknownKeys(v, shape, `${path}[${i}]`, out));
      return out;
    }
    const { fields, children = {} } = shapes[shape]!;
    for (const [k, v] of Object.entries(value as object)) {
      if (!fields.has(k)) out.push(`${path}.${k}`);
      else if (children[k]) unknownKeys(v, children[k], `${path}.${k}`, out);
    }
    return out;
  }

  it('for a release that uses every rule', () => {
    const { service, periodic } = translateRelease(
      inputOf(
        {
          env: { A: '1' },
          processes: {
            web,
            api: { port: 9000, health: { path: '/h' } },
            worker: { command: 'w' },
            nightly: { schedule: '0 0 3 * * *', command: 'n' },
          },
          endpoints: [{ url: 'https://shop.example.com' }],
          volumes: [
            { name: 'data', mount: '/data' },
            { name: 'cache', mount: '/cache', readOnly: true },
          ],
        },
        {
          secretKeys: ['API_KEY'],
          secretsSha256: secretsSha256({ API_KEY: 'x' }),
          region: 'r',
          namespace: 'n',
          datacenters: ['d'],
        },
      ),
    );
    for (const job of [service!, ...periodic])
      expect(unknownKeys(job, 'Job', 'Job', [])).toEqual([]);
    // The walker itself notices a stray key.
    expect(unknownKeys({ ...service, deploy_ts: 1 }, 'Job', 'Job', [])).toEqual(['Job.deploy_ts']);
  });
});
