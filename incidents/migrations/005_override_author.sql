-- Who put an override (or a swap) on a schedule: the name of the API token
-- it was made with, or the name the caller gave when no token is
-- configured.
ALTER TABLE overrides ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
