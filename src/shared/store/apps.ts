/** Registered apps: the infraspec as submitted (source) and as parsed (spec). */
import type { Db } from '../db.js';

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
}

export class AppStore {
  constructor(private readonly db: Db) {}

  /** Creates or replaces an app's spec; `created` tells which. */
  async upsert(
    id: string,
    spec: unknown,
    source: string,
    format: 'yaml' | 'json',
  ): Promise<{ app: AppRecord; created: boolean }> {
    const { rows } = await this.db.query<AppRecord & { created: boolean }>(
      `INSERT INTO apps (id, spec, source, source_format) VALUES ($1, $2, $3, $4)
       ON CONFLICT (id) DO UPDATE SET spec = EXCLUDED.spec, source = EXCLUDED.source,
         source_format = EXCLUDED.source_format, updated_at = now()
       RETURNING id, spec, source_format AS "sourceFormat", created_at AS "createdAt", updated_at AS "updatedAt",
         (xmax = 0) AS created`,
      [id, JSON.stringify(spec), source, format],
    );
    const { created, ...app } = rows[0]!;
    return { app, created };
  }

  async get(id: string): Promise<AppRecord | null> {
    const { rows } = await this.db.query<AppRecord>(
      `SELECT id, spec, source_format AS "sourceFormat", created_at AS "createdAt", updated_at AS "updatedAt"
       FROM apps WHERE id = $1`,
      [id],
    );
    return rows[0] ?? null;
  }

  /** Every app, as summaries (built in SQL: no spec leaves the database). */
  async list(): Promise<AppSummary[]> {
    const { rows } = await this.db.query<AppSummary>(
      `SELECT id, spec->>'target' AS target,
         CASE WHEN spec->'repo'->>'url' IS NULL THEN NULL
              ELSE jsonb_build_object('url', spec->'repo'->>'url', 'branch', spec->'repo'->>'branch') END AS repo,
         ARRAY(SELECT jsonb_object_keys(CASE WHEN jsonb_typeof(spec->'processes') = 'object'
                                             THEN spec->'processes' ELSE '{}' END) ORDER BY 1) AS processes,
         source_format AS "sourceFormat", created_at AS "createdAt", updated_at AS "updatedAt"
       FROM apps ORDER BY id`,
    );
    return rows;
  }
}
