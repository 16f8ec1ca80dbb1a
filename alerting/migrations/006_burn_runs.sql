-- When the SLO started burning, for the impact start of its alerts: each
-- tier's current run of evaluations whose short window burned faster than
-- the budget allows (started_at: its first evaluation, last_at: its newest),
-- and the impact start an active burn-rate alert took from it. Unix
-- milliseconds (UTC); 0 is unknown.
CREATE TABLE burn_runs (
	slo        TEXT NOT NULL,
	tier       TEXT NOT NULL,
	started_at INTEGER NOT NULL,
	last_at    INTEGER NOT NULL,
	PRIMARY KEY (slo, tier)
);
ALTER TABLE rule_alerts ADD COLUMN impact_at INTEGER NOT NULL DEFAULT 0;
