/** deploy, resume, cancel, and the follow loop they share with snapshot restores. */
import type { AppDetail, RunAccepted, RunCancelled, RunResumed } from '../../shared/api/index.js';
import type { EventEnvelope } from '../../shared/events.js';
import type { CliContext } from '../context.js';
import { seg } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { followSaga } from '../follow.js';
import { Progress } from '../progress.js';
import { eventKind, formatAge } from '../render.js';

/** What a run request answers (POST …/deploy, …/forge, …/restore, …/resume): its run. */
export type Accepted = RunAccepted;

/**
 * Prints how the request was accepted, then (unless --no-wait) follows the run to its end.
 * Exit 0 when it completed, 1 when it failed or was cancelled.
 */
export async function followAccepted(
  ctx: CliContext,
  what: string,
  accepted: Accepted,
): Promise<number> {
  const { out } = ctx;
  out.line(`${what}: deployment ${accepted.deploymentId}`);
  if (accepted.position > 0) out.line(`queued behind ${accepted.position} run(s)`);
  if (ctx.values['no-wait']) {
    out.line(`follow it with: norn logs ${accepted.deploymentId} --follow`);
    return EXIT.ok;
  }
  const terminal = await followRun(ctx, accepted.deploymentId, accepted.sagaId);
  return eventKind(terminal) === 'completed' ? EXIT.ok : EXIT.runFailed;
}

/** Streams a run's step lines and prints its summary; Ctrl-C detaches (the run goes on). */
export async function followRun(
  ctx: CliContext,
  deploymentId: string,
  sagaId: string,
): Promise<EventEnvelope> {
  const progress = new Progress(ctx.out);
  try {
    const terminal = await followSaga({
      api: ctx.api,
      sagaId,
      signal: ctx.signal,
      onEvent: (e) => progress.onEvent(e),
      onReconnect: (attempt, reason) => {
        progress.closeLine();
        ctx.out.error(`connection to the api lost (${reason}); reconnecting (attempt ${attempt})`);
      },
    });
    ctx.out.line(progress.summary(terminal));
    return terminal;
  } catch (err) {
    progress.closeLine();
    if (err instanceof CliError && err.exitCode === EXIT.interrupted) {
      ctx.out.error(
        `detached; deployment ${deploymentId} goes on (norn cancel ${deploymentId} stops it)`,
      );
    }
    throw err;
  }
}

export async function deploy(ctx: CliContext): Promise<number> {
  const app = ctx.positionals[0]!;
  const ref = ctx.values.ref as string | undefined;
  let accepted: Accepted;
  try {
    accepted = await ctx.api.post<RunAccepted>(
      `api/apps/${seg(app)}/deploy`,
      ref === undefined ? {} : { ref },
    );
  } catch (err) {
    if (err instanceof CliError && err.details?.status === 409) await explainBusy(ctx, app, err);
    throw err;
  }
  return followAccepted(ctx, `deploying ${app}${ref ? ` at ${ref}` : ''}`, accepted);
}

/** A 409 under the reject policy: say who holds the app, then fail with the api's message. */
async function explainBusy(ctx: CliContext, app: string, err: CliError): Promise<void> {
  const running = err.details?.runningDeploymentId;
  const view = await ctx.api.get<AppDetail>(`api/apps/${seg(app)}`).catch(() => undefined);
  const holder = view?.lease.holder;
  if (holder) {
    ctx.out.error(
      `${app} is held by deployment ${holder.deploymentId} (${holder.pipeline}, ${holder.status}; worker ${holder.holder}, heartbeat ${formatAge(holder.heartbeatAt)})`,
    );
  } else if (typeof running === 'string') {
    ctx.out.error(`${app} is busy with deployment ${running}`);
  }
  if (view && view.lease.waiting.length)
    ctx.out.error(`${view.lease.waiting.length} run(s) waiting`);
}

export async function resume(ctx: CliContext): Promise<number> {
  const id = ctx.positionals[0]!;
  const accepted = await ctx.api.post<RunResumed>(`api/runs/${seg(id)}/resume`);
  return followAccepted(ctx, `resuming ${id}`, accepted);
}

export async function cancel(ctx: CliContext): Promise<number> {
  const id = ctx.positionals[0]!;
  const res = await ctx.api.post<RunCancelled>(`api/runs/${seg(id)}/cancel`);
  if (res.status === 'succeeded' || res.status === 'failed') {
    ctx.out.line(`deployment ${res.runId} had already ${res.status}; nothing to cancel`);
  } else {
    const note = res.status === 'cancelling' ? ' (its running step is being stopped)' : '';
    ctx.out.line(`deployment ${res.runId} is ${res.status}${note}`);
  }
  return EXIT.ok;
}
