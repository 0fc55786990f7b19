-- Dashboard sessions (src/shared/store/sessions.ts): POST /api/session exchanges the api token for
-- a random cookie value; only its sha256 is kept, so a read of this table (a backup, a replica)
-- gives nobody a session. A row past expires_at is refused and removed; logout deletes it.
CREATE TABLE sessions (
  id_hash    text PRIMARY KEY CHECK (id_hash ~ '^[0-9a-f]{64}$'),
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
