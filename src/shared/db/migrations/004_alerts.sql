-- Alert webhook deliveries (src/shared/alerts.ts): one row per alert per endpoint, written when
-- its delivery ends (delivered, or given up after its attempts), newest read first by
-- GET /api/alerts. The endpoint is kept as its host only: a webhook URL's path often is its
-- secret (Slack's /services/T…/B…/…), and the HMAC secret is never stored.
CREATE TABLE alert_deliveries (
  id          bigserial PRIMARY KEY,
  kind        text NOT NULL,
  subject     text NOT NULL,
  url_host    text NOT NULL,
  status      text NOT NULL CHECK (status IN ('ok', 'failed')),
  attempts    integer NOT NULL CHECK (attempts >= 0),
  http_status integer,
  error       text,
  payload     jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX alert_deliveries_recent ON alert_deliveries (created_at DESC, id DESC);
