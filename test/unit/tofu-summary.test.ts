import { describe, expect, it } from 'vitest';
import {
  driftFingerprint,
  planSummary,
  type TerraformPlanJson,
  type TerraformResourceChange,
} from '../../src/gitops/tofu.js';

// The shape `tofu show -json` prints (format 1.2), abridged: one change of every kind.
const change = (
  address: string,
  actions: string[],
  extra: Partial<TerraformResourceChange> = {},
): TerraformResourceChange => {
  const [type, name] = address.split('.') as [string, string];
  return {
    address,
    mode: 'managed',
    type,
    name,
    provider_name: 'registry.opentofu.org/hashicorp/local',
    change: {
      actions,
      before: actions.includes('create') && !actions.includes('delete') ? null : { filename: 'x' },
      after: actions.includes('delete') && !actions.includes('create') ? null : { filename: 'x' },
      after_unknown: actions.includes('create') ? { id: true } : {},
      before_sensitive: false,
      after_sensitive: {},
    },
    ...extra,
  };
};

const plan = (resource_changes: TerraformResourceChange[]): TerraformPlanJson => ({
  format_version: '1.2',
  terraform_version: '1.9.1',
  planned_values: { root_module: {} },
  resource_changes,
  configuration: { root_module: {} },
  timestamp: '2026-12-02T15:00:00Z',
  errored: false,
});

// Real Terraform 1.11.4 `show -json` of a first plan for one terraform_data (captured here).
const REAL_TERRAFORM_PLAN = JSON.parse(
  '{"format_version":"1.2","terraform_version":"1.11.4","planned_values":{"root_module":{"resources":[{"address":"terraform_data.a","mode":"managed","type":"terraform_data","name":"a","provider_name":"terraform.io/builtin/terraform","schema_version":0,"values":{"input":"x","triggers_replace":null},"sensitive_values":{}}]}},"resource_changes":[{"address":"terraform_data.a","mode":"managed","type":"terraform_data","name":"a","provider_name":"terraform.io/builtin/terraform","change":{"actions":["create"],"before":null,"after":{"input":"x","triggers_replace":null},"after_unknown":{"id":true,"output":true},"before_sensitive":false,"after_sensitive":{}}}],"configuration":{"provider_config":{"terraform":{"name":"terraform","full_name":"terraform.io/builtin/terraform"}},"root_module":{"resources":[{"address":"terraform_data.a","mode":"managed","type":"terraform_data","name":"a","provider_config_key":"terraform","expressions":{"input":{"constant_value":"x"}},"schema_version":0}]}},"timestamp":"2026-12-02T14:58:51Z","applyable":true,"complete":true,"errored":false}',
) as TerraformPlanJson;

describe('planSummary', () => {
  it('counts as tofu\'s "Plan:" line does: a replacement is one add and one destroy', () => {
    const summary = planSummary(
      plan([
        change('local_file.new', ['create']),
        change('local_file.edited', ['update']),
        change('local_file.gone', ['delete'], {
          action_reason: 'delete_because_no_resource_config',
        }),
        change('local_file.b', ['delete', 'create'], {
          action_reason: 'replace_because_cannot_update',
        }),
        change('local_file.a', ['create', 'delete']), // create_before_destroy
        change('local_file.same', ['no-op']),
      ]),
    );
    expect(summary).toEqual({
      add: 3,
      change: 1,
      destroy: 3,
      byAction: {
        create: ['local_file.new'],
        update: ['local_file.edited'],
        delete: ['local_file.gone'],
        replace: ['local_file.a', 'local_file.b'],
      },
    });
  });

  it('leaves out no-ops, data source reads, forgets and drift that refresh alone found', () => {
    const p = plan([
      change('local_file.same', ['no-op']),
      change('data.local_file.cfg', ['read'], { mode: 'data' }),
      change('local_file.kept', ['forget']),
    ]);
    p.resource_drift = [change('local_file.same', ['delete'])];
    expect(planSummary(p)).toEqual({
      add: 0,
      change: 0,
      destroy: 0,
      byAction: { create: [], update: [], delete: [], replace: [] },
    });
  });

  it('reads a plan without resource_changes (an empty configuration) as no changes', () => {
    const p = plan([]);
    delete p.resource_changes;
    expect(planSummary(p).add + planSummary(p).change + planSummary(p).destroy).toBe(0);
  });

  it("reads real Terraform's show -json", () => {
    expect(planSummary(REAL_TERRAFORM_PLAN)).toMatchObject({
      add: 1,
      change: 0,
      destroy: 0,
      byAction: { create: ['terraform_data.a'] },
    });
  });
});

describe('driftFingerprint', () => {
  const drift = [
    change('local_file.b', ['delete', 'create']),
    change('local_file.a', ['create']),
    change('local_file.c', ['update']),
  ];

  it('is the sha256 of the sorted address:action lines', async () => {
    const { createHash } = await import('node:crypto');
    const expected = createHash('sha256')
      .update(['local_file.a:create', 'local_file.b:replace', 'local_file.c:update'].join('\n'))
      .digest('hex');
    expect(driftFingerprint(planSummary(plan(drift)))).toBe(expected);
  });

  it('does not depend on the order of changes or the timestamp of the plan', () => {
    const first = plan(drift);
    const second = { ...plan([...drift].reverse()), timestamp: '2026-12-03T09:30:00Z' };
    expect(driftFingerprint(planSummary(second))).toBe(driftFingerprint(planSummary(first)));
  });

  it('changes when the drift changes: another address, or another action on one', () => {
    const base = driftFingerprint(planSummary(plan(drift)));
    const more = driftFingerprint(
      planSummary(plan([...drift, change('local_file.d', ['delete'])])),
    );
    const other = driftFingerprint(
      planSummary(plan([change('local_file.a', ['update']), ...drift.slice(0, 1), drift[2]!])),
    );
    expect(new Set([base, more, other]).size).toBe(3);
  });
});
