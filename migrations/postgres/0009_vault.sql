-- The credential vault: collective-account credentials of an organisation. Every field is
-- sealed under the entry's own data key (`wrapped_key`, wrapped under `vault/v{kek_version}`);
-- the associated data of each field binds the organisation, the entry, the field and the
-- entry's `version` (a new one at each rotation of the secret). Deleting an entry forgets its
-- data key and ciphertexts (crypto-shredding): only the tombstone stays, for the audit trail.
-- `mandat vault rewrap` re-wraps data keys whose `kek_version` is older than the newest.

CREATE TABLE vault_entry (
    id UUID PRIMARY KEY,
    organisation_id UUID NOT NULL REFERENCES organisation (id),
    created_by UUID NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    usager_id UUID REFERENCES usager (id),
    demarche TEXT,
    kek_version BIGINT NOT NULL,
    wrapped_key BYTEA,
    version BIGINT NOT NULL,
    label BYTEA,
    service BYTEA,
    login BYTEA,
    secret BYTEA,
    totp_seed BYTEA,
    notes BYTEA,
    deleted_at TIMESTAMPTZ,
    CHECK ((deleted_at IS NULL) = (wrapped_key IS NOT NULL)),
    CHECK ((usager_id IS NULL) = (demarche IS NULL))
);
CREATE INDEX vault_entry_org ON vault_entry (organisation_id, id);

-- The SMS outbox also carries the access code of a vault entry handed over to its usager
-- (`vault_access_code`): `mandate_id` is then the mandate covering the entry's démarche and
-- `challenge_id` the vault entry.
ALTER TABLE sms_outbox DROP CONSTRAINT sms_outbox_kind_check;
ALTER TABLE sms_outbox ADD CONSTRAINT sms_outbox_kind_check
    CHECK (kind IN ('recap', 'code', 'receipt', 'vault_access_code'));
