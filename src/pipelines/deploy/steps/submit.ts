/**
 * Deploy step `submit`: records the release and puts it on its target (src/targets): decrypts the
 * repository's SOPS secrets file into the processes' environment and has the target apply the
 * release (docker: replaces the previous release's containers one replica at a time, each
 * answering its health path before the next, and turns scheduled processes into job schedulers),
 * putting the previous release back if that fails.
 *
 * Secret values never leave: the release row keeps the ENCRYPTED file, and messages and log lines
 * are scrubbed of the decrypted values.
 */
import { NornError } from '../../../shared/errors.js';
import { redactText } from '../../../shared/exec.js';
import type { Infraspec } from '../../../shared/spec/infraspec.js';
import { AppStore } from '../../../shared/store/apps.js';
import { targetFor, type Target, type TargetCall } from '../../../targets/index.js';
import { lockWaitNote, withAppLock } from '../app-lock.js';
import { parseSpec, scrubbed, targetRelease } from '../docker-runtime.js';
import { assertPortsUnclaimed } from '../ports.js';
import { endFailedRelease, previousOf } from '../rollback.js';
import { loadSecrets } from '../secrets-file.js';
import {
  deployStep,
  type BuildOutput,
  type CloneOutput,
  type DeployContext,
  type DeployServices,
  type ReadsOutputs,
  type SubmitOutput,
} from '../types.js';

/** Outputs of earlier steps that may be absent (not in this pipeline) or skipped (null). */
async function optionalOutputs(ctx: ReadsOutputs<'migrate' | 'snapshot'>) {
  const migrate = await ctx.output('migrate');
  const snapshot = await ctx.output('snapshot');
  return { migrationsApplied: migrate?.applied ?? [], snapshotTs: snapshot?.ts ?? null };
}

export const submit = deployStep('submit', {
  /**
   * Holds the app's target lock (app-lock.ts) throughout; refuses ports another app claims, then
   * records the release (with the release it replaces) and rolls it out.
   */
  async run(ctx, s) {
    const spec = parseSpec(ctx.run.spec);
    const target = targetFor(s.targets, spec);
    const cloned = await ctx.output('clone');
    const built = await ctx.output('build');
    if (!cloned?.commitSha || !built?.imageRef)
      throw new NornError('STEP_FAILED', 'submit needs the outputs of the clone and build steps');
    const earlier = await s.releases.byDeployment(ctx.run.id);
    if (earlier && (earlier.status === 'failed' || earlier.status === 'rolled_back')) {
      throw new NornError(
        'STEP_FAILED',
        earlier.error ?? `release ${earlier.id} already ${earlier.status}`,
      );
    }
    await assertPortsUnclaimed(new AppStore(s.db), spec); // registered before ports were owned, or raced
    const secrets = await loadSecrets(ctx, s, spec);
    return withAppLock(
      s.db,
      ctx.run.appId,
      ctx.signal,
      () => putOut(ctx, s, { spec, target, cloned, built, secrets }),
      () => ctx.log(lockWaitNote(ctx.run.appId)),
    );
  },
});

interface PutOut {
  spec: Infraspec;
  target: Target;
  cloned: CloneOutput;
  built: BuildOutput;
  secrets: Awaited<ReturnType<typeof loadSecrets>>;
}

/** Records the release, with the one it replaces (kept from a first attempt on a re-run). */
async function recordRelease(ctx: DeployContext<'submit'>, s: DeployServices, o: PutOut) {
  const existing = await s.releases.byDeployment(ctx.run.id);
  const previous = existing
    ? await previousOf(s, existing)
    : await s.releases.active(ctx.run.appId);
  const release = await s.releases.upsertDeploying({
    appId: ctx.run.appId,
    deploymentId: ctx.run.id,
    target: o.target.name,
    imageRef: o.built.imageRef,
    commitSha: o.cloned.commitSha,
    digest: o.built.digest ?? null,
    spec: o.spec as unknown as Record<string, unknown>,
    secretsEnc: o.secrets.file?.text ?? null,
    secretsFormat: o.secrets.file?.format ?? null,
    previousReleaseId: previous?.id ?? null,
    ...(await optionalOutputs(ctx)),
  });
  ctx.log(
    `release ${release.id}: ${o.built.imageRef}${previous ? `, replacing release ${previous.id}` : ''}`,
  );
  return { release, previous };
}

/** Records the release and rolls it out; a failed rollout ends it per its deployPolicy. */
async function putOut(
  ctx: DeployContext<'submit'>,
  s: DeployServices,
  o: PutOut,
): Promise<SubmitOutput> {
  const redact = Object.values(o.secrets.values);
  const { release, previous } = await recordRelease(ctx, s, o);
  const call: TargetCall = {
    signal: ctx.signal,
    redact,
    log: (line) => ctx.log(redactText(line, redact)),
  };
  let touched = false;
  try {
    const applied = await o.target.apply(targetRelease(release, o.spec, o.secrets.values), {
      ...call,
      onTouch: () => {
        touched = true;
      },
    });
    return {
      releaseId: release.id,
      previousReleaseId: previous?.id ?? null,
      containers: applied.units,
      schedulers: applied.schedules,
      ...(applied.plan ? { plan: applied.plan } : {}),
    };
  } catch (err) {
    const clean = scrubbed(err, redact);
    // Stopped: a shutdown hands the step to another worker, which re-runs it from here; after a
    // cancel (or a lost lease) the run ends and the deploy finalizer puts the app back.
    if (ctx.signal.aborted) throw clean;
    ctx.log(clean.message);
    if (!touched) {
      await s.releases.markEnded(ctx.run.id, 'failed', clean.message);
      throw clean;
    }
    const message = await endFailedRelease(s, o.target, call, {
      runId: ctx.run.id,
      release,
      spec: o.spec,
      reason: clean.message,
    });
    throw new NornError('STEP_FAILED', message, { cause: clean });
  }
}
