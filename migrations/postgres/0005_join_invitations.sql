-- Accounts belong to their person: inviting an existing account creates a pending
-- membership and a `join` invitation, which the person accepts while logged in.

ALTER TABLE membership ADD COLUMN pending BOOLEAN NOT NULL DEFAULT FALSE;
-- The name the inviting organisation typed: its member list shows a pending membership
-- like the invitation of a new email (never the name the person chose for their account).
ALTER TABLE membership ADD COLUMN invited_name TEXT;

ALTER TABLE invitation DROP CONSTRAINT invitation_purpose_check;
ALTER TABLE invitation ADD CONSTRAINT invitation_purpose_check
    CHECK (purpose IN ('invite', 'totp_reset', 'first_admin', 'join'));
