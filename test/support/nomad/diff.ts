/**
 * A plan's answer: the job diff (api.JobDiff: Type Added|Deleted|Edited|None, changed Fields,
 * nested Objects, TaskGroups with their Tasks and Updates) and the scheduler's
 * DesiredTGUpdates. Coarser than Nomad's structs/diff.go: only changed fields are listed
 * (Nomad's non-contextual diff), a nested struct or map becomes an Object, and an array is
 * compared as a whole value. Annotations count what the fake's scheduler would do: a group
 * whose tasks changed is destructively updated, a group whose Count alone changed places or
 * stops the difference. Update names are Nomad's scheduler annotations ("create",
 * "create/destroy update", "destroy", "ignore").
 */
import type { Alloc } from './store.js';
import type { Job } from './validate.js';
import type { DesiredUpdates } from '../../../src/targets/nomad/api.js';

interface FieldDiff {
  Type: string;
  Name: string;
  Old: string;
  New: string;
  Annotations: string[] | null;
}
interface ObjectDiff {
  Type: string;
  Name: string;
  Fields: FieldDiff[];
  Objects: ObjectDiff[];
}

/** Server-set fields no diff reports. */
const ignored = new Set([
  'Status',
  'StatusDescription',
  'Stable',
  'Version',
  'CreateIndex',
  'ModifyIndex',
  'JobModifyIndex',
  'SubmitTime',
  'TaskGroups',
  'Tasks',
]);

const str = (v: unknown): string =>
  v === undefined || v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v);
const isObj = (v: unknown): v is Job => typeof v === 'object' && v !== null && !Array.isArray(v);
const kind = (old: unknown, next: unknown): string =>
  old === undefined || old === null
    ? 'Added'
    : next === undefined || next === null
      ? 'Deleted'
      : 'Edited';

function diffObject(
  old: Job | undefined,
  next: Job | undefined,
): { Fields: FieldDiff[]; Objects: ObjectDiff[] } {
  const Fields: FieldDiff[] = [];
  const Objects: ObjectDiff[] = [];
  const keys = [...new Set([...Object.keys(old ?? {}), ...Object.keys(next ?? {})])].sort();
  for (const k of keys) {
    if (ignored.has(k)) continue;
    const a = old?.[k];
    const b = next?.[k];
    if (JSON.stringify(a ?? null) === JSON.stringify(b ?? null)) continue;
    if (isObj(a) || isObj(b)) {
      const inner = diffObject(isObj(a) ? a : undefined, isObj(b) ? b : undefined);
      Objects.push({ Type: kind(a, b), Name: k, ...inner });
    } else {
      Fields.push({ Type: kind(a, b), Name: k, Old: str(a), New: str(b), Annotations: null });
    }
  }
  return { Fields, Objects };
}

const byName = (list: Job[] | undefined): Map<string, Job> =>
  new Map((list ?? []).map((x) => [x.Name as string, x]));

/** The plan of `next` against the stored `old` job (undefined when new) and its live allocations. */
export function planDiff(
  old: Job | undefined,
  next: Job,
  live: Alloc[],
): { Diff: Job; DesiredTGUpdates: Record<string, DesiredUpdates> } {
  const top = diffObject(old, next);
  const groups = [];
  const desired: Record<string, DesiredUpdates> = {};
  const oldGroups = byName(old?.TaskGroups);
  const newGroups = byName(next.TaskGroups);
  for (const name of [...new Set([...oldGroups.keys(), ...newGroups.keys()])].sort()) {
    const a = oldGroups.get(name);
    const b = newGroups.get(name);
    const running = live.filter((x) => x.TaskGroup === name).length;
    const tasks = [];
    const oldTasks = byName(a?.Tasks);
    const newTasks = byName(b?.Tasks);
    for (const t of [...new Set([...oldTasks.keys(), ...newTasks.keys()])].sort()) {
      const d = diffObject(oldTasks.get(t), newTasks.get(t));
      const type = !oldTasks.has(t)
        ? 'Added'
        : !newTasks.has(t)
          ? 'Deleted'
          : d.Fields.length || d.Objects.length
            ? 'Edited'
            : 'None';
      if (type !== 'None')
        tasks.push({
          Type: type,
          Name: t,
          ...d,
          Annotations: type === 'Edited' ? ['forces create/destroy update'] : null,
        });
    }
    const d = diffObject(a, b);
    const changed =
      tasks.length > 0 || d.Objects.length > 0 || d.Fields.some((f) => f.Name !== 'Count');
    const count = b ? (b.Count as number) : 0;
    const u: DesiredUpdates = {
      Ignore: 0,
      Place: 0,
      Migrate: 0,
      Stop: 0,
      InPlaceUpdate: 0,
      DestructiveUpdate: 0,
      Canary: 0,
      Preemptions: 0,
    };
    const kept = Math.min(running, count);
    if (changed && a && b) u.DestructiveUpdate = kept;
    else u.Ignore = kept;
    u.Place = Math.max(0, count - running);
    u.Stop = Math.max(0, running - count);
    if (b) desired[name] = u;
    const updates: Record<string, number> = {};
    if (u.Place) updates.create = u.Place;
    if (u.Stop) updates.destroy = u.Stop;
    if (u.DestructiveUpdate) updates['create/destroy update'] = u.DestructiveUpdate;
    if (u.Ignore) updates.ignore = u.Ignore;
    const type = !a
      ? 'Added'
      : !b
        ? 'Deleted'
        : tasks.length || d.Fields.length || d.Objects.length
          ? 'Edited'
          : 'None';
    groups.push({ Type: type, Name: name, ...d, Tasks: tasks, Updates: updates });
  }
  const edited = top.Fields.length || top.Objects.length || groups.some((g) => g.Type !== 'None');
  const Diff = {
    Type: !old ? 'Added' : edited ? 'Edited' : 'None',
    ID: next.ID,
    ...top,
    TaskGroups: groups,
  };
  return { Diff, DesiredTGUpdates: desired };
}
