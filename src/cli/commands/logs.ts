/** norn logs <deployment> [--follow]: a run's saga events as timestamped lines (or NDJSON). */
import type { RunDetail, RunEvents, RunStepLog } from '../../shared/api/index.js';
import type { EventEnvelope } from '../../shared/events.js';
import type { CliContext } from '../context.js';
import { seg } from '../context.js';
import { EXIT } from '../errors.js';
import { followSaga } from '../follow.js';
import { eventKind, isTerminal, logLine } from '../render.js';

export async function logs(ctx: CliContext): Promise<number> {
  const id = ctx.positionals[0]!;
  const { run: deployment } = await ctx.api.get<RunDetail>(`api/runs/${seg(id)}`);
  const print = (e: EventEnvelope) =>
    ctx.values.json ? ctx.out.ndjson(e) : ctx.out.line(logLine(e));

  if (typeof ctx.values.step === 'string') {
    const { lines } = await ctx.api.get<RunStepLog>(
      `api/runs/${seg(id)}/steps/${seg(ctx.values.step)}/log`,
    );
    for (const line of lines) ctx.out.line(line);
    return EXIT.ok;
  }

  if (ctx.values.follow) {
    // The relay replays the saga from its start, then streams: one source, no gap between the two.
    const terminal = await followSaga({
      api: ctx.api,
      sagaId: deployment.sagaId,
      signal: ctx.signal,
      onEvent: print,
      onReconnect: (attempt, reason) =>
        ctx.out.error(`connection to the api lost (${reason}); reconnecting (attempt ${attempt})`),
    });
    return eventKind(terminal) === 'completed' ? EXIT.ok : EXIT.runFailed;
  }

  const { events } = await ctx.api.get<RunEvents>(`api/runs/${seg(deployment.id)}/events`);
  for (const e of events) print(e);
  if (!ctx.values.json && !events.some(isTerminal)) {
    ctx.out.line(
      `(deployment ${deployment.id} is ${deployment.status}; norn logs ${deployment.id} --follow streams the rest)`,
    );
  }
  return EXIT.ok;
}
