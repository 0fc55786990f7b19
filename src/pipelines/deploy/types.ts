/**
 * The deploy pipeline's contracts: what each step returns (read by later steps with
 * `ctx.output<…>(name)`) and the services every step receives.
 */
import type { Db } from '../../shared/db.js';
import type { DockerDriver } from '../../shared/drivers/docker.js';
import type { GitAuth } from '../../shared/drivers/git.js';
import type { SopsKeys } from '../../shared/secrets/sops.js';
import type { Infraspec } from '../../shared/spec/infraspec.js';
import type { Logger } from '../../shared/logger.js';
import type { ReleaseStore } from './releases.js';
import type { SnapshotStore } from './snapshot-store.js';

export const DEPLOY_STEPS = [
  'clone',
  'build',
  'test',
  'snapshot',
  'migrate',
  'submit',
  'healthy',
  'forge',
  'cleanup',
] as const;
export type DeployStep = (typeof DEPLOY_STEPS)[number];

export interface CloneOutput {
  commitSha: string;
  ref: string;
  repoUrl: string;
}
export interface BuildOutput {
  imageRef: string;
  digest: string | null;
  reused: boolean;
}
export interface TestOutput {
  exitCode: number;
  tail: string[];
}
export interface SnapshotOutput {
  ts: string;
  database: string;
  sizeBytes: number;
  sha256: string;
  pruned: string[];
}
export interface MigrateOutput {
  database: string;
  applied: string[];
  alreadyApplied: string[];
}
export interface SubmitOutput {
  releaseId: number;
  previousReleaseId: number | null;
  containers: string[];
  schedulers: string[];
}
export interface HealthyOutput {
  healthyForMs: number;
  processes: string[];
}
export interface ForgeOutput {
  routes: Array<{ hostname: string; service: string; path?: string }>;
  changed: boolean;
  restarted: boolean;
}
export interface CleanupOutput {
  removed: string[];
  /** After a run that ended half-deployed: the release taken back and what was done. */
  compensated?: { releaseId: number; outcome: string };
}

/** Everything the deploy steps use, built once per worker process from config (services.ts). */
export interface DeployServices {
  db: Db;
  log: Logger;
  /** Per-run working directories live in `${workDir}/${runId}` (clone, build context). */
  workDir: string;
  git: GitAuth;
  /** Docker target; undefined when no Docker engine is configured (steps then fail clearly). */
  docker: DockerDriver | undefined;
  registryUrl: string;
  sopsKeys: () => Promise<SopsKeys>;
  /** Admin connection to the server holding apps' databases (NORN_APP_DATABASE_URL). */
  appDatabaseUrl: string | undefined;
  snapshotDir: string;
  cloudflared: { configPath: string | undefined; restartArgv: string | undefined };
  releases: ReleaseStore;
  snapshots: SnapshotStore;
  cron: CronScheduler;
  /** How long healthy checks wait between probes (tests shorten it). */
  healthPollMs: number;
}

export type { Infraspec };

/** What the deploy steps need of scheduled processes' job schedulers (cron.ts implements it). */
export interface CronScheduler {
  /** Creates or updates the scheduler of one scheduled process; returns its id. */
  upsert(o: {
    appId: string;
    process: string;
    schedule: string;
    timezone: string | undefined;
    releaseId: number;
  }): Promise<string>;
  /** Removes the app's schedulers whose ids are not in `keep`; returns the removed ids. */
  prune(appId: string, keep: string[]): Promise<string[]>;
}
