/**
 * A Nomad plan (`POST /v1/job/:id/plan` with `Diff: true`, api/jobs.go JobPlanResponse) in the
 * words the submit step keeps in its output: the job's change type, one line per changed field
 * ("TaskGroup web: Task web: Config: image: a → b"), and per group what the scheduler would do
 * (Place, Stop, DestructiveUpdate …). The job holds no secret values (they are in a Variable),
 * so neither does its diff.
 */
import type { PlanSummary } from '../types.js';

export type { PlanSummary };

interface FieldDiff {
  Type?: string;
  Name?: string;
  Old?: string;
  New?: string;
}
interface ObjectDiff {
  Type?: string;
  Name?: string;
  Fields?: FieldDiff[] | null;
  Objects?: ObjectDiff[] | null;
}
interface TaskDiff extends ObjectDiff {
  Annotations?: string[] | null;
}
interface GroupDiff extends ObjectDiff {
  Tasks?: TaskDiff[] | null;
}
interface JobDiff extends ObjectDiff {
  TaskGroups?: GroupDiff[] | null;
}

/** At most this many lines of changes are kept: a plan's output is a summary, not the job. */
export const MAX_CHANGES = 50;

function fieldLines(prefix: string, d: ObjectDiff, out: string[]): void {
  for (const f of d.Fields ?? []) {
    if (f.Type === 'None') continue;
    const what =
      f.Type === 'Added'
        ? `+ ${f.New ?? ''}`
        : f.Type === 'Deleted'
          ? `- ${f.Old ?? ''}`
          : `${f.Old ?? ''} → ${f.New ?? ''}`;
    out.push(`${prefix}${f.Name ?? '?'}: ${what}`);
  }
  for (const o of d.Objects ?? []) {
    if (o.Type === 'None') continue;
    fieldLines(`${prefix}${o.Name ?? '?'}: `, o, out);
  }
}

export function planSummary(object: string, body: Record<string, unknown> | null): PlanSummary {
  const diff = (body?.['Diff'] ?? {}) as JobDiff;
  const changes: string[] = [];
  fieldLines('', diff, changes);
  for (const g of diff.TaskGroups ?? []) {
    if (g.Type === 'None') continue;
    if (g.Type === 'Added' || g.Type === 'Deleted') changes.push(`TaskGroup ${g.Name}: ${g.Type}`);
    fieldLines(`TaskGroup ${g.Name}: `, g, changes);
    for (const t of g.Tasks ?? []) {
      if (t.Type === 'None') continue;
      if (t.Type === 'Added' || t.Type === 'Deleted')
        changes.push(`TaskGroup ${g.Name}: Task ${t.Name}: ${t.Type}`);
      fieldLines(`TaskGroup ${g.Name}: Task ${t.Name}: `, t, changes);
    }
  }
  const updates = ((body?.['Annotations'] as { DesiredTGUpdates?: unknown } | undefined)
    ?.DesiredTGUpdates ?? {}) as Record<string, Record<string, unknown>>;
  const groups: PlanSummary['groups'] = {};
  for (const [group, u] of Object.entries(updates)) {
    const nonZero = Object.entries(u ?? {}).filter(([, n]) => typeof n === 'number' && n > 0) as [
      string,
      number,
    ][];
    if (nonZero.length) groups[group] = Object.fromEntries(nonZero);
  }
  return {
    object,
    change: typeof diff.Type === 'string' ? diff.Type : 'unknown',
    changes:
      changes.length > MAX_CHANGES
        ? [...changes.slice(0, MAX_CHANGES), `… and ${changes.length - MAX_CHANGES} more`]
        : changes,
    groups,
  };
}
