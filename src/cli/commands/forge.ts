/** `norn forge <app> [--force]` and `norn teardown <app>`: request the run(s), follow them live. */
import type { ForgeAccepted, RunAccepted } from '../../shared/api/index.js';
import type { CliContext } from '../context.js';
import { seg } from '../context.js';
import { EXIT } from '../errors.js';
import { followAccepted } from './runs.js';

export async function forge(ctx: CliContext): Promise<number> {
  const app = ctx.positionals[0]!;
  const force = ctx.values.force === true;
  const accepted = await ctx.api.post<ForgeAccepted>(
    `api/apps/${seg(app)}/forge`,
    force ? { force: true } : {},
  );
  // With force: the teardown first, then the forge queued behind it (a failed teardown ends it).
  if (accepted.teardown) {
    const code = await followAccepted(ctx, `tearing down ${app}`, accepted.teardown);
    if (code !== EXIT.ok && !ctx.values['no-wait']) return code;
  }
  const what = accepted.resumedFrom
    ? `resuming the forge of ${app} (run ${accepted.resumedFrom})`
    : `forging ${app}`;
  return followAccepted(ctx, what, accepted);
}

export async function teardown(ctx: CliContext): Promise<number> {
  const app = ctx.positionals[0]!;
  const accepted = await ctx.api.delete<RunAccepted>(`api/apps/${seg(app)}/forge`);
  return followAccepted(ctx, `tearing down ${app}`, accepted);
}
