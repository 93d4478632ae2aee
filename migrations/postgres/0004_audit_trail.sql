-- Audit trail extras: search by action, checkpoints looked up by size.

CREATE INDEX audit_log_action ON audit_log (action, idx);
CREATE INDEX audit_payload_prune_after ON audit_payload (prune_after);
