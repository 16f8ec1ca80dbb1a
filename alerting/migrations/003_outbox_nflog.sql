-- The notification log entry a notification makes true once delivered
-- (JSON; empty for rows written before the log waited for delivery). The
-- receiver column now names the integration the row is for: a receiver
-- with several destinations (webhook URLs) has one row per destination.
ALTER TABLE outbox ADD COLUMN nflog TEXT NOT NULL DEFAULT '';
