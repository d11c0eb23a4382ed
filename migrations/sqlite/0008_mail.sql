-- Settings an administrator keeps in the admin screens (the mail server), one JSON document
-- per name. Secrets inside (a password) are sealed with the node's secret key.
CREATE TABLE crm_setting (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT
) STRICT;

-- One row per recipient of a mailing. Its key is the send's idempotency key: a recipient is
-- queued once per mailing, and a mail that was sent is never sent again.
CREATE TABLE crm_mail_delivery (
    mailing_id TEXT NOT NULL,
    entity TEXT NOT NULL,
    record_id TEXT NOT NULL,
    -- draft, queued, sending (handed to the server, its answer not yet recorded), sent,
    -- failed, skipped (no address, or unsubscribed)
    status TEXT NOT NULL,
    address TEXT,
    -- the subject as merged for the recipient
    subject TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    -- the server's answer to a failure, or why a recipient was skipped
    answer TEXT,
    updated_at TEXT NOT NULL,
    sent_at TEXT,
    PRIMARY KEY (mailing_id, entity, record_id)
) STRICT;
CREATE INDEX crm_mail_delivery_status ON crm_mail_delivery (mailing_id, status);
CREATE INDEX crm_mail_delivery_record ON crm_mail_delivery (entity, record_id);

-- Addresses that asked for no more marketing mail (退订), whichever record they came from:
-- every later mailing skips them.
CREATE TABLE crm_mail_suppression (
    address TEXT PRIMARY KEY,
    entity TEXT NOT NULL,
    record_id TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
