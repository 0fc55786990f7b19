/**
 * The seam between the deploy steps and the engines that run apps. A `Target` puts a release on,
 * watches it become healthy, takes it back, says where a process can be reached, removes an app
 * and reads back what runs; the steps (submit, healthy, forge, cleanup) and the scheduled-process
 * jobs only ever talk to one, picked by the spec's `target` (docker when left out).
 *
 * What stays out of the contract, on purpose: releases, secrets and locks. The steps decide which
 * release is the previous one, decrypt its secrets and hold the app's lock; a target is handed a
 * release complete (image, spec, secret values) and never reads the database. Errors are
 * NornErrors: CONFLICT when an object the app needs belongs to another app (left alone),
 * STEP_FAILED when the release itself does not run, UNAVAILABLE when the engine cannot be used,
 * CANCELLED when the signal aborted, NOT_FOUND/SPEC_INVALID for a process it cannot address.
 */
import type { ProxyRoute } from '../shared/drivers/caddy.js';
import { NornError } from '../shared/errors.js';
import type { DeployTarget, Infraspec } from '../shared/spec/infraspec.js';

/** A release as a target receives it: everything needed to run it, secrets decrypted. */
export interface TargetRelease {
  app: string;
  id: number;
  deploymentId: string;
  imageRef: string;
  /** The commit the image was built from (nomad keeps it in the job's Meta). */
  commitSha?: string;
  spec: Infraspec;
  /** Decrypted secret values, given to every process's environment. */
  secrets: Record<string, string>;
}

/** What every call carries: cancellation, the step's log, and values to keep out of messages. */
export interface TargetCall {
  signal: AbortSignal;
  log: (line: string) => void;
  /** Secret values to scrub from anything that leaves (messages, log lines). */
  redact: string[];
}

/** How far a release's rollout is: `ready` of `desired` replicas count as healthy right now. */
export interface TargetProgress {
  ready: number;
  desired: number;
  message?: string;
  /** Engines that roll out per group (nomad's task groups): which one, placed and unhealthy. */
  group?: string;
  placed?: number;
  unhealthy?: number;
}
export type OnProgress = (p: TargetProgress) => void;

export interface Applied {
  /** The target's names of the long-running objects of the release (docker: containers). */
  units: string[];
  /** Ids of the release's schedules (scheduled processes). */
  schedules: string[];
  /** What the engine said it would change, per object, where it plans first (nomad). */
  plan?: PlanSummary[];
}

/** An engine's plan for one object (nomad: `POST /v1/job/:id/plan` with its diff). */
export interface PlanSummary {
  object: string;
  /** Added, Edited, Deleted or None, as the engine words it. */
  change: string;
  /** What changes, one line each ("TaskGroup web: Task web: Config.image: a → b"). */
  changes: string[];
  /** Per group, what the scheduler would do (Place, Stop, DestructiveUpdate …) when not zero. */
  groups: Record<string, Record<string, number>>;
}

export interface HealthVerdict {
  ok: boolean;
  /** How long every replica stayed healthy without a break (0 unless ok). */
  healthyForMs: number;
  /** Why not healthy (the last problem seen), when not ok. */
  problem?: string;
}

/** Where a process is served: what routes (cloudflared ingress) and probes send requests to. */
export interface TargetAddress {
  host: string;
  port: number;
}

/** One long-running object of an app as the engine reports it. */
export interface LiveUnit {
  name: string;
  process: string;
  replica: number;
  /** The release the object was put on by (undefined when it carries none). */
  releaseId: number | undefined;
  image: string;
  running: boolean;
  /** The host port it listens on, where the target records one (docker: its replica port). */
  port?: number;
}

/** What runs for an app right now (for drift checks): its units and its schedules. */
export interface LiveState {
  units: LiveUnit[];
  schedules: string[];
  /**
   * The ingress proxy's route of each of the app's processes, by process name, on targets where
   * norn runs the proxy (docker: Caddy); absent elsewhere.
   */
  proxy?: Record<string, ProxyRoute>;
}

/** A scheduled process's one run (a tick of its schedule), for targets that norn ticks. */
export interface ScheduledRun {
  release: TargetRelease;
  process: string;
  /** Identifies the tick (the job's id): one tick, one object. */
  runId: string;
  signal: AbortSignal | undefined;
  timeoutMs: number | undefined;
  onLine: (line: string) => void;
}

export interface Target {
  readonly name: DeployTarget;
  /**
   * Puts `release` on, replacing what the app ran before, and makes its scheduled processes the
   * app's schedules. Idempotent: applying the same release again keeps what is already right.
   * `onTouch` is called just before the first running object is changed (a failure before it
   * left the app as it was).
   */
  apply(release: TargetRelease, call: TargetCall & { onTouch?: () => void }): Promise<Applied>;
  /**
   * Watches `release` until every replica stayed healthy for the spec's minHealthyTime, or the
   * healthTimeout ran out, or a replica crashed (a verdict, not an error); progress on the way.
   */
  waitHealthy(
    release: Pick<TargetRelease, 'app' | 'id' | 'spec'>,
    call: TargetCall & { onProgress?: OnProgress },
  ): Promise<HealthVerdict>;
  /**
   * Takes `failed` back: `previous` (the last good release) put on again exactly as it was, or,
   * with none, the objects and schedules of `failed` removed.
   */
  rollBack(
    o: { app: string; failed: { id: number }; previous: TargetRelease | null },
    call: TargetCall,
  ): Promise<void>;
  /** Where `process` of `app`, as `spec` declares it, can be reached. */
  address(app: string, process: string, spec: Infraspec): Promise<TargetAddress>;
  /** Removes every long-running object and schedule of the app; idempotent. Returns the names. */
  remove(app: string, call: TargetCall): Promise<string[]>;
  /** What runs for the app right now. */
  live(app: string, signal?: AbortSignal): Promise<LiveState>;
  /**
   * Runs one tick of a scheduled process to completion. Only targets whose schedules norn ticks
   * (docker: BullMQ job schedulers) have it; engines with their own (a CronJob) run ticks alone.
   */
  runScheduled?(run: ScheduledRun): Promise<{ exitCode: number; tail: string[] }>;
}

/** The targets this worker can deploy to, by name. */
export type TargetRegistry = Partial<Record<DeployTarget, Target>>;

/**
 * The target `spec` deploys to (docker when it names none); UNAVAILABLE when `registry` has none
 * by that name (a worker built with only some targets).
 */
export function targetFor(registry: TargetRegistry, spec: Pick<Infraspec, 'target'>): Target {
  const name = spec.target ?? 'docker';
  const found = registry[name];
  if (found) return found;
  throw new NornError('UNAVAILABLE', `target ${name} is not available on this worker`, {
    details: { target: name },
  });
}
