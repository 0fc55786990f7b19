/**
 * The GitOps pipelines (issue 11; ../shared/DESIGN.md):
 * - review, per pull request (`review:<stack>#<n>`, a newer push supersedes): validate, plan; the
 *   plan is posted back, nothing is applied;
 * - release, per stack (`stack:<stack>`, queued): validate, build, plan, apply (exactly the saved
 *   plan, once), verify;
 * - drift-check, per stack or app (`drift:<id>`, coalesced: checks never pile up): check.
 * A stack's runs belong to its subject row (005_gitops_runs.sql), so `appId` is the stack's id.
 * Bump `version` whenever steps change: runs execute the version they started with.
 */
import { definePipeline } from '../../queues/pipeline.js';
import { defineStep } from '../../queues/pipeline.js';
import { NornError } from '../../shared/errors.js';
import type { DeployServices } from '../deploy/types.js';
import { checkAppDriftStep } from './app-check.js';
import { driftHooks, releaseHooks, reviewHooks } from './hooks.js';
import {
  applyPlan,
  buildImages,
  planStack,
  postPlan,
  stackDrift,
  validateStack,
  verifyStack,
} from './steps.js';
import {
  DRIFT_STEPS,
  DriftOutput,
  DriftParams,
  RELEASE_STEPS,
  ReleaseParams,
  REVIEW_STEPS,
  ReviewParams,
  releaseStep,
  reviewStep,
} from './types.js';
import { branchOf, stackSpec } from './workspace.js';

const reviewValidate = reviewStep('validate', {
  params: ReviewParams,
  attempts: 2, // a clone's network hiccup; tofu's verdicts are the same on a retry
  backoffMs: 2_000,
  run: (ctx, s) => validateStack(ctx, s, ctx.params.headSha),
});

const reviewPlan = reviewStep('plan', {
  params: ReviewParams,
  async run(ctx, s) {
    const validated = await ctx.output('validate');
    if (!validated) throw new NornError('INTERNAL', 'plan runs after validate');
    const plan = await planStack(ctx, s, {
      kind: 'review',
      commitSha: validated.commitSha,
      baseSha: ctx.params.baseSha ?? null,
      pullRequest: ctx.params.pullRequest,
    });
    const commentId = await postPlan(ctx, s, {
      pullRequest: ctx.params.pullRequest,
      commitSha: validated.commitSha,
      plan,
    });
    return { ...plan, commentId };
  },
});

const releaseValidate = releaseStep('validate', {
  params: ReleaseParams,
  attempts: 2,
  backoffMs: 2_000,
  run: (ctx, s) => validateStack(ctx, s, ctx.params.commitSha ?? branchOf(stackSpec(ctx))),
});

const releaseBuild = releaseStep('build', {
  attempts: 2,
  backoffMs: 2_000,
  async run(ctx, s) {
    const validated = await ctx.output('validate');
    if (!validated) throw new NornError('INTERNAL', 'build runs after validate');
    return buildImages(ctx, s, validated);
  },
});

const releasePlan = releaseStep('plan', {
  async run(ctx, s) {
    const validated = await ctx.output('validate');
    if (!validated) throw new NornError('INTERNAL', 'plan runs after validate');
    const plan = await planStack(ctx, s, { kind: 'release', commitSha: validated.commitSha });
    return { ...plan, commentId: null };
  },
});

const releaseApply = releaseStep('apply', {
  // Never retried: a second attempt would be a blind re-run of an apply (applyPlan refuses one).
  attempts: 1,
  async run(ctx, s) {
    const [validated, plan] = [await ctx.output('validate'), await ctx.output('plan')];
    if (!validated || !plan) throw new NornError('INTERNAL', 'apply runs after validate and plan');
    return applyPlan(ctx, s, { plan, commitSha: validated.commitSha });
  },
});

const releaseVerify = releaseStep('verify', { run: (ctx, s) => verifyStack(ctx, s) });

const driftCheck = defineStep<DeployServices>()({
  name: 'check',
  output: DriftOutput,
  params: DriftParams,
  async run(ctx, s) {
    if (ctx.params.kind === 'app') return checkAppDriftStep(ctx, s);
    return stackDrift(ctx, s, branchOf(stackSpec(ctx)));
  },
});

const reviewSteps = [reviewValidate, reviewPlan] as const;
const releaseSteps = [
  releaseValidate,
  releaseBuild,
  releasePlan,
  releaseApply,
  releaseVerify,
] as const;
const driftSteps = [driftCheck] as const;

if (reviewSteps.map((s) => s.name).join() !== REVIEW_STEPS.join())
  throw new Error('review steps out of order');
if (releaseSteps.map((s) => s.name).join() !== RELEASE_STEPS.join())
  throw new Error('release steps out of order');
if (driftSteps.map((s) => s.name).join() !== DRIFT_STEPS.join())
  throw new Error('drift-check steps out of order');

export const reviewPipeline = definePipeline<DeployServices>()({
  name: 'review',
  version: '1',
  events: 'review',
  scope: ({ appId, params }) => `review:${appId}#${String(params.pullRequest)}`,
  policy: 'supersede',
  steps: reviewSteps,
  hooks: reviewHooks,
  summarize: ({ plan }) => (plan ? { planId: plan.planId, summary: plan.summary } : {}),
});

export const releasePipeline = definePipeline<DeployServices>()({
  name: 'release',
  version: '1',
  events: 'release',
  scope: ({ appId }) => `stack:${appId}`,
  policy: 'queue',
  steps: releaseSteps,
  hooks: releaseHooks,
  summarize: ({ plan, apply }) => ({
    ...(plan ? { planId: plan.planId, summary: plan.summary } : {}),
    applied: Boolean(apply),
  }),
});

export const driftCheckPipeline = definePipeline<DeployServices>()({
  name: 'drift-check',
  version: '1',
  events: 'drift-check',
  scope: ({ appId }) => `drift:${appId}`,
  policy: 'coalesce',
  steps: driftSteps,
  hooks: driftHooks,
  summarize: ({ check }) => (check ? { status: check.status, fingerprint: check.fingerprint } : {}),
});
