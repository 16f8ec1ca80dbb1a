-- Handoff notifications sent: one per person per shift start, so a
-- restart neither repeats nor loses one.
CREATE TABLE handoffs (
	schedule_id TEXT NOT NULL,
	user_id     TEXT NOT NULL,
	shift_start INTEGER NOT NULL,
	shift_end   INTEGER NOT NULL,
	sent_at     INTEGER NOT NULL,
	PRIMARY KEY (schedule_id, user_id, shift_start)
);
