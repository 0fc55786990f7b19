-- What a deploy's compensation needs to put the app back as it was when the run does not finish
-- (cancelled, failed, lease lost), read by the deploy finalizer after the run ended:
-- previous_release_id: the release that served when submit began (what a rollback puts back; the
--   'active' one cannot say, since healthy has activated the new release by the time forge runs);
-- routes_before: the app's ingress rules as forge found them, recorded before forge wrote any
--   (NULL: forge did not write), so a route the run wrote can be reverted exactly.
ALTER TABLE releases ADD COLUMN previous_release_id bigint REFERENCES releases (id);
ALTER TABLE releases ADD COLUMN routes_before jsonb;
