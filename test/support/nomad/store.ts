/**
 * The fake Nomad's state: jobs and their versions, evaluations, allocations, deployments and
 * variables, with one raft index bumped on every write. Each table remembers the index of its
 * last write, so a blocking query waits on the tables it reads, as Nomad's state store does
 * (a write to variables does not wake a query on a job's allocations).
 */
import { randomUUID } from 'node:crypto';
import type { Job } from './validate.js';
import type { Variable } from '../../../src/targets/nomad/api.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- allocations and deployments are Nomad's JSON */
export type Alloc = Record<string, any>;
export type Deployment = Record<string, any>;
export type Table = 'jobs' | 'evals' | 'allocs' | 'deployment' | 'vars' | 'services';

export type { Variable };

/** How many versions of a job Nomad keeps (structs.JobTrackedVersions). */
const trackedVersions = 6;

/** Fields SpecChanged ignores when it compares a job with its re-submission (nomad/structs/structs.go). */
const nonSpecFields = [
  'Status',
  'StatusDescription',
  'Stable',
  'Version',
  'CreateIndex',
  'ModifyIndex',
  'JobModifyIndex',
  'SubmitTime',
];

export const jobKey = (namespace: string, id: string): string => `${namespace}\0${id}`;
export const nowNs = (): number => Date.now() * 1_000_000;

function specOf(job: Job): string {
  const copy = structuredClone(job);
  for (const f of nonSpecFields) delete copy[f];
  return JSON.stringify(copy);
}

export function specChanged(old: Job | undefined, next: Job): boolean {
  return !old || specOf(old) !== specOf(next);
}

export class Store {
  index = 1;
  readonly tables: Record<Table, number> = {
    jobs: 1,
    evals: 1,
    allocs: 1,
    deployment: 1,
    vars: 1,
    services: 1,
  };
  readonly jobs = new Map<string, Job>();
  /** Every kept version of each job, newest first, as /versions answers them. */
  readonly versions = new Map<string, Job[]>();
  readonly evals = new Map<string, Record<string, unknown>>();
  readonly allocs = new Map<string, Alloc>();
  readonly deployments = new Map<string, Deployment>();
  readonly vars = new Map<string, Variable>();
  private waiters = new Set<() => void>();

  /** Takes the next raft index for a write to `tables` and wakes blocked queries. */
  write(...tables: Table[]): number {
    this.index += 1;
    for (const t of tables) this.tables[t] = this.index;
    for (const w of [...this.waiters]) w();
    return this.index;
  }

  indexOf(tables: Table[]): number {
    return Math.max(...tables.map((t) => this.tables[t]));
  }

  /** Resolves once the index of `tables` exceeds `after`, or after `waitMs`. */
  async waitFor(tables: Table[], after: number, waitMs: number): Promise<void> {
    if (this.indexOf(tables) > after) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const check = (): void => {
        if (this.indexOf(tables) > after) done();
      };
      const timer = setTimeout(done, waitMs);
      this.waiters.add(check);
    });
  }

  createEval(
    job: Job,
    triggeredBy: string,
    extra: Record<string, unknown> = {},
  ): Record<string, unknown> {
    const index = this.write('evals');
    const now = nowNs();
    const ev = {
      ID: randomUUID(),
      Namespace: job.Namespace,
      Priority: job.Priority,
      Type: job.Type,
      TriggeredBy: triggeredBy,
      JobID: job.ID,
      JobModifyIndex: job.JobModifyIndex,
      Status: 'complete',
      StatusDescription: '',
      CreateIndex: index,
      ModifyIndex: index,
      CreateTime: now,
      ModifyTime: now,
      ...extra,
    };
    this.evals.set(ev.ID, ev);
    return ev;
  }

  /**
   * Stores `job` as the job's next version, as upsertJobImpl does: Version one past the current,
   * CreateIndex kept, Stable cleared. Returns the raft index of the write.
   */
  putVersion(job: Job): number {
    const key = jobKey(job.Namespace, job.ID);
    const old = this.jobs.get(key);
    const index = this.write('jobs');
    job.Version = old ? old.Version + 1 : 0;
    job.CreateIndex = old?.CreateIndex ?? index;
    job.ModifyIndex = index;
    job.JobModifyIndex = index;
    job.SubmitTime = nowNs();
    job.Stable = false;
    job.Status = old?.Status || 'pending';
    this.jobs.set(key, job);
    const versions = [job, ...(this.versions.get(key) ?? [])].slice(0, trackedVersions);
    this.versions.set(key, versions);
    return index;
  }

  /** Marks version `version` of a job stable (a successful deployment does so). */
  markStable(namespace: string, id: string, version: number): void {
    const key = jobKey(namespace, id);
    const index = this.write('jobs');
    for (const v of this.versions.get(key) ?? []) {
      if (v.Version === version) {
        v.Stable = true;
        v.ModifyIndex = index;
      }
    }
  }

  allocsOf(namespace: string, jobId: string): Alloc[] {
    return [...this.allocs.values()]
      .filter((a) => a.Namespace === namespace && a.JobID === jobId)
      .sort((a, b) => b.CreateIndex - a.CreateIndex);
  }

  deploymentsOf(namespace: string, jobId: string): Deployment[] {
    return [...this.deployments.values()]
      .filter((d) => d.Namespace === namespace && d.JobID === jobId)
      .sort((a, b) => b.CreateIndex - a.CreateIndex);
  }
}
