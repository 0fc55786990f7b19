/**
 * The GitOps pipelines' life-cycle hooks (run exactly once per run, src/workers/hooks.ts):
 * - review: the commit status of the pull request's head (pending, then success or failure), and
 *   the plan comment replaced by the error when the plan failed;
 * - release: an alert when it fails (verify.failed when a verify check did);
 * - drift-check: the subject's drift state, `drift.detected` / `drift.cleared` / `drift.error`
 *   events and their alerts, each only when the finding changed since the last check.
 * Their database writes ride the hook's transaction; what they send out (statuses, comments,
 * alerts) may be sent again if a worker dies mid-hook, and is idempotent or harmless twice.
 */
import type { HookContext, PipelineHooks } from '../../queues/pipeline.js';
import { createFeedback, planMarker } from '../../gitops/feedback.js';
import type { CommitState } from '../../gitops/feedback-types.js';
import { DriftStateStore, driftSubject } from '../../shared/store/drift-state.js';
import type { StackSpec } from '../../shared/spec/stack.js';
import type { DeployServices } from '../deploy/types.js';
import { failureComment, planUrl, summaryLine } from './steps.js';
import { DriftOutput, DriftParams, PlanOutput, ReviewParams } from './types.js';

/** A step's recorded output (read in the hook's transaction), or undefined. */
async function stepOutput(ctx: HookContext, step: string): Promise<unknown> {
  const { rows } = await ctx.tx.query<{ output: unknown }>(
    'SELECT output FROM run_steps WHERE run_id = $1 AND name = $2',
    [ctx.run.id, step],
  );
  return rows[0]?.output ?? undefined;
}

/** The step that failed the run, with its error. */
async function failedStep(ctx: HookContext): Promise<{ name: string; error: string } | undefined> {
  const { rows } = await ctx.tx.query<{ name: string; error: string | null }>(
    `SELECT name, error FROM run_steps WHERE run_id = $1 AND status = 'failed' ORDER BY idx LIMIT 1`,
    [ctx.run.id],
  );
  const row = rows[0];
  return row ? { name: row.name, error: row.error ?? ctx.run.error ?? 'failed' } : undefined;
}

const statusContext = (stack: string) => `norn/plan/${stack}`;

async function reviewStatus(
  ctx: HookContext,
  s: DeployServices,
  state: CommitState,
  description: string,
  targetUrl?: string,
): Promise<void> {
  const spec = ctx.run.spec as unknown as StackSpec;
  if (!spec.feedback) return;
  const params = ReviewParams.parse(ctx.run.params);
  await createFeedback(spec.feedback, s.gitops.env).setStatus({
    sha: params.headSha,
    state,
    context: statusContext(spec.name),
    description,
    ...(targetUrl && /^https?:/.test(targetUrl) ? { targetUrl } : {}),
  });
  ctx.log(`status ${state} on ${params.headSha.slice(0, 12)}: ${description}`);
}

export const reviewHooks: PipelineHooks<DeployServices> = {
  async onStart(ctx, s) {
    await reviewStatus(ctx, s, 'pending', 'norn is planning this commit');
  },
  async onSucceed(ctx, s) {
    const plan = PlanOutput.parse(await stepOutput(ctx, 'plan'));
    await reviewStatus(ctx, s, 'success', summaryLine(plan.summary), planUrl(s, plan.planId));
  },
  async onFail(ctx, s) {
    const spec = ctx.run.spec as unknown as StackSpec;
    const failed = await failedStep(ctx);
    const error = failed
      ? `${failed.name}: ${failed.error}`
      : (ctx.run.error ?? 'the review failed');
    await reviewStatus(ctx, s, 'failure', `the plan failed (${failed?.name ?? 'review'})`);
    if (!spec.feedback) return;
    const params = ReviewParams.parse(ctx.run.params);
    await createFeedback(spec.feedback, s.gitops.env).upsertComment({
      pullRequest: params.pullRequest,
      marker: planMarker(spec.name),
      body: failureComment({ stack: spec.name, commitSha: params.headSha, error }),
    });
  },
  async onCancel(ctx, s) {
    // Superseded by a newer push (whose own review sets its status) or cancelled by hand.
    if (ctx.run.started)
      await reviewStatus(ctx, s, 'error', 'cancelled or superseded by a newer push');
  },
};

export const releaseHooks: PipelineHooks<DeployServices> = {
  async onFail(ctx, s) {
    const failed = await failedStep(ctx);
    const verify = failed?.name === 'verify';
    const error = failed?.error ?? ctx.run.error ?? 'the release failed';
    await s.gitops.alerts.send({
      kind: verify ? 'verify.failed' : 'release.failed',
      subject: driftSubject('stack', ctx.run.appId),
      summary: `release of stack ${ctx.run.appId} failed at ${failed?.name ?? 'a step'}: ${error.split('\n')[0]}`,
      details: { step: failed?.name ?? null, error },
      runId: ctx.run.id,
    });
  },
};

/** The event payload key naming the subject: `{stack: id}` or `{app: id}`. */
const subjectKey = (ctx: HookContext) => DriftParams.parse(ctx.run.params).kind;

export const driftHooks: PipelineHooks<DeployServices> = {
  async onSucceed(ctx, s) {
    const kind = subjectKey(ctx);
    const id = ctx.run.appId;
    const subject = driftSubject(kind, id);
    const found = DriftOutput.parse(await stepOutput(ctx, 'check'));
    const store = new DriftStateStore(ctx.tx);
    const before = await store.get(subject);
    const { changed } = await store.record(subject, {
      status: found.status,
      fingerprint: found.status === 'drifted' ? found.fingerprint : null,
      summary: { ...found.summary, details: found.details },
    });
    const payload = { [kind]: id, summary: found.summary, fingerprint: found.fingerprint };
    if (found.status === 'drifted' && changed) {
      await ctx.emit('drift.detected', { ...payload, details: found.details });
      await store.markReported(subject);
      await s.gitops.alerts.send({
        kind: 'drift.detected',
        subject,
        summary: `${kind} ${id} drifted: ${found.details.slice(0, 5).join(', ')}${found.details.length > 5 ? ', …' : ''}`,
        details: { summary: found.summary, details: found.details },
        runId: ctx.run.id,
        fingerprint: found.fingerprint,
      });
    } else if (found.status === 'clean' && before?.status === 'drifted') {
      await ctx.emit('drift.cleared', { ...payload, previous: before.fingerprint });
      await store.markReported(subject);
      await s.gitops.alerts.send({
        kind: 'drift.cleared',
        subject,
        summary: `${kind} ${id} matches its code again`,
        runId: ctx.run.id,
        ...(before.fingerprint ? { fingerprint: before.fingerprint } : {}),
      });
    } else ctx.log(`${subject}: ${found.status}${changed ? '' : ', as already reported'}`);
  },
  async onFail(ctx, s) {
    const kind = subjectKey(ctx);
    const id = ctx.run.appId;
    const subject = driftSubject(kind, id);
    const failed = await failedStep(ctx);
    const error = failed?.error ?? ctx.run.error ?? 'the drift check failed';
    const store = new DriftStateStore(ctx.tx);
    const before = await store.get(subject);
    await store.recordError(subject, error);
    await ctx.emit('drift.error', { [kind]: id, error });
    // The same error as the last check's is not news: one alert per distinct error.
    if (before?.lastError === error) return ctx.log(`${subject}: the same error as the last check`);
    await s.gitops.alerts.send({
      kind: 'drift.error',
      subject,
      summary: `drift check of ${kind} ${id} failed (not drift): ${error.split('\n')[0]}`,
      details: { error },
      runId: ctx.run.id,
    });
  },
};
