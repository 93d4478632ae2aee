-- The credential vault: collective-account credentials of an organisation. Every field is
-- sealed under the entry's own data key (`wrapped_key`, wrapped under `vault/v{kek_version}`);
-- the associated data of each field binds the organisation, the entry, the field and the
-- entry's `version` (a new one at each rotation of the secret). Deleting an entry forgets its
-- data key and ciphertexts (crypto-shredding): only the tombstone stays, for the audit trail.
-- `mandat vault rewrap` re-wraps data keys whose `kek_version` is older than the newest.

CREATE TABLE vault_entry (
    id BLOB PRIMARY KEY NOT NULL,
    organisation_id BLOB NOT NULL REFERENCES organisation (id),
    created_by BLOB NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    usager_id BLOB REFERENCES usager (id),
    demarche TEXT,
    kek_version INTEGER NOT NULL,
    wrapped_key BLOB,
    version INTEGER NOT NULL,
    label BLOB,
    service BLOB,
    login BLOB,
    secret BLOB,
    totp_seed BLOB,
    notes BLOB,
    deleted_at TEXT,
    CHECK ((deleted_at IS NULL) = (wrapped_key IS NOT NULL)),
    CHECK ((usager_id IS NULL) = (demarche IS NULL))
);
CREATE INDEX vault_entry_org ON vault_entry (organisation_id, id);

-- The SMS outbox also carries the access code of a vault entry handed over to its usager
-- (`vault_access_code`): `mandate_id` is then the mandate covering the entry's démarche and
-- `challenge_id` the vault entry. SQLite changes a CHECK by rebuilding the table.
CREATE TABLE sms_outbox_new (
    id BLOB PRIMARY KEY NOT NULL,
    mandate_id BLOB NOT NULL,
    challenge_id BLOB NOT NULL,
    usager_id BLOB NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('recap', 'code', 'receipt', 'vault_access_code')),
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'void')),
    key_version INTEGER NOT NULL,
    message BLOB,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    claimed_until TEXT,
    done_at TEXT,
    CHECK ((status = 'pending') = (message IS NOT NULL))
);
INSERT INTO sms_outbox_new (id, mandate_id, challenge_id, usager_id, seq, kind, status,
    key_version, message, attempts, created_at, next_attempt_at, claimed_until, done_at)
SELECT id, mandate_id, challenge_id, usager_id, seq, kind, status,
    key_version, message, attempts, created_at, next_attempt_at, claimed_until, done_at
FROM sms_outbox;
DROP TABLE sms_outbox;
ALTER TABLE sms_outbox_new RENAME TO sms_outbox;
CREATE INDEX sms_outbox_due ON sms_outbox (status, next_attempt_at);
CREATE INDEX sms_outbox_challenge ON sms_outbox (challenge_id, seq);
CREATE INDEX sms_outbox_done ON sms_outbox (done_at);
