/**
 * Registered stacks (003_stacks.sql): the parsed spec, and apart from it the webhook secret, which
 * only `webhookSecret()` reads (for signature checks) and no record carries.
 */
import { normalizeRepoUrl } from '../../gitops/repo-url.js';
import { inTransaction, type Db } from '../db.js';
import { NornError } from '../errors.js';
import type { WebhookTarget } from './apps.js';
import type { StackSpec } from '../spec/stack.js';

export interface StackRecord {
  id: string;
  spec: StackSpec;
  hasWebhookSecret: boolean;
  createdAt: string;
  updatedAt: string;
}

/** Runs of the stack's scope still queued or running: what stops a delete. */
export type StackDeleteResult =
  | { action: 'deleted' }
  | { action: 'missing' }
  | { action: 'blocked'; runs: Array<{ id: string; pipeline: string; status: string }> };

const COLUMNS = `id, spec, webhook_secret IS NOT NULL AS "hasWebhookSecret",
  created_at AS "createdAt", updated_at AS "updatedAt"`;

/** The scope of a stack's runs (runs.scope), which lists them and leases them. */
export const stackScope = (id: string) => `stack:${id}`;

export class StackStore {
  constructor(private readonly db: Db) {}

  /**
   * Creates or replaces a stack's spec; `created` tells which. `webhookSecret` undefined keeps the
   * stored secret (a client that re-sends what GET answered must not lose it), null removes it.
   */
  async upsert(
    id: string,
    spec: StackSpec,
    webhookSecret: string | null | undefined,
  ): Promise<{ stack: StackRecord; created: boolean }> {
    return inTransaction(this.db, async (client) => {
      // The stack's subject row (005_gitops_runs.sql): what its runs and events belong to.
      const subject = await client.query(
        `INSERT INTO apps (id, spec, source, source_format, kind) VALUES ($1, '{}', '', 'json', 'stack')
         ON CONFLICT (id) DO UPDATE SET deleted_at = NULL, updated_at = now()
         WHERE apps.kind = 'stack'
         RETURNING id`,
        [id],
      );
      if (subject.rowCount === 0)
        throw new NornError(
          'CONFLICT',
          `the name ${id} is taken by an app (apps and stacks share one namespace, and a deleted app keeps its history under its name); pick another name`,
        );
      const { rows } = await client.query<StackRecord & { created: boolean }>(
        `INSERT INTO stacks (id, spec, webhook_secret) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET spec = EXCLUDED.spec, updated_at = now(),
           webhook_secret = CASE WHEN $4 THEN stacks.webhook_secret ELSE EXCLUDED.webhook_secret END
         RETURNING ${COLUMNS}, (xmax = 0) AS created`,
        [id, JSON.stringify(spec), webhookSecret ?? null, webhookSecret === undefined],
      );
      const { created, ...stack } = rows[0]!;
      return { stack, created };
    });
  }

  async get(id: string): Promise<StackRecord | null> {
    const { rows } = await this.db.query<StackRecord>(
      `SELECT ${COLUMNS} FROM stacks WHERE id = $1`,
      [id],
    );
    return rows[0] ?? null;
  }

  async list(): Promise<StackRecord[]> {
    const { rows } = await this.db.query<StackRecord>(`SELECT ${COLUMNS} FROM stacks ORDER BY id`);
    return rows;
  }

  /** The secret webhooks for this stack are signed with, or null (none set, or no such stack). */
  async webhookSecret(id: string): Promise<string | null> {
    const { rows } = await this.db.query<{ secret: string | null }>(
      'SELECT webhook_secret AS secret FROM stacks WHERE id = $1',
      [id],
    );
    return rows[0]?.secret ?? null;
  }

  /**
   * Every stack with what webhook routing needs: its repository, branch and webhook secret (for
   * verifying deliveries only; never for a response, a log or an event).
   */
  async webhookTargets(): Promise<Array<Omit<WebhookTarget, 'autoDeploy'>>> {
    const { rows } = await this.db.query<Omit<WebhookTarget, 'autoDeploy'>>(
      `SELECT id, spec->'repo'->>'url' AS "repoUrl", spec->'repo'->>'branch' AS branch,
         webhook_secret AS "webhookSecret"
       FROM stacks ORDER BY id`,
    );
    return rows;
  }

  /**
   * Stacks whose `repo.url` normalizes (normalizeRepoUrl) to one of `normalizedUrls`. Matched
   * here rather than in SQL, so a stored URL is always read with today's normalization.
   */
  async byRepo(normalizedUrls: readonly string[]): Promise<StackRecord[]> {
    const wanted = new Set(normalizedUrls);
    return (await this.list()).filter((s) => {
      const url = normalizeRepoUrl(s.spec.repo.url);
      return url !== undefined && wanted.has(url);
    });
  }

  /**
   * Deletes the stack, its plan artifacts (ON DELETE CASCADE) and its drift state, unless a run of
   * its scope is queued or running. Its finished runs stay readable by id.
   */
  async delete(id: string): Promise<StackDeleteResult> {
    return inTransaction(this.db, async (client) => {
      const found = await client.query('SELECT 1 FROM stacks WHERE id = $1 FOR UPDATE', [id]);
      if (found.rowCount === 0) return { action: 'missing' };
      const active = await client.query<{ id: string; pipeline: string; status: string }>(
        `SELECT id, pipeline, status FROM runs
         WHERE scope = $1 AND status IN ('queued', 'running', 'cancelling') ORDER BY request_seq`,
        [stackScope(id)],
      );
      if (active.rows.length > 0) return { action: 'blocked', runs: active.rows };
      await client.query('DELETE FROM drift_state WHERE subject = $1', [stackScope(id)]);
      await client.query('DELETE FROM stacks WHERE id = $1', [id]);
      // Its finished runs and events stay readable by id; registering the name again revives it.
      await client.query("UPDATE apps SET deleted_at = now() WHERE id = $1 AND kind = 'stack'", [
        id,
      ]);
      return { action: 'deleted' };
    });
  }
}
