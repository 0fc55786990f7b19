-- A release is what a deploy put (or tried to put) on a target: the image, the rendered spec, the
-- secrets file as it was encrypted (never decrypted values), the migrations it applied and the
-- snapshot taken before them. The one 'active' release per app is the last known good one: the
-- release a rollback puts back.
CREATE TABLE releases (
  id                 bigserial PRIMARY KEY,
  app_id             text NOT NULL REFERENCES apps (id),
  deployment_id      uuid NOT NULL UNIQUE REFERENCES deployments (id),
  target             text NOT NULL DEFAULT 'docker',
  image_ref          text NOT NULL,
  commit_sha         text NOT NULL,
  digest             text,
  spec               jsonb NOT NULL,
  secrets_enc        text,
  secrets_format     text,
  migrations_applied text[] NOT NULL DEFAULT '{}',
  snapshot_ts        text,
  status             text NOT NULL DEFAULT 'deploying'
                     CHECK (status IN ('deploying', 'active', 'superseded', 'failed', 'rolled_back')),
  error              text,
  created_at         timestamptz NOT NULL DEFAULT now(),
  activated_at       timestamptz,
  ended_at           timestamptz
);
CREATE UNIQUE INDEX releases_one_active ON releases (app_id) WHERE status = 'active';
CREATE INDEX releases_by_app ON releases (app_id, id DESC);
