/**
 * What norn reads of OpenTofu's plan JSON (`tofu show -json <planfile>`), and the two pure
 * helpers the review, release and drift-check steps build on: a summary as tofu's own
 * "Plan: N to add, M to change, K to destroy." counts it, and a fingerprint of the drift that
 * stays the same while the drift does.
 */
import { createHash } from 'node:crypto';

/**
 * The subset of hashicorp/terraform-json's `Plan` (plan.go) norn uses; the rest is kept as
 * unknown. `actions` is one of ["no-op"], ["create"], ["read"], ["update"], ["delete"],
 * ["delete","create"], ["create","delete"] (and OpenTofu's ["forget"]).
 */
export interface TerraformPlanJson {
  format_version: string;
  terraform_version?: string;
  planned_values?: unknown;
  resource_drift?: TerraformResourceChange[];
  resource_changes?: TerraformResourceChange[];
  prior_state?: unknown;
  configuration?: unknown;
  timestamp?: string;
  errored?: boolean;
  [field: string]: unknown;
}

export interface TerraformResourceChange {
  address: string;
  mode?: 'managed' | 'data';
  type?: string;
  name?: string;
  provider_name?: string;
  action_reason?: string;
  change: {
    actions: string[];
    before?: unknown;
    after?: unknown;
    after_unknown?: unknown;
    before_sensitive?: unknown;
    after_sensitive?: unknown;
    replace_paths?: unknown[];
  };
}

export interface PlanSummary {
  add: number;
  change: number;
  destroy: number;
  /** Addresses by action, each list sorted; a replacement is listed only under `replace`. */
  byAction: { create: string[]; update: string[]; delete: string[]; replace: string[] };
}

type Kind = keyof PlanSummary['byAction'];

function kindOf(actions: readonly string[]): Kind | undefined {
  const has = (a: string) => actions.includes(a);
  if (has('create') && has('delete')) return 'replace';
  if (has('create')) return 'create';
  if (has('update')) return 'update';
  if (has('delete')) return 'delete';
  return undefined; // no-op, read, forget: nothing tofu counts as a change to infrastructure
}

/**
 * Counts `resource_changes` as tofu's summary line does (jsonformat/plan.go): a replacement is
 * one to add and one to destroy. Drift alone (`resource_drift`) is not counted: it is what
 * refresh found, and the changes it calls for already appear in `resource_changes`.
 */
export function planSummary(plan: TerraformPlanJson): PlanSummary {
  const byAction: PlanSummary['byAction'] = { create: [], update: [], delete: [], replace: [] };
  for (const rc of plan.resource_changes ?? []) {
    if (rc.mode === 'data') continue;
    const kind = kindOf(rc.change?.actions ?? []);
    if (kind) byAction[kind].push(rc.address);
  }
  for (const list of Object.values(byAction)) list.sort();
  return {
    add: byAction.create.length + byAction.replace.length,
    change: byAction.update.length,
    destroy: byAction.delete.length + byAction.replace.length,
    byAction,
  };
}

/**
 * sha256 (hex) of the sorted `address:action` lines: the same drift gives the same fingerprint
 * on every check, whatever the plan's timestamp or the order of its changes, so a drift check
 * can tell "still the drift we reported" from "new drift".
 */
export function driftFingerprint(summary: PlanSummary): string {
  const lines = (Object.keys(summary.byAction) as Kind[]).flatMap((kind) =>
    summary.byAction[kind].map((address) => `${address}:${kind}`),
  );
  return createHash('sha256').update(lines.sort().join('\n')).digest('hex');
}
