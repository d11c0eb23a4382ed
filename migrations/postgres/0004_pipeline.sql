-- Where each write came from (api, screen, import, rule, rollup, approval, conversion, ...).
ALTER TABLE crm_audit ADD COLUMN source text;

-- The transaction that wrote each event. Sequence numbers are drawn before commit, so on a
-- server with concurrent writers a smaller number may become visible after a larger one;
-- consumers read in (tx, seq) order and only below the oldest transaction still running,
-- where nothing new can appear.
ALTER TABLE crm_outbox ADD COLUMN tx xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX crm_outbox_order ON crm_outbox (tx, seq);

-- How far each consumer of the outbox has read: per node for node-local consumers (a search
-- index), once (node '') for shared ones, which one node at a time claims until `claimed_until`.
CREATE TABLE crm_job_cursor (
    consumer text NOT NULL,
    node text NOT NULL,
    tx bigint NOT NULL DEFAULT 0,
    seq bigint NOT NULL DEFAULT 0,
    claimed_by text,
    claimed_until timestamptz,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (consumer, node)
);

-- Events a consumer failed on: retried with a growing delay, then kept as dead for an
-- administrator to look at and send again.
CREATE TABLE crm_job_failure (
    consumer text NOT NULL,
    node text NOT NULL,
    seq bigint NOT NULL,
    attempts bigint NOT NULL,
    error text NOT NULL,
    first_at timestamptz NOT NULL,
    next_at timestamptz NOT NULL,
    dead boolean NOT NULL DEFAULT false,
    PRIMARY KEY (consumer, node, seq)
);
