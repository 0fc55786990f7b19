/** Reading the saga event log (writing happens only inside the norn_* functions). */
import type { Db } from '../db.js';
import type { EventEnvelope } from '../events.js';

const COLUMNS = `id, seq, type, app_id AS "appId", run_id AS "runId", run_id AS "sagaId", ts, payload`;

type Row = Omit<EventEnvelope, 'ts'> & { ts: Date };
const toEnvelope = (r: Row): EventEnvelope => ({ ...r, ts: r.ts.toISOString() });

export class EventStore {
  constructor(private readonly db: Db) {}

  /** A saga's events, oldest first. */
  async bySaga(sagaId: string, afterId = 0, limit = 1000): Promise<EventEnvelope[]> {
    const { rows } = await this.db.query<Row>(
      `SELECT ${COLUMNS} FROM events WHERE run_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
      [sagaId, afterId, limit],
    );
    return rows.map(toEnvelope);
  }

  /** An app's events, newest first, paged by `before` (an event id). */
  async byAppNewestFirst(
    appId: string,
    before: number | undefined,
    limit: number,
  ): Promise<EventEnvelope[]> {
    const { rows } = await this.db.query<Row>(
      `SELECT ${COLUMNS} FROM events WHERE app_id = $1 AND ($2::bigint IS NULL OR id < $2) ORDER BY seq DESC LIMIT $3`,
      [appId, before ?? null, limit],
    );
    return rows.map(toEnvelope);
  }

  /**
   * An app's events after a per-app sequence number, in order (optionally one saga's only): how
   * relays fill gaps. `through` is the sequence number the caller has now seen everything up to.
   */
  async byAppAfterSeq(
    appId: string,
    afterSeq: number,
    limit = 500,
    sagaId?: string,
  ): Promise<{ events: EventEnvelope[]; through: number; more: boolean }> {
    // Everything up to the app's head is committed (the head moves in the same transaction).
    const head = (await this.appSeqs([appId])).get(appId) ?? afterSeq;
    const { rows } = await this.db.query<Row>(
      `SELECT ${COLUMNS} FROM events WHERE app_id = $1 AND seq > $2 AND seq <= $3
         AND ($4::uuid IS NULL OR run_id = $4) ORDER BY seq LIMIT $5`,
      [appId, afterSeq, head, sagaId ?? null, limit],
    );
    const more = rows.length === limit;
    const through = more ? rows[rows.length - 1]!.seq : Math.max(head, afterSeq);
    return { events: rows.map(toEnvelope), through, more };
  }

  async get(id: number): Promise<EventEnvelope | null> {
    const { rows } = await this.db.query<Row>(`SELECT ${COLUMNS} FROM events WHERE id = $1`, [id]);
    return rows[0] ? toEnvelope(rows[0]) : null;
  }

  /** The last sequence number of each app (what a relay compares its cursors with). */
  async appSeqs(appIds: string[]): Promise<Map<string, number>> {
    if (appIds.length === 0) return new Map();
    const { rows } = await this.db.query<{ id: string; event_seq: number }>(
      'SELECT id, event_seq FROM apps WHERE id = ANY($1)',
      [appIds],
    );
    return new Map(rows.map((r) => [r.id, r.event_seq]));
  }
}
