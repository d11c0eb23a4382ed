-- Which record each code of an ERP table is kept in, per sync mapping, with a digest of the
-- values last written from (or to) it: a row whose digest is unchanged is skipped.
CREATE TABLE crm_sync_link (
    sync text NOT NULL,
    code text NOT NULL,
    record_id uuid NOT NULL,
    digest text NOT NULL,
    PRIMARY KEY (sync, code)
);
CREATE INDEX crm_sync_link_record ON crm_sync_link (sync, record_id);

-- Where each mapping's incremental reading stands, and the mapping it was reached with: a
-- changed mapping (a code table) compares every row again.
CREATE TABLE crm_sync_state (
    sync text PRIMARY KEY,
    watermark text,
    fingerprint text NOT NULL
);

-- Each run: how it was started, what it did, the rows it could not keep and, for a dry run,
-- what it would have changed.
CREATE TABLE crm_sync_run (
    id uuid PRIMARY KEY,
    sync text NOT NULL,
    trigger text NOT NULL,
    dry_run boolean NOT NULL,
    full_compare boolean NOT NULL,
    -- running, succeeded, failed
    status text NOT NULL,
    started_by uuid,
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    read_rows bigint NOT NULL DEFAULT 0,
    created bigint NOT NULL DEFAULT 0,
    updated bigint NOT NULL DEFAULT 0,
    deleted bigint NOT NULL DEFAULT 0,
    unchanged bigint NOT NULL DEFAULT 0,
    failed bigint NOT NULL DEFAULT 0,
    message text,
    errors jsonb NOT NULL DEFAULT '[]',
    changes jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX crm_sync_run_log ON crm_sync_run (sync, started_at);
