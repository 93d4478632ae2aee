-- Usager identity archived after its retention class (product rule 8): from `archived_at`
-- on, the linked organisations no longer read or find the usager; the DPO still can, until
-- the identity is crypto-shredded at the end of the archive period.
ALTER TABLE usager ADD COLUMN archived_at TIMESTAMPTZ;
