-- Stacks (issue 11, GitOps): infrastructure directories of git repositories that norn plans on
-- pull requests, applies on merge and checks for drift. Numbered 003 while 002_webhooks.sql is
-- written in parallel: migrate.ts applies whatever is pending in order and needs no contiguous
-- numbers, so either may land first.
--
-- A stack's runs are keyed by their scope, `stack:<id>` (runs.scope already allows it; the
-- runs_by_scope index serves GET /api/stacks/:id/runs), not by runs.app_id.

CREATE TABLE stacks (
  id             text PRIMARY KEY CHECK (id ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
  -- The parsed stack spec, defaults applied, without its webhook secret.
  spec           jsonb NOT NULL,
  -- Write-only: checked against webhook signatures, never answered by the api.
  webhook_secret text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);

-- What a plan run saved: the plan file (applied later exactly as reviewed), its digest, what it
-- changes (summary) and `tofu show -json` of it (the full plan a pull request comment links to).
CREATE TABLE plan_artifacts (
  id           bigserial PRIMARY KEY,
  stack_id     text NOT NULL REFERENCES stacks (id) ON DELETE CASCADE,
  run_id       text,
  -- review: planned for a pull request; release: planned on the branch, to be applied; drift: a
  -- scheduled check.
  kind         text NOT NULL CHECK (kind IN ('review', 'release', 'drift')),
  base_sha     text,
  head_sha     text,
  plan_file    bytea,
  sha256       text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  summary      jsonb NOT NULL DEFAULT '{}',
  show_json    jsonb,
  pull_request integer,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX plan_artifacts_by_stack ON plan_artifacts (stack_id, id DESC);
CREATE INDEX plan_artifacts_by_pull ON plan_artifacts (stack_id, pull_request, id DESC)
  WHERE pull_request IS NOT NULL;

-- The last drift check of a stack or an app, one row per subject; reported_at is when the last
-- report went out (a report is sent again only when the fingerprint changes).
CREATE TABLE drift_state (
  subject     text PRIMARY KEY CHECK (subject ~ '^(stack|app):[a-z0-9][a-z0-9-]{0,62}$'),
  status      text NOT NULL CHECK (status IN ('clean', 'drifted', 'error', 'unknown')),
  fingerprint text,
  summary     jsonb NOT NULL DEFAULT '{}',
  checked_at  timestamptz NOT NULL DEFAULT now(),
  reported_at timestamptz,
  last_error  text
);
