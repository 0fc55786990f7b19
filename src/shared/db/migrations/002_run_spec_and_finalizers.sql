-- Runs pin the app spec they were requested with (what they deploy, and what a rollback restores),
-- and pipelines may name a finalizer step (deploy's cleanup) that also runs after a failed or
-- cancelled run.

ALTER TABLE deployments ADD COLUMN spec jsonb NOT NULL DEFAULT '{}';
ALTER TABLE deployments ADD COLUMN finalizer text;

DROP FUNCTION norn_request_run(uuid, uuid, text, text, text, text, text, text[], jsonb, text, uuid, text[], text, text, integer);

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

-- The run's json now carries its finalizer, so whoever ends a run can schedule it.
CREATE OR REPLACE FUNCTION norn_run_json(d deployments) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_build_object('id', d.id, 'appId', d.app_id, 'sagaId', d.saga_id, 'pipeline', d.pipeline,
    'version', d.pipeline_version, 'eventPrefix', d.event_prefix, 'queue', d.queue_name,
    'steps', to_jsonb(d.steps), 'status', d.status, 'params', d.params, 'finalizer', d.finalizer)
$$;

-- Step start also hands the handler the pinned spec.
CREATE OR REPLACE FUNCTION norn_step_start(p_run uuid, p_step text, p_worker text, p_ttl_ms integer) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE v_app text; d deployments; s deployment_steps; v_ev jsonb;
BEGIN
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

-- A step may skip itself ("no build.test configured"): its reason goes into the skipped event.
CREATE OR REPLACE FUNCTION norn_step_finish(p_run uuid, p_step text, p_status text, p_output jsonb, p_duration_ms integer,
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
