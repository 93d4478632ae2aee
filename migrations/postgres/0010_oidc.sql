-- The OpenID Connect provider: registered clients, signing keys (sealed), authorization
-- codes and access tokens (stored hashed), the `jti` replay cache of client assertions and
-- the pairwise subjects already given to each sector (to resolve a `login_hint`).

CREATE TABLE oidc_client (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL,
    -- One URI per line, exact match.
    redirect_uris TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    -- Comma-separated démarche ids the client may use.
    allowed_demarches TEXT NOT NULL,
    auth_method TEXT NOT NULL CHECK (auth_method IN ('client_secret_basic', 'client_secret_post', 'private_key_jwt')),
    secret_mac BYTEA,
    secret_key_version BIGINT,
    jwks TEXT,
    sector TEXT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE oidc_signing_key (
    version BIGINT PRIMARY KEY NOT NULL,
    kid TEXT NOT NULL UNIQUE,
    alg TEXT NOT NULL,
    key_version BIGINT NOT NULL,
    sealed_key BYTEA NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    retired_at TIMESTAMPTZ
);

CREATE TABLE oidc_code (
    code_hash BYTEA PRIMARY KEY NOT NULL,
    client_id UUID NOT NULL REFERENCES oidc_client (id),
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    nonce TEXT NOT NULL,
    scope TEXT NOT NULL,
    aidant_id UUID NOT NULL,
    organisation_id UUID NOT NULL,
    usager_id UUID NOT NULL,
    mandate_id UUID NOT NULL,
    demarche TEXT NOT NULL,
    auth_time TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ
);
CREATE INDEX oidc_code_expiry ON oidc_code (expires_at);

CREATE TABLE oidc_token (
    token_hash BYTEA PRIMARY KEY NOT NULL,
    code_hash BYTEA NOT NULL,
    client_id UUID NOT NULL REFERENCES oidc_client (id),
    scope TEXT NOT NULL,
    aidant_id UUID NOT NULL,
    organisation_id UUID NOT NULL,
    usager_id UUID NOT NULL,
    mandate_id UUID NOT NULL,
    demarche TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX oidc_token_code ON oidc_token (code_hash);
CREATE INDEX oidc_token_expiry ON oidc_token (expires_at);

CREATE TABLE oidc_jti (
    client_id UUID NOT NULL,
    jti TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (client_id, jti)
);

CREATE TABLE oidc_subject (
    sector TEXT NOT NULL,
    sub TEXT NOT NULL,
    usager_id UUID NOT NULL,
    PRIMARY KEY (sector, sub)
);
