-- The desk's lists (`/espace-aidant`: active, expiring within 30 days, pending consent) read
-- one organisation's mandates of one status, newest first, 20 at a time: this index walks
-- them in that order and stops after the page, instead of sorting every active mandate of
-- the organisation.
CREATE INDEX mandate_org_status_id ON mandate (organisation_id, status, id);
