-- norn's durable truth, as one baseline (nothing is released yet, so the earlier migrations were
-- folded into this one; a database they made is refused at start, see src/shared/db/migrate.ts).
--
-- Every state transition of a run goes through the norn_* functions below. Each takes its app's
-- row lock first (norn_lock_run): all transitions of one app are serialized (event order = commit
-- order per app), different apps proceed in parallel. Locks are always taken in the order
-- apps → runs → run_steps, so no two transitions can deadlock.
--
-- A run has a scope, the key of its lease: one run per scope at a time, across the fleet
-- (`app:<id>` for deploy and restore, `drift:<app>` for a drift check …). A scope belongs to one
-- app (every run in it has that app_id), so the app's row lock serializes admission to it too.
--
-- Step transitions are decided in Redis (src/queues/live.ts: one Lua call per start and finish,
-- against the run's live state), which numbers them per run (`t`) in the run's live log.
-- PostgreSQL records that log in order, each transition once (runs.recorded_tseq), in batches
-- (norn_record) and always before a transition that ends the run (norn_run_succeed, norn_step_fail):
-- the event log stays complete and gapless, and an event is published only after it is committed.

CREATE TABLE apps (
  id            text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  spec          jsonb NOT NULL,
  source        text NOT NULL,
  source_format text NOT NULL CHECK (source_format IN ('yaml', 'json')),
  event_seq     bigint NOT NULL DEFAULT 0,   -- last events.seq of this app
  -- DELETE /api/apps/:id is a soft delete: the app keeps its row and its history (runs, events,
  -- releases stay readable by id), is hidden from listings, takes no runs, and its name may be
  -- registered again (the row comes back, and its event sequence stays gapless).
  deleted_at    timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

-- A run of a pipeline (deploy, restore, …) for an app. Its id is also the `sagaId` of its events.
-- What a pipeline deploys (ref, commit, image, release) is that pipeline's own data: params hold
-- the request, and the deploy pipeline keeps its releases in `releases`.
CREATE TABLE runs (
  id                  uuid PRIMARY KEY,
  app_id              text NOT NULL REFERENCES apps (id),
  pipeline            text NOT NULL,
  pipeline_version    text NOT NULL,
  event_prefix        text NOT NULL,
  queue_name          text NOT NULL,
  steps               text[] NOT NULL CHECK (cardinality(steps) > 0),
  status              text NOT NULL DEFAULT 'queued'
                      CHECK (status IN ('queued', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled')),
  -- The lease key; the pipeline definition derives it from the request (src/queues/pipeline.ts).
  scope               text NOT NULL CHECK (scope ~ '^(app|stack|review|drift):[A-Za-z0-9][A-Za-z0-9._/#-]{0,199}$'),
  -- What a request does when its scope is busy: wait (queue), cancel what runs and waits (supersede),
  -- refuse (reject), or return the run of the same pipeline already waiting (coalesce).
  policy              text NOT NULL CHECK (policy IN ('queue', 'supersede', 'reject', 'coalesce')),
  params              jsonb NOT NULL DEFAULT '{}',
  resumed_from        uuid REFERENCES runs (id),
  spec                jsonb NOT NULL DEFAULT '{}',  -- the app spec pinned at request time
  finalizer           text,                         -- step that also runs after a failed/cancelled run
  hooks               text[] NOT NULL DEFAULT '{}', -- the life-cycle hooks its pipeline declares
  requested_by        text,
  request_seq         bigserial NOT NULL,
  recorded_tseq       integer NOT NULL DEFAULT 0,   -- the live log is recorded up to this transition
  error               text,
  error_code          text,                         -- the error's code (src/shared/errors.ts), to group failures by
  failed_step         text,
  cancel_reason       text,
  created_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
  started_at          timestamptz,
  cancel_requested_at timestamptz,
  finished_at         timestamptz
);
CREATE INDEX runs_by_app ON runs (app_id, request_seq DESC);
CREATE INDEX runs_queued ON runs (scope, request_seq) WHERE status = 'queued';
CREATE INDEX runs_by_scope ON runs (scope, request_seq DESC);
CREATE INDEX runs_active ON runs (status) WHERE status IN ('running', 'cancelling');

-- A step gets its row when it first does something (its start is recorded, or it is to be reported
-- skipped): a step without a row is pending, or not_run once the run has ended (RunStore.steps).
CREATE TABLE run_steps (
  run_id        uuid NOT NULL REFERENCES runs (id),
  idx           integer NOT NULL,
  name          text NOT NULL,
  status        text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'running', 'complete', 'failed', 'skipped', 'cancelled', 'not_run')),
  skip          boolean NOT NULL DEFAULT false,  -- completed by the run this one resumes
  attempts      integer NOT NULL DEFAULT 0,
  output        jsonb,
  error         text,
  error_code    text,
  worker        text,
  started_at    timestamptz,
  finished_at   timestamptz,
  duration_ms   integer,
  PRIMARY KEY (run_id, idx),
  UNIQUE (run_id, name)
);

-- A life-cycle hook of a run, due once its moment came: onStart when the run is admitted,
-- onSucceed / onFail / onCancel when it ends. The row is written by the transition itself, so a
-- hook is never lost; a worker runs it inside a transaction that also marks it done (its database
-- work commits exactly once), retries it with backoff when it throws, and after its last attempt
-- marks it failed and reports it (`<prefix>.hook_failed`). An end hook waits for onStart.
CREATE TABLE run_hooks (
  run_id      uuid NOT NULL REFERENCES runs (id),
  hook        text NOT NULL CHECK (hook IN ('onStart', 'onSucceed', 'onFail', 'onCancel')),
  status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
  attempts    integer NOT NULL DEFAULT 0,
  error       text,
  due_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at timestamptz,
  PRIMARY KEY (run_id, hook)
);
CREATE INDEX run_hooks_due ON run_hooks (due_at) WHERE status = 'pending';

-- One row per scope while a run holds it. Heartbeats push expires_at; the sweeper looks at expired ones.
CREATE TABLE leases (
  scope         text PRIMARY KEY,
  app_id        text NOT NULL REFERENCES apps (id),
  run_id        uuid NOT NULL UNIQUE REFERENCES runs (id),
  holder        text NOT NULL,
  acquired_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  heartbeat_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  expires_at    timestamptz NOT NULL
);

-- The immutable event log: gapless per app, in commit order. run_id is the run (the `sagaId`).
CREATE TABLE events (
  id      bigserial PRIMARY KEY,
  app_id  text NOT NULL REFERENCES apps (id),
  seq     bigint NOT NULL,
  run_id  uuid NOT NULL,
  type    text NOT NULL,
  ts      timestamptz NOT NULL DEFAULT clock_timestamp(),
  payload jsonb NOT NULL DEFAULT '{}',
  UNIQUE (app_id, seq)
);
CREATE INDEX events_by_run ON events (run_id, id);

CREATE FUNCTION norn_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'events is append-only: % is not allowed', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
  FOR EACH ROW EXECUTE FUNCTION norn_refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
  FOR EACH STATEMENT EXECUTE FUNCTION norn_refuse_change();

-- The api checks first; this makes a run requested while the app is being deleted fail too (both
-- take the app's row lock: norn_request_run before it inserts, the delete before it marks the row).
CREATE FUNCTION norn_refuse_run_of_deleted_app() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM apps WHERE id = NEW.app_id AND deleted_at IS NOT NULL) THEN
    RAISE EXCEPTION 'app % is deleted', NEW.app_id USING ERRCODE = 'NRN01';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER runs_of_live_apps_only BEFORE INSERT ON runs
  FOR EACH ROW EXECUTE FUNCTION norn_refuse_run_of_deleted_app();

CREATE TABLE snapshots (
  id            bigserial PRIMARY KEY,
  app_id        text NOT NULL REFERENCES apps (id),
  database      text NOT NULL,
  ts            text NOT NULL,
  taken_at      timestamptz NOT NULL,
  size_bytes    bigint NOT NULL,
  location      text NOT NULL,
  sha256        text NOT NULL,
  run_id        uuid REFERENCES runs (id),
  removed_at    timestamptz,
  UNIQUE (app_id, ts)
);

-- A release is what a deploy put (or tried to put) on a target: the image, the rendered spec, the
-- secrets file as it was encrypted (never decrypted values), the migrations it applied and the
-- snapshot taken before them. The one 'active' release per app is the last known good one: the
-- release a rollback puts back.
-- What a deploy's compensation needs to put the app back as it was when the run does not finish
-- (cancelled, failed, lease lost), read by the deploy finalizer after the run ended:
-- previous_release_id: the release that served when submit began (what a rollback puts back; the
--   'active' one cannot say, since healthy has activated the new release by the time forge runs);
-- routes_before: the app's ingress rules as forge found them, recorded before forge wrote any
--   (NULL: forge did not write), so a route the run wrote can be reverted exactly.
CREATE TABLE releases (
  id                  bigserial PRIMARY KEY,
  app_id              text NOT NULL REFERENCES apps (id),
  run_id              uuid NOT NULL UNIQUE REFERENCES runs (id),
  target              text NOT NULL DEFAULT 'docker',
  image_ref           text NOT NULL,
  commit_sha          text NOT NULL,
  digest              text,
  spec                jsonb NOT NULL,
  secrets_enc         text,
  secrets_format      text,
  migrations_applied  text[] NOT NULL DEFAULT '{}',
  snapshot_ts         text,
  status              text NOT NULL DEFAULT 'deploying'
                      CHECK (status IN ('deploying', 'active', 'superseded', 'failed', 'rolled_back')),
  error               text,
  previous_release_id bigint REFERENCES releases (id),
  routes_before       jsonb,
  created_at          timestamptz NOT NULL DEFAULT now(),
  activated_at        timestamptz,
  ended_at            timestamptz
);
CREATE UNIQUE INDEX releases_one_active ON releases (app_id) WHERE status = 'active';
CREATE INDEX releases_by_app ON releases (app_id, id DESC);

-- Where an app's forge (its Kubernetes objects and routing, provisioned once) stands. Moved only by
-- the forge and teardown pipelines' life-cycle hooks (src/pipelines/forge/state.ts), inside the
-- hook's transaction: unforged -> forging -> forged | forge_failed; forge_failed -> forging;
-- forged | forge_failed -> tearing_down -> unforged | forge_failed. No row is unforged.
-- prior_state: what it was when the running run started (a cancelled run puts it back);
-- resources: what the last forge made (deployment, service, rule, dns route), what teardown removes.
CREATE TABLE forge_state (
  app_id      text PRIMARY KEY REFERENCES apps (id),
  state       text NOT NULL DEFAULT 'unforged'
              CHECK (state IN ('unforged', 'forging', 'forged', 'forge_failed', 'tearing_down')),
  prior_state text CHECK (prior_state IN ('unforged', 'forging', 'forged', 'forge_failed', 'tearing_down')),
  run_id      uuid REFERENCES runs (id),
  resources   jsonb NOT NULL DEFAULT '{}',
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------------------------------------
-- Run state machine (docs: README "How a run works"). Each function returns jsonb:
-- {action, events: [envelope...], next?: run}. Callers publish `events` (already committed) and
-- start `next` (a run just admitted).

CREATE FUNCTION norn_event_json(e events) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('id', e.id, 'seq', e.seq, 'type', e.type, 'appId', e.app_id,
                            'runId', e.run_id, 'sagaId', e.run_id, 'payload', e.payload,
                            'ts', to_char(e.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
$$;

-- Appends one event of a run to its app's log. Caller holds the app's row lock.
CREATE FUNCTION norn_append_event(p_app text, p_run uuid, p_type text, p_payload jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE v_seq bigint; v_row events;
BEGIN
  UPDATE apps SET event_seq = event_seq + 1 WHERE id = p_app RETURNING event_seq INTO v_seq;
  IF v_seq IS NULL THEN RAISE EXCEPTION 'no app %', p_app; END IF;
  INSERT INTO events (app_id, seq, run_id, type, payload)
  VALUES (p_app, v_seq, p_run, p_type, p_payload) RETURNING * INTO v_row;
  RETURN norn_event_json(v_row);
END $$;

-- The run as the engine needs it (the pinned spec, and the run it resumes, whose completed steps
-- seed the live state). sagaId is the run id: one id per run.
CREATE FUNCTION norn_run_json(d runs) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('id', d.id, 'appId', d.app_id, 'sagaId', d.id, 'scope', d.scope, 'pipeline', d.pipeline,
    'version', d.pipeline_version, 'eventPrefix', d.event_prefix, 'queue', d.queue_name,
    'steps', to_jsonb(d.steps), 'status', d.status, 'params', d.params, 'finalizer', d.finalizer,
    'spec', d.spec, 'resumedFrom', d.resumed_from)
$$;

-- The preamble of every transition on an existing run: takes the app's row lock, then the run's,
-- and returns the run (all NULL when there is no such run).
CREATE FUNCTION norn_lock_run(p_run uuid) RETURNS runs LANGUAGE plpgsql AS $$
DECLARE d runs;
BEGIN
  PERFORM 1 FROM apps WHERE id = (SELECT app_id FROM runs WHERE id = p_run) FOR UPDATE;
  SELECT * INTO d FROM runs WHERE id = p_run FOR UPDATE;
  RETURN d;
END $$;

-- What a transition on a locked run answers instead of acting: 'missing' (no such run), 'finished'
-- (it has ended), 'fenced' (p_leased: the transition needs the run to hold its scope's lease, and
-- it does not). NULL: go on.
CREATE FUNCTION norn_refusal(d runs, p_leased boolean) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  IF d.id IS NULL THEN RETURN jsonb_build_object('action', 'missing'); END IF;
  IF d.status IN ('succeeded', 'failed', 'cancelled') THEN
    RETURN jsonb_build_object('action', 'finished', 'status', d.status);
  END IF;
  IF p_leased AND NOT EXISTS (SELECT 1 FROM leases WHERE scope = d.scope AND run_id = d.id) THEN
    RETURN jsonb_build_object('action', 'fenced');
  END IF;
  RETURN NULL;
END $$;

-- Makes a run's hook due, if its pipeline declares it (once: a second call does nothing).
CREATE FUNCTION norn_hook_due(d runs, p_hook text) RETURNS void LANGUAGE sql AS $$
  INSERT INTO run_hooks (run_id, hook) SELECT d.id, p_hook WHERE p_hook = ANY (d.hooks)
  ON CONFLICT (run_id, hook) DO NOTHING
$$;

-- Admits the oldest queued run of a scope when no run holds it. Caller holds the scope's app row lock.
CREATE FUNCTION norn_admit(p_scope text, p_holder text, p_ttl_ms integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE d runs;
BEGIN
  IF EXISTS (SELECT 1 FROM leases WHERE scope = p_scope) THEN RETURN NULL; END IF;
  SELECT * INTO d FROM runs WHERE scope = p_scope AND status = 'queued' ORDER BY request_seq LIMIT 1;
  IF NOT FOUND THEN RETURN NULL; END IF;
  UPDATE runs SET status = 'running', started_at = clock_timestamp() WHERE id = d.id RETURNING * INTO d;
  INSERT INTO leases (scope, app_id, run_id, holder, expires_at)
  VALUES (p_scope, d.app_id, d.id, p_holder, clock_timestamp() + make_interval(secs => p_ttl_ms / 1000.0));
  PERFORM norn_hook_due(d, 'onStart');
  RETURN norn_run_json(d);
END $$;

-- norn_admit for the sweeper, which holds no lock yet.
CREATE FUNCTION norn_admit_scope(p_scope text, p_holder text, p_ttl_ms integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM apps WHERE id = (SELECT app_id FROM runs WHERE scope = p_scope LIMIT 1) FOR UPDATE;
  RETURN norn_admit(p_scope, p_holder, p_ttl_ms);
END $$;

-- Ends a queued run cancelled (a cancel request, or superseded). Returns its event.
CREATE FUNCTION norn_cancel_queued(d runs, p_reason text) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE runs SET status = 'cancelled', cancel_reason = p_reason, error_code = 'CANCELLED', finished_at = clock_timestamp()
  WHERE id = d.id;
  PERFORM norn_hook_due(d, 'onCancel');
  RETURN norn_append_event(d.app_id, d.id, d.event_prefix || '.failed',
    jsonb_build_object('sagaId', d.id, 'step', NULL, 'error', 'cancelled: ' || p_reason, 'code', 'CANCELLED', 'cancelled', true));
END $$;

-- A step's row, created (pending) when it has none yet. Caller holds the run's locks.
CREATE FUNCTION norn_step_row(d runs, p_step text) RETURNS run_steps
LANGUAGE plpgsql AS $$
DECLARE s run_steps; v_idx integer := array_position(d.steps, p_step) - 1;
BEGIN
  IF v_idx IS NULL THEN RETURN NULL; END IF;
  INSERT INTO run_steps (run_id, idx, name) VALUES (d.id, v_idx, p_step)
  ON CONFLICT (run_id, idx) DO NOTHING;
  SELECT * INTO s FROM run_steps WHERE run_id = d.id AND idx = v_idx;
  RETURN s;
END $$;

-- A run is requested. A resumed run gets rows for the steps its predecessor completed (reported
-- skipped, with their outputs); other step rows come from the live log as steps run. A request for
-- a free app is admitted in the same statement that records it.
CREATE FUNCTION norn_request_run(
  p_id uuid, p_app text, p_scope text, p_pipeline text, p_version text, p_prefix text, p_queue text,
  p_steps text[], p_params jsonb, p_policy text, p_resumed_from uuid, p_skip text[], p_requested_by text,
  p_holder text, p_ttl_ms integer, p_spec jsonb, p_finalizer text, p_hooks text[]
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  d runs; o runs; v_busy runs; v_events jsonb := '[]'; v_cancel jsonb := '[]';
  v_position integer; v_free boolean;
BEGIN
  PERFORM 1 FROM apps WHERE id = p_app FOR UPDATE;
  IF NOT FOUND THEN RETURN jsonb_build_object('action', 'no-app'); END IF;
  -- A scope belongs to one app (its row lock is what serializes the scope).
  IF EXISTS (SELECT 1 FROM runs WHERE scope = p_scope AND app_id <> p_app) THEN
    RAISE EXCEPTION 'scope % belongs to another app', p_scope USING ERRCODE = 'NRN02';
  END IF;

  IF p_policy = 'reject' THEN
    SELECT * INTO v_busy FROM runs WHERE scope = p_scope AND status IN ('running', 'cancelling', 'queued')
    ORDER BY (status = 'queued'), request_seq LIMIT 1;
    IF FOUND THEN
      RETURN jsonb_build_object('action', 'rejected', 'busy', norn_run_json(v_busy));
    END IF;
  ELSIF p_policy = 'coalesce' THEN
    -- A run of this pipeline already waiting will do what this one would: it is the answer.
    SELECT * INTO v_busy FROM runs WHERE scope = p_scope AND status = 'queued' AND pipeline = p_pipeline
    ORDER BY request_seq LIMIT 1;
    IF FOUND THEN
      SELECT count(*) INTO v_position FROM runs
      WHERE scope = p_scope AND status IN ('queued', 'running', 'cancelling') AND request_seq < v_busy.request_seq;
      RETURN jsonb_build_object('action', 'coalesced', 'run', norn_run_json(v_busy), 'position', v_position);
    END IF;
  END IF;

  -- Free: nothing holds the scope and nothing waits for it (supersede never finds it free while a
  -- run is active, so its cancels below still happen).
  v_free := NOT EXISTS (SELECT 1 FROM leases WHERE scope = p_scope)
        AND NOT EXISTS (SELECT 1 FROM runs WHERE scope = p_scope AND status = 'queued');

  INSERT INTO runs (id, app_id, scope, pipeline, pipeline_version, event_prefix, queue_name, steps,
                    policy, params, resumed_from, requested_by, spec, finalizer, hooks, status, started_at)
  VALUES (p_id, p_app, p_scope, p_pipeline, p_version, p_prefix, p_queue, p_steps,
          p_policy, p_params, p_resumed_from, p_requested_by, coalesce(p_spec, '{}'), p_finalizer,
          coalesce(p_hooks, '{}'),
          CASE WHEN v_free THEN 'running' ELSE 'queued' END, CASE WHEN v_free THEN clock_timestamp() END)
  RETURNING * INTO d;

  IF cardinality(coalesce(p_skip, '{}')) > 0 THEN
    INSERT INTO run_steps (run_id, idx, name, skip, output)
    SELECT p_id, s.ord - 1, s.name, true,
           (SELECT output FROM run_steps WHERE run_id = p_resumed_from AND name = s.name)
    FROM unnest(p_steps) WITH ORDINALITY AS s (name, ord)
    WHERE s.name = ANY (p_skip);
  END IF;

  v_events := v_events || norn_append_event(p_app, p_id, p_prefix || '.queued',
    jsonb_strip_nulls(jsonb_build_object('sagaId', p_id, 'app', p_app, 'deploymentId', p_id, 'runId', p_id,
      'scope', p_scope, 'pipeline', p_pipeline, 'resumedFrom', p_resumed_from)));

  IF v_free THEN
    INSERT INTO leases (scope, app_id, run_id, holder, expires_at)
    VALUES (p_scope, p_app, p_id, p_holder, clock_timestamp() + make_interval(secs => p_ttl_ms / 1000.0));
    PERFORM norn_hook_due(d, 'onStart');
    RETURN jsonb_build_object('action', 'queued', 'run', norn_run_json(d), 'position', 0,
      'events', v_events, 'toCancel', '[]'::jsonb, 'next', norn_run_json(d));
  END IF;

  IF p_policy = 'supersede' THEN
    FOR o IN SELECT * FROM runs WHERE scope = p_scope AND status = 'queued' AND id <> p_id ORDER BY request_seq LOOP
      v_events := v_events || norn_cancel_queued(o, 'superseded by ' || p_id);
    END LOOP;
    FOR o IN SELECT * FROM runs WHERE scope = p_scope AND status IN ('running', 'cancelling') LOOP
      UPDATE runs SET status = 'cancelling', cancel_reason = coalesce(cancel_reason, 'superseded by ' || p_id),
             cancel_requested_at = coalesce(cancel_requested_at, clock_timestamp())
      WHERE id = o.id;
      v_cancel := v_cancel || norn_run_json(o);
    END LOOP;
  END IF;

  SELECT count(*) INTO v_position FROM runs
  WHERE scope = p_scope AND status IN ('queued', 'running', 'cancelling') AND request_seq < d.request_seq;

  RETURN jsonb_build_object('action', 'queued', 'run', norn_run_json(d), 'position', v_position,
    'events', v_events, 'toCancel', v_cancel, 'next', norn_admit(p_scope, p_holder, p_ttl_ms));
END $$;

-- Records live logs: p_batch = [{run, log: [entry, ...]}, ...], entries in any order, possibly
-- recorded before in part. Per run, the entries after runs.recorded_tseq are applied in `t` order
-- up to the first missing number (a gap waits for the entries before it; `gaps` names the first
-- missing one). Entries of a run that is no longer running or cancelling are dropped: a worker that
-- lost its run cannot complete a step. Set-based: one statement whatever the batch size.
-- The caller holds the row locks of the apps involved (so event_seq is read after they were taken).
-- Entries: {t, k: "start", step, w (worker), a (attempt), ts} | {t, k: "finish", step, status, d (ms), ts, reason?, o?}
-- (PL/pgSQL rather than SQL so that the statement's plan is cached.)
CREATE FUNCTION norn_apply_log(p_batch jsonb, p_ttl_ms integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE v_result jsonb;
BEGIN
  WITH batch AS (
    SELECT d.id AS run, d.app_id, d.event_prefix, d.steps, d.resumed_from, d.recorded_tseq, d.request_seq,
           d.status AS run_status, x -> 'log' AS log
    FROM jsonb_array_elements(p_batch) AS x JOIN runs d ON d.id = (x ->> 'run')::uuid
  ), entries AS (
    SELECT DISTINCT ON (b.run, e.t) b.*, e.t, e.k, e.step, e.w, e.a, e.ts, e.status, e.d, e.reason, e.o,
           array_position(b.steps, e.step) - 1 AS idx
    FROM batch b CROSS JOIN LATERAL jsonb_to_recordset(b.log)
      AS e (t integer, k text, step text, w text, a integer, ts timestamptz, status text, d integer, reason text, o jsonb)
    WHERE e.t > b.recorded_tseq AND b.run_status IN ('running', 'cancelling')
    ORDER BY b.run, e.t
  ), numbered AS (
    SELECT *, t - recorded_tseq - row_number() OVER (PARTITION BY run ORDER BY t) AS gap FROM entries
  ), ok AS (
    SELECT * FROM numbered WHERE gap = 0
  ), per_step AS (
    -- A step's row after this batch: its last entry decides; the last start brings attempt, worker
    -- and start time.
    SELECT run, idx, min(step) AS step,
           (array_agg(CASE WHEN k = 'start' THEN 'running' ELSE status END ORDER BY t DESC))[1] AS status,
           (array_agg(CASE WHEN k = 'start' THEN NULL ELSE ts END ORDER BY t DESC))[1] AS finished_at,
           (array_agg(CASE WHEN k = 'start' THEN NULL ELSE d END ORDER BY t DESC))[1] AS duration_ms,
           (array_agg(CASE WHEN k = 'start' THEN NULL ELSE o END ORDER BY t DESC))[1] AS output,
           max(a) FILTER (WHERE k = 'start') AS attempts,
           (array_agg(w ORDER BY t DESC) FILTER (WHERE k = 'start'))[1] AS worker,
           (array_agg(ts ORDER BY t DESC) FILTER (WHERE k = 'start'))[1] AS started_at,
           max(ts) AS last_ts
    FROM ok WHERE idx IS NOT NULL GROUP BY run, idx
  ), step_rows AS (
    INSERT INTO run_steps AS s (run_id, idx, name, status, attempts, worker, started_at, finished_at, duration_ms, output)
    SELECT run, idx, step, status, coalesce(attempts, 0), worker, coalesce(started_at, last_ts), finished_at, duration_ms, output
    FROM per_step
    ON CONFLICT (run_id, idx) DO UPDATE SET
      status = EXCLUDED.status,
      attempts = CASE WHEN EXCLUDED.worker IS NULL THEN s.attempts ELSE EXCLUDED.attempts END,
      worker = coalesce(EXCLUDED.worker, s.worker),
      started_at = CASE WHEN EXCLUDED.worker IS NULL THEN coalesce(s.started_at, EXCLUDED.started_at) ELSE EXCLUDED.started_at END,
      finished_at = EXCLUDED.finished_at,
      duration_ms = coalesce(EXCLUDED.duration_ms, s.duration_ms),
      output = CASE WHEN EXCLUDED.status = 'skipped' THEN s.output ELSE EXCLUDED.output END,
      error = NULL
  ), appended AS (
    INSERT INTO events (app_id, seq, run_id, type, payload)
    SELECT ok.app_id, a.event_seq + row_number() OVER (PARTITION BY ok.app_id ORDER BY ok.request_seq, ok.t),
           ok.run, ok.event_prefix || '.step',
           CASE WHEN ok.k = 'start' THEN
             jsonb_build_object('step', ok.step, 'sagaId', ok.run, 'status', 'running', 'index', ok.idx + 1,
                                'total', cardinality(ok.steps), 'attempt', ok.a)
           ELSE
             jsonb_strip_nulls(jsonb_build_object('step', ok.step, 'sagaId', ok.run, 'status', ok.status,
               'index', ok.idx + 1, 'total', cardinality(ok.steps), 'durationMs', ok.d,
               'reason', CASE WHEN ok.status = 'skipped' THEN coalesce(ok.reason, 'completed by run ' || ok.resumed_from) END))
             -- A completed step's output, as recorded (kept out of strip_nulls: its nulls are data).
             || CASE WHEN ok.status = 'complete' AND ok.o IS NOT NULL THEN jsonb_build_object('output', ok.o) ELSE '{}' END
           END
    FROM ok JOIN apps a ON a.id = ok.app_id
    WHERE ok.idx IS NOT NULL
    ORDER BY ok.app_id, ok.request_seq, ok.t
    RETURNING id, norn_event_json(events) AS j
  ), seqs AS (
    UPDATE apps SET event_seq = apps.event_seq + c.n
    FROM (SELECT app_id, count(*) AS n FROM ok WHERE idx IS NOT NULL GROUP BY app_id) c WHERE apps.id = c.app_id
  ), recorded AS (
    UPDATE runs SET recorded_tseq = c.m
    FROM (SELECT run, max(t) AS m FROM ok GROUP BY run) c WHERE runs.id = c.run
  ), leases AS (
    -- A recorded start renews the run's lease and names the worker that holds it.
    UPDATE leases SET holder = c.w, heartbeat_at = clock_timestamp(),
           expires_at = clock_timestamp() + make_interval(secs => p_ttl_ms / 1000.0)
    FROM (SELECT DISTINCT ON (run) run, w FROM ok WHERE k = 'start' ORDER BY run, t DESC) c
    WHERE leases.run_id = c.run
  )
  -- The data-modifying clauses above need no RETURNING: PostgreSQL runs every one of them whether
  -- or not the query reads it. `appended` is read, for the events to publish.
  SELECT jsonb_build_object(
    'events', (SELECT coalesce(jsonb_agg(e.j ORDER BY e.id), '[]') FROM appended e),
    'recorded', (SELECT coalesce(jsonb_object_agg(b.run, greatest(b.recorded_tseq, coalesce(m.m, 0))), '{}')
                 FROM batch b LEFT JOIN (SELECT run, max(t) AS m FROM ok GROUP BY run) m ON m.run = b.run),
    'gaps', (SELECT coalesce(jsonb_object_agg(run, next_t), '{}')
             FROM (SELECT run, min(recorded_tseq) + 1 + count(*) FILTER (WHERE gap = 0) AS next_t
                   FROM numbered GROUP BY run HAVING bool_or(gap > 0)) g))
  INTO v_result;
  RETURN v_result;
END $$;

-- The recorder's entry point: locks the apps of the batch in id order (concurrent recorders cannot
-- deadlock), then applies the logs.
CREATE FUNCTION norn_record(p_batch jsonb, p_ttl_ms integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM apps WHERE id IN (
    SELECT d.app_id FROM runs d WHERE d.id IN (SELECT (x ->> 'run')::uuid FROM jsonb_array_elements(p_batch) AS x)
  ) ORDER BY id FOR UPDATE;
  RETURN norn_apply_log(p_batch, p_ttl_ms);
END $$;

-- The last step finished (its finish is in p_log, the run's whole live log): record the log, end
-- the run succeeded, release its scope and admit the next queued run there.
CREATE FUNCTION norn_run_succeed(p_run uuid, p_log jsonb, p_summary jsonb, p_holder text, p_ttl_ms integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE d runs := norn_lock_run(p_run); v_refusal jsonb := norn_refusal(d, true); v_last text; v_events jsonb;
BEGIN
  IF v_refusal IS NOT NULL THEN RETURN v_refusal; END IF;
  v_events := norn_apply_log(jsonb_build_array(jsonb_build_object('run', p_run, 'log', p_log)), p_ttl_ms) -> 'events';
  SELECT status INTO v_last FROM run_steps WHERE run_id = p_run AND idx = cardinality(d.steps) - 1;
  IF v_last IS NULL OR v_last NOT IN ('complete', 'skipped') THEN
    -- The log did not (yet) hold the last step's finish: nothing to end (what it held is recorded).
    RETURN jsonb_build_object('action', 'incomplete', 'events', v_events);
  END IF;
  UPDATE runs SET status = 'succeeded', finished_at = clock_timestamp() WHERE id = p_run;
  DELETE FROM leases WHERE run_id = p_run;
  PERFORM norn_hook_due(d, 'onSucceed');
  v_events := v_events || norn_append_event(d.app_id, p_run, d.event_prefix || '.completed',
    jsonb_build_object('sagaId', p_run) || coalesce(p_summary, '{}'));
  RETURN jsonb_build_object('action', 'ended', 'status', 'succeeded', 'events', v_events,
                            'next', norn_admit(d.scope, p_holder, p_ttl_ms));
END $$;

-- A step failed, after recording the run's live log (so a failure follows the steps it ends).
-- Not final: recorded, BullMQ retries it. Final (or cancelled): the run ends, later steps are
-- recorded not_run, the scope is released and the next queued run admitted.
-- p_step NULL means "whatever step is running" (cancel finished by the api or the sweeper).
CREATE FUNCTION norn_step_fail(p_run uuid, p_step text, p_error text, p_final boolean, p_cancelled boolean,
                               p_duration_ms integer, p_holder text, p_ttl_ms integer, p_log jsonb,
                               p_error_code text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE d runs := norn_lock_run(p_run); v_refusal jsonb := norn_refusal(d, false); s run_steps;
        v_events jsonb; v_status text;
BEGIN
  IF v_refusal IS NOT NULL THEN RETURN v_refusal; END IF;
  IF d.status = 'queued' THEN
    IF p_cancelled THEN
      RETURN jsonb_build_object('action', 'ended', 'events', jsonb_build_array(norn_cancel_queued(d, p_error)));
    END IF;
    RETURN jsonb_build_object('action', 'fenced');
  END IF;
  -- A cancel ends the run whoever holds the lease; a failure only from the run that holds it.
  IF NOT p_cancelled THEN
    v_refusal := norn_refusal(d, true);
    IF v_refusal IS NOT NULL THEN RETURN v_refusal; END IF;
  END IF;
  v_events := norn_apply_log(jsonb_build_array(jsonb_build_object('run', p_run, 'log', coalesce(p_log, '[]'))), p_ttl_ms) -> 'events';

  IF p_step IS NULL THEN
    SELECT * INTO s FROM run_steps WHERE run_id = p_run AND status IN ('running', 'failed') ORDER BY idx DESC LIMIT 1;
  ELSE
    s := norn_step_row(d, p_step);
  END IF;

  IF NOT p_final THEN
    UPDATE run_steps SET status = 'failed', error = p_error, error_code = p_error_code, duration_ms = p_duration_ms
    WHERE run_id = p_run AND idx = s.idx;
    v_events := v_events || norn_append_event(d.app_id, p_run, d.event_prefix || '.step',
      jsonb_build_object('step', s.name, 'sagaId', p_run, 'status', 'failed', 'index', s.idx + 1,
        'total', cardinality(d.steps), 'durationMs', p_duration_ms, 'error', p_error, 'code', p_error_code,
        'willRetry', true, 'attempt', s.attempts));
    RETURN jsonb_build_object('action', 'retry', 'events', v_events);
  END IF;

  v_status := CASE WHEN p_cancelled THEN 'cancelled' ELSE 'failed' END;
  IF s.idx IS NOT NULL THEN
    UPDATE run_steps SET status = v_status, error = p_error, error_code = p_error_code, finished_at = clock_timestamp(),
           duration_ms = coalesce(p_duration_ms, duration_ms)
    WHERE run_id = p_run AND idx = s.idx;
    v_events := v_events || norn_append_event(d.app_id, p_run, d.event_prefix || '.step',
      jsonb_strip_nulls(jsonb_build_object('step', s.name, 'sagaId', p_run, 'status', v_status,
        'index', s.idx + 1, 'total', cardinality(d.steps), 'durationMs', p_duration_ms, 'error', p_error,
        'code', p_error_code)));
  END IF;
  -- Steps without a row are reported not_run by RunStore.steps once the run has ended.
  UPDATE run_steps SET status = 'not_run'
  WHERE run_id = p_run AND status IN ('pending', 'running', 'failed') AND idx IS DISTINCT FROM s.idx;
  UPDATE runs SET status = v_status, error = p_error, error_code = p_error_code, failed_step = s.name, finished_at = clock_timestamp(),
         cancel_reason = CASE WHEN p_cancelled THEN coalesce(cancel_reason, p_error) END
  WHERE id = p_run;
  DELETE FROM leases WHERE run_id = p_run;
  PERFORM norn_hook_due(d, CASE WHEN p_cancelled THEN 'onCancel' ELSE 'onFail' END);
  v_events := v_events || norn_append_event(d.app_id, p_run, d.event_prefix || '.failed',
    jsonb_build_object('sagaId', p_run, 'step', s.name, 'error', p_error, 'code', p_error_code, 'cancelled', p_cancelled));
  RETURN jsonb_build_object('action', 'ended', 'status', v_status, 'events', v_events,
                            'next', norn_admit(d.scope, p_holder, p_ttl_ms));
END $$;

-- Cancel requested: a queued run ends at once; a running one becomes 'cancelling' until it stops.
CREATE FUNCTION norn_request_cancel(p_run uuid, p_reason text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE d runs := norn_lock_run(p_run); v_refusal jsonb := norn_refusal(d, false);
BEGIN
  IF v_refusal IS NOT NULL THEN RETURN v_refusal; END IF;
  IF d.status = 'queued' THEN
    RETURN jsonb_build_object('action', 'ended', 'status', 'cancelled',
                              'events', jsonb_build_array(norn_cancel_queued(d, p_reason)));
  END IF;
  UPDATE runs SET status = 'cancelling', cancel_reason = coalesce(cancel_reason, p_reason),
         cancel_requested_at = coalesce(cancel_requested_at, clock_timestamp())
  WHERE id = p_run RETURNING * INTO d;
  RETURN jsonb_build_object('action', 'cancelling', 'status', 'cancelling', 'run', norn_run_json(d));
END $$;

-- The finalizer of an ended run reports how it went (the run's status stays what it was); its step
-- may have no row yet.
CREATE FUNCTION norn_finalizer_done(p_run uuid, p_step text, p_status text, p_output jsonb, p_error text,
                                    p_duration_ms integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE d runs := norn_lock_run(p_run); s run_steps;
BEGIN
  IF d.id IS NULL THEN RETURN jsonb_build_object('action', 'missing'); END IF;
  s := norn_step_row(d, p_step);
  IF s.idx IS NULL OR s.status IN ('complete', 'failed') THEN RETURN jsonb_build_object('action', 'done'); END IF;
  UPDATE run_steps SET status = p_status, output = p_output, error = p_error,
         started_at = coalesce(started_at, clock_timestamp()), finished_at = clock_timestamp(), duration_ms = p_duration_ms
  WHERE run_id = p_run AND idx = s.idx;
  RETURN jsonb_build_object('action', 'ok', 'events', jsonb_build_array(norn_append_event(d.app_id, p_run,
    d.event_prefix || '.step', jsonb_strip_nulls(jsonb_build_object('step', p_step, 'sagaId', p_run,
      'status', p_status, 'index', s.idx + 1, 'total', cardinality(d.steps), 'durationMs', p_duration_ms,
      'error', p_error, 'afterRunEnded', true)))));
END $$;

-- A hook threw (or timed out, or this worker lacks its pipeline version). Not final: it is due
-- again after p_retry_ms. Final: marked failed and reported with `<prefix>.hook_failed`.
-- The hook's own transaction was rolled back: nothing it wrote in the database is kept.
CREATE FUNCTION norn_hook_failed(p_run uuid, p_hook text, p_error text, p_final boolean, p_retry_ms integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE d runs := norn_lock_run(p_run); h run_hooks;
BEGIN
  IF d.id IS NULL THEN RETURN jsonb_build_object('action', 'missing'); END IF;
  UPDATE run_hooks SET attempts = attempts + 1, error = p_error,
         status = CASE WHEN p_final THEN 'failed' ELSE 'pending' END,
         due_at = clock_timestamp() + make_interval(secs => p_retry_ms / 1000.0),
         finished_at = CASE WHEN p_final THEN clock_timestamp() END
  WHERE run_id = p_run AND hook = p_hook AND status = 'pending' RETURNING * INTO h;
  IF NOT FOUND THEN RETURN jsonb_build_object('action', 'done'); END IF;
  IF NOT p_final THEN RETURN jsonb_build_object('action', 'retry', 'attempts', h.attempts); END IF;
  RETURN jsonb_build_object('action', 'failed', 'attempts', h.attempts, 'events', jsonb_build_array(
    norn_append_event(d.app_id, p_run, d.event_prefix || '.hook_failed',
      jsonb_build_object('sagaId', p_run, 'hook', p_hook, 'error', p_error, 'attempts', h.attempts))));
END $$;
