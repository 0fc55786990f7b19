/**
 * Registered apps: the infraspec as submitted (source) and as parsed (spec). Deleting an app is a
 * soft delete (001_baseline.sql): the row and its history stay, the app is hidden and takes no
 * runs, and registering the name again brings it back.
 */
import type pg from 'pg';
import { inTransaction, type Db } from '../db.js';
import { NornError } from '../errors.js';

export interface AppRecord {
  id: string;
  spec: Record<string, unknown>;
  sourceFormat: 'yaml' | 'json';
  createdAt: string;
  updatedAt: string;
}

/** What a listing shows of an app: enough to pick one, nothing of its env or source. */
export interface AppSummary {
  id: string;
  target: string | null;
  repo: { url: string; branch: string | null } | null;
  processes: string[];
  sourceFormat: 'yaml' | 'json';
  createdAt: string;
  updatedAt: string;
  /** Where it stands, at a glance: what the dashboard's apps view shows for every app at once. */
  status: AppStatus;
}

/** An app's forge state, latest run, the run holding its own scope, and the runs queued there. */
export interface AppStatus {
  forge: 'unforged' | 'forging' | 'forged' | 'forge_failed' | 'tearing_down';
  latestRun: { runId: string; pipeline: string; status: RunStatusName; createdAt: string } | null;
  holder: { runId: string; pipeline: string; holder: string; acquiredAt: string } | null;
  /** Runs queued for the app's own scope (`app:<id>`). */
  queued: number;
}
type RunStatusName = 'queued' | 'running' | 'cancelling' | 'succeeded' | 'failed' | 'cancelled';

interface ListRow extends Omit<AppSummary, 'status'> {
  forge: AppStatus['forge'];
  runId: string | null;
  runPipeline: string | null;
  runStatus: RunStatusName | null;
  runCreatedAt: string | null;
  holderRunId: string | null;
  holderPipeline: string | null;
  holder: string | null;
  holderSince: string | null;
  queued: number;
}

/** An app as webhook routing sees it (AppStore.webhookTargets). */
export interface WebhookTarget {
  id: string;
  repoUrl: string;
  branch: string | null;
  autoDeploy: boolean;
  webhookSecret: string | null;
}

/** What stands in the way of deleting an app. */
export interface DeleteBlockers {
  runs: Array<{ id: string; pipeline: string; status: string }>;
  releases: Array<{ id: number; status: string }>;
}

export type DeleteResult =
  | { action: 'deleted'; deletedAt: string }
  | { action: 'missing' }
  | { action: 'blocked'; blockers: DeleteBlockers };

const COLUMNS = `id, spec, source_format AS "sourceFormat", created_at AS "createdAt", updated_at AS "updatedAt"`;

export class AppStore {
  constructor(private readonly db: Db) {}

  /**
   * Creates or replaces an app's spec; `created` tells which (re-registering a deleted app creates
   * it). `webhookSecret` (write-only, never read back here) replaces the app's; absent, a live
   * app keeps the one it has (a spec read back from the api cannot carry it), a deleted one loses it.
   */
  async upsert(
    id: string,
    spec: unknown,
    source: string,
    format: 'yaml' | 'json',
    webhookSecret?: string,
  ): Promise<{ app: AppRecord; created: boolean }> {
    const { rows } = await this.db.query<AppRecord & { created: boolean }>(
      `WITH old AS (SELECT deleted_at FROM apps WHERE id = $1)
       INSERT INTO apps (id, spec, source, source_format, webhook_secret) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (id) DO UPDATE SET spec = EXCLUDED.spec, source = EXCLUDED.source,
         source_format = EXCLUDED.source_format, updated_at = now(), deleted_at = NULL,
         webhook_secret = COALESCE(EXCLUDED.webhook_secret,
           CASE WHEN apps.deleted_at IS NULL THEN apps.webhook_secret END),
         created_at = CASE WHEN apps.deleted_at IS NULL THEN apps.created_at ELSE now() END
       WHERE apps.kind = 'app'
       RETURNING ${COLUMNS},
         (xmax = 0 OR EXISTS (SELECT 1 FROM old WHERE deleted_at IS NOT NULL)) AS created`,
      [id, JSON.stringify(spec), source, format, webhookSecret ?? null],
    );
    if (!rows[0])
      throw new NornError(
        'CONFLICT',
        `the name ${id} is taken by a stack (apps and stacks share one namespace); pick another name`,
      );
    const { created, ...app } = rows[0];
    return { app, created };
  }

  async get(id: string): Promise<AppRecord | null> {
    const { rows } = await this.db.query<AppRecord>(
      `SELECT ${COLUMNS} FROM apps WHERE id = $1 AND deleted_at IS NULL AND kind = 'app'`,
      [id],
    );
    return rows[0] ?? null;
  }

  /** Every registered app's id and spec, for checks across apps (ports); never for a response. */
  async specs(): Promise<Array<Pick<AppRecord, 'id' | 'spec'>>> {
    const { rows } = await this.db.query<Pick<AppRecord, 'id' | 'spec'>>(
      "SELECT id, spec FROM apps WHERE deleted_at IS NULL AND kind = 'app' ORDER BY id",
    );
    return rows;
  }

  /**
   * Every live app with a repository, with what webhook routing needs: its repo settings and its
   * webhook secret (for verifying deliveries only; never for a response, a log or an event).
   */
  async webhookTargets(): Promise<WebhookTarget[]> {
    const { rows } = await this.db.query<WebhookTarget>(
      `SELECT id, spec->'repo'->>'url' AS "repoUrl", spec->'repo'->>'branch' AS branch,
         COALESCE((spec->'repo'->>'autoDeploy')::boolean, false) AS "autoDeploy",
         webhook_secret AS "webhookSecret"
       FROM apps WHERE deleted_at IS NULL AND kind = 'app' AND spec->'repo'->>'url' IS NOT NULL
       ORDER BY id`,
    );
    return rows;
  }

  /**
   * Every app, as summaries with their status, in one query: built in SQL (no spec leaves the
   * database), and the apps view polls it, so no request per app.
   */
  async list(): Promise<AppSummary[]> {
    const { rows } = await this.db.query<ListRow>(
      `SELECT a.id, a.spec->>'target' AS target,
         CASE WHEN a.spec->'repo'->>'url' IS NULL THEN NULL
              ELSE jsonb_build_object('url', a.spec->'repo'->>'url', 'branch', a.spec->'repo'->>'branch') END AS repo,
         ARRAY(SELECT jsonb_object_keys(CASE WHEN jsonb_typeof(a.spec->'processes') = 'object'
                                             THEN a.spec->'processes' ELSE '{}' END) ORDER BY 1) AS processes,
         a.source_format AS "sourceFormat", a.created_at AS "createdAt", a.updated_at AS "updatedAt",
         COALESCE(f.state, 'unforged') AS forge,
         r.id AS "runId", r.pipeline AS "runPipeline", r.status AS "runStatus", r.created_at AS "runCreatedAt",
         l.run_id AS "holderRunId", lr.pipeline AS "holderPipeline", l.holder, l.acquired_at AS "holderSince",
         (SELECT count(*)::int FROM runs q WHERE q.scope = 'app:' || a.id AND q.status = 'queued') AS queued
       FROM apps a
       LEFT JOIN forge_state f ON f.app_id = a.id
       LEFT JOIN LATERAL (SELECT id, pipeline, status, created_at FROM runs
                          WHERE app_id = a.id ORDER BY request_seq DESC LIMIT 1) r ON true
       LEFT JOIN leases l ON l.scope = 'app:' || a.id
       LEFT JOIN runs lr ON lr.id = l.run_id
       WHERE a.deleted_at IS NULL AND a.kind = 'app' ORDER BY a.id`,
    );
    return rows.map((r) => ({
      id: r.id,
      target: r.target,
      repo: r.repo,
      processes: r.processes,
      sourceFormat: r.sourceFormat,
      createdAt: r.createdAt,
      updatedAt: r.updatedAt,
      status: {
        forge: r.forge,
        latestRun: r.runId
          ? {
              runId: r.runId,
              pipeline: r.runPipeline!,
              status: r.runStatus!,
              createdAt: r.runCreatedAt!,
            }
          : null,
        holder:
          r.holderRunId && r.holder
            ? {
                runId: r.holderRunId,
                pipeline: r.holderPipeline ?? '',
                holder: r.holder,
                acquiredAt: r.holderSince!,
              }
            : null,
        queued: r.queued,
      },
    }));
  }

  /**
   * Marks the app deleted unless a run is queued or running or a release is active or deploying
   * (what would keep containers alive), or the caller found something in the way elsewhere (it
   * still gets the full list). Checked and marked under the app's row lock, which every run request
   * takes too, so no run can slip in between.
   */
  async softDelete(id: string, o: { blockedElsewhere?: boolean } = {}): Promise<DeleteResult> {
    return inTransaction(this.db, async (client) => {
      const app = await client.query(
        "SELECT 1 FROM apps WHERE id = $1 AND deleted_at IS NULL AND kind = 'app' FOR UPDATE",
        [id],
      );
      if (app.rowCount === 0) return { action: 'missing' };
      // Read after the lock is held (a statement of its own): runs requested before it are seen.
      const blockers = await deleteBlockers(client, id);
      if (blockers.runs.length > 0 || blockers.releases.length > 0 || o.blockedElsewhere)
        return { action: 'blocked', blockers };
      const done = await client.query<{ deletedAt: string }>(
        `UPDATE apps SET deleted_at = now() WHERE id = $1 RETURNING deleted_at AS "deletedAt"`,
        [id],
      );
      return { action: 'deleted', deletedAt: done.rows[0]!.deletedAt };
    });
  }
}

async function deleteBlockers(client: pg.PoolClient, id: string): Promise<DeleteBlockers> {
  const runs = await client.query<DeleteBlockers['runs'][number]>(
    `SELECT id, pipeline, status FROM runs
     WHERE app_id = $1 AND status IN ('queued', 'running', 'cancelling') ORDER BY request_seq`,
    [id],
  );
  const releases = await client.query<DeleteBlockers['releases'][number]>(
    `SELECT id, status FROM releases WHERE app_id = $1 AND status IN ('active', 'deploying')
     ORDER BY id`,
    [id],
  );
  return { runs: runs.rows, releases: releases.rows };
}
