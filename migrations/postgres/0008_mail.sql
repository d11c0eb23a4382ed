-- Settings an administrator keeps in the admin screens (the mail server), one JSON document
-- per name. Secrets inside (a password) are sealed with the node's secret key.
CREATE TABLE crm_setting (
    name text PRIMARY KEY,
    value jsonb NOT NULL,
    updated_at timestamptz NOT NULL,
    updated_by uuid
);

-- One row per recipient of a mailing. Its key is the send's idempotency key: a recipient is
-- queued once per mailing, and a mail that was sent is never sent again.
CREATE TABLE crm_mail_delivery (
    mailing_id uuid NOT NULL,
    entity text NOT NULL,
    record_id uuid NOT NULL,
    -- draft, queued, sending (handed to the server, its answer not yet recorded), sent,
    -- failed, skipped (no address, or unsubscribed)
    status text NOT NULL,
    address text,
    -- the subject as merged for the recipient
    subject text,
    attempts bigint NOT NULL DEFAULT 0,
    -- the server's answer to a failure, or why a recipient was skipped
    answer text,
    updated_at timestamptz NOT NULL,
    sent_at timestamptz,
    PRIMARY KEY (mailing_id, entity, record_id)
);
CREATE INDEX crm_mail_delivery_status ON crm_mail_delivery (mailing_id, status);
CREATE INDEX crm_mail_delivery_record ON crm_mail_delivery (entity, record_id);

-- Addresses that asked for no more marketing mail (退订), whichever record they came from:
-- every later mailing skips them.
CREATE TABLE crm_mail_suppression (
    address text PRIMARY KEY,
    entity text NOT NULL,
    record_id uuid NOT NULL,
    created_at timestamptz NOT NULL
);
