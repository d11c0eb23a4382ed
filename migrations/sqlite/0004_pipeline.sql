-- Where each write came from (api, screen, import, rule, rollup, approval, conversion, ...).
ALTER TABLE crm_audit ADD COLUMN source TEXT;

-- How far each consumer of the outbox has read: per node for node-local consumers (a search
-- index), once (node '') for shared ones, which one node at a time claims until `claimed_until`.
CREATE TABLE crm_job_cursor (
    consumer TEXT NOT NULL,
    node TEXT NOT NULL,
    tx INTEGER NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL DEFAULT 0,
    claimed_by TEXT,
    claimed_until TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (consumer, node)
) STRICT;

-- Events a consumer failed on: retried with a growing delay, then kept as dead for an
-- administrator to look at and send again.
CREATE TABLE crm_job_failure (
    consumer TEXT NOT NULL,
    node TEXT NOT NULL,
    seq INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    error TEXT NOT NULL,
    first_at TEXT NOT NULL,
    next_at TEXT NOT NULL,
    dead INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (consumer, node, seq)
) STRICT;
