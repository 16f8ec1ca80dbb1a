-- Exceptions to the error-budget policy: who let which version through,
-- when and why. Kept for audit; never deleted by the gate.
CREATE TABLE exceptions (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  service    TEXT NOT NULL,
  version    TEXT NOT NULL,
  kind       TEXT NOT NULL,
  reason     TEXT NOT NULL,
  author     TEXT NOT NULL,
  created_at INTEGER NOT NULL, -- unix ms
  -- Exceptions expire so that one recorded for a version does not wave
  -- through the next deploy days later.
  expires_at INTEGER NOT NULL
);
CREATE INDEX exceptions_service ON exceptions (service, version, expires_at);

-- Deploy events, with the burn rates just before the deploy so that the
-- post-deploy watch can compare before with after.
CREATE TABLE deploys (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  service     TEXT NOT NULL,
  version     TEXT NOT NULL,
  commit_sha  TEXT NOT NULL DEFAULT '',
  author      TEXT NOT NULL DEFAULT '',
  started_at  INTEGER NOT NULL,
  finished_at INTEGER,
  before_burn TEXT NOT NULL DEFAULT '{}' -- JSON: window -> burn rate
);
CREATE INDEX deploys_service ON deploys (service, started_at);
