/**
 * The fake's scheduler, client and deployment watcher, stepped every `tickMs`. One node,
 * `fake-node` at 127.0.0.1 in datacenter `dc1` and node pool `default`: a job is placed only if
 * its Datacenters match `dc1` (globs as Nomad's) and its NodePool is `default` or `all`, so the
 * docs' fixtures (pool `prod`) are stored but never placed, as on a cluster without `prod` nodes.
 *
 * Service jobs follow Nomad's reconciler in the large: a group whose Update has MaxParallel > 0
 * gets a deployment per job version, and each step destructively updates at most MaxParallel
 * allocations (the old one is stopped as its replacement is placed, so a group never runs more
 * than Count + MaxParallel); one with MaxParallel 0 is replaced all at once without a deployment.
 * Note that a service job without an update block gets Nomad's default one (MaxParallel 1,
 * MinHealthyTime 10s), as api.Job.Canonicalize sets it. An allocation is healthy MinHealthyTime
 * after it starts. A task whose image contains `crashloop`, or whose Env sets FAKE_NOMAD_CRASH,
 * fails through its restart policy; a docker task without `Config.image` fails with a Driver
 * Failure. A task whose Env sets FAKE_NOMAD_UNHEALTHY runs but is marked unhealthy at its
 * HealthyDeadline; with HealthCheck `manual` no health is ever set, so the deployment fails by
 * its progress deadline. Batch allocations complete two steps after starting; periodic and parameterized jobs
 * are only stored. Failed allocations are not rescheduled.
 */
import { randomUUID } from 'node:crypto';
import { type Alloc, type Deployment, type Store, jobKey, nowNs, specChanged } from './store.js';
import { crashEvents, crashes, event, startEvents } from './events.js';
import type { Job } from './validate.js';

export const node = {
  ID: randomUUID(),
  Name: 'fake-node',
  Address: '127.0.0.1',
  Datacenter: 'dc1',
};
const terminal = (a: Alloc): boolean => ['complete', 'failed', 'lost'].includes(a.ClientStatus);

function glob(pattern: string, value: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(value);
}

function placeable(job: Job): boolean {
  if (job.Periodic?.Enabled || job.ParameterizedJob || job.ParentID) return false;
  if (job.NodePool !== 'default' && job.NodePool !== 'all') return false;
  return (job.Datacenters as string[]).some((dc) => glob(dc, node.Datacenter));
}

export class Simulator {
  private timer: NodeJS.Timeout | undefined;
  private readonly startedAt = new Map<string, number>();
  private readonly usedPorts = new Set<number>();
  private nextPort = 20000;

  constructor(
    private readonly store: Store,
    private readonly tickMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.tick(), this.tickMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** After a new version: cancels the job's active deployment, and starts one if the version rolls. */
  registered(job: Job): void {
    this.cancelDeployments(
      job,
      job.Stop ? 'Cancelled because job is stopped' : 'Cancelled due to newer version of job',
    );
    if (job.Stop || job.Type !== 'service' || !placeable(job)) return;
    const rolling = (job.TaskGroups as Job[]).filter(
      (tg) => tg.Update && tg.Update.MaxParallel > 0,
    );
    if (rolling.length === 0) return;
    const index = this.store.write('deployment');
    const now = nowNs();
    const groups: Record<string, Job> = {};
    for (const tg of rolling) {
      groups[tg.Name] = {
        AutoRevert: tg.Update.AutoRevert,
        AutoPromote: tg.Update.AutoPromote,
        ProgressDeadline: tg.Update.ProgressDeadline,
        RequireProgressBy: new Date(Date.now() + tg.Update.ProgressDeadline / 1e6).toISOString(),
        Promoted: false,
        PlacedCanaries: null,
        DesiredCanaries: tg.Update.Canary,
        DesiredTotal: tg.Count,
        PlacedAllocs: 0,
        HealthyAllocs: 0,
        UnhealthyAllocs: 0,
      };
    }
    const d: Deployment = {
      ID: randomUUID(),
      Namespace: job.Namespace,
      JobID: job.ID,
      JobVersion: job.Version,
      JobModifyIndex: job.JobModifyIndex,
      JobSpecModifyIndex: job.JobModifyIndex,
      JobCreateIndex: job.CreateIndex,
      IsMultiregion: false,
      TaskGroups: groups,
      Status: 'running',
      StatusDescription: 'Deployment is running',
      EvalPriority: job.Priority,
      CreateIndex: index,
      ModifyIndex: index,
      CreateTime: now,
      ModifyTime: now,
    };
    this.store.deployments.set(d.ID, d);
  }

  private cancelDeployments(job: Job, why: string): void {
    for (const d of this.store.deploymentsOf(job.Namespace, job.ID)) {
      if (d.Status === 'running' && d.JobVersion !== job.Version) this.finish(d, 'cancelled', why);
      if (d.Status === 'running' && job.Stop) this.finish(d, 'cancelled', why);
    }
  }

  private finish(d: Deployment, status: string, description: string): void {
    d.Status = status;
    d.StatusDescription = description;
    d.ModifyIndex = this.store.write('deployment');
    d.ModifyTime = nowNs();
  }

  private touch(a: Alloc, changes: Record<string, unknown>): void {
    Object.assign(a, changes);
    a.ModifyIndex = this.store.write('allocs');
    a.ModifyTime = nowNs();
  }

  stopAlloc(a: Alloc, description: string): void {
    if (a.DesiredStatus === 'stop' && terminal(a)) return;
    const states: Record<string, Job> = {};
    for (const [name, s] of Object.entries((a.TaskStates ?? {}) as Record<string, Job>)) {
      const killed =
        s.State === 'dead'
          ? []
          : [event('Killing', 'Sent interrupt'), event('Killed', 'Task successfully killed')];
      states[name] = {
        ...s,
        State: 'dead',
        FinishedAt: new Date().toISOString(),
        Events: [...s.Events, ...killed],
      };
    }
    const client = a.ClientStatus === 'failed' ? 'failed' : 'complete';
    this.touch(a, {
      DesiredStatus: 'stop',
      DesiredDescription: description,
      ClientStatus: client,
      TaskStates: states,
    });
    this.store.write('services');
  }

  /**
   * Places one allocation of `tg` on the node, or none when a static (reserved) port it asks for
   * is held by another live allocation there: the one node cannot give a port twice, as a real
   * client cannot (the scheduler reports the group as not placed; its deployment then waits for
   * its progress deadline).
   */
  private place(
    job: Job,
    tg: Job,
    deployment: Deployment | undefined,
    previous?: Alloc,
  ): Alloc | undefined {
    const wanted = (((tg.Networks ?? []) as Job[])[0]?.ReservedPorts ?? []) as Job[];
    const held = new Set(
      [...this.store.allocs.values()]
        .filter((x) => x.DesiredStatus === 'run' && !terminal(x))
        .flatMap((x) => (x.AllocatedResources.Shared.Ports as Job[]).map((p) => p.Value)),
    );
    if (wanted.some((p) => held.has(p.Value))) return undefined;
    const live = this.store
      .allocsOf(job.Namespace, job.ID)
      .filter((a) => a.TaskGroup === tg.Name && !terminal(a));
    const taken = new Set(live.map((a) => Number(/\[(\d+)\]$/.exec(a.Name)?.[1])));
    let n = 0;
    while (taken.has(n)) n += 1;
    const net = ((tg.Networks ?? []) as Job[])[0] ?? {};
    const reserved: Job[] = ((net.ReservedPorts ?? []) as Job[]).map((p) => ({ ...p }));
    const dynamic: Job[] = ((net.DynamicPorts ?? []) as Job[]).map((p) => ({
      ...p,
      Value: this.freePort(),
    }));
    const ports = [...reserved, ...dynamic].map((p) => ({
      Label: p.Label,
      Value: p.Value,
      To: p.To ?? 0,
      HostIP: node.Address,
    }));
    const index = this.store.write('allocs');
    const now = nowNs();
    const a: Alloc = {
      ID: randomUUID(),
      Namespace: job.Namespace,
      EvalID: '',
      Name: `${job.ID}.${tg.Name}[${n}]`,
      NodeID: node.ID,
      NodeName: node.Name,
      JobID: job.ID,
      Job: job,
      JobVersion: job.Version,
      TaskGroup: tg.Name,
      AllocatedResources: {
        Tasks: Object.fromEntries(
          (tg.Tasks as Job[]).map((t) => [
            t.Name,
            { Cpu: { CpuShares: t.Resources.CPU }, Memory: { MemoryMB: t.Resources.MemoryMB } },
          ]),
        ),
        Shared: {
          DiskMB: tg.EphemeralDisk.SizeMB,
          Networks: [
            {
              Mode: net.Mode || 'host',
              IP: node.Address,
              ReservedPorts: reserved,
              DynamicPorts: dynamic,
            },
          ],
          Ports: ports,
        },
      },
      DesiredStatus: 'run',
      DesiredDescription: '',
      ClientStatus: 'pending',
      ClientDescription: 'No tasks have started',
      TaskStates: null,
      DeploymentID: deployment?.ID ?? '',
      DeploymentStatus: null,
      FollowupEvalID: '',
      PreviousAllocation: previous?.ID ?? '',
      NextAllocation: '',
      CreateIndex: index,
      ModifyIndex: index,
      AllocModifyIndex: index,
      CreateTime: now,
      ModifyTime: now,
    };
    if (previous) this.touch(previous, { NextAllocation: a.ID });
    this.store.allocs.set(a.ID, a);
    if (deployment) {
      deployment.TaskGroups[tg.Name].PlacedAllocs += 1;
      deployment.ModifyIndex = this.store.write('deployment');
    }
    return a;
  }

  private freePort(): number {
    while (this.usedPorts.has(this.nextPort))
      this.nextPort = this.nextPort >= 32000 ? 20000 : this.nextPort + 1;
    this.usedPorts.add(this.nextPort);
    return this.nextPort;
  }

  tick(): void {
    for (const a of this.store.allocs.values()) this.advance(a);
    for (const job of [...this.store.jobs.values()]) this.reconcile(job);
    for (const d of [...this.store.deployments.values()]) if (d.Status === 'running') this.watch(d);
    for (const job of this.store.jobs.values()) this.jobStatus(job);
  }

  /** The client's side: start tasks, crash them, mark them healthy, finish batch work. */
  private advance(a: Alloc): void {
    if (a.DesiredStatus !== 'run' || terminal(a)) return;
    const tg = (a.Job.TaskGroups as Job[]).find((g) => g.Name === a.TaskGroup)!;
    const now = Date.now();
    if (a.ClientStatus === 'pending') {
      const crash = crashes(tg);
      const states: Record<string, Job> = {};
      for (const t of tg.Tasks as Job[]) {
        const started = new Date().toISOString();
        if (crash && crash.task === t.Name) {
          const { events, restarts } = crashEvents(t.RestartPolicy, crash.driverError);
          states[t.Name] = {
            State: 'dead',
            Failed: true,
            Restarts: restarts,
            LastRestart: started,
            StartedAt: started,
            FinishedAt: started,
            Events: events,
          };
        } else {
          states[t.Name] = {
            State: 'running',
            Failed: false,
            Restarts: 0,
            LastRestart: null,
            StartedAt: started,
            FinishedAt: null,
            Events: startEvents(),
          };
        }
      }
      if (crash) {
        this.touch(a, {
          ClientStatus: 'failed',
          ClientDescription: 'Failed tasks',
          TaskStates: states,
        });
        if (a.DeploymentID) this.health(a, false);
      } else {
        this.touch(a, {
          ClientStatus: 'running',
          ClientDescription: 'Tasks are running',
          TaskStates: states,
        });
        this.startedAt.set(a.ID, now);
        this.store.write('services');
      }
      return;
    }
    const ranMs = now - (this.startedAt.get(a.ID) ?? now);
    if (a.Job.Type === 'batch' || a.Job.Type === 'sysbatch') {
      if (ranMs < 2 * this.tickMs) return;
      const states: Record<string, Job> = {};
      for (const [name, s] of Object.entries(a.TaskStates as Record<string, Job>)) {
        const done = event('Terminated', 'Exit Code: 0', {
          Details: { exit_code: '0', signal: '0', oom_killed: 'false' },
        });
        states[name] = {
          ...s,
          State: 'dead',
          FinishedAt: new Date().toISOString(),
          Events: [...s.Events, done],
        };
      }
      this.touch(a, {
        ClientStatus: 'complete',
        ClientDescription: 'All tasks have completed',
        TaskStates: states,
      });
      return;
    }
    if (!a.DeploymentID || a.DeploymentStatus || !tg.Update) return;
    // Manual health is set by an operator (never, here), so only the progress deadline ends it.
    if (tg.Update.HealthCheck === 'manual') return;
    const neverHealthy = (tg.Tasks as Job[]).some((t) => t.Env?.FAKE_NOMAD_UNHEALTHY);
    if (neverHealthy && ranMs >= tg.Update.HealthyDeadline / 1e6) this.health(a, false);
    else if (!neverHealthy && ranMs >= tg.Update.MinHealthyTime / 1e6) this.health(a, true);
  }

  private health(a: Alloc, healthy: boolean): void {
    const d = this.store.deployments.get(a.DeploymentID);
    this.touch(a, {
      DeploymentStatus: {
        Healthy: healthy,
        Timestamp: new Date().toISOString(),
        Canary: false,
        ModifyIndex: this.store.index + 1,
      },
    });
    this.store.write('services');
    if (!d || d.Status !== 'running') return;
    const state = d.TaskGroups[a.TaskGroup];
    if (healthy) {
      state.HealthyAllocs += 1;
      state.RequireProgressBy = new Date(Date.now() + state.ProgressDeadline / 1e6).toISOString();
    } else state.UnhealthyAllocs += 1;
    d.ModifyIndex = this.store.write('deployment');
  }

  /** The scheduler's side: make each group of the current version run Count allocations. */
  private reconcile(job: Job): void {
    const all = this.store.allocsOf(job.Namespace, job.ID).filter((a) => a.DesiredStatus === 'run');
    if (job.Stop || !placeable(job)) {
      for (const a of all) this.stopAlloc(a, 'alloc not needed due to job update');
      return;
    }
    const deployment = this.store
      .deploymentsOf(job.Namespace, job.ID)
      .find((d) => d.JobVersion === job.Version);
    for (const tg of job.TaskGroups as Job[]) {
      const mine = all.filter((a) => a.TaskGroup === tg.Name);
      const current = mine.filter((a) => a.JobVersion === job.Version);
      const old = mine.filter((a) => a.JobVersion !== job.Version);
      if (job.Type === 'batch' || job.Type === 'sysbatch') {
        const placedForVersion = this.store
          .allocsOf(job.Namespace, job.ID)
          .filter((a) => a.TaskGroup === tg.Name && a.JobVersion === job.Version);
        for (const a of old) this.stopAlloc(a, 'alloc not needed due to job update');
        for (let i = placedForVersion.length; i < tg.Count; i++) this.place(job, tg, undefined);
        continue;
      }
      const state = deployment?.TaskGroups[tg.Name] as Job | undefined;
      if (!deployment || !state) {
        for (const a of old) this.stopAlloc(a, 'alloc is being updated due to job update');
        for (let i = current.length; i < tg.Count; i++) this.place(job, tg, undefined, old[i]);
      } else if (deployment.Status === 'running') {
        let inflight = current.filter((a) => !a.DeploymentStatus).length;
        let placed = current.length;
        while (inflight < tg.Update.MaxParallel && placed < tg.Count) {
          const replaced = old.shift();
          if (replaced) this.stopAlloc(replaced, 'alloc is being updated due to job update');
          if (!this.place(job, tg, deployment, replaced)) break; // its static port is taken
          inflight += 1;
          placed += 1;
        }
        const healthy = current.filter((a) => a.DeploymentStatus?.Healthy).length;
        if (healthy >= tg.Count)
          for (const a of old) this.stopAlloc(a, 'alloc not needed due to job update');
      }
      for (const a of current.slice(tg.Count))
        this.stopAlloc(a, 'alloc not needed due to job update');
    }
  }

  /** The deployment watcher: success, failure by unhealthy allocations or progress deadline, auto-revert. */
  private watch(d: Deployment): void {
    const job = this.store.jobs.get(jobKey(d.Namespace, d.JobID));
    if (!job) return;
    const states = Object.entries(d.TaskGroups as Record<string, Job>);
    const live = this.store
      .allocsOf(d.Namespace, d.JobID)
      .filter((a) => a.DesiredStatus === 'run' && !terminal(a));
    let failure: string | undefined;
    if (states.some(([, s]) => s.UnhealthyAllocs > 0))
      failure = 'Failed due to unhealthy allocations';
    else if (
      states.some(([, s]) => s.ProgressDeadline > 0 && Date.parse(s.RequireProgressBy) < Date.now())
    ) {
      failure = 'Failed due to progress deadline';
    }
    if (failure)
      return this.fail(
        d,
        job,
        failure,
        states.some(([, s]) => s.AutoRevert),
      );
    const done = states.every(
      ([name, s]) =>
        s.HealthyAllocs >= s.DesiredTotal &&
        !live.some((a) => a.TaskGroup === name && a.JobVersion !== d.JobVersion),
    );
    if (!done) return;
    this.finish(d, 'successful', 'Deployment completed successfully');
    this.store.markStable(d.Namespace, d.JobID, d.JobVersion);
  }

  private fail(d: Deployment, job: Job, base: string, autoRevert: boolean): void {
    if (!autoRevert) return this.finish(d, 'failed', base);
    const stable = (this.store.versions.get(jobKey(job.Namespace, job.ID)) ?? []).find(
      (v) => v.Stable && v.Version < d.JobVersion,
    );
    if (!stable)
      return this.finish(d, 'failed', `${base} - no stable job version to auto revert to`);
    const spec = structuredClone({ ...stable, Stop: false });
    if (!specChanged(job, spec)) {
      const why = `not rolling back to stable job version ${stable.Version} as current job has same specification`;
      return this.finish(d, 'failed', `${base} - ${why}`);
    }
    this.finish(d, 'failed', `${base} - rolling back to job version ${stable.Version}`);
    this.store.putVersion(spec);
    this.store.createEval(spec, 'deployment-watcher', { DeploymentID: d.ID });
    this.registered(spec);
  }

  private jobStatus(job: Job): void {
    const allocs = this.store.allocsOf(job.Namespace, job.ID);
    const running = allocs.some((a) => !terminal(a));
    let status = running ? 'running' : 'pending';
    if (
      !running &&
      (job.Stop || (allocs.length > 0 && job.Type !== 'service' && job.Type !== 'system'))
    )
      status = 'dead';
    if (job.Periodic?.Enabled || job.ParameterizedJob) status = job.Stop ? 'dead' : 'running';
    if (job.Status === status) return;
    job.Status = status;
    job.ModifyIndex = this.store.write('jobs');
  }
}
