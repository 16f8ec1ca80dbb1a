-- An exception can be revoked before it expires: who ended it and when.
ALTER TABLE exceptions ADD COLUMN revoked_at INTEGER; -- unix ms; NULL while in force
ALTER TABLE exceptions ADD COLUMN revoked_by TEXT NOT NULL DEFAULT '';
