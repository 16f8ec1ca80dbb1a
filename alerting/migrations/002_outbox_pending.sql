-- The undelivered notifications of each group, in order: finding the
-- oldest of each walks this small partial index instead of sorting the
-- outbox.
CREATE INDEX outbox_undelivered ON outbox (receiver, group_key, id) WHERE state IN ('pending', 'sending');
