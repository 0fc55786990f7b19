/**
 * Planning: refresh the state against the real files, compare with the configuration, and the
 * two forms of a plan: the saved plan file (the stand-in's own JSON; real OpenTofu writes a zip)
 * and `show -json`'s representation (OpenTofu internal/command/jsonplan/plan.go, format 1.2, the
 * fields hashicorp/terraform-json plan.go reads), checked against Terraform 1.11.4's output for a
 * terraform_data resource: no `prior_state` without a state, `before_sensitive: false` on a create.
 */
import { COMPUTED, PROVIDER, plannedArgs, read, replacePaths } from './local-file.mjs';
import { stateObjects, TOFU_VERSION } from './state.mjs';

const SENSITIVE = { sensitive_content: true };
const sorted = (obj) =>
  Object.fromEntries(
    Object.keys(obj)
      .sort()
      .map((k) => [k, obj[k]]),
  );

/** `resources` are decoded local_file blocks: {address, type, name, args, expressions}. */
export function makePlan({ resources, state, configHash }) {
  const prior = stateObjects(state);
  const refreshed = {};
  const drift = [];
  for (const address of Object.keys(prior).sort()) {
    const now = read(prior[address]);
    if (now) refreshed[address] = now;
    else drift.push({ address, before: prior[address] });
  }
  const changes = [];
  const inConfig = new Set();
  for (const res of [...resources].sort((a, b) => a.address.localeCompare(b.address))) {
    inConfig.add(res.address);
    const after = plannedArgs(res.args);
    const before = refreshed[res.address];
    const paths = before ? replacePaths(before, after) : [];
    const action = !before ? 'create' : paths.length ? 'replace' : 'no-op';
    changes.push({
      address: res.address,
      action,
      before: before ?? null,
      after: before && !paths.length ? before : after,
      replace_paths: paths,
    });
  }
  for (const address of Object.keys(refreshed))
    if (!inConfig.has(address))
      changes.push({
        address,
        action: 'delete',
        before: refreshed[address],
        after: null,
        replace_paths: [],
      });
  return {
    standin_plan_format: 1,
    terraform_version: TOFU_VERSION,
    timestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    config_hash: configHash,
    // What apply checks the state against (backend_local.go: lineage, then serial).
    prior: { lineage: state?.lineage ?? '', serial: state?.serial ?? 0 },
    state_existed: state !== null,
    refreshed,
    drift,
    changes,
    configuration: configurationJson(resources),
  };
}

export const counts = (plan) => {
  const c = { add: 0, change: 0, destroy: 0 };
  for (const ch of plan.changes) {
    if (ch.action === 'create' || ch.action === 'replace') c.add++;
    if (ch.action === 'delete' || ch.action === 'replace') c.destroy++;
    if (ch.action === 'update') c.change++;
  }
  return c;
};

export const hasChanges = (plan) => plan.changes.some((c) => c.action !== 'no-op');

function configurationJson(resources) {
  return {
    provider_config: { local: { name: 'local', full_name: PROVIDER } },
    root_module: {
      resources: resources.map((r) => ({
        address: r.address,
        mode: 'managed',
        type: r.type,
        name: r.name,
        provider_config_key: 'local',
        expressions: sorted(r.expressions),
        schema_version: 0,
      })),
    },
  };
}

const unknowns = () => Object.fromEntries(COMPUTED.map((k) => [k, true]));
const [typeOf, nameOf] = [(a) => a.split('.')[0], (a) => a.split('.')[1]];
const base = (address) => ({
  address,
  mode: 'managed',
  type: typeOf(address),
  name: nameOf(address),
  provider_name: PROVIDER,
});

function changeJson(ch) {
  switch (ch.action) {
    case 'create':
      return {
        actions: ['create'],
        before: null,
        after: sorted(ch.after),
        after_unknown: unknowns(),
        before_sensitive: false,
        after_sensitive: SENSITIVE,
      };
    case 'replace':
      return {
        actions: ['delete', 'create'],
        before: sorted(ch.before),
        after: sorted(ch.after),
        after_unknown: unknowns(),
        before_sensitive: SENSITIVE,
        after_sensitive: SENSITIVE,
        replace_paths: ch.replace_paths,
      };
    case 'delete':
      return {
        actions: ['delete'],
        before: sorted(ch.before),
        after: null,
        after_unknown: {},
        before_sensitive: SENSITIVE,
        after_sensitive: false,
      };
    default:
      return {
        actions: ['no-op'],
        before: sorted(ch.before),
        after: sorted(ch.after),
        after_unknown: {},
        before_sensitive: SENSITIVE,
        after_sensitive: SENSITIVE,
      };
  }
}

const REASON = {
  replace: 'replace_because_cannot_update',
  delete: 'delete_because_no_resource_config',
};

const stateResource = (address, values) => ({
  ...base(address),
  schema_version: 0,
  values: sorted(values),
  sensitive_values: {},
});

/** `tofu show -json <planfile>`. */
export function showJson(plan) {
  const planned = plan.changes
    .filter((c) => c.action !== 'delete')
    .map((c) => stateResource(c.address, c.after));
  const out = {
    format_version: '1.2',
    terraform_version: plan.terraform_version,
    planned_values: { root_module: planned.length ? { resources: planned } : {} },
  };
  if (plan.drift.length)
    out.resource_drift = plan.drift.map((d) => ({
      ...base(d.address),
      change: {
        actions: ['delete'],
        before: sorted(d.before),
        after: null,
        after_unknown: {},
        before_sensitive: SENSITIVE,
        after_sensitive: false,
      },
    }));
  // omitempty in jsonplan: no resources, no resource_changes key.
  if (plan.changes.length)
    out.resource_changes = plan.changes.map((c) => ({
      ...base(c.address),
      change: changeJson(c),
      ...(REASON[c.action] ? { action_reason: REASON[c.action] } : {}),
    }));
  if (plan.state_existed) {
    const resources = Object.keys(plan.refreshed)
      .sort()
      .map((a) => stateResource(a, plan.refreshed[a]));
    out.prior_state = {
      format_version: '1.0',
      terraform_version: plan.terraform_version,
      values: { root_module: resources.length ? { resources } : {} },
    };
  }
  out.configuration = plan.configuration;
  out.timestamp = plan.timestamp;
  out.errored = false;
  return out;
}
