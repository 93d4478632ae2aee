-- Accounts: aidants (any role), memberships, second factors, sessions, invitations.

CREATE TABLE aidant (
    id UUID PRIMARY KEY,
    email TEXT NOT NULL,
    display_name TEXT NOT NULL,
    password_hash TEXT,
    active BOOLEAN NOT NULL DEFAULT FALSE,
    is_admin BOOLEAN NOT NULL DEFAULT FALSE,
    is_dpo BOOLEAN NOT NULL DEFAULT FALSE,
    current_organisation_id UUID REFERENCES organisation (id),
    last_login_at TIMESTAMPTZ,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    failed_window_start TIMESTAMPTZ,
    locked_until TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX aidant_email ON aidant (email);

CREATE TABLE membership (
    aidant_id UUID NOT NULL REFERENCES aidant (id),
    organisation_id UUID NOT NULL REFERENCES organisation (id),
    role TEXT NOT NULL CHECK (role IN ('aidant', 'referent')),
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (aidant_id, organisation_id)
);
CREATE INDEX membership_organisation ON membership (organisation_id);

-- TOTP factors: authenticator apps (30 s) and physical cards (60 s). Seeds are sealed.
CREATE TABLE totp_factor (
    id UUID PRIMARY KEY,
    aidant_id UUID REFERENCES aidant (id),
    organisation_id UUID REFERENCES organisation (id),
    kind TEXT NOT NULL CHECK (kind IN ('app', 'card')),
    serial TEXT,
    seed_sealed BYTEA NOT NULL,
    key_version INTEGER NOT NULL,
    step_secs INTEGER NOT NULL,
    last_used_step BIGINT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'retired', 'unbound')),
    created_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX totp_factor_serial ON totp_factor (serial) WHERE serial IS NOT NULL;
CREATE INDEX totp_factor_aidant ON totp_factor (aidant_id);

CREATE TABLE session (
    id_hash BYTEA PRIMARY KEY,
    aidant_id UUID NOT NULL REFERENCES aidant (id),
    created_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    fresh_factor_at TIMESTAMPTZ NOT NULL,
    step_up_at TIMESTAMPTZ
);
CREATE INDEX session_aidant ON session (aidant_id);

CREATE TABLE invitation (
    token_hash BYTEA PRIMARY KEY,
    purpose TEXT NOT NULL CHECK (purpose IN ('invite', 'totp_reset', 'first_admin')),
    aidant_id UUID REFERENCES aidant (id),
    organisation_id UUID REFERENCES organisation (id),
    expires_at TIMESTAMPTZ,
    used_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX invitation_aidant ON invitation (aidant_id);
