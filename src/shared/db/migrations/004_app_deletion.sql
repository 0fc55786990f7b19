-- DELETE /api/apps/:id is a soft delete. saga_events is append-only and, like deployments, releases
-- and snapshots, references apps (id): removing the row would mean removing the history. A deleted
-- app keeps its row and its history (runs, events, releases stay readable by id), is hidden from
-- the app listings, takes no runs, and its name may be registered again (the row comes back, with
-- its history and its event sequence, which stays gapless).
ALTER TABLE apps ADD COLUMN deleted_at timestamptz;

-- The api checks first; this makes a run requested while the app is being deleted fail too (both
-- take the app's row lock: norn_request_run before it inserts, the delete before it marks the row).
CREATE FUNCTION norn_refuse_run_of_deleted_app() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM apps WHERE id = NEW.app_id AND deleted_at IS NOT NULL) THEN
    RAISE EXCEPTION 'app % is deleted', NEW.app_id USING ERRCODE = 'NRN01';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER deployments_of_live_apps_only BEFORE INSERT ON deployments
  FOR EACH ROW EXECUTE FUNCTION norn_refuse_run_of_deleted_app();
