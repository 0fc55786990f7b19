/**
 * What the GitOps steps do, shared by the pipelines that run them: validate a stack's
 * configuration, plan it into a saved artifact, build its images, apply exactly a saved plan once,
 * verify the result, and check it for drift.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NornError } from '../../shared/errors.js';
import type { StepContext } from '../../queues/pipeline.js';
import { skipStep } from '../../queues/pipeline.js';
import type { PlanKind } from '../../shared/store/plan-artifacts.js';
import { createFeedback, planMarker } from '../../gitops/feedback.js';
import {
  driftFingerprint,
  planSummary,
  sha256File,
  type PlanSummary,
  type TofuDiagnostic,
} from '../../gitops/tofu.js';
import { runChecks, type VerifyCheck } from '../../gitops/verify.js';
import type { StackCheck, StackSpec } from '../../shared/spec/stack.js';
import { buildAndPush } from '../deploy/steps/build.js';
import type { DeployServices } from '../deploy/types.js';
import { requireDocker } from '../deploy/workspace.js';
import type { DriftOutput, PlanOutput, ValidateOutput } from './types.js';
import { checkout, initialized, stackSpec, tail } from './workspace.js';

type Ctx = Pick<StepContext, 'run' | 'signal' | 'log'>;

const PLAN_FILE = 'norn.tfplan';
const MAX_LISTED = 50;

const where = (d: TofuDiagnostic) =>
  d.range ? `${d.range.filename}:${d.range.start.line}: ` : d.address ? `${d.address}: ` : '';
const diagLine = (d: TofuDiagnostic) =>
  `${where(d)}${d.summary}${d.detail ? `: ${d.detail.replace(/\s+/g, ' ').trim()}` : ''}`;

/**
 * `tofu fmt -check -recursive`, `tofu init -input=false` and `tofu validate -json` at `ref`. An
 * unformatted file or an invalid configuration fails the step with every problem listed.
 */
export async function validateStack(
  ctx: Ctx,
  s: DeployServices,
  ref: string,
): Promise<ValidateOutput> {
  // The override file initialized may write is JSON, which `tofu fmt` never reads.
  const { tofu, commitSha, state } = await initialized(ctx, s, ref);
  ctx.log(
    `validating stack ${ctx.run.appId} at ${commitSha.slice(0, 12)} (state: ${state === 'local' ? 'norn-kept local state' : "the stack's own backend"})`,
  );
  const fmt = await tofu.fmtCheck();
  const v = await tofu.validate();
  const errors = v.diagnostics.filter((d) => d.severity === 'error');
  const warnings = v.diagnostics.filter((d) => d.severity === 'warning').map(diagLine);
  const problems = [
    ...(fmt.ok
      ? []
      : [`not formatted (run tofu fmt): ${fmt.files.join(', ') || '(tofu fmt failed)'}`]),
    ...errors.map(diagLine),
  ];
  if (!v.valid || problems.length > 0)
    throw new NornError(
      'SPEC_INVALID',
      `stack ${ctx.run.appId} at ${commitSha.slice(0, 12)} does not validate:\n- ${problems.slice(0, MAX_LISTED).join('\n- ')}`,
      { details: { fmt, diagnostics: v.diagnostics.slice(0, MAX_LISTED) } },
    );
  return {
    commitSha,
    state,
    fmt,
    errorCount: v.errorCount,
    warningCount: v.warningCount,
    warnings: warnings.slice(0, MAX_LISTED),
  };
}

/** A plan that adds, changes and destroys nothing. */
const changesNothing = (p: PlanSummary) => p.add + p.change + p.destroy === 0;

/** "Plan: 1 to add, 0 to change, 0 to destroy." as tofu prints it, or "No changes." */
export const summaryLine = (p: PlanSummary) =>
  changesNothing(p)
    ? 'No changes.'
    : `Plan: ${p.add} to add, ${p.change} to change, ${p.destroy} to destroy.`;

/**
 * `tofu plan -input=false -out=<file>` and `tofu show -json` of it at `commitSha`, saved as a plan
 * artifact (the file, its sha256, the commits, the summary). A re-run of the step after its plan
 * was saved returns that artifact rather than planning again.
 */
export async function planStack(
  ctx: Ctx,
  s: DeployServices,
  o: { kind: PlanKind; commitSha: string; baseSha?: string | null; pullRequest?: number },
): Promise<{ planId: number; sha256: string; summary: PlanSummary }> {
  const stack = ctx.run.appId;
  const saved = await s.gitops.plans.forRun(ctx.run.id, o.kind);
  if (saved?.sha256) {
    ctx.log(`plan ${saved.id} of this run is saved already`);
    return {
      planId: saved.id,
      sha256: saved.sha256,
      summary: saved.summary as unknown as PlanSummary,
    };
  }
  const { tofu, stackDir } = await initialized(ctx, s, o.commitSha, o.commitSha);
  // A review only reads: it never takes the lock a release applies under.
  const r = await tofu.plan({ out: PLAN_FILE, lock: o.kind === 'release' });
  if (r.locked)
    throw new NornError(
      'UNAVAILABLE',
      `stack ${stack}: the state is locked by another operation; try again when it ends:\n${tail(r.output, 12)}`,
    );
  if (r.exitCode !== 0)
    throw new NornError('COMMAND_FAILED', `tofu plan failed:\n${tail(r.output)}`);
  const show = await tofu.show(PLAN_FILE);
  const summary = planSummary(show);
  const planFile = await readFile(join(stackDir, PLAN_FILE));
  const artifact = await s.gitops.plans.insert({
    stackId: stack,
    runId: ctx.run.id,
    kind: o.kind,
    baseSha: o.baseSha ?? null,
    headSha: o.commitSha,
    planFile,
    summary: { ...summary },
    showJson: show,
    pullRequest: o.pullRequest ?? null,
  });
  ctx.log(`${summaryLine(summary)} Saved as plan ${artifact.id} (sha256 ${artifact.sha256})`);
  return { planId: artifact.id, sha256: artifact.sha256!, summary };
}

/** Where reviewers read a plan in full: the api's /api/plans/:id, absolute when NORN_PUBLIC_URL is set. */
export const planUrl = (s: DeployServices, planId: number) =>
  `${s.gitops.publicUrl ?? ''}/api/plans/${planId}`;

const listed = (label: string, addresses: string[]) =>
  addresses.length === 0
    ? []
    : [
        `**${label}** (${addresses.length}):`,
        ...addresses.slice(0, MAX_LISTED).map((a) => `- \`${a}\``),
        ...(addresses.length > MAX_LISTED ? [`- … and ${addresses.length - MAX_LISTED} more`] : []),
      ];

/** The pull request comment of a plan: the summary, addresses by action, the link. */
export function planComment(
  s: DeployServices,
  o: { stack: string; commitSha: string; planId: number; summary: PlanSummary },
): string {
  const b = o.summary.byAction;
  return [
    planMarker(o.stack),
    `### norn plan: stack \`${o.stack}\` at \`${o.commitSha.slice(0, 12)}\``,
    '',
    `**${summaryLine(o.summary)}**`,
    '',
    ...listed('create', b.create),
    ...listed('update', b.update),
    ...listed('replace', b.replace),
    ...listed('delete', b.delete),
    '',
    `Full plan: ${planUrl(s, o.planId)} (plan ${o.planId}). Nothing is applied until this is merged.`,
  ].join('\n');
}

/** The failure comment of a review: what failed, in place of the plan. */
export function failureComment(o: { stack: string; commitSha: string; error: string }): string {
  return [
    planMarker(o.stack),
    `### norn plan: stack \`${o.stack}\` at \`${o.commitSha.slice(0, 12)}\``,
    '',
    '**The plan failed:**',
    '',
    '```',
    o.error.slice(0, 4_000),
    '```',
  ].join('\n');
}

/** The comment of a review's plan on its pull request (created once, then edited), or null without feedback. */
export async function postPlan(
  ctx: Ctx,
  s: DeployServices,
  o: { pullRequest: number; commitSha: string; plan: { planId: number; summary: PlanSummary } },
): Promise<number | null> {
  const spec = stackSpec(ctx);
  if (!spec.feedback) return null;
  const client = createFeedback(spec.feedback, s.gitops.env);
  const { id, created } = await client.upsertComment({
    pullRequest: o.pullRequest,
    marker: planMarker(spec.name),
    body: planComment(s, { stack: spec.name, commitSha: o.commitSha, ...o.plan }),
  });
  ctx.log(`${created ? 'commented' : 'updated the comment'} on #${o.pullRequest} (${id})`);
  return id;
}

/** Builds and pushes the stack's declared images (`${registry}/${stack}-${name}:${sha}`). */
export async function buildImages(
  ctx: Ctx,
  s: DeployServices,
  validated: ValidateOutput,
): Promise<{ images: string[] } | ReturnType<typeof skipStep>> {
  const spec = stackSpec(ctx);
  const images = spec.images ?? [];
  if (images.length === 0) return skipStep('the stack declares no images');
  const docker = requireDocker(s, 'build');
  const sha = validated.commitSha;
  const refs: string[] = [];
  for (const image of images) {
    const { imageRef } = await buildAndPush(docker, {
      name: `${spec.name}-${image.name}`,
      sha,
      dockerfile: image.dockerfile,
      source: async () => (await checkout(ctx, s, sha, sha)).srcDir,
      labels: { 'norn.stack': spec.name, 'norn.commit': sha },
      signal: ctx.signal,
      log: ctx.log,
    });
    refs.push(imageRef);
  }
  return { images: refs };
}

/**
 * `tofu apply` of exactly the saved plan, never twice. The file is read back from its artifact and
 * its sha256 checked against the one recorded at plan time; the artifact is marked before tofu
 * starts and when it ends, so a re-run after a worker died mid-apply refuses ("interrupted apply")
 * instead of applying again, and one after it applied reports that.
 */
export async function applyPlan(
  ctx: Ctx,
  s: DeployServices,
  o: { plan: PlanOutput; commitSha: string },
): Promise<{ planId: number; appliedAt: string; already: boolean } | ReturnType<typeof skipStep>> {
  const { planId, sha256, summary } = o.plan;
  const plans = s.gitops.plans;
  if (changesNothing(summary)) return skipStep(`plan ${planId} changes nothing`);
  const file = await plans.file(planId);
  if (!file) throw new NornError('NOT_FOUND', `the file of plan ${planId} is gone; plan again`);
  if (file.sha256 !== sha256)
    throw new NornError(
      'CONFLICT',
      `plan ${planId}'s file has sha256 ${file.sha256}, not the ${sha256} recorded at plan time: refusing to apply it`,
    );
  const begun = await plans.beginApply(planId, ctx.run.id);
  if (begun.action === 'applied') {
    ctx.log(`plan ${planId} was applied at ${begun.apply.appliedAt} (run ${begun.apply.runId})`);
    return { planId, appliedAt: begun.apply.appliedAt!, already: true };
  }
  if (begun.action === 'interrupted')
    throw new NornError(
      'CONFLICT',
      `interrupted apply, state must be checked: applying plan ${planId} began at ${begun.apply.startedAt} (run ${begun.apply.runId}) and never finished (its worker stopped mid-apply). Check the stack's state with tofu plan, then request a new release; norn never applies a plan twice.`,
      { details: { planId, apply: begun.apply } },
    );
  if (begun.action === 'missing') throw new NornError('NOT_FOUND', `plan ${planId} is gone`);

  let ended = false;
  const end = (error?: string) => {
    ended = true;
    return plans.endApply(planId, ctx.run.id, error === undefined ? {} : { error });
  };
  try {
    const { tofu, stackDir } = await initialized(ctx, s, o.commitSha, o.commitSha);
    const path = join(stackDir, 'norn-apply.tfplan');
    await writeFile(path, file.planFile);
    if ((await sha256File(path)) !== sha256)
      throw new NornError('INTERNAL', `plan ${planId} changed on its way to disk`);
    ctx.log(`applying plan ${planId} (sha256 ${sha256})`);
    const r = await tofu.apply(path);
    if (r.ok) {
      const appliedAt = await end();
      return { planId, appliedAt: appliedAt ?? new Date().toISOString(), already: false };
    }
    if (r.stale) {
      await end('stale');
      throw new NornError(
        'CONFLICT',
        `Saved plan is stale: the state changed after plan ${planId} was made, so tofu refused to apply it. Request a new release to plan again.\n${tail(r.output, 12)}`,
      );
    }
    if (r.locked) {
      await end('locked');
      throw new NornError(
        'UNAVAILABLE',
        `the state is locked by another operation; plan ${planId} was not applied:\n${tail(r.output, 12)}`,
      );
    }
    await end('failed');
    throw new NornError(
      'COMMAND_FAILED',
      `tofu apply of plan ${planId} failed:\n${tail(r.output)}`,
    );
  } catch (err) {
    // Before tofu ran (a clone or init that failed), nothing was applied: the plan may be tried again.
    if (!ended) await end(`not started: ${(err as Error).message}`).catch(() => {});
    throw err;
  }
}

/** The stack spec's checks as runChecks takes them. */
export function verifyChecks(checks: readonly StackCheck[]): VerifyCheck[] {
  return checks.map((c): VerifyCheck => {
    if (c.http)
      return {
        http: {
          url: c.http.url,
          status: c.http.status,
          ...(c.http.contains !== undefined ? { contains: c.http.contains } : {}),
          deadline: String(c.http.deadline),
        },
      };
    if (c.pods)
      return {
        pods: {
          namespace: c.pods.namespace,
          selector: c.pods.selector,
          deadline: String(c.pods.deadline),
        },
      };
    const r = c.runner!;
    return {
      runner: {
        url: r.url,
        tokenEnv: r.tokenEnv,
        tags: r.tags ?? [],
        deadline: String(r.deadline),
      },
    };
  });
}

/** Runs the stack's verify checks; a failed one fails the step, naming it and why. */
export async function verifyStack(ctx: Ctx, s: DeployServices) {
  const spec: StackSpec = stackSpec(ctx);
  const checks = verifyChecks(spec.verify ?? []);
  if (checks.length === 0) return skipStep('the stack declares no verify checks');
  const result = await runChecks(checks, {
    kube: s.kube.connect,
    env: s.gitops.env,
    signal: ctx.signal,
    log: ctx.log,
  });
  for (const r of result.results) ctx.log(`${r.ok ? 'ok' : 'FAILED'} ${r.check}: ${r.detail}`);
  if (!result.ok) {
    const failed = result.results.filter((r) => !r.ok);
    throw new NornError(
      'STEP_FAILED',
      `verify failed: ${failed.map((r) => `${r.check}: ${r.detail}`).join('; ')}`,
      { details: { failed: failed.map((r) => r.check), results: result.results } },
    );
  }
  return { results: result.results };
}

/**
 * A stack's drift: `tofu plan -detailed-exitcode -input=false -lock=false` on its branch. Exit 0
 * is clean, 2 is drift (fingerprinted by its addresses and actions), anything else an error that
 * fails the step (and is never taken for drift).
 */
export async function stackDrift(ctx: Ctx, s: DeployServices, ref: string): Promise<DriftOutput> {
  const { tofu, commitSha } = await initialized(ctx, s, ref);
  const r = await tofu.plan({ out: 'norn-drift.tfplan', detailedExitcode: true, lock: false });
  if (r.changes === false) {
    ctx.log(`no drift at ${commitSha.slice(0, 12)}`);
    const summary: PlanSummary = {
      add: 0,
      change: 0,
      destroy: 0,
      byAction: { create: [], update: [], delete: [], replace: [] },
    };
    return { status: 'clean', fingerprint: driftFingerprint(summary), summary, details: [] };
  }
  if (r.changes !== true)
    throw new NornError(
      'COMMAND_FAILED',
      `the drift check could not plan (exit ${r.exitCode}):\n${tail(r.output)}`,
    );
  const summary = planSummary(await tofu.show('norn-drift.tfplan'));
  const details = (Object.entries(summary.byAction) as Array<[string, string[]]>).flatMap(
    ([action, addresses]) => addresses.map((a) => `${a}: ${action}`),
  );
  ctx.log(`drift at ${commitSha.slice(0, 12)}: ${summaryLine(summary)}`);
  return { status: 'drifted', fingerprint: driftFingerprint(summary), summary, details };
}
