-- Incidents, their people and their timeline. Times are Unix milliseconds
-- (UTC); 0 means "not yet".
CREATE TABLE incidents (
	id                INTEGER PRIMARY KEY AUTOINCREMENT,
	title             TEXT NOT NULL,
	severity          TEXT NOT NULL,
	status            TEXT NOT NULL,
	service           TEXT NOT NULL DEFAULT '',
	slo               TEXT NOT NULL DEFAULT '',
	group_key         TEXT NOT NULL DEFAULT '',
	commander         TEXT NOT NULL DEFAULT '',
	links             TEXT NOT NULL DEFAULT '{}',
	impact_started_at INTEGER NOT NULL DEFAULT 0,
	triggered_at      INTEGER NOT NULL,
	acknowledged_at   INTEGER NOT NULL DEFAULT 0,
	acknowledged_by   TEXT NOT NULL DEFAULT '',
	resolved_at       INTEGER NOT NULL DEFAULT 0,
	resolved_by       TEXT NOT NULL DEFAULT '',
	alert_resolved_at INTEGER NOT NULL DEFAULT 0,
	escalation_policy TEXT NOT NULL DEFAULT '',
	updated_at        INTEGER NOT NULL
);

-- Dedup: at most one open incident per alert group.
CREATE UNIQUE INDEX incidents_open_group ON incidents(group_key)
	WHERE status != 'resolved' AND group_key != '';
CREATE INDEX incidents_status ON incidents(status);

CREATE TABLE participants (
	incident_id INTEGER NOT NULL REFERENCES incidents(id),
	user_id     TEXT NOT NULL,
	role        TEXT NOT NULL,
	added_at    INTEGER NOT NULL,
	PRIMARY KEY (incident_id, user_id)
);

CREATE TABLE timeline (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	incident_id INTEGER NOT NULL REFERENCES incidents(id),
	at          INTEGER NOT NULL,
	kind        TEXT NOT NULL,
	source      TEXT NOT NULL,
	actor       TEXT NOT NULL DEFAULT '',
	text        TEXT NOT NULL
);
CREATE INDEX timeline_incident ON timeline(incident_id, at);

-- Outbox IDs of alert notifications already applied, so a re-delivery
-- after a crash changes nothing.
CREATE TABLE notifications_seen (
	id      INTEGER PRIMARY KEY,
	seen_at INTEGER NOT NULL
);

-- People who can be on call.
CREATE TABLE users (
	id       TEXT PRIMARY KEY,
	name     TEXT NOT NULL,
	email    TEXT NOT NULL DEFAULT '',
	slack_id TEXT NOT NULL DEFAULT ''
);

-- Schedules and escalation policies are stored as validated JSON documents:
-- they are read whole and computed in memory.
CREATE TABLE schedules (
	id   TEXT PRIMARY KEY,
	spec TEXT NOT NULL
);

CREATE TABLE overrides (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	schedule_id  TEXT NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
	user_id      TEXT NOT NULL,
	replaces     TEXT NOT NULL DEFAULT '',
	starts_at    INTEGER NOT NULL,
	ends_at      INTEGER NOT NULL,
	note         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX overrides_schedule ON overrides(schedule_id, starts_at);

CREATE TABLE escalation_policies (
	id   TEXT PRIMARY KEY,
	spec TEXT NOT NULL
);

-- The escalation in progress of each open incident: the next step and when
-- it is due. A restart resumes from here.
CREATE TABLE escalations (
	incident_id INTEGER PRIMARY KEY REFERENCES incidents(id),
	policy_id   TEXT NOT NULL,
	step        INTEGER NOT NULL,
	round       INTEGER NOT NULL,
	due_at      INTEGER NOT NULL
);
CREATE INDEX escalations_due ON escalations(due_at);
