-- The OpenID Connect provider: registered clients, signing keys (sealed), authorization
-- codes and access tokens (stored hashed), the `jti` replay cache of client assertions and
-- the pairwise subjects already given to each sector (to resolve a `login_hint`).

CREATE TABLE oidc_client (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    -- One URI per line, exact match.
    redirect_uris TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    -- Comma-separated démarche ids the client may use.
    allowed_demarches TEXT NOT NULL,
    auth_method TEXT NOT NULL CHECK (auth_method IN ('client_secret_basic', 'client_secret_post', 'private_key_jwt')),
    secret_mac BLOB,
    secret_key_version INTEGER,
    jwks TEXT,
    sector TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);

CREATE TABLE oidc_signing_key (
    version INTEGER PRIMARY KEY NOT NULL,
    kid TEXT NOT NULL UNIQUE,
    alg TEXT NOT NULL,
    key_version INTEGER NOT NULL,
    sealed_key BLOB NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at TEXT NOT NULL,
    retired_at TEXT
);

CREATE TABLE oidc_code (
    code_hash BLOB PRIMARY KEY NOT NULL,
    client_id BLOB NOT NULL REFERENCES oidc_client (id),
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    nonce TEXT NOT NULL,
    scope TEXT NOT NULL,
    aidant_id BLOB NOT NULL,
    organisation_id BLOB NOT NULL,
    usager_id BLOB NOT NULL,
    mandate_id BLOB NOT NULL,
    demarche TEXT NOT NULL,
    auth_time TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
);
CREATE INDEX oidc_code_expiry ON oidc_code (expires_at);

CREATE TABLE oidc_token (
    token_hash BLOB PRIMARY KEY NOT NULL,
    code_hash BLOB NOT NULL,
    client_id BLOB NOT NULL REFERENCES oidc_client (id),
    scope TEXT NOT NULL,
    aidant_id BLOB NOT NULL,
    organisation_id BLOB NOT NULL,
    usager_id BLOB NOT NULL,
    mandate_id BLOB NOT NULL,
    demarche TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX oidc_token_code ON oidc_token (code_hash);
CREATE INDEX oidc_token_expiry ON oidc_token (expires_at);

CREATE TABLE oidc_jti (
    client_id BLOB NOT NULL,
    jti TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (client_id, jti)
);

CREATE TABLE oidc_subject (
    sector TEXT NOT NULL,
    sub TEXT NOT NULL,
    usager_id BLOB NOT NULL,
    PRIMARY KEY (sector, sub)
);
