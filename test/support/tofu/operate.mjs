/**
 * plan, show and apply: the commands that take the state lock and read or write the state, which
 * is where the configured backend keeps it. A saved plan records its backend (when one is
 * configured) and apply of that plan uses it, not the working directory's, as OpenTofu's
 * BackendForLocalPlan does: a plan made in one checkout applies to the same state from another.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { clearTimeout, setTimeout } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { configHash } from './config.mjs';
import { create, remove } from './local-file.mjs';
import { counts, hasChanges, makePlan, showJson } from './plan.mjs';
import { nextState, readState, stateLocation, stateObjects, writeState } from './state.mjs';
import { backendInitRequired, planBackend } from './backend.mjs';
import { planText } from './render.mjs';
import {
  acquire,
  errOut,
  fail,
  holdMs,
  initialized,
  load,
  NOT_INIT,
  out,
  sourcesOf,
  UsageError,
} from './common.mjs';

/** Loads the module for plan or apply -auto-approve: {files, resources, backend} or {code}. */
function loadForPlan(dir) {
  const { files, resources, diags, backend, backendDiags } = load(dir);
  const all = [...diags, ...backendDiags];
  if (all.length) return { code: fail(all, sourcesOf(files)) };
  const reinit = backendInitRequired(dir, backend);
  if (reinit) return { code: fail([reinit]) };
  if (resources.length && !initialized(dir)) return { code: fail([NOT_INIT]) };
  return { files, resources, backend };
}

/** A plan of `resources` against the state at `loc`, recording the backend when configured. */
function planOf({ files, resources, backend }, loc) {
  const p = makePlan({ resources, state: readState(loc), configHash: configHash(files) });
  if (backend) p.backend = planBackend(backend);
  return p;
}

export async function plan(dir, { flags }) {
  const loaded = loadForPlan(dir);
  if (loaded.code !== undefined) return loaded.code;
  const loc = stateLocation(dir, loaded.backend);
  const unlock = await acquire(loc, flags, 'OperationTypePlan');
  try {
    if (holdMs('plan')) await sleep(holdMs('plan'));
    const p = planOf(loaded, loc);
    out(planText(p, flags.out));
    if (flags.out) writeFileSync(resolve(dir, flags.out), JSON.stringify(p));
    return flags['detailed-exitcode'] && hasChanges(p) ? 2 : 0;
  } finally {
    unlock();
  }
}

function readPlanFile(dir, file) {
  const fail1 = (detail) => {
    throw new PlanFileError(`\nError: Failed to load "${file}" as a plan file\n\n${detail}\n`);
  };
  let text;
  try {
    text = readFileSync(resolve(dir, file), 'utf8'); // relative to the working directory, or absolute
  } catch (e) {
    fail1(`Error: ${e.message}`);
  }
  try {
    const p = JSON.parse(text);
    if (p.standin_plan_format === 1) return p;
  } catch {
    /* falls through */
  }
  return fail1('Error: the file is not a plan file written by the tofu stand-in.');
}

export class PlanFileError extends Error {}

export function show(dir, { flags, args }) {
  if (!flags.json || args.length !== 1)
    throw new UsageError('the tofu stand-in supports only show -json <planfile>');
  out(`${JSON.stringify(showJson(readPlanFile(dir, args[0])))}\n`);
  return 0;
}

export async function apply(dir, { flags, args }) {
  let p;
  let loc;
  if (args.length === 1) {
    p = readPlanFile(dir, args[0]);
    loc = stateLocation(dir, p.backend && { type: p.backend.type, path: p.backend.config.path });
  } else if (flags['auto-approve'] && args.length === 0) {
    const loaded = loadForPlan(dir);
    if (loaded.code !== undefined) return loaded.code;
    loc = stateLocation(dir, loaded.backend);
    p = planOf(loaded, loc);
  } else
    throw new UsageError(
      'the tofu stand-in applies a saved plan, or plans and applies with -auto-approve',
    );
  if (Object.keys(p.refreshed).length + p.changes.length && !initialized(dir))
    return fail([NOT_INIT]);
  const unlock = await acquire(loc, flags, 'OperationTypeApply');
  try {
    const state = readState(loc);
    const current = { lineage: state?.lineage ?? '', serial: state?.serial ?? 0 };
    const firstPlan = p.prior.lineage === '' && p.prior.serial === 0;
    if (!firstPlan && p.prior.lineage !== current.lineage)
      return fail([
        {
          severity: 'error',
          summary: 'Saved plan does not match the given state',
          detail:
            'The given plan file can not be applied because it was created from a different state lineage.',
        },
      ]);
    if (p.prior.serial !== current.serial)
      return fail([
        {
          severity: 'error',
          summary: 'Saved plan is stale',
          detail:
            'The given plan file can no longer be applied because the state was changed by another operation after the plan was created.',
        },
      ]);
    return await applyChanges(loc, p, state);
  } finally {
    unlock();
  }
}

async function applyChanges(loc, p, state) {
  let interrupted = false;
  let wake = () => {};
  process.on('SIGTERM', () => {
    interrupted = true;
    out(
      '\nInterrupt received.\nPlease wait for OpenTofu to exit or data loss may occur.\nGracefully shutting down...\n',
    );
    wake();
  });
  const objects = { ...p.refreshed };
  let prior = state;
  const persist = () => {
    const next = nextState(prior, objects);
    writeState(loc, prior, next);
    prior = next;
  };
  if (JSON.stringify(stateObjects(state)) !== JSON.stringify(objects)) persist(); // refreshed drift
  let done = 0;
  for (const ch of p.changes.filter((c) => c.action !== 'no-op')) {
    if (ch.action === 'delete' || ch.action === 'replace') {
      out(`${ch.address}: Destroying... [id=${ch.before.id}]\n`);
      remove(ch.before);
      delete objects[ch.address];
      out(`${ch.address}: Destruction complete after 0s\n`);
    }
    if (ch.action === 'create' || ch.action === 'replace') {
      out(`${ch.address}: Creating...\n`);
      objects[ch.address] = create(ch.after);
      out(`${ch.address}: Creation complete after 0s [id=${objects[ch.address].id}]\n`);
    }
    persist();
    if (++done === 1 && holdMs('apply'))
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, holdMs('apply'));
        wake = () => (clearTimeout(timer), resolve()); // a pending timer would keep tofu alive
      });
    if (interrupted) {
      errOut('\nError: execution halted\n\n');
      return 1;
    }
  }
  const c = counts(p);
  out(
    `\nApply complete! Resources: ${c.add} added, ${c.change} changed, ${c.destroy} destroyed.\n`,
  );
  return 0;
}
