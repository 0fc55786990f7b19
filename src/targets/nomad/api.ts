/**
 * The JSON shapes of Nomad's HTTP API that norn writes or reads, as hashicorp/nomad's `api`
 * package declares them (api/jobs.go, tasks.go, services.go, resources.go, deployments.go,
 * allocations.go, variables.go), and the two Consul catalog shapes norn reads (hashicorp/consul
 * api/catalog.go, health.go, agent.go). Only the fields norn uses are here, but each is spelt
 * exactly as its Go struct field, because Go's encoding/json uses the field name as the JSON key
 * when there is no `json` tag (the `hcl`/`mapstructure` tags, e.g. `hcl:"cron"` on
 * PeriodicConfig.Spec, only matter to job files, never to the JSON API).
 *
 * How Go types travel as JSON:
 * - `time.Duration` is an integer of NANOSECONDS (use `ns`), never a "10s" string;
 * - `time.Time` is an RFC 3339 string; `int64` unix times (TaskEvent.Time, CreateTime) are
 *   nanoseconds since the epoch;
 * - a Go pointer (`*int`) left out means "Nomad's default" (the server canonicalizes the job);
 *   on what norn writes every field is therefore optional;
 * - in responses, a nil slice or map arrives as `null`, so those are typed `| null`.
 */

/** Milliseconds as a Go `time.Duration` (integer nanoseconds), as the API wants durations. */
export const ns = (ms: number): number => Math.round(ms * 1_000_000);

/** Nanoseconds per second, for limits written in seconds. */
export const NS_PER_SECOND = 1_000_000_000;

// ---- What norn submits (api/jobs.go, api/tasks.go, api/services.go, api/resources.go) ----

/** api/jobs.go `Job`: what PUT /v1/jobs takes as `Job`, and GET /v1/job/:id returns. */
export interface Job {
  Region?: string;
  Namespace?: string;
  ID?: string;
  Name?: string;
  /** `service` or `batch` for norn's jobs. */
  Type?: string;
  Datacenters?: string[];
  TaskGroups?: TaskGroup[];
  Update?: UpdateStrategy;
  Periodic?: PeriodicConfig;
  Meta?: Record<string, string>;
  // Set by the server, read back by norn:
  Stop?: boolean;
  /** `pending`, `running` or `dead`. */
  Status?: string;
  Stable?: boolean;
  Version?: number;
  CreateIndex?: number;
  ModifyIndex?: number;
  JobModifyIndex?: number;
}

/** api/tasks.go `TaskGroup`. */
export interface TaskGroup {
  Name?: string;
  Count?: number;
  Tasks?: Task[];
  /** Keyed by the volume's name as the group's tasks mount it. */
  Volumes?: Record<string, VolumeRequest>;
  RestartPolicy?: RestartPolicy;
  Update?: UpdateStrategy;
  Networks?: NetworkResource[];
  Meta?: Record<string, string>;
  Services?: Service[];
}

/** api/tasks.go `Task`. */
export interface Task {
  Name?: string;
  Driver?: string;
  /** Driver-specific (`map[string]any`); for docker see DockerConfig. */
  Config?: DockerConfig;
  Env?: Record<string, string>;
  Services?: Service[];
  Resources?: Resources;
  RestartPolicy?: RestartPolicy;
  Meta?: Record<string, string>;
  Templates?: Template[];
  VolumeMounts?: VolumeMount[];
}

/**
 * The keys of the docker driver's `config` norn sets (Nomad's drivers/docker/config.go: `image`,
 * `ports` are network port labels, `command` and `args` make the container's CMD).
 */
export interface DockerConfig {
  image: string;
  ports?: string[];
  command?: string;
  args?: string[];
}

/** api/tasks.go `RestartPolicy` (restarts in place, on the same node). */
export interface RestartPolicy {
  Interval?: number;
  Attempts?: number;
  Delay?: number;
  /** `fail` or `delay`. */
  Mode?: string;
  RenderTemplates?: boolean;
}

/** api/jobs.go `UpdateStrategy`. All durations in nanoseconds. */
export interface UpdateStrategy {
  Stagger?: number;
  MaxParallel?: number;
  /** `checks`, `task_states` or `manual`. */
  HealthCheck?: string;
  MinHealthyTime?: number;
  HealthyDeadline?: number;
  ProgressDeadline?: number;
  Canary?: number;
  AutoRevert?: boolean;
  AutoPromote?: boolean;
}

/** api/jobs.go `PeriodicConfig`: `Spec` is the cron expression (`cron` in a job file). */
export interface PeriodicConfig {
  Enabled?: boolean;
  Spec?: string;
  Specs?: string[];
  /** `cron`. */
  SpecType?: string;
  ProhibitOverlap?: boolean;
  TimeZone?: string;
}

/** api/tasks.go `Template` (`data` is EmbeddedTmpl, `destination` DestPath, `env` Envvars). */
export interface Template {
  SourcePath?: string;
  DestPath?: string;
  EmbeddedTmpl?: string;
  /** `noop`, `restart`, `signal` or `script`. */
  ChangeMode?: string;
  ChangeSignal?: string;
  Perms?: string;
  Envvars?: boolean;
  ErrMissingKey?: boolean;
}

/** api/tasks.go `VolumeRequest`: a group's claim on a volume (`host` or `csi`). */
export interface VolumeRequest {
  Name?: string;
  Type?: string;
  Source?: string;
  ReadOnly?: boolean;
}

/** api/tasks.go `VolumeMount`: where a task sees one of its group's volumes. */
export interface VolumeMount {
  Volume?: string;
  Destination?: string;
  ReadOnly?: boolean;
  PropagationMode?: string;
}

/** api/resources.go `Resources`: CPU in MHz, memory in MB. */
export interface Resources {
  CPU?: number;
  MemoryMB?: number;
  MemoryMaxMB?: number;
  DiskMB?: number;
}

/** api/resources.go `NetworkResource`. */
export interface NetworkResource {
  /** `host` (the default), `bridge`, … */
  Mode?: string;
  ReservedPorts?: Port[];
  DynamicPorts?: Port[];
}

/** api/resources.go `Port`: `Value` is the host port (static), `To` the container port. */
export interface Port {
  Label?: string;
  Value?: number;
  To?: number;
  HostNetwork?: string;
}

/** api/services.go `Service` (`PortLabel` is `port` in a job file). */
export interface Service {
  Name?: string;
  Tags?: string[];
  PortLabel?: string;
  AddressMode?: string;
  Checks?: ServiceCheck[];
  Meta?: Record<string, string>;
  TaskName?: string;
  /** `consul` or `nomad`. */
  Provider?: string;
}

/** api/services.go `ServiceCheck`: Interval and Timeout are nanoseconds, at least 1s each. */
export interface ServiceCheck {
  Name?: string;
  Type?: string;
  Path?: string;
  Protocol?: string;
  PortLabel?: string;
  Method?: string;
  Interval?: number;
  Timeout?: number;
  InitialStatus?: string;
}

// ---- What Nomad answers ----

/**
 * PUT /v1/jobs (nomad/structs `JobRegisterResponse`; api/jobs.go's copy adds QueryMeta, which
 * the Go client fills from headers, not from the body).
 */
export interface JobRegisterResponse {
  EvalID: string;
  EvalCreateIndex: number;
  JobModifyIndex: number;
  Warnings: string;
}

/** PUT /v1/job/:id/plan. `NextPeriodicLaunch` is a Go time.Time (RFC 3339). */
export interface JobPlanResponse {
  JobModifyIndex: number;
  Diff: JobDiff | null;
  Annotations: PlanAnnotations | null;
  Warnings: string;
  NextPeriodicLaunch: string;
}

/** api/jobs.go `JobDiff`: `Type` is `None`, `Added`, `Deleted` or `Edited`. */
export interface JobDiff {
  Type: string;
  ID: string;
  Fields: FieldDiff[] | null;
  Objects: ObjectDiff[] | null;
  TaskGroups: TaskGroupDiff[] | null;
}

export interface TaskGroupDiff {
  Type: string;
  Name: string;
  Fields: FieldDiff[] | null;
  Objects: ObjectDiff[] | null;
  Tasks: TaskDiff[] | null;
  /** Keyed by `place`, `destructive`, `in-place update`, `ignore`, … */
  Updates: Record<string, number> | null;
}

export interface TaskDiff {
  Type: string;
  Name: string;
  Fields: FieldDiff[] | null;
  Objects: ObjectDiff[] | null;
  Annotations: string[] | null;
}

export interface FieldDiff {
  Type: string;
  Name: string;
  Old: string;
  New: string;
  Annotations: string[] | null;
}

export interface ObjectDiff {
  Type: string;
  Name: string;
  Fields: FieldDiff[] | null;
  Objects: ObjectDiff[] | null;
}

/** api/jobs.go `PlanAnnotations`: what the scheduler would do, per task group. */
export interface PlanAnnotations {
  DesiredTGUpdates: Record<string, DesiredUpdates> | null;
}

export interface DesiredUpdates {
  Ignore: number;
  Place: number;
  Migrate: number;
  Stop: number;
  InPlaceUpdate: number;
  DestructiveUpdate: number;
  Canary: number;
  Preemptions: number;
}

/** api/deployments.go `Deployment`: `Status` is `running`, `successful`, `failed`, … */
export interface Deployment {
  ID: string;
  Namespace: string;
  JobID: string;
  JobVersion: number;
  JobModifyIndex: number;
  JobSpecModifyIndex: number;
  JobCreateIndex: number;
  TaskGroups: Record<string, DeploymentState> | null;
  Status: string;
  StatusDescription: string;
  CreateIndex: number;
  ModifyIndex: number;
}

/** api/deployments.go `DeploymentState`: ProgressDeadline in ns, RequireProgressBy RFC 3339. */
export interface DeploymentState {
  AutoRevert: boolean;
  ProgressDeadline: number;
  RequireProgressBy: string;
  Promoted: boolean;
  DesiredCanaries: number;
  DesiredTotal: number;
  PlacedAllocs: number;
  HealthyAllocs: number;
  UnhealthyAllocs: number;
}

/** api/allocations.go `AllocationListStub` (GET /v1/job/:id/allocations). */
export interface AllocationListStub {
  ID: string;
  EvalID: string;
  Name: string;
  Namespace: string;
  NodeID: string;
  NodeName: string;
  JobID: string;
  JobType: string;
  JobVersion: number;
  TaskGroup: string;
  /** `run`, `stop` or `evict`. */
  DesiredStatus: string;
  DesiredDescription: string;
  /** `pending`, `running`, `complete`, `failed` or `lost`. */
  ClientStatus: string;
  ClientDescription: string;
  TaskStates: Record<string, TaskState> | null;
  DeploymentStatus: AllocDeploymentStatus | null;
  CreateIndex: number;
  ModifyIndex: number;
  /** Unix nanoseconds. */
  CreateTime: number;
  ModifyTime: number;
}

/** api/allocations.go `AllocDeploymentStatus`: `Healthy` stays null until Nomad decides. */
export interface AllocDeploymentStatus {
  Healthy: boolean | null;
  Timestamp: string;
  Canary: boolean;
  ModifyIndex: number;
}

/** api/tasks.go `TaskState`: `State` is `pending`, `running` or `dead`; times are RFC 3339. */
export interface TaskState {
  State: string;
  Failed: boolean;
  Restarts: number;
  LastRestart: string;
  StartedAt: string;
  FinishedAt: string;
  Events: TaskEvent[] | null;
}

/** api/tasks.go `TaskEvent`: `Time` is unix nanoseconds. */
export interface TaskEvent {
  Type: string;
  Time: number;
  DisplayMessage: string;
  Details: Record<string, string> | null;
  Message: string;
  FailsTask: boolean;
  RestartReason: string;
  DriverError: string;
  ExitCode: number;
  Signal: number;
  KillReason: string;
  ValidationError: string;
}

/** api/variables.go `Variable` (PUT/GET /v1/var/:path); Items are the secret values. */
export interface Variable {
  Namespace: string;
  Path: string;
  CreateIndex: number;
  ModifyIndex: number;
  CreateTime: number;
  ModifyTime: number;
  Items: Record<string, string>;
}

/** api/services.go `ServiceRegistration` (GET /v1/service/:name, provider `nomad`). */
export interface ServiceRegistration {
  ID: string;
  ServiceName: string;
  Namespace: string;
  NodeID: string;
  Datacenter: string;
  JobID: string;
  AllocID: string;
  Tags: string[] | null;
  Address: string;
  Port: number;
  CreateIndex: number;
  ModifyIndex: number;
}

// ---- Consul (provider `consul`) ----

/** Consul api/catalog.go `CatalogService` (GET /v1/catalog/service/:name). */
export interface ConsulCatalogService {
  ID: string;
  Node: string;
  Address: string;
  Datacenter: string;
  ServiceID: string;
  ServiceName: string;
  ServiceAddress: string;
  ServiceTags: string[] | null;
  ServiceMeta: Record<string, string> | null;
  ServicePort: number;
  CreateIndex: number;
  ModifyIndex: number;
}

/** Consul api/health.go `ServiceEntry` (GET /v1/health/service/:name). */
export interface ConsulServiceEntry {
  Node: ConsulNode;
  Service: ConsulAgentService;
  Checks: ConsulHealthCheck[] | null;
}

/** Consul api/catalog.go `Node`. */
export interface ConsulNode {
  ID: string;
  Node: string;
  Address: string;
  Datacenter: string;
}

/** Consul api/agent.go `AgentService`: `Address` may be empty (then the node's is meant). */
export interface ConsulAgentService {
  ID: string;
  Service: string;
  Tags: string[] | null;
  Meta: Record<string, string> | null;
  Port: number;
  Address: string;
}

/** Consul api/health.go `HealthCheck`: `Status` is `passing`, `warning` or `critical`. */
export interface ConsulHealthCheck {
  Node: string;
  CheckID: string;
  Name: string;
  Status: string;
  Output: string;
  ServiceID: string;
  ServiceName: string;
}
