-- GitOps runs (issue 11): a stack's review, release and drift-check runs are runs like an app's.
-- A run belongs to a subject row in `apps` (runs.app_id, the per-subject event sequence and the
-- row lock every transition takes), so a stack registers one there too, of kind 'stack'. Apps and
-- stacks share one namespace of names: a stack cannot be named like an app, nor the other way round
-- (StackStore.upsert and AppStore.upsert refuse it). Every listing of apps reads kind = 'app'.
ALTER TABLE apps ADD COLUMN kind text NOT NULL DEFAULT 'app' CHECK (kind IN ('app', 'stack'));

-- Apply of a saved plan never runs twice: the release's apply step marks the plan before it starts
-- tofu (apply_started_at, apply_run_id) and when tofu ended (applied_at on success, apply_error
-- otherwise). A plan marked started and never ended was interrupted (a worker killed mid-apply):
-- its state must be checked by an operator, never applied blindly again.
ALTER TABLE plan_artifacts
  ADD COLUMN apply_run_id     text,
  ADD COLUMN apply_started_at timestamptz,
  ADD COLUMN applied_at       timestamptz,
  ADD COLUMN apply_error      text;

-- A drift check that errs leaves the finding as it was (an error is neither drift nor clean) and
-- notes the error and its time here.
ALTER TABLE drift_state ADD COLUMN error_at timestamptz;
