/** Registered apps: the infraspec as submitted (source) and as parsed (spec). */
import type { Db } from '../db.js';

export interface AppRecord {
  id: string;
  spec: Record<string, unknown>;
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

  async list(): Promise<AppRecord[]> {
    const { rows } = await this.db.query<AppRecord>(
      `SELECT id, spec, source_format AS "sourceFormat", created_at AS "createdAt", updated_at AS "updatedAt"
       FROM apps ORDER BY id`,
    );
    return rows;
  }
}
