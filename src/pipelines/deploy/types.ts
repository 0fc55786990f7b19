/**
 * The deploy pipeline's contracts: the schema of what each step returns (checked before it is
 * recorded, and what later steps read, typed, with `ctx.output(name)`), the params the steps read,
 * and the services every step receives. `deployStep` writes a step against them.
 */
import { z } from 'zod';
import type { Db } from '../../shared/db.js';
import type { DockerDriver } from '../../shared/drivers/docker.js';
import type { GitAuth } from '../../shared/drivers/git.js';
import type { SopsKeys } from '../../shared/secrets/sops.js';
import type { Infraspec } from '../../shared/spec/infraspec.js';
import type { Logger } from '../../shared/logger.js';
import {
  stepsOf,
  type OutputsOf,
  type StepContext,
  type StepsBefore,
} from '../../queues/pipeline.js';
import type { ReleaseStore } from './releases.js';
import type { SnapshotStore } from './snapshot-store.js';
import type { CronScheduler, TargetRegistry } from '../../targets/index.js';
import type { KubeConnection } from '../../targets/kubernetes/connection.js';
import type { GitopsServices } from '../gitops/services.js';

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

const names = z.array(z.string());

export const CloneOutput = z.object({
  commitSha: z.string(),
  ref: z.string(),
  repoUrl: z.string(),
});
export type CloneOutput = z.output<typeof CloneOutput>;

export const BuildOutput = z.object({
  imageRef: z.string(),
  digest: z.string().nullable(),
  reused: z.boolean(),
});
export type BuildOutput = z.output<typeof BuildOutput>;

export const TestOutput = z.object({ exitCode: z.int(), tail: names });
export type TestOutput = z.output<typeof TestOutput>;

export const SnapshotOutput = z.object({
  ts: z.string(),
  database: z.string(),
  sizeBytes: z.number().nonnegative(),
  sha256: z.string(),
  pruned: names,
});
export type SnapshotOutput = z.output<typeof SnapshotOutput>;

export const MigrateOutput = z.object({
  database: z.string(),
  applied: names,
  alreadyApplied: names,
});
export type MigrateOutput = z.output<typeof MigrateOutput>;

export const SubmitOutput = z.object({
  releaseId: z.int(),
  previousReleaseId: z.int().nullable(),
  containers: names,
  schedulers: names,
  /** What the target's engine planned before it changed anything (nomad), per object. */
  plan: z
    .array(
      z.object({
        object: z.string(),
        change: z.string(),
        changes: z.array(z.string()),
        groups: z.record(z.string(), z.record(z.string(), z.number())),
      }),
    )
    .optional(),
});
export type SubmitOutput = z.output<typeof SubmitOutput>;

export const HealthyOutput = z.object({ healthyForMs: z.number(), processes: names });
export type HealthyOutput = z.output<typeof HealthyOutput>;

export const ForgeOutput = z.object({
  routes: z.array(
    z.object({ hostname: z.string(), service: z.string(), path: z.string().optional() }),
  ),
  changed: z.boolean(),
  restarted: z.boolean(),
});
export type ForgeOutput = z.output<typeof ForgeOutput>;

export const CleanupOutput = z.object({
  removed: names,
  /** After a run that ended half-deployed: the release taken back and what was done. */
  compensated: z.object({ releaseId: z.int(), outcome: z.string() }).optional(),
});
export type CleanupOutput = z.output<typeof CleanupOutput>;

/** Each deploy step's output schema (the steps run in DEPLOY_STEPS order). */
export const DEPLOY_OUTPUTS = {
  clone: CloneOutput,
  build: BuildOutput,
  test: TestOutput,
  snapshot: SnapshotOutput,
  migrate: MigrateOutput,
  submit: SubmitOutput,
  healthy: HealthyOutput,
  forge: ForgeOutput,
  cleanup: CleanupOutput,
} satisfies Record<DeployStep, z.ZodType>;
export type DeployOutputs = OutputsOf<typeof DEPLOY_OUTPUTS>;

/**
 * The context of deploy step `N` (params unchecked): it reads the outputs of the steps before it.
 * Helpers shared by several steps take the narrowest one they need, e.g. `DeployContext<'build'>`
 * (reads clone).
 */
export type DeployContext<N extends DeployStep> = StepContext<
  Pick<DeployOutputs, StepsBefore<typeof DEPLOY_STEPS, N>>
>;

/** A context that can read the given steps' outputs (any step after them). */
export type ReadsOutputs<K extends DeployStep> = StepContext<Pick<DeployOutputs, K>>;

/** Everything the deploy steps use, built once per worker process from config (services.ts). */
export interface DeployServices {
  db: Db;
  log: Logger;
  /** Per-run working directories live in `${workDir}/${runId}` (clone, build context). */
  workDir: string;
  git: GitAuth;
  /**
   * The engine images are built and tested on (build, test, and cleanup of leftover test
   * containers); undefined when none is configured (those steps then fail clearly). Releases go
   * to `targets`, never here.
   */
  docker: DockerDriver | undefined;
  /** Where releases run: submit, healthy, forge, cleanup and scheduled processes pick one per spec. */
  targets: TargetRegistry;
  registryUrl: string;
  sopsKeys: () => Promise<SopsKeys>;
  /** Admin connection to the server holding apps' databases (NORN_APP_DATABASE_URL). */
  appDatabaseUrl: string | undefined;
  snapshotDir: string;
  cloudflared: { configPath: string | undefined; restartArgv: string | undefined };
  releases: ReleaseStore;
  snapshots: SnapshotStore;
  /** What the forge and teardown pipelines use on the kubernetes target (src/pipelines/forge/). */
  kube: {
    /** The cluster connection, made when first needed (UNAVAILABLE without a config). */
    connect: () => KubeConnection;
    cloudflared: { namespace: string; configMap: string; deployment: string };
    tunnelName: string;
    /** PATH the cloudflared CLI is looked up on. */
    path: string | undefined;
  };
  /** The Nomad namespace the nomad target's jobs are in (what teardown's output names). */
  nomad?: { namespace: string };
  /** What the review, release and drift-check pipelines use (src/pipelines/gitops/). */
  gitops: GitopsServices;
}

export type { Infraspec };

/** Writes a deploy step: `deployStep('build', { run(ctx, services) { … } })` (schemas above). */
export const deployStep = stepsOf<DeployServices>()(DEPLOY_STEPS, DEPLOY_OUTPUTS);

export type { CronScheduler };
