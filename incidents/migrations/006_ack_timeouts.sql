-- The acknowledgement timeout of each acknowledged incident whose policy
-- has one (ack_timeout_minutes): when due_at passes and the incident is
-- still acknowledged, it re-triggers and escalation starts over. A row is
-- written with the acknowledgement, so a restart keeps the deadline.
CREATE TABLE ack_timeouts (
	incident_id INTEGER PRIMARY KEY REFERENCES incidents(id),
	due_at      INTEGER NOT NULL,
	minutes     REAL NOT NULL
);
CREATE INDEX ack_timeouts_due ON ack_timeouts(due_at);
