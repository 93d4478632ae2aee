-- Accounts: aidants (any role), memberships, second factors, sessions, invitations.

CREATE TABLE aidant (
    id BLOB PRIMARY KEY NOT NULL,
    email TEXT NOT NULL,
    display_name TEXT NOT NULL,
    password_hash TEXT,
    active INTEGER NOT NULL DEFAULT 0,
    is_admin INTEGER NOT NULL DEFAULT 0,
    is_dpo INTEGER NOT NULL DEFAULT 0,
    current_organisation_id BLOB REFERENCES organisation (id),
    last_login_at TEXT,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    failed_window_start TEXT,
    locked_until TEXT,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX aidant_email ON aidant (email);

CREATE TABLE membership (
    aidant_id BLOB NOT NULL REFERENCES aidant (id),
    organisation_id BLOB NOT NULL REFERENCES organisation (id),
    role TEXT NOT NULL CHECK (role IN ('aidant', 'referent')),
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    PRIMARY KEY (aidant_id, organisation_id)
);
CREATE INDEX membership_organisation ON membership (organisation_id);

-- TOTP factors: authenticator apps (30 s) and physical cards (60 s). Seeds are sealed.
CREATE TABLE totp_factor (
    id BLOB PRIMARY KEY NOT NULL,
    aidant_id BLOB REFERENCES aidant (id),
    organisation_id BLOB REFERENCES organisation (id),
    kind TEXT NOT NULL CHECK (kind IN ('app', 'card')),
    serial TEXT,
    seed_sealed BLOB NOT NULL,
    key_version INTEGER NOT NULL,
    step_secs INTEGER NOT NULL,
    last_used_step INTEGER,
    status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'retired', 'unbound')),
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX totp_factor_serial ON totp_factor (serial) WHERE serial IS NOT NULL;
CREATE INDEX totp_factor_aidant ON totp_factor (aidant_id);

CREATE TABLE session (
    id_hash BLOB PRIMARY KEY NOT NULL,
    aidant_id BLOB NOT NULL REFERENCES aidant (id),
    created_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    fresh_factor_at TEXT NOT NULL,
    step_up_at TEXT
);
CREATE INDEX session_aidant ON session (aidant_id);

CREATE TABLE invitation (
    token_hash BLOB PRIMARY KEY NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('invite', 'totp_reset', 'first_admin')),
    aidant_id BLOB REFERENCES aidant (id),
    organisation_id BLOB REFERENCES organisation (id),
    expires_at TEXT,
    used_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX invitation_aidant ON invitation (aidant_id);
