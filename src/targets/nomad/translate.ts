/**
 * A norn release as Nomad jobs (JSON job API, see api.ts): a pure function, so the same release
 * always gives the same JSON. That matters: Nomad makes a new job version (and a deployment) only
 * when the submitted job differs, so a re-submit of a release is a no-op. The Go norn put a
 * `deploy_ts` timestamp in the job's meta and made a new version on every deploy; nothing here
 * reads a clock.
 *
 * What a release becomes:
 * - one service job `<app>`, with a task group per long-running process (none: no service job,
 *   where the Go norn submitted a job with zero groups, which Nomad refuses);
 * - one periodic batch job `<app>-<process>` per scheduled process (scheduled processes with 0
 *   replicas are off, as on the docker target, so they get none);
 * - secrets only as a Template reading a Nomad Variable (see `secretsTemplate`).
 *
 * What Nomad cannot do as the spec asks is refused here, before anything is submitted, with every
 * problem at once and the infraspec path at fault (SPEC_INVALID, details.problems).
 */
import { createHash } from 'node:crypto';
import { NornError } from '../../shared/errors.js';
import {
  DEFAULT_TIME_ZONE,
  formatProblems,
  parseDuration,
  servingProcess,
  type Infraspec,
  type InfraspecProcess,
  type SpecProblem,
} from '../../shared/spec/infraspec.js';
import { isScheduled, processCmd, processEnv } from '../docker/runtime.js';
import {
  NS_PER_SECOND,
  ns,
  type Job,
  type NetworkResource,
  type RestartPolicy,
  type Service,
  type Task,
  type TaskGroup,
  type Template,
  type UpdateStrategy,
  type VolumeMount,
  type VolumeRequest,
} from './api.js';
import { toCronexpr } from './cron.js';

export interface TranslateInput {
  app: string;
  releaseId: number;
  commitSha: string;
  imageRef: string;
  /** Parsed, with defaults. */
  spec: Infraspec;
  /** Names of the release's secrets (with DATABASE_URL when withDatabaseUrl adds it); never values. */
  secretKeys: string[];
  /** secretsSha256 of the values, so that a changed secret makes a new job version. */
  secretsSha256?: string;
  serviceProvider: 'consul' | 'nomad';
  region?: string;
  namespace?: string;
  datacenters?: string[];
}

export interface Translated {
  service: Job | null;
  periodic: Job[];
}

/** The service a process with a port registers (Consul or Nomad's own catalog). */
export const serviceName = (app: string, process: string) => `${app}-${process}`;
/** The periodic batch job of a scheduled process. */
export const periodicJobId = (app: string, process: string) => `${app}-${process}`;
/**
 * Where a job's secrets live: Nomad's implicit workload-identity policy lets every task of job J
 * read `nomad/jobs/J` (acl/acl.go), and a periodic job's launches read their parent's path (their
 * identity names the parent: structs.go GetIDforWorkloadIdentity). Each job has its own path, so
 * the caller writes the release's secrets to the service job's and every periodic job's path.
 */
export const variablePath = (jobId: string) => `nomad/jobs/${jobId}`;

/** sha256 (hex) of the values, over the sorted `key=value` pairs (JSON, so unambiguous). */
export function secretsSha256(values: Record<string, string>): string {
  const pairs = Object.keys(values)
    .sort()
    .map((key) => `${key}=${values[key]}`);
  return createHash('sha256').update(JSON.stringify(pairs)).digest('hex');
}

/** The one network port label of a process; the docker driver maps it by this name. */
export const PORT_LABEL = 'http';
/** Where the secrets template renders: the task's secrets dir (tmpfs, not in the alloc dir). */
export const SECRETS_FILE = 'secrets/norn.env';
/** nomad/structs/services.go: minCheckInterval and minCheckTimeout (1s each). */
const MIN_CHECK_NS = NS_PER_SECOND;
/** How much earlier than ProgressDeadline an allocation must be healthy (HealthyDeadline). */
const HEALTHY_DEADLINE_MARGIN_NS = NS_PER_SECOND;
/** nomad/structs/services.go ValidateName: an RFC 1123 label. */
const MAX_SERVICE_NAME = 63;

/**
 * Restarts in place, for long-running tasks. Mode `fail` (the Go norn used `delay`, which
 * restarts a crash-looping task forever): after 2 restarts within 5 minutes the allocation fails,
 * so a release that crashes on start fails its Nomad deployment (and auto-reverts) within seconds
 * instead of waiting out the progress deadline. 2 × 5s fits in 5m, as Validate requires.
 */
const SERVICE_RESTART: RestartPolicy = {
  Attempts: 2,
  Interval: ns(5 * 60_000),
  Delay: ns(5_000),
  Mode: 'fail',
};
/** A scheduled run that fails is reported failed, not rerun; the next tick runs it again. */
const BATCH_RESTART: RestartPolicy = {
  Attempts: 0,
  Interval: ns(24 * 3_600_000),
  Delay: ns(15_000),
  Mode: 'fail',
};

const nsOf = (duration: string) => ns(parseDuration(duration));

export function translateRelease(input: TranslateInput): Translated {
  const problems = checkSpec(input);
  if (problems.length > 0)
    throw new NornError(
      'SPEC_INVALID',
      `the infraspec cannot run on Nomad:\n${formatProblems(problems)}`,
      { details: { problems } },
    );
  const { spec } = input;
  const long = Object.entries(spec.processes).filter(([, p]) => !isScheduled(p));
  const served = spec.endpoints?.length ? servingProcess(spec.processes)?.[0] : undefined;
  const service: Job | null =
    long.length === 0
      ? null
      : {
          ...jobHeader(input, input.app, 'service'),
          TaskGroups: long.map(([name, p]) => serviceGroup(input, name, p, name === served)),
        };
  const periodic = Object.entries(spec.processes)
    .filter(([, p]) => isScheduled(p) && p.replicas > 0)
    .map(([name, p]) => periodicJob(input, name, p));
  return { service, periodic };
}

/** Every problem that keeps the spec from running on Nomad, with its infraspec path. */
function checkSpec({ app, spec }: TranslateInput): SpecProblem[] {
  const problems: SpecProblem[] = [];
  let hasService = false;
  for (const [name, p] of Object.entries(spec.processes)) {
    const at = `processes.${name}`;
    if (isScheduled(p)) {
      const cron = toCronexpr(p.schedule!);
      if (!cron.ok) problems.push({ path: `${at}.schedule`, message: cron.message });
      continue;
    }
    hasService = true;
    if (p.port !== undefined && serviceName(app, name).length > MAX_SERVICE_NAME)
      problems.push({
        path: at,
        message: `its Nomad service would be named ${serviceName(app, name)}, longer than the ${MAX_SERVICE_NAME} characters Nomad allows; shorten the app or process name`,
      });
    for (const field of ['interval', 'timeout'] as const) {
      const value = p.health?.[field];
      if (value !== undefined && nsOf(value) < MIN_CHECK_NS)
        problems.push({
          path: `${at}.health.${field}`,
          message: `is ${value}, but Nomad refuses a check ${field} below 1s`,
        });
    }
  }
  if (hasService) {
    const { minHealthyTime, healthTimeout } = spec.deployPolicy;
    if (nsOf(minHealthyTime) >= nsOf(healthTimeout) - HEALTHY_DEADLINE_MARGIN_NS)
      problems.push({
        path: 'deployPolicy.minHealthyTime',
        message: `must be more than 1s shorter than deployPolicy.healthTimeout (${healthTimeout}) on Nomad: an allocation must be healthy for minHealthyTime within its healthy deadline, which norn sets 1s before the progress deadline (healthTimeout), and Nomad requires min_healthy_time < healthy_deadline < progress_deadline`,
      });
  }
  (spec.volumes ?? []).forEach((v, i) => {
    if (v.hostPath !== undefined)
      problems.push({
        path: `volumes[${i}].hostPath`,
        message:
          'a Nomad job cannot name a directory of the node; Nomad host volumes are declared in the client configuration (host_volume) and a job asks for them by name, so leave out hostPath and declare a host volume named after the volume on the clients',
      });
  });
  return problems;
}

function jobHeader(input: TranslateInput, id: string, type: 'service' | 'batch'): Job {
  const meta: Record<string, string> = {
    'norn.app': input.app,
    'norn.release': String(input.releaseId),
    'norn.commit': input.commitSha,
  };
  if (input.secretsSha256 !== undefined) meta['norn.secrets-sha256'] = input.secretsSha256;
  return {
    ID: id,
    Name: id,
    Type: type,
    ...(input.region !== undefined ? { Region: input.region } : {}),
    ...(input.namespace !== undefined ? { Namespace: input.namespace } : {}),
    ...(input.datacenters !== undefined ? { Datacenters: [...input.datacenters] } : {}),
    Meta: meta,
  };
}

function serviceGroup(
  input: TranslateInput,
  name: string,
  p: InfraspecProcess,
  staticPort: boolean,
): TaskGroup {
  const group: TaskGroup = {
    Name: name,
    Count: p.replicas,
    RestartPolicy: { ...SERVICE_RESTART },
    Update: updateOf(input.spec, p),
    Tasks: [task(input, input.app, name, p)],
  };
  if (p.port !== undefined) {
    group.Networks = [network(p.port, staticPort)];
    group.Services = [service(input, name, p)];
  }
  return withVolumes(group, input.spec);
}

/**
 * The endpoints' process keeps its port on the node (a static port, as the Go norn did), so the
 * ingress route to `<node>:<port>` stays valid across deploys. The cost: two allocations of it
 * cannot share a node. Every other process gets a port Nomad picks, mapped to its own.
 */
function network(port: number, staticPort: boolean): NetworkResource {
  return staticPort
    ? { ReservedPorts: [{ Label: PORT_LABEL, Value: port, To: port }] }
    : { DynamicPorts: [{ Label: PORT_LABEL, To: port }] };
}

function service(input: TranslateInput, name: string, p: InfraspecProcess): Service {
  const out: Service = {
    Name: serviceName(input.app, name),
    PortLabel: PORT_LABEL,
    Provider: input.serviceProvider,
    Tags: ['norn', `norn-app=${input.app}`],
  };
  if (p.health)
    out.Checks = [
      {
        Type: 'http',
        Path: p.health.path,
        Interval: nsOf(p.health.interval),
        Timeout: nsOf(p.health.timeout),
        PortLabel: PORT_LABEL,
      },
    ];
  return out;
}

/**
 * One allocation at a time; healthy means the checks pass (with a health check) or the task
 * runs (without), for minHealthyTime. HealthyDeadline is 1s before ProgressDeadline: each
 * allocation gets nearly the whole healthTimeout, and Nomad's min_healthy_time <
 * healthy_deadline < progress_deadline (structs.go UpdateStrategy.Validate) holds; checkSpec
 * refuses a policy where it cannot.
 */
function updateOf(spec: Infraspec, p: InfraspecProcess): UpdateStrategy {
  const progress = nsOf(spec.deployPolicy.healthTimeout);
  return {
    MaxParallel: 1,
    HealthCheck: p.health ? 'checks' : 'task_states',
    MinHealthyTime: nsOf(spec.deployPolicy.minHealthyTime),
    HealthyDeadline: progress - HEALTHY_DEADLINE_MARGIN_NS,
    ProgressDeadline: progress,
    AutoRevert: spec.deployPolicy.autoRollback,
  };
}

function periodicJob(input: TranslateInput, name: string, p: InfraspecProcess): Job {
  const id = periodicJobId(input.app, name);
  const cron = toCronexpr(p.schedule!);
  // checkSpec refused every schedule toCronexpr cannot translate, so this only guards the types.
  if (!cron.ok) throw new NornError('INTERNAL', `processes.${name}.schedule: ${cron.message}`);
  const group: TaskGroup = {
    Name: name,
    Count: 1,
    RestartPolicy: { ...BATCH_RESTART },
    Tasks: [task(input, id, name, p)],
  };
  return {
    ...jobHeader(input, id, 'batch'),
    Periodic: {
      Enabled: true,
      Spec: cron.spec,
      SpecType: 'cron',
      TimeZone: p.timezone ?? DEFAULT_TIME_ZONE,
      // A run still going at the next tick is not doubled (the Go norn allowed overlaps).
      ProhibitOverlap: true,
    },
    TaskGroups: [withVolumes(group, input.spec)],
  };
}

/**
 * The process's container. Env is what the other targets give (the app's env, the process's,
 * then PORT), minus secrets, which arrive through the template. Nomad interpolates `${…}` in env
 * values and args that name a variable it knows; the other targets pass them literally.
 */
function task(input: TranslateInput, jobId: string, name: string, p: InfraspecProcess): Task {
  const cmd = processCmd(p);
  const out: Task = {
    Name: name,
    Driver: 'docker',
    Config: {
      image: input.imageRef,
      ...(p.port !== undefined ? { ports: [PORT_LABEL] } : {}),
      ...(cmd ? { command: cmd[0], args: cmd.slice(1) } : {}),
    },
    Env: processEnv(input.spec, name, {}, p.port),
    Resources: { CPU: p.resources.cpu, MemoryMB: p.resources.memory },
  };
  if (input.secretKeys.length > 0) out.Templates = [secretsTemplate(jobId, p.port !== undefined)];
  return out;
}

/**
 * Secrets reach the task as environment variables rendered from the job's Nomad Variable, never
 * as values in the job: task Env is stored in the job and shown by `nomad job inspect` and the
 * UI to anyone who may read the job (the Go norn put them there), while a Variable is encrypted
 * at rest and readable only by this job's tasks (workload identity) and by tokens allowed
 * variables. Vault would do too, but norn cannot assume a Vault.
 *
 * Every key of the Variable becomes `KEY="value"`: `toJSON` quotes the value as JSON, which
 * Nomad's env-file parser (hashicorp/go-envparse) reads back, JSON escapes included, so newlines,
 * quotes and backslashes survive. `.Value` because ranging over nomadVar yields items whose own
 * JSON form is Go-quoted, not JSON. A process with a port skips PORT: template env overrides task
 * env in Nomad (client/taskenv), and PORT wins over secrets on every target. ChangeMode noop:
 * the Variable is written just before the job is registered, and a restart there would put the
 * new secrets into the running release's tasks at once, outside the rolling update; instead the
 * job's `norn.secrets-sha256` Meta changes, so Nomad rolls new allocations that start with them.
 * The caller writes the Variable before the job:
 * consul-template's nomadVar gives no items for a path with no Variable, and the task would
 * start without its secrets.
 */
export function secretsTemplate(jobId: string, hasPort: boolean): Template {
  const line = '{{ $key }}={{ $item.Value | toJSON }}\n';
  const body = hasPort ? `{{ if ne $key "PORT" }}${line}{{ end }}` : line;
  return {
    DestPath: SECRETS_FILE,
    EmbeddedTmpl: `{{ range $key, $item := nomadVar ${JSON.stringify(variablePath(jobId))} }}${body}{{ end }}`,
    Envvars: true,
    ChangeMode: 'noop',
  };
}

/**
 * Every volume of the spec, in every group: a host volume the clients declare under the volume's
 * name (`host_volume "<name>"`), mounted by each task. One request per name; it is read-only only
 * when every mount of it is. `size` (a kubernetes claim's) has no meaning here: a host volume is
 * as large as the client's directory. The Go norn reassigned the group's volumes in its loop and
 * so declared only the last one.
 */
function withVolumes(group: TaskGroup, spec: Infraspec): TaskGroup {
  const volumes = spec.volumes ?? [];
  if (volumes.length === 0) return group;
  const requests: Record<string, VolumeRequest> = {};
  const mounts: VolumeMount[] = [];
  for (const v of volumes) {
    const readOnly = (requests[v.name]?.ReadOnly ?? true) && v.readOnly;
    requests[v.name] = { Name: v.name, Type: 'host', Source: v.name, ReadOnly: readOnly };
    mounts.push({ Volume: v.name, Destination: v.mount, ReadOnly: v.readOnly });
  }
  for (const t of group.Tasks ?? []) t.VolumeMounts = mounts.map((m) => ({ ...m }));
  return { ...group, Volumes: requests };
}
