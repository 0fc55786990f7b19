/** Releases (001_baseline.sql): what each deploy put on its target, and the last known good one. */
import type { PoolClient } from 'pg';
import type { Db } from '../../shared/db.js';
import type { AppRoute } from '../../shared/drivers/cloudflared.js';

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
  /** The release that served when this one's submit began (001_baseline.sql). */
  previousReleaseId: number | null;
  /** The app's ingress rules before this release's forge wrote any; null: forge wrote none. */
  routesBefore: AppRoute[] | null;
}

const COLUMNS = `id, app_id AS "appId", run_id AS "deploymentId", target, image_ref AS "imageRef",
  commit_sha AS "commitSha", digest, spec, secrets_enc AS "secretsEnc", secrets_format AS "secretsFormat",
  migrations_applied AS "migrationsApplied", snapshot_ts AS "snapshotTs", status, error,
  created_at AS "createdAt", activated_at AS "activatedAt", previous_release_id AS "previousReleaseId",
  routes_before AS "routesBefore"`;

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
  | 'previousReleaseId'
>;

export class ReleaseStore {
  constructor(private readonly db: Db) {}

  /** Records the release a deploy is putting out; idempotent per deployment (a re-run updates it). */
  async upsertDeploying(r: NewRelease): Promise<Release> {
    const { rows } = await this.db.query<Release>(
      `INSERT INTO releases (app_id, run_id, target, image_ref, commit_sha, digest, spec, secrets_enc, secrets_format,
                             migrations_applied, snapshot_ts, previous_release_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
       ON CONFLICT (run_id) DO UPDATE SET image_ref = EXCLUDED.image_ref, digest = EXCLUDED.digest,
         spec = EXCLUDED.spec, secrets_enc = EXCLUDED.secrets_enc, secrets_format = EXCLUDED.secrets_format,
         migrations_applied = EXCLUDED.migrations_applied, snapshot_ts = EXCLUDED.snapshot_ts,
         -- a re-run keeps what served when the first attempt began
         previous_release_id = COALESCE(releases.previous_release_id, EXCLUDED.previous_release_id)
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
        r.previousReleaseId,
      ],
    );
    return rows[0]!;
  }

  async byDeployment(deploymentId: string): Promise<Release | null> {
    const { rows } = await this.db.query<Release>(
      `SELECT ${COLUMNS} FROM releases WHERE run_id = $1`,
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
    await this.transaction(async (client) => {
      const { rows } = await client.query<{ app_id: string; status: string }>(
        'SELECT app_id, status FROM releases WHERE run_id = $1 FOR UPDATE',
        [deploymentId],
      );
      if (!rows[0] || rows[0].status === 'active') return;
      await client.query(
        `UPDATE releases SET status = 'superseded', ended_at = now() WHERE app_id = $1 AND status = 'active'`,
        [rows[0].app_id],
      );
      await client.query(
        `UPDATE releases SET status = 'active', activated_at = now(), error = NULL WHERE run_id = $1`,
        [deploymentId],
      );
    });
  }

  private async transaction(fn: (client: PoolClient) => Promise<void>): Promise<void> {
    const client = await this.db.connect();
    try {
      await client.query('BEGIN');
      await fn(client);
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
      `UPDATE releases SET status = $2, error = $3, ended_at = now() WHERE run_id = $1 AND status = 'deploying'`,
      [deploymentId, status, error],
    );
  }
  /** Forge, before it writes: the app's rules as they were (kept from the first attempt). */
  async recordRoutesBefore(deploymentId: string, routes: AppRoute[]): Promise<void> {
    await this.db.query(
      `UPDATE releases SET routes_before = $2 WHERE run_id = $1 AND routes_before IS NULL`,
      [deploymentId, JSON.stringify(routes)],
    );
  }

  /** True when a later deploy of the app recorded a release after `release` (it owns the app now). */
  async hasNewer(release: Pick<Release, 'appId' | 'id'>): Promise<boolean> {
    const { rows } = await this.db.query(`SELECT 1 FROM releases WHERE app_id = $1 AND id > $2`, [
      release.appId,
      release.id,
    ]);
    return rows.length > 0;
  }

  /**
   * A release that was compensated (its previous release put back): it becomes `rolled_back`,
   * even if healthy had activated it, and `previousId`, if given, is the active one again.
   */
  async reinstate(
    deploymentId: string,
    previousId: number | null,
    status: 'failed' | 'rolled_back',
    error: string,
  ): Promise<void> {
    await this.transaction(async (client) => {
      await client.query(
        `UPDATE releases SET status = $2, error = $3, ended_at = now()
         WHERE run_id = $1 AND status IN ('deploying', 'active')`,
        [deploymentId, status, error],
      );
      if (previousId !== null)
        await client.query(
          `UPDATE releases SET status = 'active', ended_at = NULL WHERE id = $1 AND status <> 'active'`,
          [previousId],
        );
    });
  }
}
