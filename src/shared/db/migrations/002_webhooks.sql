-- Signed webhooks from git forges (src/api/routes/webhooks.ts, src/gitops/).
--
-- An app's webhook secret is write-only: it arrives in the infraspec (repo.webhookSecret), is kept
-- here and nowhere else (the stored spec and source are stripped of it), and is only ever read to
-- verify a delivery's signature. NULL: the app has none (NORN_WEBHOOK_SECRET is the fallback).
ALTER TABLE apps ADD COLUMN webhook_secret text;

-- Every verified delivery, kept for inspection and replay. A forge retries a delivery with the same
-- id, so (provider, delivery_id) is unique: a repeat is answered "duplicate" and starts nothing.
-- routed: what the delivery started per subscriber (run ids) or why nothing; outcome sums it up.
CREATE TABLE webhook_deliveries (
  id           uuid PRIMARY KEY,
  provider     text NOT NULL CHECK (provider IN ('github', 'gitlab', 'gitea')),
  event        text NOT NULL,
  delivery_id  text NOT NULL,
  received_at  timestamptz NOT NULL DEFAULT now(),
  repository   text,                       -- the normalized URL of the repository (host/owner/repo)
  outcome      text NOT NULL DEFAULT 'received'
               CHECK (outcome IN ('received', 'started', 'ignored', 'failed')),
  reason       text,
  routed       jsonb NOT NULL DEFAULT '[]',
  payload      jsonb NOT NULL,
  UNIQUE (provider, delivery_id)
);
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at DESC, id);

-- Refused deliveries are only counted (their bodies are not to be trusted, nor kept).
CREATE TABLE webhook_refusals (
  provider  text NOT NULL,
  reason    text NOT NULL,
  count     bigint NOT NULL DEFAULT 0,
  last_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (provider, reason)
);
