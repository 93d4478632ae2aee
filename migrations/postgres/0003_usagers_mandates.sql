-- Usagers (personal fields sealed under a per-usager data key), their links to
-- organisations, the blind index of search, mandates, their démarches, consent challenges
-- and idempotency keys. `created_by` is an aidant id kept as a plain UUID.

CREATE TABLE usager (
    id UUID PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL,
    created_by UUID NOT NULL,
    created_by_org UUID NOT NULL REFERENCES organisation (id),
    identity_check TEXT NOT NULL CHECK (identity_check IN ('document', 'franceconnect')),
    key_version BIGINT NOT NULL,
    wrapped_key BYTEA,
    given_name BYTEA NOT NULL,
    family_name BYTEA NOT NULL,
    birthdate BYTEA NOT NULL,
    birthplace BYTEA,
    phone BYTEA,
    email BYTEA,
    erased_at TIMESTAMPTZ
);

CREATE TABLE usager_link (
    organisation_id UUID NOT NULL REFERENCES organisation (id),
    usager_id UUID NOT NULL REFERENCES usager (id),
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (organisation_id, usager_id)
);

CREATE TABLE usager_index (
    usager_id UUID NOT NULL REFERENCES usager (id),
    kind TEXT NOT NULL,
    key_version BIGINT NOT NULL,
    mac BYTEA NOT NULL,
    PRIMARY KEY (usager_id, kind, key_version, mac)
);
CREATE INDEX usager_index_mac ON usager_index (mac);

CREATE TABLE mandate (
    id UUID PRIMARY KEY,
    organisation_id UUID NOT NULL REFERENCES organisation (id),
    usager_id UUID NOT NULL REFERENCES usager (id),
    created_by UUID NOT NULL,
    duration TEXT NOT NULL CHECK (duration IN ('short', 'month', 'semester', 'long')),
    consent_channel TEXT NOT NULL CHECK (consent_channel IN ('sms', 'print')),
    status TEXT NOT NULL CHECK (status IN ('pending_consent', 'active', 'refused', 'expired', 'revoked')),
    terms_hash TEXT NOT NULL,
    terms BYTEA NOT NULL,
    terms_key_version BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    activated_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ,
    revoked_reason TEXT,
    ended_at TIMESTAMPTZ,
    renews UUID REFERENCES mandate (id),
    resends BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX mandate_org_id ON mandate (organisation_id, id);
CREATE INDEX mandate_org_usager ON mandate (organisation_id, usager_id, id);
CREATE INDEX mandate_usager ON mandate (usager_id);
CREATE INDEX mandate_status_expiry ON mandate (status, expires_at);

CREATE TABLE mandate_demarche (
    mandate_id UUID NOT NULL REFERENCES mandate (id),
    demarche TEXT NOT NULL,
    revoked_at TIMESTAMPTZ,
    revoked_reason TEXT,
    PRIMARY KEY (mandate_id, demarche)
);

CREATE TABLE consent_challenge (
    id UUID PRIMARY KEY,
    mandate_id UUID NOT NULL REFERENCES mandate (id),
    channel TEXT NOT NULL,
    terms_hash TEXT NOT NULL,
    code_mac BYTEA NOT NULL,
    code_key_version BIGINT NOT NULL,
    code_sealed BYTEA,
    sent_to TEXT,
    -- SMS: HMAC(index key, "phone" ‖ E.164) to match replies without storing the number.
    phone_mac BYTEA,
    status TEXT NOT NULL CHECK (status IN ('open', 'accepted', 'refused', 'expired', 'locked', 'void')),
    attempts BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    closed_at TIMESTAMPTZ
);
CREATE INDEX consent_challenge_mandate ON consent_challenge (mandate_id, created_at);
CREATE INDEX consent_challenge_open ON consent_challenge (status, expires_at);
CREATE INDEX consent_challenge_phone ON consent_challenge (phone_mac, status);

-- Signatures of inbound SMS webhook calls already processed (replay cache).
CREATE TABLE sms_inbound_seen (
    signature BYTEA PRIMARY KEY,
    seen_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE idempotency_key (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    request_mac BYTEA NOT NULL,
    status BIGINT NOT NULL,
    key_version BIGINT NOT NULL,
    wrapped_key BYTEA NOT NULL,
    body BYTEA NOT NULL,
    -- The usager the answer is about (its row goes when the usager is erased).
    usager_id UUID,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_key_created ON idempotency_key (created_at);
CREATE INDEX idempotency_key_usager ON idempotency_key (usager_id);
