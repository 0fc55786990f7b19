/** The snapshots table: the api lists snapshots from here; files live in NORN_SNAPSHOT_DIR. */
import type { Db } from '../../shared/db.js';

export interface SnapshotRecord {
  appId: string;
  database: string;
  ts: string;
  takenAt: string;
  sizeBytes: number;
  location: string;
  sha256: string;
  deploymentId: string | null;
}

const COLUMNS = `app_id AS "appId", database, ts, taken_at AS "takenAt", size_bytes AS "sizeBytes", location, sha256,
  run_id AS "deploymentId"`;

export class SnapshotStore {
  constructor(private readonly db: Db) {}

  /** Idempotent per (app, ts). */
  async record(s: Omit<SnapshotRecord, 'takenAt'> & { takenAt: Date }): Promise<void> {
    await this.db.query(
      `INSERT INTO snapshots (app_id, database, ts, taken_at, size_bytes, location, sha256, run_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (app_id, ts) DO NOTHING`,
      [s.appId, s.database, s.ts, s.takenAt, s.sizeBytes, s.location, s.sha256, s.deploymentId],
    );
  }

  async markRemoved(appId: string, tss: string[]): Promise<void> {
    if (tss.length)
      await this.db.query(
        'UPDATE snapshots SET removed_at = now() WHERE app_id = $1 AND ts = ANY($2) AND removed_at IS NULL',
        [appId, tss],
      );
  }

  /** Kept snapshots, newest first. */
  async list(appId: string): Promise<SnapshotRecord[]> {
    const { rows } = await this.db.query<SnapshotRecord>(
      `SELECT ${COLUMNS} FROM snapshots WHERE app_id = $1 AND removed_at IS NULL ORDER BY ts DESC`,
      [appId],
    );
    return rows;
  }

  async get(appId: string, ts: string): Promise<SnapshotRecord | null> {
    const { rows } = await this.db.query<SnapshotRecord>(
      `SELECT ${COLUMNS} FROM snapshots WHERE app_id = $1 AND ts = $2 AND removed_at IS NULL`,
      [appId, ts],
    );
    return rows[0] ?? null;
  }
}
