/**
 * The last drift check of each stack or app (003_stacks.sql), keyed by subject `stack:<id>` or
 * `app:<id>`. `record` says whether the finding changed (by fingerprint or status), so a check
 * reports only what is new; `markReported` notes that the report went out.
 */
import type { ClientBase } from 'pg';

/** A pool, or a transaction's client (a drift-check hook writes in its own). */
type Queryable = Pick<ClientBase, 'query'>;

export type DriftStatus = 'clean' | 'drifted' | 'error' | 'unknown';

export interface DriftState {
  subject: string;
  status: DriftStatus;
  fingerprint: string | null;
  summary: Record<string, unknown>;
  checkedAt: string;
  reportedAt: string | null;
  lastError: string | null;
  errorAt: string | null;
}

export interface DriftFinding {
  status: DriftStatus;
  fingerprint?: string | null;
  summary?: Record<string, unknown>;
  lastError?: string | null;
}

const COLUMNS = `subject, status, fingerprint, summary, checked_at AS "checkedAt",
  reported_at AS "reportedAt", last_error AS "lastError", error_at AS "errorAt"`;

export const driftSubject = (kind: 'stack' | 'app', id: string) => `${kind}:${id}`;

export class DriftStateStore {
  constructor(private readonly db: Queryable) {}

  async get(subject: string): Promise<DriftState | null> {
    const { rows } = await this.db.query<DriftState>(
      `SELECT ${COLUMNS} FROM drift_state WHERE subject = $1`,
      [subject],
    );
    return rows[0] ?? null;
  }

  /**
   * Saves a check's finding. `changed`: the status or fingerprint differs from the last one (or
   * there was none); a changed finding clears reported_at, since its report is still to be sent.
   */
  async record(subject: string, f: DriftFinding): Promise<{ state: DriftState; changed: boolean }> {
    const { rows } = await this.db.query<DriftState & { changed: boolean }>(
      `WITH old AS (SELECT status, fingerprint FROM drift_state WHERE subject = $1)
       INSERT INTO drift_state (subject, status, fingerprint, summary, last_error, checked_at)
       VALUES ($1, $2, $3, $4, $5, now())
       ON CONFLICT (subject) DO UPDATE SET status = EXCLUDED.status,
         fingerprint = EXCLUDED.fingerprint, summary = EXCLUDED.summary,
         last_error = EXCLUDED.last_error, checked_at = now(),
         reported_at = CASE WHEN drift_state.status IS DISTINCT FROM EXCLUDED.status
                              OR drift_state.fingerprint IS DISTINCT FROM EXCLUDED.fingerprint
                            THEN NULL ELSE drift_state.reported_at END
       RETURNING ${COLUMNS},
         NOT EXISTS (SELECT 1 FROM old WHERE old.status = $2
                     AND old.fingerprint IS NOT DISTINCT FROM $3) AS changed`,
      [
        subject,
        f.status,
        f.fingerprint ?? null,
        JSON.stringify(f.summary ?? {}),
        f.lastError ?? null,
      ],
    );
    const { changed, ...state } = rows[0]!;
    return { state, changed };
  }

  /**
   * Notes a check that erred: the finding stays as it was (an error is neither drift nor clean),
   * with the error and its time beside it. A subject never checked before is 'unknown'.
   */
  async recordError(subject: string, error: string): Promise<DriftState> {
    const { rows } = await this.db.query<DriftState>(
      `INSERT INTO drift_state (subject, status, last_error, error_at, checked_at)
       VALUES ($1, 'unknown', $2, now(), now())
       ON CONFLICT (subject) DO UPDATE SET last_error = EXCLUDED.last_error, error_at = now(),
         checked_at = now()
       RETURNING ${COLUMNS}`,
      [subject, error],
    );
    return rows[0]!;
  }

  /** Notes that the current finding was reported; false if the subject has no state. */
  async markReported(subject: string): Promise<boolean> {
    const { rowCount } = await this.db.query(
      'UPDATE drift_state SET reported_at = now() WHERE subject = $1',
      [subject],
    );
    return (rowCount ?? 0) > 0;
  }

  /** Every subject's state, optionally of one kind (`stack:` or `app:`). */
  async list(kind?: 'stack' | 'app'): Promise<DriftState[]> {
    const { rows } = await this.db.query<DriftState>(
      `SELECT ${COLUMNS} FROM drift_state WHERE $1::text IS NULL OR starts_with(subject, $1)
       ORDER BY subject`,
      [kind ? `${kind}:` : null],
    );
    return rows;
  }

  async delete(subject: string): Promise<void> {
    await this.db.query('DELETE FROM drift_state WHERE subject = $1', [subject]);
  }
}
