-- How far the timeline has been handed to each outgoing webhook receiver:
-- events after last_id are enqueued (again, harmlessly: the outbox ignores
-- an event ID it holds) after a restart.
CREATE TABLE event_cursor (
	receiver TEXT PRIMARY KEY,
	last_id  INTEGER NOT NULL
);
