-- Accounts belong to their person: inviting an existing account creates a pending
-- membership and a `join` invitation, which the person accepts while logged in.

ALTER TABLE membership ADD COLUMN pending BOOLEAN NOT NULL DEFAULT FALSE;

ALTER TABLE invitation DROP CONSTRAINT invitation_purpose_check;
ALTER TABLE invitation ADD CONSTRAINT invitation_purpose_check
    CHECK (purpose IN ('invite', 'totp_reset', 'first_admin', 'join'));
