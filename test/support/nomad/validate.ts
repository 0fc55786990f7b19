/**
 * What Nomad does to a decoded job before storing it: the defaults of `api.Job.Canonicalize`
 * (api/jobs.go, api/tasks.go, api/resources.go, api/services.go) and of the server's
 * `structs.Job.Canonicalize` (Datacenters `["*"]` when empty, NodePool `default`), then the
 * refusals of `structs.Job.Validate` and the register endpoint's admission hooks that a deploy
 * tool can trip over, with Nomad's own messages (nomad/structs/structs.go, services.go,
 * nomad/job_endpoint_hooks.go, job_endpoint_hook_node_pool.go).
 *
 * Not checked, as Nomad does not check it at submission either: driver config. A docker task
 * without `Config.image` is accepted, and its allocation fails on the client (see sim.ts).
 */
import { type NomadError, multiError } from './multierror.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- a job is untyped JSON checked by schema.ts */
export type Job = Record<string, any>;

const S = 1_000_000_000;
const MIN = 60 * S;

/** Node pools that exist in the fake: the two Nomad always has, and `prod`, which the docs' examples use. */
export const nodePools = ['default', 'all', 'prod'];

function dflt(obj: Job, key: string, value: unknown): void {
  if (obj[key] === undefined || obj[key] === null) obj[key] = value;
}

function fill(obj: Job, defaults: Job): Job {
  for (const [k, v] of Object.entries(defaults)) dflt(obj, k, v);
  return obj;
}

const defaultUpdate = (): Job => ({
  Stagger: 30 * S,
  MaxParallel: 1,
  HealthCheck: 'checks',
  MinHealthyTime: 10 * S,
  HealthyDeadline: 5 * MIN,
  ProgressDeadline: 10 * MIN,
  AutoRevert: false,
  Canary: 0,
  AutoPromote: false,
});

/** `api.UpdateStrategy.Empty`: an update block with nothing set is as if absent. */
function updateEmpty(u: Job | null | undefined): boolean {
  if (!u) return true;
  return !Object.values(u).some(
    (v) => v !== null && v !== undefined && v !== 0 && v !== false && v !== '',
  );
}

function restartDefaults(type: string): Job {
  return type === 'service' || type === 'system'
    ? { Delay: 15 * S, Attempts: 2, Interval: 30 * MIN, Mode: 'fail', RenderTemplates: false }
    : { Delay: 15 * S, Attempts: 3, Interval: 24 * 60 * MIN, Mode: 'fail', RenderTemplates: false };
}

function rescheduleDefaults(type: string): Job | null {
  if (type === 'service') {
    return {
      Attempts: 0,
      Interval: 0,
      Delay: 30 * S,
      DelayFunction: 'exponential',
      MaxDelay: 60 * MIN,
      Unlimited: true,
    };
  }
  if (type === 'batch') {
    return {
      Attempts: 1,
      Interval: 24 * 60 * MIN,
      Delay: 5 * S,
      DelayFunction: 'constant',
      MaxDelay: 0,
      Unlimited: false,
    };
  }
  return null;
}

/** Sets Nomad's defaults in place; `namespace` is the request's. */
export function canonicalize(job: Job, namespace: string): Job {
  fill(job, { ID: '', ParentID: '', Priority: 50, Stop: false, Region: 'global', Type: 'service' });
  fill(job, {
    Name: job.ID,
    Namespace: namespace,
    AllAtOnce: false,
    Status: '',
    StatusDescription: '',
  });
  fill(job, { Stable: false, Version: 0, CreateIndex: 0, ModifyIndex: 0, JobModifyIndex: 0 });
  fill(job, {
    Datacenters: [],
    TaskGroups: [],
    Dispatched: false,
    ConsulNamespace: '',
    VaultNamespace: '',
  });
  if (!job.NodePool) job.NodePool = 'default';
  if (job.Datacenters.length === 0) job.Datacenters = ['*'];
  const type = job.Type as string;
  if (job.Periodic) {
    fill(job.Periodic, {
      Enabled: true,
      SpecType: 'cron',
      ProhibitOverlap: false,
      TimeZone: 'UTC',
      Spec: '',
    });
  }
  if (job.Update) fill(job.Update, defaultUpdate());
  else if (type === 'service' || type === 'system') job.Update = defaultUpdate();
  for (const tg of (job.TaskGroups ?? []) as Job[]) {
    fill(tg, { Name: '', Count: tg.Scaling?.Min ?? 1, Tasks: [], Networks: [], Services: [] });
    tg.EphemeralDisk = fill(tg.EphemeralDisk ?? {}, { Sticky: false, Migrate: false, SizeMB: 300 });
    if (job.Update && tg.Update) tg.Update = { ...job.Update, ...stripNull(tg.Update) };
    else if (job.Update && !updateEmpty(job.Update)) tg.Update = { ...job.Update };
    if (tg.Update) fill(tg.Update, defaultUpdate());
    const resched = rescheduleDefaults(type);
    if (job.Reschedule || tg.ReschedulePolicy || resched) {
      tg.ReschedulePolicy = {
        ...resched,
        ...stripNull(job.Reschedule),
        ...stripNull(tg.ReschedulePolicy),
      };
    }
    if (type === 'service' || job.Migrate || tg.Migrate) {
      tg.Migrate = fill(
        { ...stripNull(job.Migrate), ...stripNull(tg.Migrate) },
        {
          MaxParallel: 1,
          HealthCheck: 'checks',
          MinHealthyTime: 10 * S,
          HealthyDeadline: 5 * MIN,
        },
      );
    }
    tg.RestartPolicy = { ...restartDefaults(type), ...stripNull(tg.RestartPolicy) };
    for (const t of tg.Tasks as Job[]) {
      t.Resources = fill(t.Resources ?? {}, { CPU: 100, Cores: 0, MemoryMB: 300, MemoryMaxMB: 0 });
      t.LogConfig = fill(t.LogConfig ?? {}, { MaxFiles: 10, MaxFileSizeMB: 10, Disabled: false });
      t.RestartPolicy = { ...tg.RestartPolicy, ...stripNull(t.RestartPolicy) };
      fill(t, { KillTimeout: 5 * S, Leader: false, Config: {}, Services: [] });
      for (const s of t.Services as Job[]) canonicalService(s);
    }
    for (const s of tg.Services as Job[]) canonicalService(s);
  }
  return job;
}

function canonicalService(s: Job): void {
  fill(s, {
    Provider: 'consul',
    PortLabel: '',
    Tags: [],
    Checks: [],
    AddressMode: 'auto',
    OnUpdate: 'require_healthy',
  });
  for (const c of s.Checks as Job[])
    fill(c, { Type: '', Path: '', Interval: 0, Timeout: 0, PortLabel: '' });
}

function stripNull(o: Job | null | undefined): Job {
  return Object.fromEntries(
    Object.entries(o ?? {}).filter(([, v]) => v !== null && v !== undefined),
  );
}

/** Go's time.Duration.String, for messages that print a duration with %v. */
export function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  const sign = ns < 0 ? '-' : '';
  let n = Math.abs(ns);
  if (n < S) {
    const [unit, size] = n < 1000 ? ['ns', 1] : n < 1e6 ? ['µs', 1e3] : ['ms', 1e6];
    return `${sign}${+(n / (size as number)).toFixed(6)}${unit as string}`;
  }
  const h = Math.floor(n / (60 * MIN));
  n -= h * 60 * MIN;
  const m = Math.floor(n / MIN);
  n -= m * MIN;
  const sec = `${+(n / S).toFixed(9)}s`;
  return sign + (h ? `${h}h${m}m${sec}` : m ? `${m}m${sec}` : sec);
}

function validateUpdate(u: Job, errs: NomadError[]): void {
  if (!['checks', 'task_states', 'manual'].includes(u.HealthCheck)) {
    errs.push(`Invalid health check given: ${JSON.stringify(u.HealthCheck)}`);
  }
  if (u.MaxParallel < 0) errs.push(`Max parallel can not be less than zero: ${u.MaxParallel} < 0`);
  if (u.Canary < 0) errs.push(`Canary count can not be less than zero: ${u.Canary} < 0`);
  if (u.Canary === 0 && u.AutoPromote)
    errs.push('Auto Promote requires a Canary count greater than zero');
  const d = goDuration;
  if (u.MinHealthyTime < 0)
    errs.push(`Minimum healthy time may not be less than zero: ${d(u.MinHealthyTime)}`);
  if (u.HealthyDeadline <= 0)
    errs.push(`Healthy deadline must be greater than zero: ${d(u.HealthyDeadline)}`);
  if (u.ProgressDeadline < 0)
    errs.push(`Progress deadline must be zero or greater: ${d(u.ProgressDeadline)}`);
  if (u.MinHealthyTime >= u.HealthyDeadline) {
    errs.push(
      `Minimum healthy time must be less than healthy deadline: ${d(u.MinHealthyTime)} > ${d(u.HealthyDeadline)}`,
    );
  }
  if (u.ProgressDeadline !== 0 && u.HealthyDeadline >= u.ProgressDeadline) {
    errs.push(
      `Healthy deadline must be less than progress deadline: ${d(u.HealthyDeadline)} > ${d(u.ProgressDeadline)}`,
    );
  }
  if (u.Stagger <= 0) errs.push(`Stagger must be greater than zero: ${d(u.Stagger)}`);
}

/** A five- or six-field cron expression (or a @-macro), checked field by field for range and syntax. */
export function validCron(spec: string): boolean {
  if (/^@(yearly|annually|monthly|weekly|daily|midnight|hourly)$/.test(spec.trim())) return true;
  const fields = spec.trim().split(/\s+/);
  if (fields.length < 5 || fields.length > 7) return false;
  const part = /^(\*|\?|[0-9A-Za-z]+(-[0-9A-Za-z]+)?|L|[0-9]+[LW#][0-9]*)(\/[0-9]+)?$/;
  return fields.every((f) => f.split(',').every((p) => part.test(p)));
}

function validZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function validatePeriodic(p: Job, errs: NomadError[]): void {
  const specs = (p.Specs ?? []) as string[];
  if (p.Spec && specs.length) errs.push('Only cron or crons may be used');
  if (!p.Spec && specs.length === 0) errs.push('Must specify a spec');
  if (p.TimeZone && !validZone(p.TimeZone)) {
    errs.push(`Invalid time zone ${JSON.stringify(p.TimeZone)}: unknown time zone ${p.TimeZone}`);
  }
  if (p.SpecType === 'cron') {
    for (const s of [p.Spec, ...specs].filter(Boolean)) {
      if (!validCron(s)) errs.push(`Invalid cron spec ${JSON.stringify(s)}: syntax error`);
    }
  } else if (p.SpecType !== 'test') {
    errs.push(`Unknown periodic specification type ${JSON.stringify(p.SpecType)}`);
  }
}

function validateCheck(c: Job, provider: string): string | undefined {
  const type = String(c.Type).toLowerCase();
  const allowed = provider === 'nomad' ? ['http', 'tcp'] : ['http', 'tcp', 'script', 'grpc'];
  if (!allowed.includes(type))
    return `invalid check type (${JSON.stringify(type)}), must be one of ${allowed.join(', ')}`;
  if (type === 'http') {
    if (!c.Path) return 'http type must have http path';
    if (/^[a-z][a-z0-9+.-]*:/i.test(c.Path)) return 'http type must have relative http path';
  }
  if (type === 'script' && !c.Command) return 'script type must have a valid script path';
  if (!c.Interval) return 'missing required value interval. Interval cannot be less than 1s';
  if (c.Interval < S) return `interval (${goDuration(c.Interval)}) cannot be lower than 1s`;
  if (!c.Timeout) return 'missing required value timeout. Timeout cannot be less than 1s';
  if (c.Timeout < S)
    return `timeout (${goDuration(c.Timeout)}) is lower than required minimum timeout 1s`;
  return undefined;
}

function validateService(s: Job): NomadError[] {
  const errs: NomadError[] = [];
  if (
    !/^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/.test(
      String(s.Name).replace(/\$\{[^}]*\}/g, 'ENV-VAR'),
    )
  ) {
    const rule =
      'can contain only alphanumeric characters or dashes and must be no longer than 63 characters';
    errs.push(`Service name must be valid per RFC 1123 and ${rule}: ${JSON.stringify(s.Name)}`);
  }
  if (s.Provider !== 'consul' && s.Provider !== 'nomad') {
    errs.push(`Service provider must be "consul", or "nomad"; not ${JSON.stringify(s.Provider)}`);
  }
  for (const c of s.Checks as Job[]) {
    const e = validateCheck(c, s.Provider);
    // Consul checks are wrapped with their name, Nomad's are not (validateConsulService vs validateNomadService).
    if (e) errs.push(s.Provider === 'nomad' ? e : `Check ${c.Name ?? ''} invalid: ${e}`);
  }
  return errs;
}

function portLabels(tg: Job): Set<string> {
  const net = ((tg.Networks ?? []) as Job[])[0];
  const ports = [...((net?.ReservedPorts ?? []) as Job[]), ...((net?.DynamicPorts ?? []) as Job[])];
  return new Set(ports.map((p) => p.Label as string));
}

function validateTask(t: Job, tg: Job): NomadError[] {
  const errs: NomadError[] = [];
  if (!t.Name) errs.push('Missing task name');
  if (!t.Driver) errs.push('Missing task driver');
  if (t.KillTimeout < 0) errs.push('KillTimeout must be a positive value');
  const r = t.Resources as Job;
  // Resources.Validate appends MeetsMinResources' list unflattened, and Task.Validate appends
  // Resources' list unflattened, so each renders as a nested multierror.
  const rErrs: NomadError[] = [];
  const minimum: NomadError[] = [];
  if (r.Cores > 0 && r.CPU > 0)
    rErrs.push("Task can only ask for 'cpu' or 'cores' resource, not both.");
  if (r.Cores < 0) rErrs.push(`cores value (${r.Cores}) cannot be negative`);
  if (r.CPU < 1 && !r.Cores) minimum.push(`minimum CPU value is 1; got ${r.CPU}`);
  if (r.MemoryMB < 10) minimum.push(`minimum MemoryMB value is 10; got ${r.MemoryMB}`);
  if (minimum.length) rErrs.push({ prefix: '', errors: minimum });
  if (r.DiskMB > 0)
    rErrs.push(
      "Task can't ask for disk resources, they have to be specified at the task group level.",
    );
  if (rErrs.length) errs.push({ prefix: '', errors: rErrs });
  const labels = portLabels(tg);
  const byPort = new Map<string, string[]>();
  for (const [i, s] of (t.Services as Job[]).entries()) {
    const e = validateService(s);
    if (e.length)
      errs.push({
        prefix: `service[${i}] ${JSON.stringify(s.Name)} validation failed: `,
        errors: e,
      });
    for (const label of [s.PortLabel, ...(s.Checks as Job[]).map((c) => c.PortLabel)]) {
      if (label && !/^\d+$/.test(label)) byPort.set(label, [...(byPort.get(label) ?? []), s.Name]);
    }
  }
  for (const [label, names] of [...byPort].sort()) {
    if (!labels.has(label)) {
      errs.push(
        `port label ${JSON.stringify(label)} referenced by services ${[...new Set(names)].sort().join(', ')} does not exist`,
      );
    }
  }
  return errs;
}

function validateGroup(tg: Job, job: Job): NomadError[] {
  const errs: NomadError[] = [];
  if (!tg.Name) errs.push('Missing task group name');
  if (tg.Count < 0) errs.push("Task group count can't be negative");
  if (tg.Tasks.length === 0) errs.push('Missing tasks for task group');
  if (tg.Update) {
    if (job.Type !== 'service' && job.Type !== 'system')
      errs.push(`Job type ${JSON.stringify(job.Type)} does not allow update block`);
    validateUpdate(tg.Update, errs);
  }
  if (tg.Migrate && job.Type !== 'service')
    errs.push(`Job type ${JSON.stringify(job.Type)} does not allow migrate block`);
  const seen = new Map<string, number>();
  (tg.Tasks as Job[]).forEach((t, i) => {
    if (!t.Name) errs.push(`Task ${i + 1} missing name`);
    else if (seen.has(t.Name))
      errs.push(`Task ${i + 1} redefines '${t.Name}' from task ${seen.get(t.Name)! + 1}`);
    else seen.set(t.Name, i);
  });
  const svcErrs: NomadError[] = [];
  (tg.Services as Job[]).forEach((s, i) => {
    const e = validateService(s);
    if (e.length)
      svcErrs.push({ prefix: `Service[${i}] ${s.Name} validation failed: `, errors: e });
  });
  const providers = new Set(
    [...tg.Services, ...tg.Tasks.flatMap((t: Job) => t.Services)].map((s: Job) => s.Provider),
  );
  if (providers.size > 1)
    svcErrs.push('Multiple service providers used: task group services must use the same provider');
  if (svcErrs.length)
    errs.push({ prefix: 'Task group service validation failed: ', errors: svcErrs });
  // A group service's PortLabel is not checked at submission (structs checks only task
  // services' ports, in validateServices); Nomad's client fails such an allocation later.
  for (const t of tg.Tasks as Job[]) {
    const e = validateTask(t, tg);
    if (e.length) errs.push({ prefix: `Task ${t.Name} validation failed: `, errors: e });
  }
  return errs;
}

/** The refusal Nomad's register and plan endpoints answer with HTTP 500, or undefined. */
export function validateJob(job: Job): string | undefined {
  const errs: NomadError[] = [];
  if (!job.Region && !job.Multiregion) errs.push('Missing job region');
  if (!job.ID) errs.push('Missing job ID');
  else if (job.ID.includes(' ')) errs.push('Job ID contains a space');
  else if (job.ID.includes('\0')) errs.push('Job ID contains a null character');
  if (!job.Name) errs.push('Missing job name');
  else if (job.Name.includes('\0')) errs.push('Job Name contains a null character');
  if (!job.Namespace) errs.push('Job must be in a namespace');
  if (!['service', 'batch', 'system', 'sysbatch', '_core'].includes(job.Type)) {
    errs.push(job.Type ? `Invalid job type: ${JSON.stringify(job.Type)}` : 'Missing job type');
  }
  if ((job.Datacenters as string[]).some((d) => d === ''))
    errs.push('Job datacenter must be non-empty string');
  if (job.TaskGroups.length === 0) errs.push('Missing job task groups');
  const seen = new Map<string, number>();
  (job.TaskGroups as Job[]).forEach((tg, i) => {
    if (!tg.Name) errs.push(`Job task group ${i + 1} missing name`);
    else if (seen.has(tg.Name))
      errs.push(
        `Job task group ${i + 1} redefines '${tg.Name}' from group ${seen.get(tg.Name)! + 1}`,
      );
    else seen.set(tg.Name, i);
    if (job.Type === 'system' && tg.Count > 1) {
      errs.push(
        `Job task group ${tg.Name} has count ${tg.Count}. Count cannot exceed 1 with system scheduler`,
      );
    }
  });
  for (const tg of job.TaskGroups as Job[]) {
    const e = validateGroup(tg, job);
    if (e.length) errs.push({ prefix: `Task group ${tg.Name} validation failed: `, errors: e });
  }
  if (job.Periodic && job.Periodic.Enabled) {
    if (job.Type !== 'batch' && job.Type !== 'sysbatch')
      errs.push('Periodic can only be used with "batch" or "sysbatch" scheduler');
    validatePeriodic(job.Periodic, errs);
  }
  if (job.ParameterizedJob && job.Type !== 'batch' && job.Type !== 'sysbatch') {
    errs.push('Parameterized job can only be used with "batch" or "sysbatch" scheduler');
  }
  if (job.Type === '_core') errs.push('job type cannot be core');
  if (job.Priority < 1 || job.Priority > 100) errs.push('job priority must be between [1, 100]');
  if (!nodePools.includes(job.NodePool)) {
    errs.push(
      `job ${JSON.stringify(job.ID)} is in nonexistent node pool ${JSON.stringify(job.NodePool)}`,
    );
  }
  return errs.length ? multiError(errs) : undefined;
}
