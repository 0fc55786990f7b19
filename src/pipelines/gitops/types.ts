/**
 * The GitOps pipelines' contracts (issue 11): review (a pull request's plan, posted back), release
 * (the default branch planned and applied, exactly the saved plan, then verified) and drift-check
 * (a stack's `plan -detailed-exitcode`, or an app's live state against its release). Their steps'
 * outputs, the params they read, and the services they use beside the deploy services.
 */
import { z } from 'zod';
import { stepsOf } from '../../queues/pipeline.js';
import type { DeployServices } from '../deploy/types.js';

export type { GitopsServices } from './services.js';

const names = z.array(z.string());

export const PlanSummarySchema = z.object({
  add: z.int(),
  change: z.int(),
  destroy: z.int(),
  byAction: z.object({ create: names, update: names, delete: names, replace: names }),
});

export const ValidateOutput = z.object({
  commitSha: z.string(),
  /** Where the stack state lives: norn's own local state (`local`), or the stack's backend. */
  state: z.enum(['local', 'backend']),
  fmt: z.object({ ok: z.boolean(), files: names }),
  errorCount: z.int(),
  warningCount: z.int(),
  /** The warnings tofu validate gave (errors fail the step), at most 50. */
  warnings: names,
});
export type ValidateOutput = z.output<typeof ValidateOutput>;

export const PlanOutput = z.object({
  planId: z.int(),
  sha256: z.string(),
  summary: PlanSummarySchema,
  /** review: the pull request comment holding the plan (null without feedback). */
  commentId: z.int().nullable(),
});
export type PlanOutput = z.output<typeof PlanOutput>;

export const ImagesOutput = z.object({ images: names });

export const ApplyOutput = z.object({
  planId: z.int(),
  appliedAt: z.string(),
  /** True when an earlier attempt of this step had applied it already (nothing ran twice). */
  already: z.boolean(),
});

export const VerifyOutput = z.object({
  results: z.array(
    z.object({
      check: z.string(),
      ok: z.boolean(),
      detail: z.string(),
      attempts: z.int(),
      durationMs: z.number(),
    }),
  ),
});

export const DriftOutput = z.object({
  status: z.enum(['clean', 'drifted']),
  fingerprint: z.string(),
  summary: PlanSummarySchema,
  /** What differs, as lines (app drift) or the plan's addresses (stacks). */
  details: names,
});
export type DriftOutput = z.output<typeof DriftOutput>;

export const REVIEW_STEPS = ['validate', 'plan'] as const;
export const RELEASE_STEPS = ['validate', 'build', 'plan', 'apply', 'verify'] as const;
export const DRIFT_STEPS = ['check'] as const;

export const reviewStep = stepsOf<DeployServices>()(REVIEW_STEPS, {
  validate: ValidateOutput,
  plan: PlanOutput,
});
export const releaseStep = stepsOf<DeployServices>()(RELEASE_STEPS, {
  validate: ValidateOutput,
  build: ImagesOutput,
  plan: PlanOutput,
  apply: ApplyOutput,
  verify: VerifyOutput,
});

/** A review: the stack, its pull request and the commits it plans. */
export const ReviewParams = z.object({
  pullRequest: z.int().positive(),
  headSha: z.string().regex(/^[0-9a-f]{7,64}$/, 'must be a commit SHA'),
  baseSha: z
    .string()
    .regex(/^[0-9a-f]{7,64}$/, 'must be a commit SHA')
    .nullish(),
  headRef: z.string().nullish(),
});
export type ReviewParams = z.output<typeof ReviewParams>;

/** A release: the commit to apply (absent: the head of the stack's branch). */
export const ReleaseParams = z.object({
  commitSha: z
    .string()
    .regex(/^[0-9a-f]{7,64}$/, 'must be a commit SHA')
    .nullish(),
});

/** A drift check's subject: a stack, or an app. */
export const DriftParams = z.object({ kind: z.enum(['stack', 'app']) });
export type DriftParams = z.output<typeof DriftParams>;
