/**
 * Dashboard sessions: a random cookie value (32 bytes, base64url) stands for the api token in a
 * browser. Only the value's sha256 is stored, so the table holds nothing that opens a session.
 * Sessions live in PostgreSQL, so every api of the fleet honours them and a restart keeps them.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '../db.js';

const hash = (value: string) => createHash('sha256').update(value).digest('hex');

/** A cookie value as we issue them; anything else is not looked up at all. */
const VALUE = /^[A-Za-z0-9_-]{43}$/;

export interface Session {
  expiresAt: string;
}

export class SessionStore {
  private lastPurge = 0;
  constructor(private readonly db: Pick<Db, 'query'>) {}

  /** A new session valid for `ttlS` seconds: the cookie value (given out once) and its expiry. */
  async create(ttlS: number): Promise<Session & { value: string }> {
    const value = randomBytes(32).toString('base64url');
    const { rows } = await this.db.query<{ expires_at: string }>(
      `INSERT INTO sessions (id_hash, expires_at) VALUES ($1, now() + make_interval(secs => $2))
       RETURNING to_jsonb(expires_at) #>> '{}' AS expires_at`,
      [hash(value), ttlS],
    );
    await this.purgeExpired();
    return { value, expiresAt: new Date(rows[0]!.expires_at).toISOString() };
  }

  /** The session `value` opens, or null (unknown, malformed or expired). */
  async find(value: string | undefined): Promise<Session | null> {
    if (!value || !VALUE.test(value)) return null;
    const { rows } = await this.db.query<{ expires_at: string }>(
      `SELECT to_jsonb(expires_at) #>> '{}' AS expires_at FROM sessions
        WHERE id_hash = $1 AND expires_at > now()`,
      [hash(value)],
    );
    return rows[0] ? { expiresAt: new Date(rows[0].expires_at).toISOString() } : null;
  }

  /** Ends the session (logout); true when there was one. */
  async delete(value: string | undefined): Promise<boolean> {
    if (!value || !VALUE.test(value)) return false;
    const { rowCount } = await this.db.query('DELETE FROM sessions WHERE id_hash = $1', [
      hash(value),
    ]);
    return (rowCount ?? 0) > 0;
  }

  /** Removes expired rows, at most once a minute per process (logins are rare). */
  private async purgeExpired(): Promise<void> {
    if (Date.now() - this.lastPurge < 60_000) return;
    this.lastPurge = Date.now();
    await this.db.query('DELETE FROM sessions WHERE expires_at <= now()');
  }
}
