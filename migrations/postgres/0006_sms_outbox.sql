-- Outgoing SMS, written in the business transaction and delivered by a background worker
-- after the commit. The message (number and text, which may hold a consent code) is sealed
-- under the usager's data key and erased once the message is sent, has failed or is void.

CREATE TABLE sms_outbox (
    id UUID PRIMARY KEY,
    mandate_id UUID NOT NULL,
    challenge_id UUID NOT NULL,
    usager_id UUID NOT NULL,
    -- Order of the messages of one challenge (the recap before the code).
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('recap', 'code', 'receipt')),
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'void')),
    key_version BIGINT NOT NULL,
    message BYTEA,
    attempts BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    claimed_until TIMESTAMPTZ,
    done_at TIMESTAMPTZ,
    CHECK ((status = 'pending') = (message IS NOT NULL))
);
CREATE INDEX sms_outbox_due ON sms_outbox (status, next_attempt_at);
CREATE INDEX sms_outbox_challenge ON sms_outbox (challenge_id, seq);
CREATE INDEX sms_outbox_done ON sms_outbox (done_at);
