/**
 * Plan artifacts (003_stacks.sql): what a plan run saved. The plan file's bytes leave the database
 * only through `file()`, checked against the digest taken when it was saved.
 */
import { createHash } from 'node:crypto';
import type { Db } from '../db.js';
import { NornError } from '../errors.js';

export type PlanKind = 'review' | 'release' | 'drift';

export interface NewPlanArtifact {
  stackId: string;
  runId?: string | null;
  kind: PlanKind;
  baseSha?: string | null;
  headSha?: string | null;
  /** The binary plan (`tofu plan -out`); its sha256 is taken here. */
  planFile?: Buffer | null;
  summary?: Record<string, unknown>;
  /** `tofu show -json` of the plan. */
  showJson?: unknown;
  pullRequest?: number | null;
}

/** A plan artifact without its file: what listings show. */
export interface PlanArtifactSummary {
  id: number;
  stackId: string;
  runId: string | null;
  kind: PlanKind;
  baseSha: string | null;
  headSha: string | null;
  sha256: string | null;
  summary: Record<string, unknown>;
  pullRequest: number | null;
  hasPlanFile: boolean;
  createdAt: string;
  /** Where applying this plan got to (release plans only); null: never begun. */
  apply: PlanApply | null;
}

/** An apply of a saved plan, as its marks record it (005_gitops_runs.sql). */
export interface PlanApply {
  runId: string;
  startedAt: string;
  /** Set when tofu applied it. */
  appliedAt: string | null;
  /** Set when tofu ended without applying all of it (a refusal, a stale plan, a failure). */
  error: string | null;
}

/** What beginApply found: go ahead, or why not. */
export type BeginApply =
  | { action: 'begun' }
  | { action: 'applied'; apply: PlanApply }
  | { action: 'interrupted'; apply: PlanApply }
  | { action: 'missing' };

export interface PlanArtifact extends PlanArtifactSummary {
  showJson: unknown;
}

const SUMMARY = `id, stack_id AS "stackId", run_id AS "runId", kind, base_sha AS "baseSha",
  head_sha AS "headSha", sha256, summary, pull_request AS "pullRequest",
  plan_file IS NOT NULL AS "hasPlanFile", created_at AS "createdAt",
  CASE WHEN apply_started_at IS NULL THEN NULL ELSE jsonb_build_object('runId', apply_run_id,
    'startedAt', apply_started_at, 'appliedAt', applied_at, 'error', apply_error) END AS apply`;

const isId = (id: number | string) => /^[0-9]{1,15}$/.test(String(id));

export const sha256Hex = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

export class PlanArtifactStore {
  constructor(private readonly db: Db) {}

  async insert(a: NewPlanArtifact): Promise<PlanArtifact> {
    const file = a.planFile ?? null;
    const { rows } = await this.db.query<PlanArtifact>(
      `INSERT INTO plan_artifacts (stack_id, run_id, kind, base_sha, head_sha, plan_file, sha256,
         summary, show_json, pull_request)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
       RETURNING ${SUMMARY}, show_json AS "showJson"`,
      [
        a.stackId,
        a.runId ?? null,
        a.kind,
        a.baseSha ?? null,
        a.headSha ?? null,
        file,
        file ? sha256Hex(file) : null,
        JSON.stringify(a.summary ?? {}),
        a.showJson === undefined ? null : JSON.stringify(a.showJson),
        a.pullRequest ?? null,
      ],
    );
    return rows[0]!;
  }

  async get(id: number | string): Promise<PlanArtifact | null> {
    if (!isId(id)) return null;
    const { rows } = await this.db.query<PlanArtifact>(
      `SELECT ${SUMMARY}, show_json AS "showJson" FROM plan_artifacts WHERE id = $1`,
      [id],
    );
    return rows[0] ?? null;
  }

  /** The plan file's bytes; throws INTERNAL if they no longer match their digest. */
  async file(id: number | string): Promise<{ planFile: Buffer; sha256: string } | null> {
    if (!isId(id)) return null;
    const { rows } = await this.db.query<{ planFile: Buffer | null; sha256: string | null }>(
      'SELECT plan_file AS "planFile", sha256 FROM plan_artifacts WHERE id = $1',
      [id],
    );
    const row = rows[0];
    if (!row?.planFile || !row.sha256) return null;
    if (sha256Hex(row.planFile) !== row.sha256)
      throw new NornError('INTERNAL', `plan artifact ${id} does not match its sha256`);
    return { planFile: row.planFile, sha256: row.sha256 };
  }

  /** A stack's plans, newest first; `pullRequest` narrows to one pull request's. */
  async listByStack(
    stackId: string,
    o: { limit?: number; kind?: PlanKind; pullRequest?: number } = {},
  ): Promise<PlanArtifactSummary[]> {
    const { rows } = await this.db.query<PlanArtifactSummary>(
      `SELECT ${SUMMARY} FROM plan_artifacts
       WHERE stack_id = $1 AND ($2::text IS NULL OR kind = $2) AND ($3::int IS NULL OR pull_request = $3)
       ORDER BY id DESC LIMIT $4`,
      [stackId, o.kind ?? null, o.pullRequest ?? null, o.limit ?? 20],
    );
    return rows;
  }

  /** The plan of `kind` a run saved (a re-run of its plan step finds it), or null. */
  async forRun(runId: string, kind: PlanKind): Promise<PlanArtifactSummary | null> {
    const { rows } = await this.db.query<PlanArtifactSummary>(
      `SELECT ${SUMMARY} FROM plan_artifacts WHERE run_id = $1 AND kind = $2 ORDER BY id DESC LIMIT 1`,
      [runId, kind],
    );
    return rows[0] ?? null;
  }

  /** The newest plan of a kind (e.g. the release plan to apply), or null. */
  async latest(
    stackId: string,
    o: { kind: PlanKind; pullRequest?: number },
  ): Promise<PlanArtifactSummary | null> {
    return (await this.listByStack(stackId, { ...o, limit: 1 }))[0] ?? null;
  }

  /**
   * Marks that `runId` begins applying plan `id`, unless an apply of it already began: one that
   * ended applied is reported so, one that never ended (a worker killed mid-apply) is
   * `interrupted` and must not be applied again blindly. An apply that ended in an error may
   * begin again (tofu refuses a plan the earlier attempt made stale).
   */
  async beginApply(id: number, runId: string): Promise<BeginApply> {
    const begun = await this.db.query(
      `UPDATE plan_artifacts SET apply_run_id = $2, apply_started_at = now(), applied_at = NULL,
         apply_error = NULL
       WHERE id = $1 AND (apply_started_at IS NULL OR apply_error IS NOT NULL)`,
      [id, runId],
    );
    if ((begun.rowCount ?? 0) > 0) return { action: 'begun' };
    const plan = await this.get(id);
    if (!plan?.apply) return { action: 'missing' };
    return plan.apply.appliedAt
      ? { action: 'applied', apply: plan.apply }
      : { action: 'interrupted', apply: plan.apply };
  }

  /**
   * Records how the apply `runId` began ended: applied, or the error tofu ended with. Returns when
   * it was marked applied (null for an error, or when `runId` no longer holds the mark).
   */
  async endApply(id: number, runId: string, result: { error?: string }): Promise<string | null> {
    const { rows } = await this.db.query<{ appliedAt: string | null }>(
      `UPDATE plan_artifacts SET applied_at = CASE WHEN $3::text IS NULL THEN now() END,
         apply_error = $3
       WHERE id = $1 AND apply_run_id = $2
       RETURNING to_jsonb(applied_at) #>> '{}' AS "appliedAt"`, // text, as `apply` shows it
      [id, runId, result.error ?? null],
    );
    return rows[0]?.appliedAt ?? null;
  }
}
