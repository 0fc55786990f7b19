/** Releases (002_releases.sql): what each deploy put on its target, and the last known good one. */
import type { Db } from '../../shared/db.js';

export type ReleaseStatus = 'deploying' | 'active' | 'superseded' | 'failed' | 'rolled_back';

export interface Release {
  id: number;
  appId: string;
  deploymentId: string;
  target: string;
  imageRef: string;
  commitSha: string;
  digest: string | null;
  spec: Record<string, unknown>;
  secretsEnc: string | null;
  secretsFormat: string | null;
  migrationsApplied: string[];
  snapshotTs: string | null;
  status: ReleaseStatus;
  error: string | null;
  createdAt: string;
  activatedAt: string | null;
}

const COLUMNS = `id, app_id AS "appId", deployment_id AS "deploymentId", target, image_ref AS "imageRef",
  commit_sha AS "commitSha", digest, spec, secrets_enc AS "secretsEnc", secrets_format AS "secretsFormat",
  migrations_applied AS "migrationsApplied", snapshot_ts AS "snapshotTs", status, error,
  created_at AS "createdAt", activated_at AS "activatedAt"`;

/** What a deploy records when it puts a release out (the rest is the release's lifecycle). */
export type NewRelease = Pick<
  Release,
  | 'appId'
  | 'deploymentId'
  | 'target'
  | 'imageRef'
  | 'commitSha'
  | 'digest'
  | 'spec'
  | 'secretsEnc'
  | 'secretsFormat'
  | 'migrationsApplied'
  | 'snapshotTs'
>;

export class ReleaseStore {
  constructor(private readonly db: Db) {}

  /** Records the release a deploy is putting out; idempotent per deployment (a re-run updates it). */
  async upsertDeploying(r: NewRelease): Promise<Release> {
    const { rows } = await this.db.query<Release>(
      `INSERT INTO releases (app_id, deployment_id, target, image_ref, commit_sha, digest, spec, secrets_enc, secrets_format,
                             migrations_applied, snapshot_ts)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
       ON CONFLICT (deployment_id) DO UPDATE SET image_ref = EXCLUDED.image_ref, digest = EXCLUDED.digest,
         spec = EXCLUDED.spec, secrets_enc = EXCLUDED.secrets_enc, secrets_format = EXCLUDED.secrets_format,
         migrations_applied = EXCLUDED.migrations_applied, snapshot_ts = EXCLUDED.snapshot_ts
       RETURNING ${COLUMNS}`,
      [
        r.appId,
        r.deploymentId,
        r.target,
        r.imageRef,
        r.commitSha,
        r.digest,
        JSON.stringify(r.spec),
        r.secretsEnc,
        r.secretsFormat,
        r.migrationsApplied,
        r.snapshotTs,
      ],
    );
    return rows[0]!;
  }

  async byDeployment(deploymentId: string): Promise<Release | null> {
    const { rows } = await this.db.query<Release>(
      `SELECT ${COLUMNS} FROM releases WHERE deployment_id = $1`,
      [deploymentId],
    );
    return rows[0] ?? null;
  }

  async byId(id: number): Promise<Release | null> {
    const { rows } = await this.db.query<Release>(`SELECT ${COLUMNS} FROM releases WHERE id = $1`, [
      id,
    ]);
    return rows[0] ?? null;
  }

  /** The app's last known good release (what a rollback puts back). */
  async active(appId: string): Promise<Release | null> {
    const { rows } = await this.db.query<Release>(
      `SELECT ${COLUMNS} FROM releases WHERE app_id = $1 AND status = 'active'`,
      [appId],
    );
    return rows[0] ?? null;
  }

  async list(appId: string, limit = 20): Promise<Release[]> {
    const { rows } = await this.db.query<Release>(
      `SELECT ${COLUMNS} FROM releases WHERE app_id = $1 ORDER BY id DESC LIMIT $2`,
      [appId, limit],
    );
    return rows;
  }

  /** Makes a deploy's release the active one; the previous active one becomes superseded. */
  async activate(deploymentId: string): Promise<void> {
    const client = await this.db.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<{ app_id: string; status: string }>(
        'SELECT app_id, status FROM releases WHERE deployment_id = $1 FOR UPDATE',
        [deploymentId],
      );
      if (rows[0] && rows[0].status !== 'active') {
        await client.query(
          `UPDATE releases SET status = 'superseded', ended_at = now() WHERE app_id = $1 AND status = 'active'`,
          [rows[0].app_id],
        );
        await client.query(
          `UPDATE releases SET status = 'active', activated_at = now(), error = NULL WHERE deployment_id = $1`,
          [deploymentId],
        );
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK');
      throw err;
    } finally {
      client.release();
    }
  }

  /** A release that did not become healthy: failed, or rolled_back when the previous one was put back. */
  async markEnded(
    deploymentId: string,
    status: 'failed' | 'rolled_back',
    error: string,
  ): Promise<void> {
    await this.db.query(
      `UPDATE releases SET status = $2, error = $3, ended_at = now() WHERE deployment_id = $1 AND status = 'deploying'`,
      [deploymentId, status, error],
    );
  }
}
