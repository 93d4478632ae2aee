-- Accounts belong to their person: inviting an existing account creates a pending
-- membership and a `join` invitation, which the person accepts while logged in.

ALTER TABLE membership ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
-- The name the inviting organisation typed: its member list shows a pending membership
-- like the invitation of a new email (never the name the person chose for their account).
ALTER TABLE membership ADD COLUMN invited_name TEXT;

-- SQLite cannot change a CHECK constraint: the invitation table is rebuilt (nothing
-- references it).
CREATE TABLE invitation_new (
    token_hash BLOB PRIMARY KEY NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('invite', 'totp_reset', 'first_admin', 'join')),
    aidant_id BLOB REFERENCES aidant (id),
    organisation_id BLOB REFERENCES organisation (id),
    expires_at TEXT,
    used_at TEXT,
    created_at TEXT NOT NULL
);
INSERT INTO invitation_new (token_hash, purpose, aidant_id, organisation_id, expires_at, used_at, created_at)
    SELECT token_hash, purpose, aidant_id, organisation_id, expires_at, used_at, created_at FROM invitation;
DROP TABLE invitation;
ALTER TABLE invitation_new RENAME TO invitation;
CREATE INDEX invitation_aidant ON invitation (aidant_id);
