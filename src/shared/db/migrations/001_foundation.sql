-- norn's durable truth. Every state transition of a run goes through the norn_* functions below,
-- which take the app's row lock first: all transitions of one app are serialized (one run per app
-- at a time, event order = commit order per app), different apps proceed in parallel.

CREATE TABLE apps (
  id            text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  spec          jsonb NOT NULL,
  source        text NOT NULL,
  source_format text NOT NULL CHECK (source_format IN ('yaml', 'json')),
  event_seq     bigint NOT NULL DEFAULT 0,   -- last saga_events.seq of this app
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE deployments (
  id                  uuid PRIMARY KEY,
  app_id              text NOT NULL REFERENCES apps (id),
  saga_id             uuid NOT NULL UNIQUE,
  pipeline            text NOT NULL,
  pipeline_version    text NOT NULL,
  event_prefix        text NOT NULL,
  queue_name          text NOT NULL,
  steps               text[] NOT NULL CHECK (cardinality(steps) > 0),
  status              text NOT NULL DEFAULT 'queued'
                      CHECK (status IN ('queued', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled')),
  policy              text NOT NULL CHECK (policy IN ('queue', 'supersede', 'reject')),
  params              jsonb NOT NULL DEFAULT '{}',
  resumed_from        uuid REFERENCES deployments (id),
  spec                jsonb NOT NULL DEFAULT '{}',  -- the app spec pinned at request time
  finalizer           text,                         -- step that also runs after a failed/cancelled run
  requested_by        text,
  request_seq         bigserial NOT NULL,
  error               text,
  failed_step         text,
  cancel_reason       text,
  created_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
  started_at          timestamptz,
  cancel_requested_at timestamptz,
  finished_at         timestamptz
);
CREATE INDEX deployments_by_app ON deployments (app_id, request_seq DESC);
CREATE INDEX deployments_queued ON deployments (app_id, request_seq) WHERE status = 'queued';
CREATE INDEX deployments_active ON deployments (status) WHERE status IN ('running', 'cancelling');

CREATE TABLE deployment_steps (
  deployment_id uuid NOT NULL REFERENCES deployments (id),
  idx           integer NOT NULL,
  name          text NOT NULL,
  status        text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'running', 'complete', 'failed', 'skipped', 'cancelled', 'not_run')),
  skip          boolean NOT NULL DEFAULT false,  -- completed by the run this one resumes
  attempts      integer NOT NULL DEFAULT 0,
  output        jsonb,
  error         text,
  worker        text,
  started_at    timestamptz,
  finished_at   timestamptz,
  duration_ms   integer,
  PRIMARY KEY (deployment_id, idx),
  UNIQUE (deployment_id, name)
);

-- One row per app while a run holds it. Heartbeats push expires_at; the sweeper looks at expired ones.
CREATE TABLE app_leases (
  app_id        text PRIMARY KEY REFERENCES apps (id),
  deployment_id uuid NOT NULL UNIQUE REFERENCES deployments (id),
  holder        text NOT NULL,
  acquired_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  heartbeat_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  expires_at    timestamptz NOT NULL
);

CREATE TABLE saga_events (
  id      bigserial PRIMARY KEY,
  app_id  text NOT NULL REFERENCES apps (id),
  seq     bigint NOT NULL,          -- gapless per app, in commit order
  saga_id uuid NOT NULL,
  type    text NOT NULL,
  ts      timestamptz NOT NULL DEFAULT clock_timestamp(),
  payload jsonb NOT NULL DEFAULT '{}',
  UNIQUE (app_id, seq)
);
CREATE INDEX saga_events_by_saga ON saga_events (saga_id, id);

CREATE FUNCTION norn_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'saga_events is append-only: % is not allowed', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER saga_events_append_only BEFORE UPDATE OR DELETE ON saga_events
  FOR EACH ROW EXECUTE FUNCTION norn_refuse_change();
CREATE TRIGGER saga_events_no_truncate BEFORE TRUNCATE ON saga_events
  FOR EACH STATEMENT EXECUTE FUNCTION norn_refuse_change();

CREATE TABLE forge_state (
  app_id        text PRIMARY KEY REFERENCES apps (id),
  state         text NOT NULL DEFAULT 'unforged'
                CHECK (state IN ('unforged', 'forging', 'forged', 'forge_failed', 'tearing_down')),
  deployment_id uuid REFERENCES deployments (id),
  resources     jsonb NOT NULL DEFAULT '{}',
  updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE snapshots (
  id            bigserial PRIMARY KEY,
  app_id        text NOT NULL REFERENCES apps (id),
  database      text NOT NULL,
  ts            text NOT NULL,
  taken_at      timestamptz NOT NULL,
  size_bytes    bigint NOT NULL,
  location      text NOT NULL,
  sha256        text NOT NULL,
  deployment_id uuid REFERENCES deployments (id),
  removed_at    timestamptz,
  UNIQUE (app_id, ts)
);

-- ---------------------------------------------------------------------------------------------
-- Run state machine. Each function returns jsonb: {action, events: [envelope...], next?: run}.
-- Callers publish `events` (already committed) and start `next` (a run just admitted).

CREATE FUNCTION norn_append_event(p_app text, p_saga uuid, p_type text, p_payload jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE v_seq bigint; v_row saga_events;
BEGIN
  UPDATE apps SET event_seq = event_seq + 1 WHERE id = p_app RETURNING event_seq INTO v_seq;
  IF v_seq IS NULL THEN RAISE EXCEPTION 'no app %', p_app; END IF;
  INSERT INTO saga_events (app_id, seq, saga_id, type, payload)
  VALUES (p_app, v_seq, p_saga, p_type, p_payload) RETURNING * INTO v_row;
  RETURN norn_event_json(v_row);
END $$;

CREATE FUNCTION norn_event_json(e saga_events) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object('id', e.id, 'seq', e.seq, 'type', e.type, 'appId', e.app_id,
                            'sagaId', e.saga_id, 'payload', e.payload,
                            'ts', to_char(e.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
$$;

CREATE FUNCTION norn_run_json(d deployments) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object('id', d.id, 'appId', d.app_id, 'sagaId', d.saga_id, 'pipeline', d.pipeline,
    'version', d.pipeline_version, 'eventPrefix', d.event_prefix, 'queue', d.queue_name,
    'steps', to_jsonb(d.steps), 'status', d.status, 'params', d.params, 'finalizer', d.finalizer)
$$;

-- Admits the oldest queued run of an app when no run holds the app. Caller holds the app row lock.
CREATE FUNCTION norn_admit(p_app text, p_holder text, p_ttl_ms integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE d deployments;
BEGIN
  IF EXISTS (SELECT 1 FROM app_leases WHERE app_id = p_app) THEN RETURN NULL; END IF;
  SELECT * INTO d FROM deployments WHERE app_id = p_app AND status = 'queued' ORDER BY request_seq LIMIT 1;
  IF NOT FOUND THEN RETURN NULL; END IF;
  UPDATE deployments SET status = 'running', started_at = clock_timestamp() WHERE id = d.id RETURNING * INTO d;
  INSERT INTO app_leases (app_id, deployment_id, holder, expires_at)
  VALUES (p_app, d.id, p_holder, clock_timestamp() + make_interval(secs => p_ttl_ms / 1000.0));
  RETURN norn_run_json(d);
END $$;

CREATE FUNCTION norn_admit_app(p_app text, p_holder text, p_ttl_ms integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM apps WHERE id = p_app FOR UPDATE;
  RETURN norn_admit(p_app, p_holder, p_ttl_ms);
END $$;

-- Marks every other queued run of the app cancelled (supersede). Returns their events.
CREATE FUNCTION norn_cancel_queued(d deployments, p_reason text) RETURNS jsonb
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE deployments SET status = 'cancelled', cancel_reason = p_reason, finished_at = clock_timestamp()
  WHERE id = d.id;
  UPDATE deployment_steps SET status = 'not_run' WHERE deployment_id = d.id AND status = 'pending';
  RETURN norn_append_event(d.app_id, d.saga_id, d.event_prefix || '.failed',
    jsonb_build_object('sagaId', d.saga_id, 'step', NULL, 'error', 'cancelled: ' || p_reason, 'cancelled', true));
END $$;

CREATE FUNCTION norn_request_run(
  p_id uuid, p_saga uuid, p_app text, p_pipeline text, p_version text, p_prefix text, p_queue text,
  p_steps text[], p_params jsonb, p_policy text, p_resumed_from uuid, p_skip text[], p_requested_by text,
  p_holder text, p_ttl_ms integer, p_spec jsonb, p_finalizer text
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  d deployments; o deployments; v_busy deployments; v_events jsonb := '[]'; v_cancel jsonb := '[]';
  v_position integer;
BEGIN
  PERFORM 1 FROM apps WHERE id = p_app FOR UPDATE;
  IF NOT FOUND THEN RETURN jsonb_build_object('action', 'no-app'); END IF;

  IF p_policy = 'reject' THEN
    SELECT * INTO v_busy FROM deployments WHERE app_id = p_app AND status IN ('running', 'cancelling', 'queued')
    ORDER BY (status = 'queued'), request_seq LIMIT 1;
    IF FOUND THEN
      RETURN jsonb_build_object('action', 'rejected', 'busy', norn_run_json(v_busy));
    END IF;
  END IF;

  INSERT INTO deployments (id, app_id, saga_id, pipeline, pipeline_version, event_prefix, queue_name, steps,
                           policy, params, resumed_from, requested_by, spec, finalizer)
  VALUES (p_id, p_app, p_saga, p_pipeline, p_version, p_prefix, p_queue, p_steps,
          p_policy, p_params, p_resumed_from, p_requested_by, coalesce(p_spec, '{}'), p_finalizer)
  RETURNING * INTO d;

  INSERT INTO deployment_steps (deployment_id, idx, name, skip, output)
  SELECT p_id, s.ord - 1, s.name, s.name = ANY (coalesce(p_skip, '{}')),
         CASE WHEN s.name = ANY (coalesce(p_skip, '{}'))
              THEN (SELECT output FROM deployment_steps WHERE deployment_id = p_resumed_from AND name = s.name) END
  FROM unnest(p_steps) WITH ORDINALITY AS s (name, ord);

  v_events := v_events || norn_append_event(p_app, p_saga, p_prefix || '.queued',
    jsonb_strip_nulls(jsonb_build_object('sagaId', p_saga, 'app', p_app, 'deploymentId', p_id,
      'pipeline', p_pipeline, 'resumedFrom', p_resumed_from)));

  IF p_policy = 'supersede' THEN
    FOR o IN SELECT * FROM deployments WHERE app_id = p_app AND status = 'queued' AND id <> p_id ORDER BY request_seq LOOP
      v_events := v_events || norn_cancel_queued(o, 'superseded by ' || p_id);
    END LOOP;
    FOR o IN SELECT * FROM deployments WHERE app_id = p_app AND status IN ('running', 'cancelling') LOOP
      UPDATE deployments SET status = 'cancelling', cancel_reason = coalesce(cancel_reason, 'superseded by ' || p_id),
             cancel_requested_at = coalesce(cancel_requested_at, clock_timestamp())
      WHERE id = o.id;
      v_cancel := v_cancel || norn_run_json(o);
    END LOOP;
  END IF;

  SELECT count(*) INTO v_position FROM deployments
  WHERE app_id = p_app AND status IN ('queued', 'running', 'cancelling') AND request_seq < d.request_seq;

  RETURN jsonb_build_object('action', 'queued', 'run', norn_run_json(d), 'position', v_position,
    'events', v_events, 'toCancel', v_cancel, 'next', norn_admit(p_app, p_holder, p_ttl_ms));
END $$;

-- A worker picked up a step job. Decides whether it may run, and records it as running.
CREATE FUNCTION norn_step_start(p_run uuid, p_step text, p_worker text, p_ttl_ms integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE v_app text; d deployments; s deployment_steps; v_ev jsonb;
BEGIN
  -- A start needs no fsync of its own: if a crash loses it, every later transition of the run
  -- (committed after it in the WAL) is lost with it, and BullMQ re-delivers the step.
  PERFORM set_config('synchronous_commit', 'off', true);
  SELECT app_id INTO v_app FROM deployments WHERE id = p_run;
  IF v_app IS NULL THEN RETURN jsonb_build_object('action', 'missing'); END IF;
  PERFORM 1 FROM apps WHERE id = v_app FOR UPDATE;
  SELECT * INTO d FROM deployments WHERE id = p_run FOR UPDATE;
  IF d.status IN ('succeeded', 'failed', 'cancelled') THEN
    RETURN jsonb_build_object('action', 'finished', 'status', d.status);
  END IF;
  IF d.status = 'cancelling' THEN RETURN jsonb_build_object('action', 'cancel'); END IF;
  IF NOT EXISTS (SELECT 1 FROM app_leases WHERE app_id = v_app AND deployment_id = p_run) THEN
    RETURN jsonb_build_object('action', 'fenced');
  END IF;
  SELECT * INTO s FROM deployment_steps WHERE deployment_id = p_run AND name = p_step FOR UPDATE;
  IF NOT FOUND THEN RETURN jsonb_build_object('action', 'missing'); END IF;
  IF s.status IN ('complete', 'skipped') THEN RETURN jsonb_build_object('action', 'done', 'status', s.status); END IF;

  UPDATE app_leases SET holder = p_worker, heartbeat_at = clock_timestamp(),
         expires_at = clock_timestamp() + make_interval(secs => p_ttl_ms / 1000.0)
  WHERE app_id = v_app;
  IF s.skip THEN
    RETURN jsonb_build_object('action', 'skip', 'params', d.params, 'sagaId', d.saga_id, 'spec', d.spec);
  END IF;

  UPDATE deployment_steps SET status = 'running', attempts = attempts + 1, worker = p_worker,
         started_at = clock_timestamp(), error = NULL
  WHERE deployment_id = p_run AND idx = s.idx RETURNING * INTO s;
  v_ev := norn_append_event(v_app, d.saga_id, d.event_prefix || '.step',
    jsonb_build_object('step', p_step, 'sagaId', d.saga_id, 'status', 'running', 'index', s.idx + 1,
                       'total', cardinality(d.steps), 'attempt', s.attempts));
  RETURN jsonb_build_object('action', 'run', 'attempt', s.attempts, 'params', d.params, 'sagaId', d.saga_id,
                            'spec', d.spec, 'events', jsonb_build_array(v_ev));
END $$;

-- A step finished its work (status complete) or was skipped. The last step ends the run.
CREATE FUNCTION norn_step_finish(p_run uuid, p_step text, p_status text, p_output jsonb, p_duration_ms integer,
                                 p_summary jsonb, p_holder text, p_ttl_ms integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE v_app text; d deployments; s deployment_steps; v_events jsonb := '[]'; v_next jsonb;
BEGIN
  SELECT app_id INTO v_app FROM deployments WHERE id = p_run;
  IF v_app IS NULL THEN RETURN jsonb_build_object('action', 'missing'); END IF;
  PERFORM 1 FROM apps WHERE id = v_app FOR UPDATE;
  SELECT * INTO d FROM deployments WHERE id = p_run FOR UPDATE;
  IF d.status IN ('succeeded', 'failed', 'cancelled') THEN
    RETURN jsonb_build_object('action', 'finished', 'status', d.status);
  END IF;
  IF NOT EXISTS (SELECT 1 FROM app_leases WHERE app_id = v_app AND deployment_id = p_run) THEN
    RETURN jsonb_build_object('action', 'fenced');
  END IF;
  UPDATE deployment_steps
  SET status = p_status, output = CASE WHEN p_status = 'skipped' THEN output ELSE p_output END,
      finished_at = clock_timestamp(), started_at = coalesce(started_at, clock_timestamp()),
      duration_ms = p_duration_ms
  WHERE deployment_id = p_run AND name = p_step RETURNING * INTO s;
  IF NOT FOUND THEN RETURN jsonb_build_object('action', 'missing'); END IF;
  v_events := v_events || norn_append_event(v_app, d.saga_id, d.event_prefix || '.step',
    jsonb_strip_nulls(jsonb_build_object('step', p_step, 'sagaId', d.saga_id, 'status', p_status,
      'index', s.idx + 1, 'total', cardinality(d.steps), 'durationMs', p_duration_ms,
      'reason', CASE WHEN p_status = 'skipped'
                     THEN coalesce(p_output ->> 'skipped', 'completed by run ' || d.resumed_from) END)));

  IF s.idx + 1 = cardinality(d.steps) THEN
    UPDATE deployments SET status = 'succeeded', finished_at = clock_timestamp() WHERE id = p_run;
    DELETE FROM app_leases WHERE app_id = v_app AND deployment_id = p_run;
    v_events := v_events || norn_append_event(v_app, d.saga_id, d.event_prefix || '.completed',
      jsonb_build_object('sagaId', d.saga_id) || coalesce(p_summary, '{}'));
    v_next := norn_admit(v_app, p_holder, p_ttl_ms);
  END IF;
  RETURN jsonb_build_object('action', 'ok', 'events', v_events, 'next', v_next);
END $$;

-- A step failed. Not final: recorded, BullMQ retries it. Final (or cancelled): the run ends, later
-- steps are recorded not_run, the app is released and the next queued run admitted.
-- p_step NULL means "whatever step is running" (cancel finished by the api or the sweeper).
CREATE FUNCTION norn_step_fail(p_run uuid, p_step text, p_error text, p_final boolean, p_cancelled boolean,
                               p_duration_ms integer, p_holder text, p_ttl_ms integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE v_app text; d deployments; s deployment_steps; v_events jsonb := '[]'; v_status text; v_next jsonb;
BEGIN
  SELECT app_id INTO v_app FROM deployments WHERE id = p_run;
  IF v_app IS NULL THEN RETURN jsonb_build_object('action', 'missing'); END IF;
  PERFORM 1 FROM apps WHERE id = v_app FOR UPDATE;
  SELECT * INTO d FROM deployments WHERE id = p_run FOR UPDATE;
  IF d.status IN ('succeeded', 'failed', 'cancelled') THEN
    RETURN jsonb_build_object('action', 'finished', 'status', d.status);
  END IF;
  IF d.status = 'queued' THEN
    IF p_cancelled THEN
      RETURN jsonb_build_object('action', 'ended', 'events', jsonb_build_array(norn_cancel_queued(d, p_error)));
    END IF;
    RETURN jsonb_build_object('action', 'fenced');
  END IF;
  IF NOT p_cancelled AND NOT EXISTS (SELECT 1 FROM app_leases WHERE app_id = v_app AND deployment_id = p_run) THEN
    RETURN jsonb_build_object('action', 'fenced');
  END IF;

  IF p_step IS NULL THEN
    SELECT * INTO s FROM deployment_steps WHERE deployment_id = p_run AND status IN ('running', 'failed') ORDER BY idx DESC LIMIT 1;
  ELSE
    SELECT * INTO s FROM deployment_steps WHERE deployment_id = p_run AND name = p_step;
  END IF;

  IF NOT p_final THEN
    UPDATE deployment_steps SET status = 'failed', error = p_error, duration_ms = p_duration_ms
    WHERE deployment_id = p_run AND idx = s.idx;
    v_events := v_events || norn_append_event(v_app, d.saga_id, d.event_prefix || '.step',
      jsonb_build_object('step', s.name, 'sagaId', d.saga_id, 'status', 'failed', 'index', s.idx + 1,
        'total', cardinality(d.steps), 'durationMs', p_duration_ms, 'error', p_error, 'willRetry', true,
        'attempt', s.attempts));
    RETURN jsonb_build_object('action', 'retry', 'events', v_events);
  END IF;

  v_status := CASE WHEN p_cancelled THEN 'cancelled' ELSE 'failed' END;
  IF s.idx IS NOT NULL THEN
    UPDATE deployment_steps SET status = v_status, error = p_error, finished_at = clock_timestamp(),
           duration_ms = coalesce(p_duration_ms, duration_ms)
    WHERE deployment_id = p_run AND idx = s.idx;
    v_events := v_events || norn_append_event(v_app, d.saga_id, d.event_prefix || '.step',
      jsonb_strip_nulls(jsonb_build_object('step', s.name, 'sagaId', d.saga_id, 'status', v_status,
        'index', s.idx + 1, 'total', cardinality(d.steps), 'durationMs', p_duration_ms, 'error', p_error)));
  END IF;
  UPDATE deployment_steps SET status = 'not_run'
  WHERE deployment_id = p_run AND status IN ('pending', 'running', 'failed') AND idx IS DISTINCT FROM s.idx;
  UPDATE deployments SET status = v_status, error = p_error, failed_step = s.name, finished_at = clock_timestamp(),
         cancel_reason = CASE WHEN p_cancelled THEN coalesce(cancel_reason, p_error) END
  WHERE id = p_run;
  DELETE FROM app_leases WHERE app_id = v_app AND deployment_id = p_run;
  v_events := v_events || norn_append_event(v_app, d.saga_id, d.event_prefix || '.failed',
    jsonb_build_object('sagaId', d.saga_id, 'step', s.name, 'error', p_error, 'cancelled', p_cancelled));
  v_next := norn_admit(v_app, p_holder, p_ttl_ms);
  RETURN jsonb_build_object('action', 'ended', 'status', v_status, 'events', v_events, 'next', v_next);
END $$;

-- Cancel requested: a queued run ends at once; a running one becomes 'cancelling' until it stops.
CREATE FUNCTION norn_request_cancel(p_run uuid, p_reason text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE v_app text; d deployments;
BEGIN
  SELECT app_id INTO v_app FROM deployments WHERE id = p_run;
  IF v_app IS NULL THEN RETURN jsonb_build_object('action', 'missing'); END IF;
  PERFORM 1 FROM apps WHERE id = v_app FOR UPDATE;
  SELECT * INTO d FROM deployments WHERE id = p_run FOR UPDATE;
  IF d.status IN ('succeeded', 'failed', 'cancelled') THEN
    RETURN jsonb_build_object('action', 'finished', 'status', d.status);
  END IF;
  IF d.status = 'queued' THEN
    RETURN jsonb_build_object('action', 'ended', 'status', 'cancelled',
                              'events', jsonb_build_array(norn_cancel_queued(d, p_reason)));
  END IF;
  UPDATE deployments SET status = 'cancelling', cancel_reason = coalesce(cancel_reason, p_reason),
         cancel_requested_at = coalesce(cancel_requested_at, clock_timestamp())
  WHERE id = p_run RETURNING * INTO d;
  RETURN jsonb_build_object('action', 'cancelling', 'status', 'cancelling', 'run', norn_run_json(d));
END $$;

-- The finalizer of an ended run reports how it went (the run's status stays what it was).
CREATE FUNCTION norn_finalizer_done(p_run uuid, p_step text, p_status text, p_output jsonb, p_error text,
                                    p_duration_ms integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE v_app text; d deployments; s deployment_steps;
BEGIN
  SELECT app_id INTO v_app FROM deployments WHERE id = p_run;
  IF v_app IS NULL THEN RETURN jsonb_build_object('action', 'missing'); END IF;
  PERFORM 1 FROM apps WHERE id = v_app FOR UPDATE;
  SELECT * INTO d FROM deployments WHERE id = p_run;
  SELECT * INTO s FROM deployment_steps WHERE deployment_id = p_run AND name = p_step FOR UPDATE;
  IF NOT FOUND OR s.status IN ('complete', 'failed') THEN RETURN jsonb_build_object('action', 'done'); END IF;
  UPDATE deployment_steps SET status = p_status, output = p_output, error = p_error,
         started_at = coalesce(started_at, clock_timestamp()), finished_at = clock_timestamp(), duration_ms = p_duration_ms
  WHERE deployment_id = p_run AND idx = s.idx;
  RETURN jsonb_build_object('action', 'ok', 'events', jsonb_build_array(norn_append_event(v_app, d.saga_id,
    d.event_prefix || '.step', jsonb_strip_nulls(jsonb_build_object('step', p_step, 'sagaId', d.saga_id,
      'status', p_status, 'index', s.idx + 1, 'total', cardinality(d.steps), 'durationMs', p_duration_ms,
      'error', p_error, 'afterRunEnded', true)))));
END $$;
