/**
 * Read models derived from the fake's state: job and allocation list stubs, job summaries, and
 * the service registrations of running allocations, both Nomad's own (provider `nomad`,
 * api.ServiceRegistration) and those a Consul agent would hold (provider `consul`).
 */
import { node } from './sim.js';
import type { Alloc, Store } from './store.js';
import type { Job } from './validate.js';

/** api/allocations.go AllocationListStub's fields: a list answers these and nothing more. */
const STUB_FIELDS = [
  'ID',
  'EvalID',
  'Name',
  'Namespace',
  'NodeID',
  'NodeName',
  'JobID',
  'JobType',
  'JobVersion',
  'TaskGroup',
  'AllocatedResources',
  'DesiredStatus',
  'DesiredDescription',
  'ClientStatus',
  'ClientDescription',
  'TaskStates',
  'DeploymentStatus',
  'FollowupEvalID',
  'NextAllocation',
  'RescheduleTracker',
  'PreemptedAllocations',
  'PreemptedByAllocation',
  'CreateIndex',
  'ModifyIndex',
  'CreateTime',
  'ModifyTime',
] as const;

/**
 * An allocation as a list answers it: the stub's fields only (no DeploymentID, no Job: a client
 * that needs them reads the allocation itself).
 */
export function allocStub(a: Alloc): Alloc {
  const full: Alloc = { ...a, JobType: a.Job.Type, JobVersion: a.JobVersion };
  return Object.fromEntries(
    STUB_FIELDS.filter((k) => full[k] !== undefined).map((k) => [k, full[k]]),
  ) as Alloc;
}

export function jobSummary(store: Store, job: Job): Job {
  const summary: Record<string, Record<string, number>> = {};
  for (const tg of job.TaskGroups as Job[]) {
    summary[tg.Name] = {
      Queued: 0,
      Complete: 0,
      Failed: 0,
      Running: 0,
      Starting: 0,
      Lost: 0,
      Unknown: 0,
    };
  }
  for (const a of store.allocsOf(job.Namespace, job.ID)) {
    const s = summary[a.TaskGroup];
    if (!s) continue;
    const key = {
      pending: 'Starting',
      running: 'Running',
      complete: 'Complete',
      failed: 'Failed',
      lost: 'Lost',
    }[a.ClientStatus as string];
    if (key) s[key]! += 1;
  }
  return {
    JobID: job.ID,
    Namespace: job.Namespace,
    Summary: summary,
    Children: { Pending: 0, Running: 0, Dead: 0 },
    CreateIndex: job.CreateIndex,
    ModifyIndex: store.tables.allocs,
  };
}

export function jobStub(store: Store, job: Job): Job {
  return {
    ID: job.ID,
    ParentID: job.ParentID,
    Name: job.Name,
    Namespace: job.Namespace,
    Datacenters: job.Datacenters,
    NodePool: job.NodePool,
    Multiregion: job.Multiregion ?? null,
    Type: job.Type,
    Priority: job.Priority,
    Periodic: Boolean(job.Periodic?.Enabled),
    ParameterizedJob: Boolean(job.ParameterizedJob),
    Stop: job.Stop,
    Status: job.Status,
    StatusDescription: job.StatusDescription,
    JobSummary: jobSummary(store, job),
    CreateIndex: job.CreateIndex,
    ModifyIndex: job.ModifyIndex,
    JobModifyIndex: job.JobModifyIndex,
    SubmitTime: job.SubmitTime,
    Meta: job.Meta ?? null,
  };
}

export interface Registration {
  ID: string;
  ServiceName: string;
  Namespace: string;
  NodeID: string;
  Datacenter: string;
  JobID: string;
  AllocID: string;
  Tags: string[];
  Address: string;
  Port: number;
  CreateIndex: number;
  ModifyIndex: number;
  /** Not a Nomad field: whether the allocation is healthy, for the Consul slice's checks. */
  healthy: boolean;
  provider: string;
}

/** A running allocation's port for `label`: its host port, or the label itself when it is a number. */
function portOf(a: Alloc, label: string): number {
  const port = (a.AllocatedResources.Shared.Ports as Job[]).find((p) => p.Label === label);
  return port ? (port.Value as number) : /^\d+$/.test(label) ? Number(label) : 0;
}

/** Every service registration of running allocations; a service becomes registered when its task runs. */
export function registrations(store: Store): Registration[] {
  const out: Registration[] = [];
  for (const a of store.allocs.values()) {
    if (a.DesiredStatus !== 'run' || a.ClientStatus !== 'running') continue;
    const tg = (a.Job.TaskGroups as Job[]).find((g) => g.Name === a.TaskGroup)!;
    const owned: [string, Job][] = [
      ...(tg.Services as Job[]).map((s): [string, Job] => ['group', s]),
      ...(tg.Tasks as Job[]).flatMap((t) =>
        (t.Services as Job[]).map((s): [string, Job] => [t.Name, s]),
      ),
    ];
    // Healthy once the deployment says so; an allocation outside a deployment once it runs.
    const healthy = a.DeploymentID ? a.DeploymentStatus?.Healthy === true : true;
    for (const [owner, s] of owned) {
      const name = String(s.Name)
        .replace(/\$\{NOMAD_JOB_NAME\}/g, a.Job.Name)
        .replace(/\$\{TASKGROUP\}/g, tg.Name);
      out.push({
        ID: `_nomad-task-${a.ID}-${owner}-${name}-${s.PortLabel}`,
        ServiceName: name,
        Namespace: a.Namespace,
        NodeID: node.ID,
        Datacenter: node.Datacenter,
        JobID: a.JobID,
        AllocID: a.ID,
        Tags: (s.Tags ?? []) as string[],
        Address: s.Address || node.Address,
        Port: s.PortLabel ? portOf(a, s.PortLabel) : 0,
        CreateIndex: a.CreateIndex,
        ModifyIndex: a.ModifyIndex,
        healthy,
        provider: s.Provider,
      });
    }
  }
  return out;
}

export function nomadService(r: Registration): Omit<Registration, 'healthy' | 'provider'> {
  const { healthy: _h, provider: _p, ...rest } = r;
  return rest;
}
