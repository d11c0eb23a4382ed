-- One row per event a webhook is to post: its key (the delivery id receivers deduplicate by),
-- what it posts, and where its sending stands. An event is queued once per webhook.
CREATE TABLE crm_webhook_delivery (
    id TEXT PRIMARY KEY,
    webhook TEXT NOT NULL,
    event_seq INTEGER NOT NULL,
    entity TEXT NOT NULL,
    record_id TEXT NOT NULL,
    event TEXT NOT NULL,
    body TEXT NOT NULL,
    -- pending, delivered, failed (given up, until sent again by hand)
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at TEXT NOT NULL,
    -- a node sending it holds it until then
    claimed_until TEXT,
    created_at TEXT NOT NULL,
    delivered_at TEXT,
    UNIQUE (webhook, event_seq)
) STRICT;
CREATE INDEX crm_webhook_delivery_due ON crm_webhook_delivery (status, next_at);
CREATE INDEX crm_webhook_delivery_log ON crm_webhook_delivery (webhook, created_at);

-- Each attempt at a delivery: the receiver's answer, or why there was none, and how long it
-- took.
CREATE TABLE crm_webhook_attempt (
    delivery TEXT NOT NULL,
    at TEXT NOT NULL,
    status_code INTEGER,
    answer TEXT,
    duration_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX crm_webhook_attempt_delivery ON crm_webhook_attempt (delivery, at);
