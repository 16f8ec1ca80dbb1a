-- Escalation pages waiting for Slack (redeliver.go): written in the
-- transaction that claims their step, deleted just before each attempt and
-- written back when an attempt fails, so that pages held up by a Slack
-- outage survive a restart and still arrive in order.
CREATE TABLE page_queue (
	seq         INTEGER PRIMARY KEY AUTOINCREMENT,
	incident_id INTEGER NOT NULL,
	user_id     TEXT NOT NULL DEFAULT '',
	channel     TEXT NOT NULL DEFAULT '',
	step        INTEGER NOT NULL,
	round       INTEGER NOT NULL,
	reason      TEXT NOT NULL DEFAULT '',
	attempts    INTEGER NOT NULL DEFAULT 0
);
