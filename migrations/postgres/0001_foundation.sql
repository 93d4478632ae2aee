-- Foundation: organisations, key versions, and the audit log (queue, log, payloads, head,
-- checkpoints) with its immutability triggers.

CREATE TABLE organisation (
    id UUID PRIMARY KEY,
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    siret TEXT,
    allowed_demarches TEXT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE key_version (
    purpose TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (purpose, version)
);

-- Stage one of the append: written in the business transaction.
CREATE TABLE audit_queue (
    id BIGSERIAL PRIMARY KEY,
    event TEXT NOT NULL
);

CREATE TABLE audit_log (
    idx BIGINT PRIMARY KEY,
    ts TEXT NOT NULL,
    action TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT,
    organisation_id TEXT,
    usager_id TEXT,
    mandate_id TEXT,
    leaf_hash BYTEA NOT NULL,
    chain_hash BYTEA NOT NULL
);
CREATE INDEX audit_log_ts ON audit_log (ts);
CREATE INDEX audit_log_organisation ON audit_log (organisation_id, idx);
CREATE INDEX audit_log_usager ON audit_log (usager_id, idx);
CREATE INDEX audit_log_mandate ON audit_log (mandate_id, idx);
CREATE INDEX audit_log_actor ON audit_log (actor_id, idx);

CREATE TABLE audit_payload (
    idx BIGINT PRIMARY KEY REFERENCES audit_log (idx),
    canonical_event TEXT NOT NULL,
    prune_after BIGINT NOT NULL
);

CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    next_index BIGINT NOT NULL,
    chain_hash BYTEA NOT NULL
);
INSERT INTO audit_head (id, next_index, chain_hash) VALUES (1, 0, '\x0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_checkpoint (
    tree_size BIGINT PRIMARY KEY,
    root_hash BYTEA NOT NULL,
    timestamp TEXT NOT NULL,
    key_id TEXT NOT NULL,
    note TEXT NOT NULL
);

CREATE FUNCTION mandat_audit_reject() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END
$$;

CREATE FUNCTION mandat_audit_payload_retention() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.prune_after > EXTRACT(EPOCH FROM now()) THEN
        RAISE EXCEPTION 'audit_payload rows may be deleted only after their retention period';
    END IF;
    RETURN OLD;
END
$$;

CREATE TRIGGER audit_log_immutable BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION mandat_audit_reject();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION mandat_audit_reject();
CREATE TRIGGER audit_payload_no_update BEFORE UPDATE ON audit_payload
    FOR EACH ROW EXECUTE FUNCTION mandat_audit_reject();
CREATE TRIGGER audit_payload_no_truncate BEFORE TRUNCATE ON audit_payload
    FOR EACH STATEMENT EXECUTE FUNCTION mandat_audit_reject();
CREATE TRIGGER audit_payload_retention_only BEFORE DELETE ON audit_payload
    FOR EACH ROW EXECUTE FUNCTION mandat_audit_payload_retention();
CREATE TRIGGER audit_checkpoint_immutable BEFORE UPDATE OR DELETE ON audit_checkpoint
    FOR EACH ROW EXECUTE FUNCTION mandat_audit_reject();
CREATE TRIGGER audit_checkpoint_no_truncate BEFORE TRUNCATE ON audit_checkpoint
    FOR EACH STATEMENT EXECUTE FUNCTION mandat_audit_reject();
