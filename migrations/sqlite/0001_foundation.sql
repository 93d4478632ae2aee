-- Foundation: organisations, key versions, and the audit log (queue, log, payloads, head,
-- checkpoints) with its immutability triggers.

CREATE TABLE organisation (
    id BLOB PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    siret TEXT,
    allowed_demarches TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);

CREATE TABLE key_version (
    purpose TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (purpose, version)
);

-- Stage one of the append: written in the business transaction.
CREATE TABLE audit_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event TEXT NOT NULL
);

CREATE TABLE audit_log (
    idx INTEGER PRIMARY KEY NOT NULL,
    ts TEXT NOT NULL,
    action TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id TEXT,
    organisation_id TEXT,
    usager_id TEXT,
    mandate_id TEXT,
    leaf_hash BLOB NOT NULL,
    chain_hash BLOB NOT NULL
);
CREATE INDEX audit_log_ts ON audit_log (ts);
CREATE INDEX audit_log_organisation ON audit_log (organisation_id, idx);
CREATE INDEX audit_log_usager ON audit_log (usager_id, idx);
CREATE INDEX audit_log_mandate ON audit_log (mandate_id, idx);
CREATE INDEX audit_log_actor ON audit_log (actor_id, idx);

CREATE TABLE audit_payload (
    idx INTEGER PRIMARY KEY NOT NULL REFERENCES audit_log (idx),
    canonical_event TEXT NOT NULL,
    prune_after INTEGER NOT NULL
);

CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    next_index INTEGER NOT NULL,
    chain_hash BLOB NOT NULL
);
INSERT INTO audit_head (id, next_index, chain_hash) VALUES (1, 0, zeroblob(32));

CREATE TABLE audit_checkpoint (
    tree_size INTEGER PRIMARY KEY NOT NULL,
    root_hash BLOB NOT NULL,
    timestamp TEXT NOT NULL,
    key_id TEXT NOT NULL,
    note TEXT NOT NULL
);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_payload_no_update BEFORE UPDATE ON audit_payload
BEGIN SELECT RAISE(ABORT, 'audit_payload is append-only'); END;
CREATE TRIGGER audit_payload_retention_only BEFORE DELETE ON audit_payload
WHEN OLD.prune_after > CAST(strftime('%s', 'now') AS INTEGER)
BEGIN SELECT RAISE(ABORT, 'audit_payload rows may be deleted only after their retention period'); END;
CREATE TRIGGER audit_checkpoint_no_update BEFORE UPDATE ON audit_checkpoint
BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only'); END;
CREATE TRIGGER audit_checkpoint_no_delete BEFORE DELETE ON audit_checkpoint
BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only'); END;
