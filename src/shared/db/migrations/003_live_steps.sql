-- Step transitions leave PostgreSQL's critical path. A step's start and finish are decided in Redis
-- (src/queues/live.ts: one Lua call each, against the run's live state), which appends each
-- transition to the run's live log with a per-run number `t`. PostgreSQL records that log in order,
-- each transition once (deployments.recorded_tseq), in batches (norn_record) and always before a
-- transition that ends the run (norn_run_succeed, norn_step_fail): the saga event log stays complete
-- and gapless, and an event is still published only after it is committed.
-- Run-level transitions (request, admission, cancel, the end of a run, the sweeper) stay here.
--
-- Step rows are now written when a step first does something (or is to be reported skipped), not
-- when the run is requested: a run's steps without a row are pending (or not_run once it ended);
-- RunStore.steps fills them in.

ALTER TABLE deployments ADD COLUMN recorded_tseq integer NOT NULL DEFAULT 0;

-- The run as the engine needs it; now with the pinned spec (steps read it from the live state) and
-- the run it resumes (whose completed steps seed the live state).
CREATE OR REPLACE FUNCTION norn_run_json(d deployments) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object('id', d.id, 'appId', d.app_id, 'sagaId', d.saga_id, 'pipeline', d.pipeline,
    'version', d.pipeline_version, 'eventPrefix', d.event_prefix, 'queue', d.queue_name,
    'steps', to_jsonb(d.steps), 'status', d.status, 'params', d.params, 'finalizer', d.finalizer,
    'spec', d.spec, 'resumedFrom', d.resumed_from)
$$;

-- Records live logs: p_batch = [{run, log: [entry, ...]}, ...], entries in any order, possibly
-- recorded before in part. Per run, the entries after deployments.recorded_tseq are applied in `t`
-- order up to the first missing number (a gap waits for the entries before it; `gaps` names the
-- first missing one). Entries of a run that is no longer running or cancelling are dropped: a worker
-- that lost its run cannot complete a step. Set-based: one statement whatever the batch size.
-- The caller holds the row locks of the apps involved (so event_seq is read after they were taken).
-- Entries: {t, k: "start", step, w (worker), a (attempt), ts} | {t, k: "finish", step, status, d (ms), ts, reason?, o?}
-- (PL/pgSQL rather than SQL so that the statement's plan is cached.)
CREATE FUNCTION norn_apply_log(p_batch jsonb, p_ttl_ms integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE v_result jsonb;
BEGIN
  WITH batch AS (
    SELECT d.id AS run, d.app_id, d.saga_id, d.event_prefix, d.steps, d.resumed_from, d.recorded_tseq, d.request_seq,
           d.status AS run_status, x -> 'log' AS log
    FROM jsonb_array_elements(p_batch) AS x JOIN deployments d ON d.id = (x ->> 'run')::uuid
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
    INSERT INTO deployment_steps AS s (deployment_id, idx, name, status, attempts, worker, started_at, finished_at, duration_ms, output)
    SELECT run, idx, step, status, coalesce(attempts, 0), worker, coalesce(started_at, last_ts), finished_at, duration_ms, output
    FROM per_step
    ON CONFLICT (deployment_id, idx) DO UPDATE SET
      status = EXCLUDED.status,
      attempts = CASE WHEN EXCLUDED.worker IS NULL THEN s.attempts ELSE EXCLUDED.attempts END,
      worker = coalesce(EXCLUDED.worker, s.worker),
      started_at = CASE WHEN EXCLUDED.worker IS NULL THEN coalesce(s.started_at, EXCLUDED.started_at) ELSE EXCLUDED.started_at END,
      finished_at = EXCLUDED.finished_at,
      duration_ms = coalesce(EXCLUDED.duration_ms, s.duration_ms),
      output = CASE WHEN EXCLUDED.status = 'skipped' THEN s.output ELSE EXCLUDED.output END,
      error = NULL
    RETURNING 1
  ), events AS (
    INSERT INTO saga_events (app_id, seq, saga_id, type, payload)
    SELECT ok.app_id, a.event_seq + row_number() OVER (PARTITION BY ok.app_id ORDER BY ok.request_seq, ok.t),
           ok.saga_id, ok.event_prefix || '.step',
           CASE WHEN ok.k = 'start' THEN
             jsonb_build_object('step', ok.step, 'sagaId', ok.saga_id, 'status', 'running', 'index', ok.idx + 1,
                                'total', cardinality(ok.steps), 'attempt', ok.a)
           ELSE
             jsonb_strip_nulls(jsonb_build_object('step', ok.step, 'sagaId', ok.saga_id, 'status', ok.status,
               'index', ok.idx + 1, 'total', cardinality(ok.steps), 'durationMs', ok.d,
               'reason', CASE WHEN ok.status = 'skipped' THEN coalesce(ok.reason, 'completed by run ' || ok.resumed_from) END))
           END
    FROM ok JOIN apps a ON a.id = ok.app_id
    WHERE ok.idx IS NOT NULL
    ORDER BY ok.app_id, ok.request_seq, ok.t
    RETURNING id, norn_event_json(saga_events) AS j
  ), seqs AS (
    UPDATE apps SET event_seq = apps.event_seq + c.n
    FROM (SELECT app_id, count(*) AS n FROM ok WHERE idx IS NOT NULL GROUP BY app_id) c WHERE apps.id = c.app_id
    RETURNING 1
  ), recorded AS (
    UPDATE deployments SET recorded_tseq = c.m
    FROM (SELECT run, max(t) AS m FROM ok GROUP BY run) c WHERE deployments.id = c.run
    RETURNING 1
  ), leases AS (
    -- A recorded start renews the run's lease and names the worker that holds it.
    UPDATE app_leases SET holder = c.w, heartbeat_at = clock_timestamp(),
           expires_at = clock_timestamp() + make_interval(secs => p_ttl_ms / 1000.0)
    FROM (SELECT DISTINCT ON (run) run, w FROM ok WHERE k = 'start' ORDER BY run, t DESC) c
    WHERE app_leases.deployment_id = c.run
    RETURNING 1
  )
  SELECT jsonb_build_object(
    'events', (SELECT coalesce(jsonb_agg(e.j ORDER BY e.id), '[]') FROM events e),
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
    SELECT d.app_id FROM deployments d WHERE d.id IN (SELECT (x ->> 'run')::uuid FROM jsonb_array_elements(p_batch) AS x)
  ) ORDER BY id FOR UPDATE;
  RETURN norn_apply_log(p_batch, p_ttl_ms);
END $$;

-- A step's row, created (pending) when it has none yet. Caller holds the app's row lock.
CREATE FUNCTION norn_step_row(d deployments, p_step text) RETURNS deployment_steps
LANGUAGE plpgsql AS $$
DECLARE s deployment_steps; v_idx integer := array_position(d.steps, p_step) - 1;
BEGIN
  IF v_idx IS NULL THEN RETURN NULL; END IF;
  INSERT INTO deployment_steps (deployment_id, idx, name) VALUES (d.id, v_idx, p_step)
  ON CONFLICT (deployment_id, idx) DO NOTHING;
  SELECT * INTO s FROM deployment_steps WHERE deployment_id = d.id AND idx = v_idx;
  RETURN s;
END $$;

-- The last step finished (its finish is in p_log, the run's whole live log): record the log, end
-- the run succeeded, release the app and admit the next queued run.
CREATE FUNCTION norn_run_succeed(p_run uuid, p_log jsonb, p_summary jsonb, p_holder text, p_ttl_ms integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE v_app text; d deployments; v_rec jsonb; v_last text; v_events jsonb;
BEGIN
  SELECT app_id INTO v_app FROM deployments WHERE id = p_run;
  IF v_app IS NULL THEN RETURN jsonb_build_object('action', 'missing'); END IF;
  PERFORM 1 FROM apps WHERE id = v_app FOR UPDATE;
  SELECT * INTO d FROM deployments WHERE id = p_run;
  IF d.status IN ('succeeded', 'failed', 'cancelled') THEN
    RETURN jsonb_build_object('action', 'finished', 'status', d.status);
  END IF;
  IF NOT EXISTS (SELECT 1 FROM app_leases WHERE app_id = v_app AND deployment_id = p_run) THEN
    RETURN jsonb_build_object('action', 'fenced');
  END IF;
  v_rec := norn_apply_log(jsonb_build_array(jsonb_build_object('run', p_run, 'log', p_log)), p_ttl_ms);
  v_events := v_rec -> 'events';
  SELECT status INTO v_last FROM deployment_steps WHERE deployment_id = p_run AND idx = cardinality(d.steps) - 1;
  IF v_last IS NULL OR v_last NOT IN ('complete', 'skipped') THEN
    -- The log did not (yet) hold the last step's finish: nothing to end (what it held is recorded).
    RETURN jsonb_build_object('action', 'incomplete', 'events', v_events);
  END IF;
  UPDATE deployments SET status = 'succeeded', finished_at = clock_timestamp() WHERE id = p_run;
  DELETE FROM app_leases WHERE app_id = v_app AND deployment_id = p_run;
  v_events := v_events || norn_append_event(v_app, d.saga_id, d.event_prefix || '.completed',
    jsonb_build_object('sagaId', d.saga_id) || coalesce(p_summary, '{}'));
  RETURN jsonb_build_object('action', 'ended', 'status', 'succeeded', 'events', v_events,
                            'next', norn_admit(v_app, p_holder, p_ttl_ms));
END $$;

-- norn_step_fail, now recording the run's live log first (so a failure follows the steps it ends).
DROP FUNCTION norn_step_fail(uuid, text, text, boolean, boolean, integer, text, integer);
CREATE FUNCTION norn_step_fail(p_run uuid, p_step text, p_error text, p_final boolean, p_cancelled boolean,
                               p_duration_ms integer, p_holder text, p_ttl_ms integer, p_log jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE v_app text; d deployments; s deployment_steps; v_events jsonb := '[]'; v_status text; v_next jsonb;
BEGIN
  SELECT app_id INTO v_app FROM deployments WHERE id = p_run;
  IF v_app IS NULL THEN RETURN jsonb_build_object('action', 'missing'); END IF;
  PERFORM 1 FROM apps WHERE id = v_app FOR UPDATE;
  SELECT * INTO d FROM deployments WHERE id = p_run;
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
  v_events := norn_apply_log(jsonb_build_array(jsonb_build_object('run', p_run, 'log', coalesce(p_log, '[]'))), p_ttl_ms) -> 'events';

  IF p_step IS NULL THEN
    SELECT * INTO s FROM deployment_steps WHERE deployment_id = p_run AND status IN ('running', 'failed') ORDER BY idx DESC LIMIT 1;
  ELSE
    s := norn_step_row(d, p_step);
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
  -- Steps without a row are reported not_run by RunStore.steps once the run has ended.
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

-- Requests no longer write a row per step (the live log does, as steps run); a resumed run gets
-- rows for the steps its predecessor completed (reported skipped, with their outputs). A request
-- for a free app is admitted in the same statement that records it.
CREATE OR REPLACE FUNCTION norn_request_run(
  p_id uuid, p_saga uuid, p_app text, p_pipeline text, p_version text, p_prefix text, p_queue text,
  p_steps text[], p_params jsonb, p_policy text, p_resumed_from uuid, p_skip text[], p_requested_by text,
  p_holder text, p_ttl_ms integer, p_spec jsonb, p_finalizer text
) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  d deployments; o deployments; v_busy deployments; v_events jsonb := '[]'; v_cancel jsonb := '[]';
  v_position integer; v_free boolean; v_next jsonb;
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

  -- Free: nothing holds the app and nothing waits for it (supersede never finds the app free while
  -- a run is active, so its cancels below still happen).
  v_free := NOT EXISTS (SELECT 1 FROM app_leases WHERE app_id = p_app)
        AND NOT EXISTS (SELECT 1 FROM deployments WHERE app_id = p_app AND status = 'queued');

  INSERT INTO deployments (id, app_id, saga_id, pipeline, pipeline_version, event_prefix, queue_name, steps,
                           policy, params, resumed_from, requested_by, spec, finalizer, status, started_at)
  VALUES (p_id, p_app, p_saga, p_pipeline, p_version, p_prefix, p_queue, p_steps,
          p_policy, p_params, p_resumed_from, p_requested_by, coalesce(p_spec, '{}'), p_finalizer,
          CASE WHEN v_free THEN 'running' ELSE 'queued' END, CASE WHEN v_free THEN clock_timestamp() END)
  RETURNING * INTO d;

  IF cardinality(coalesce(p_skip, '{}')) > 0 THEN
    INSERT INTO deployment_steps (deployment_id, idx, name, skip, output)
    SELECT p_id, s.ord - 1, s.name, true,
           (SELECT output FROM deployment_steps WHERE deployment_id = p_resumed_from AND name = s.name)
    FROM unnest(p_steps) WITH ORDINALITY AS s (name, ord)
    WHERE s.name = ANY (p_skip);
  END IF;

  v_events := v_events || norn_append_event(p_app, p_saga, p_prefix || '.queued',
    jsonb_strip_nulls(jsonb_build_object('sagaId', p_saga, 'app', p_app, 'deploymentId', p_id,
      'pipeline', p_pipeline, 'resumedFrom', p_resumed_from)));

  IF v_free THEN
    INSERT INTO app_leases (app_id, deployment_id, holder, expires_at)
    VALUES (p_app, p_id, p_holder, clock_timestamp() + make_interval(secs => p_ttl_ms / 1000.0));
    RETURN jsonb_build_object('action', 'queued', 'run', norn_run_json(d), 'position', 0,
      'events', v_events, 'toCancel', '[]'::jsonb, 'next', norn_run_json(d));
  END IF;

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
  v_next := norn_admit(p_app, p_holder, p_ttl_ms);

  RETURN jsonb_build_object('action', 'queued', 'run', norn_run_json(d), 'position', v_position,
    'events', v_events, 'toCancel', v_cancel, 'next', v_next);
END $$;

-- The finalizer of an ended run reports how it went; its step may have no row yet.
CREATE OR REPLACE FUNCTION norn_finalizer_done(p_run uuid, p_step text, p_status text, p_output jsonb, p_error text,
                                               p_duration_ms integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE v_app text; d deployments; s deployment_steps;
BEGIN
  SELECT app_id INTO v_app FROM deployments WHERE id = p_run;
  IF v_app IS NULL THEN RETURN jsonb_build_object('action', 'missing'); END IF;
  PERFORM 1 FROM apps WHERE id = v_app FOR UPDATE;
  SELECT * INTO d FROM deployments WHERE id = p_run;
  s := norn_step_row(d, p_step);
  IF s.idx IS NULL OR s.status IN ('complete', 'failed') THEN RETURN jsonb_build_object('action', 'done'); END IF;
  UPDATE deployment_steps SET status = p_status, output = p_output, error = p_error,
         started_at = coalesce(started_at, clock_timestamp()), finished_at = clock_timestamp(), duration_ms = p_duration_ms
  WHERE deployment_id = p_run AND idx = s.idx;
  RETURN jsonb_build_object('action', 'ok', 'events', jsonb_build_array(norn_append_event(v_app, d.saga_id,
    d.event_prefix || '.step', jsonb_strip_nulls(jsonb_build_object('step', p_step, 'sagaId', d.saga_id,
      'status', p_status, 'index', s.idx + 1, 'total', cardinality(d.steps), 'durationMs', p_duration_ms,
      'error', p_error, 'afterRunEnded', true)))));
END $$;

-- norn_cancel_queued marked the queued run's step rows not_run; a queued run has none now (skip rows
-- of a resumed run aside), and RunStore.steps reports the missing ones not_run.

-- Superseded by the live (Redis) step transitions above.
DROP FUNCTION norn_step_start(uuid, text, text, integer);
DROP FUNCTION norn_step_finish(uuid, text, text, jsonb, integer, jsonb, text, integer);
