-- Every fault flag change, in order. Dashboards draw them as annotations and
-- incident timelines show them next to the alerts they caused.
CREATE TABLE demo_events (
	id     INTEGER PRIMARY KEY AUTOINCREMENT,
	at     TEXT NOT NULL,
	kind   TEXT NOT NULL,
	flag   TEXT NOT NULL,
	value  TEXT NOT NULL,
	source TEXT NOT NULL
);
CREATE INDEX demo_events_at ON demo_events(at);
