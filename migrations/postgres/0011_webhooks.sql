-- One row per event a webhook is to post: its key (the delivery id receivers deduplicate by),
-- what it posts, and where its sending stands. An event is queued once per webhook.
CREATE TABLE crm_webhook_delivery (
    id uuid PRIMARY KEY,
    webhook text NOT NULL,
    event_seq bigint NOT NULL,
    entity text NOT NULL,
    record_id uuid NOT NULL,
    event text NOT NULL,
    body text NOT NULL,
    -- pending, delivered, failed (given up, until sent again by hand)
    status text NOT NULL,
    attempts bigint NOT NULL DEFAULT 0,
    next_at timestamptz NOT NULL,
    -- a node sending it holds it until then
    claimed_until timestamptz,
    created_at timestamptz NOT NULL,
    delivered_at timestamptz,
    UNIQUE (webhook, event_seq)
);
CREATE INDEX crm_webhook_delivery_due ON crm_webhook_delivery (status, next_at);
CREATE INDEX crm_webhook_delivery_log ON crm_webhook_delivery (webhook, created_at);

-- Each attempt at a delivery: the receiver's answer, or why there was none, and how long it
-- took.
CREATE TABLE crm_webhook_attempt (
    delivery uuid NOT NULL,
    at timestamptz NOT NULL,
    status_code bigint,
    answer text,
    duration_ms bigint NOT NULL
);
CREATE INDEX crm_webhook_attempt_delivery ON crm_webhook_attempt (delivery, at);
