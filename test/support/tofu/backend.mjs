/**
 * The backend a working directory was initialised with. `tofu init` saves the configured backend
 * in `.terraform/terraform.tfstate` (format version 3, {backend: {type, config}}; clistate), and
 * every other command compares the configuration with it (command/meta_backend.go
 * backendFromConfig): a backend that is new, changed or removed since init needs init again, and
 * init itself refuses to switch from one saved backend to another without -reconfigure, which
 * would otherwise migrate state. The stand-in never migrates state; it refuses where OpenTofu
 * would offer to copy it. Its record has no `hash` (OpenTofu's is a hash of the HCL body).
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readState, stateLocation, TOFU_VERSION } from './state.mjs';

const recordPath = (dir) => join(dir, '.terraform', 'terraform.tfstate');

/** The saved backend, {type, path} or null. */
export function savedBackend(dir) {
  const file = recordPath(dir);
  if (!existsSync(file)) return null;
  const b = JSON.parse(readFileSync(file, 'utf8')).backend;
  return b ? { type: b.type, path: b.config?.path ?? null } : null;
}

const same = (a, b) => (a?.type ?? null) === (b?.type ?? null) && a?.path === b?.path;

/** What a saved plan records of its backend (plans.Backend), so apply uses the same state. */
export const planBackend = (backend) => ({
  type: backend.type,
  config: { path: backend.path, workspace_dir: null },
  workspace: 'default',
});

// meta_backend.go errBackendInit.
const reinit = (summary, reason) => ({
  severity: 'error',
  summary,
  detail: `Reason: ${reason}

The "backend" is the interface that OpenTofu uses to store state,
perform operations, etc. If this message is showing up, it means that the
OpenTofu configuration you're using is using a custom configuration for
the OpenTofu backend.

Changes to backend configurations require reinitialization. This allows
OpenTofu to set up the new configuration, copy existing state, etc. Please run
"tofu init" with either the "-reconfigure" or "-migrate-state" flags to
use the current configuration.

If the change reason above is incorrect, please verify your configuration
hasn't changed and try again. At this point, no changes to your existing
configuration or state have been made.`,
});

/** For plan and apply: the diagnostic when `backend` (the configuration's) is not the saved one. */
export function backendInitRequired(dir, backend) {
  const saved = savedBackend(dir);
  if (same(saved, backend)) return undefined;
  if (!saved)
    return reinit(
      'Backend initialization required, please run "tofu init"',
      `Initial configuration of the requested backend "${backend.type}"`,
    );
  if (!backend)
    return reinit(
      'Backend initialization required, please run "tofu init"',
      `Unsetting the previously set backend "${saved.type}"`,
    );
  return reinit(
    'Backend initialization required: please run "tofu init"',
    saved.type !== backend.type
      ? `Backend type changed from "${saved.type}" to "${backend.type}"`
      : 'Backend configuration block has changed',
  );
}

const MIGRATE_OR_RECONFIGURE = {
  severity: 'error',
  summary: 'Backend configuration changed',
  detail:
    'A change in the backend configuration has been detected, which may require migrating existing state.\n\n' +
    'If you wish to attempt automatic migration of the state, use "tofu init -migrate-state".\n' +
    'If you wish to store the current configuration with no changes to the state, use "tofu init -reconfigure".',
};

/**
 * init's part: saves `backend` as the working directory's. Returns {diags} on a refusal, else
 * {message}: what init prints after "Initializing the backend..." ('' when nothing changed).
 */
export function initBackend(dir, backend, { reconfigure = false } = {}) {
  const saved = reconfigure ? null : savedBackend(dir);
  if (same(saved, backend)) {
    if (reconfigure && !backend) rmSync(recordPath(dir), { force: true });
    return { message: '' };
  }
  if (saved) return { diags: [MIGRATE_OR_RECONFIGURE] };
  if (!backend) {
    rmSync(recordPath(dir), { force: true }); // -reconfigure without a backend: default state
    return { message: '' };
  }
  // backend_C_r_s: state in the working directory's default file would be copied to the backend.
  const local = stateLocation(dir, null);
  const target = stateLocation(dir, backend);
  if (local.file !== target.file && (readState(local)?.resources ?? []).length > 0)
    return {
      diags: [
        {
          severity: 'error',
          summary: 'State migration is not supported (tofu stand-in)',
          detail: `This working directory has state in ${local.path}, which OpenTofu would offer to copy to the "${backend.type}" backend at ${target.path}. The tofu stand-in does not migrate state: move the file there, or remove it.`,
        },
      ],
    };
  mkdirSync(join(dir, '.terraform'), { recursive: true });
  writeFileSync(
    recordPath(dir),
    `${JSON.stringify(
      {
        version: 3,
        terraform_version: TOFU_VERSION,
        backend: { type: backend.type, config: { path: backend.path, workspace_dir: null } },
      },
      null,
      2,
    )}\n`,
  );
  // views/backend.go BackendTypeSet.
  return {
    message: `\nSuccessfully configured the backend "${backend.type}"! OpenTofu will automatically\nuse this backend unless the backend configuration changes.\n`,
  };
}
