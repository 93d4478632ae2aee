-- Usagers (personal fields sealed under a per-usager data key), their links to
-- organisations, the blind index of search, mandates, their démarches, consent challenges
-- and idempotency keys. `created_by` is an aidant id kept as a plain UUID.

CREATE TABLE usager (
    id BLOB PRIMARY KEY NOT NULL,
    created_at TEXT NOT NULL,
    created_by BLOB NOT NULL,
    created_by_org BLOB NOT NULL REFERENCES organisation (id),
    identity_check TEXT NOT NULL CHECK (identity_check IN ('document', 'franceconnect')),
    key_version INTEGER NOT NULL,
    wrapped_key BLOB,
    given_name BLOB NOT NULL,
    family_name BLOB NOT NULL,
    birthdate BLOB NOT NULL,
    birthplace BLOB,
    phone BLOB,
    email BLOB,
    erased_at TEXT
);

CREATE TABLE usager_link (
    organisation_id BLOB NOT NULL REFERENCES organisation (id),
    usager_id BLOB NOT NULL REFERENCES usager (id),
    created_at TEXT NOT NULL,
    PRIMARY KEY (organisation_id, usager_id)
);

CREATE TABLE usager_index (
    usager_id BLOB NOT NULL REFERENCES usager (id),
    kind TEXT NOT NULL,
    key_version INTEGER NOT NULL,
    mac BLOB NOT NULL,
    PRIMARY KEY (usager_id, kind, key_version, mac)
);
CREATE INDEX usager_index_mac ON usager_index (mac);

CREATE TABLE mandate (
    id BLOB PRIMARY KEY NOT NULL,
    organisation_id BLOB NOT NULL REFERENCES organisation (id),
    usager_id BLOB NOT NULL REFERENCES usager (id),
    created_by BLOB NOT NULL,
    duration TEXT NOT NULL CHECK (duration IN ('short', 'month', 'semester', 'long')),
    consent_channel TEXT NOT NULL CHECK (consent_channel IN ('sms', 'print')),
    status TEXT NOT NULL CHECK (status IN ('pending_consent', 'active', 'refused', 'expired', 'revoked')),
    terms_hash TEXT NOT NULL,
    terms BLOB NOT NULL,
    terms_key_version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    activated_at TEXT,
    expires_at TEXT,
    revoked_at TEXT,
    revoked_reason TEXT,
    ended_at TEXT,
    renews BLOB REFERENCES mandate (id),
    resends INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX mandate_org_id ON mandate (organisation_id, id);
CREATE INDEX mandate_org_usager ON mandate (organisation_id, usager_id, id);
CREATE INDEX mandate_usager ON mandate (usager_id);
CREATE INDEX mandate_status_expiry ON mandate (status, expires_at);

CREATE TABLE mandate_demarche (
    mandate_id BLOB NOT NULL REFERENCES mandate (id),
    demarche TEXT NOT NULL,
    revoked_at TEXT,
    revoked_reason TEXT,
    PRIMARY KEY (mandate_id, demarche)
);

CREATE TABLE consent_challenge (
    id BLOB PRIMARY KEY NOT NULL,
    mandate_id BLOB NOT NULL REFERENCES mandate (id),
    channel TEXT NOT NULL,
    terms_hash TEXT NOT NULL,
    code_mac BLOB NOT NULL,
    code_key_version INTEGER NOT NULL,
    code_sealed BLOB,
    sent_to TEXT,
    -- SMS: HMAC(index key, "phone" ‖ E.164) to match replies without storing the number.
    phone_mac BLOB,
    status TEXT NOT NULL CHECK (status IN ('open', 'accepted', 'refused', 'expired', 'locked', 'void')),
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    closed_at TEXT
);
CREATE INDEX consent_challenge_mandate ON consent_challenge (mandate_id, created_at);
CREATE INDEX consent_challenge_open ON consent_challenge (status, expires_at);
CREATE INDEX consent_challenge_phone ON consent_challenge (phone_mac, status);

-- Signatures of inbound SMS webhook calls already processed (replay cache).
CREATE TABLE sms_inbound_seen (
    signature BLOB PRIMARY KEY NOT NULL,
    seen_at TEXT NOT NULL
);

CREATE TABLE idempotency_key (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    request_mac BLOB NOT NULL,
    status INTEGER NOT NULL,
    key_version INTEGER NOT NULL,
    wrapped_key BLOB NOT NULL,
    body BLOB NOT NULL,
    -- The usager the answer is about (its row goes when the usager is erased).
    usager_id BLOB,
    created_at TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_key_created ON idempotency_key (created_at);
CREATE INDEX idempotency_key_usager ON idempotency_key (usager_id);
