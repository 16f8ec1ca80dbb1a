-- Event notifications (Manager.Enqueue) carry the sender's ID for the
-- event: enqueuing it again (a sender that crashed after enqueuing and
-- before recording it) adds nothing, so a restart duplicates no event.
ALTER TABLE outbox ADD COLUMN event_id TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX outbox_event ON outbox (receiver, event_id) WHERE event_id != '';
