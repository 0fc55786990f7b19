/** What the stand-in's commands share: output, diagnostics, loading the module, the lock. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { readModule, structure } from './config.mjs';
import { decodeResource } from './schema.mjs';
import { PROVIDER } from './local-file.mjs';
import { LockError, lockState } from './state.mjs';
import { diagText } from './render.mjs';

export const out = (s) => process.stdout.write(s);
export const errOut = (s) => process.stderr.write(s);
export class UsageError extends Error {}

export const fail = (diags, sources) => {
  for (const d of diags) errOut(diagText(d, sources));
  return 1;
};
export const sourcesOf = (files) => Object.fromEntries(files.map((f) => [f.name, f.src]));
export const initialized = (dir) =>
  existsSync(join(dir, '.terraform', 'providers', ...PROVIDER.split('/')));
export const NOT_INIT = {
  severity: 'error',
  summary: 'Inconsistent dependency lock file',
  detail: `The following dependency selections recorded in the lock file are inconsistent with the current configuration:\n  - provider ${PROVIDER}: required by this configuration but no version is selected\n\nTo make the initial dependency selections that will initialize the dependency lock file, run:\n  tofu init`,
};

/**
 * Loads and checks the module; returns {files, resources, diags, backend, backendDiags} (see
 * config.mjs structure: backendDiags are for the commands that configure the backend).
 */
export function load(dir) {
  const files = readModule(dir);
  const { resources, diags, backend, backendDiags } = structure(files);
  const decoded = [];
  for (const res of resources) {
    const d = decodeResource(res, diags);
    if (d) decoded.push({ ...res, ...d });
  }
  return { files, resources: decoded, diags, backend, backendDiags };
}

/** Takes the lock on the state at `loc` (state.mjs stateLocation), retrying until -lock-timeout (default 0s: one attempt). */
export async function acquire(loc, flags, operation) {
  if (flags.lock === false) return () => {};
  const timeoutMs = parseDuration(flags['lock-timeout'] ?? '0s');
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return lockState(loc, operation);
    } catch (e) {
      if (!(e instanceof LockError) || Date.now() >= until) throw e;
      await sleep(100);
    }
  }
}

export const parseDuration = (s) => {
  const m = /^(\d+)(ms|s|m)?$/.exec(s);
  if (!m) throw new UsageError(`invalid duration ${s}`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2] ?? 's'];
};

/** The hold of `command` (plan or apply): TOFU_STANDIN_HOLD_<COMMAND>_MS, else TOFU_STANDIN_HOLD_MS. */
export const holdMs = (command) =>
  Number(
    process.env[`TOFU_STANDIN_HOLD_${command.toUpperCase()}_MS`] ??
      process.env.TOFU_STANDIN_HOLD_MS ??
      0,
  );
