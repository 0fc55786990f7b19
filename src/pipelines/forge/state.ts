/**
 * An app's forge state (table forge_state), moved only by the forge and teardown pipelines'
 * life-cycle hooks, through the hook's transaction (`ctx.tx`): what a hook writes commits exactly
 * once, with the mark that the hook ran.
 *
 *   unforged → forging → forged | forge_failed;  forge_failed → forging (a resume);
 *   forged | forge_failed → tearing_down → unforged | forge_failed;
 *   a cancelled run puts back what was there when it started.
 *
 * Hooks of different runs are not ordered among themselves: a run's onStart finding the state
 * still held by another run (whose end hook has not run yet) throws, and the hook runner tries it
 * again after a backoff, by when that end hook has run. An end hook of a run that does not hold
 * the state changes nothing.
 */
import type { PoolClient } from 'pg';
import type { Db } from '../../shared/db.js';
import type { HookContext, PipelineHooks } from '../../queues/pipeline.js';
import { ForgeResources, type ForgeResources as Resources } from './types.js';

export const FORGE_STATES = [
  'unforged',
  'forging',
  'forged',
  'forge_failed',
  'tearing_down',
] as const;
export type ForgeStateName = (typeof FORGE_STATES)[number];

export interface ForgeState {
  state: ForgeStateName;
  runId: string | null;
  resources: Resources;
}

type Tx = Pick<PoolClient, 'query'>;

/** The app's forge state as `GET /api/apps/:id` shows it (no row: unforged). */
export async function readForgeState(db: Pick<Db, 'query'>, appId: string): Promise<ForgeState> {
  const { rows } = await db.query<{
    state: ForgeStateName;
    run_id: string | null;
    resources: unknown;
  }>('SELECT state, run_id, resources FROM forge_state WHERE app_id = $1', [appId]);
  const row = rows[0];
  if (!row) return { state: 'unforged', runId: null, resources: {} };
  const parsed = ForgeResources.safeParse(row.resources);
  return { state: row.state, runId: row.run_id, resources: parsed.success ? parsed.data : {} };
}

interface Row {
  state: ForgeStateName;
  run_id: string | null;
  prior_state: ForgeStateName | null;
}

async function lockRow(tx: Tx, appId: string): Promise<Row> {
  await tx.query(
    `INSERT INTO forge_state (app_id, state) VALUES ($1, 'unforged') ON CONFLICT (app_id) DO NOTHING`,
    [appId],
  );
  const { rows } = await tx.query<Row>(
    'SELECT state, run_id, prior_state FROM forge_state WHERE app_id = $1 FOR UPDATE',
    [appId],
  );
  return rows[0]!;
}

const BUSY: readonly ForgeStateName[] = ['forging', 'tearing_down'];

/** onStart: `from` → `to`, the state remembered for a cancel. */
async function start(
  ctx: HookContext,
  from: readonly ForgeStateName[],
  to: ForgeStateName,
): Promise<void> {
  const { id, appId, pipeline } = ctx.run;
  const row = await lockRow(ctx.tx, appId);
  if (row.run_id === id) return; // already moved by this run
  if (BUSY.includes(row.state))
    throw new Error(
      `app ${appId} is ${row.state} by run ${row.run_id}, whose end hook has not run yet; ${pipeline} run ${id} moves the forge state after it`,
    );
  if (!from.includes(row.state))
    throw new Error(
      `app ${appId} is ${row.state}: a ${pipeline} run starts only from ${from.join(' or ')}`,
    );
  await ctx.tx.query(
    `UPDATE forge_state SET state = $2, prior_state = state, run_id = $3, updated_at = now()
     WHERE app_id = $1`,
    [appId, to, id],
  );
  ctx.log(`forge state of ${appId}: ${row.state} → ${to}`);
}

/** An end hook: `to` (and the resources) when this run holds the state. */
async function end(
  ctx: HookContext,
  to: ForgeStateName | 'prior',
  resources?: (tx: Tx) => Promise<Resources>,
): Promise<void> {
  const { id, appId } = ctx.run;
  const row = await lockRow(ctx.tx, appId);
  if (row.run_id !== id) {
    ctx.log(`forge state of ${appId} is held by run ${row.run_id ?? '(none)'}; left ${row.state}`);
    return;
  }
  const next = to === 'prior' ? (row.prior_state ?? 'unforged') : to;
  const res = resources ? JSON.stringify(await resources(ctx.tx)) : null;
  await ctx.tx.query(
    `UPDATE forge_state SET state = $2, prior_state = NULL, updated_at = now(),
       resources = COALESCE($3::jsonb, resources)
     WHERE app_id = $1`,
    [appId, next, res],
  );
  ctx.log(`forge state of ${appId}: ${row.state} → ${next}`);
}

/** Step outputs of `runId` and of the runs it resumes (the newest completed one per step). */
async function outputsOf(tx: Tx, runId: string): Promise<Record<string, unknown>> {
  const { rows } = await tx.query<{ name: string; output: unknown }>(
    `WITH RECURSIVE chain (id, depth) AS (
       SELECT id, 0 FROM runs WHERE id = $1
       UNION ALL
       SELECT r.resumed_from, c.depth + 1 FROM chain c JOIN runs r ON r.id = c.id
       WHERE r.resumed_from IS NOT NULL AND c.depth < 100)
     SELECT DISTINCT ON (s.name) s.name, s.output
     FROM chain c JOIN run_steps s ON s.run_id = c.id
     WHERE s.status = 'complete'
     ORDER BY s.name, c.depth`,
    [runId],
  );
  return Object.fromEntries(rows.map((r) => [r.name, r.output]));
}

/** What a forge made, from its steps' outputs. */
async function forgedResources(tx: Tx, runId: string): Promise<Resources> {
  const o = (await outputsOf(tx, runId)) as {
    'create-deployment'?: { namespace: string; deployments: string[]; cronJobs: string[] };
    'create-service'?: { service: string };
    'patch-cloudflared'?: { rule: { hostname: string; service: string } };
    'create-dns-route'?: { hostname: string };
  };
  const d = o['create-deployment'];
  return {
    ...(d ? { namespace: d.namespace, deployments: d.deployments, cronJobs: d.cronJobs } : {}),
    service: o['create-service']?.service ?? null,
    rule: o['patch-cloudflared']?.rule ?? null,
    dnsRoute: o['create-dns-route']?.hostname ?? null,
  };
}

export const forgeHooks: PipelineHooks = {
  onStart: (ctx) => start(ctx, ['unforged', 'forge_failed'], 'forging'),
  onSucceed: (ctx) => end(ctx, 'forged', (tx) => forgedResources(tx, ctx.run.id)),
  // What a failed forge made is recorded too: teardown removes it.
  onFail: (ctx) => end(ctx, 'forge_failed', (tx) => forgedResources(tx, ctx.run.id)),
  onCancel: (ctx) => (ctx.run.started ? end(ctx, 'prior') : Promise.resolve()),
};

export const teardownHooks: PipelineHooks = {
  onStart: (ctx) => start(ctx, ['forged', 'forge_failed'], 'tearing_down'),
  onSucceed: (ctx) => end(ctx, 'unforged', async () => ({})),
  onFail: (ctx) => end(ctx, 'forge_failed'),
  onCancel: (ctx) => (ctx.run.started ? end(ctx, 'prior') : Promise.resolve()),
};
