-- Which record each code of an ERP table is kept in, per sync mapping, with a digest of the
-- values last written from (or to) it: a row whose digest is unchanged is skipped.
CREATE TABLE crm_sync_link (
    sync TEXT NOT NULL,
    code TEXT NOT NULL,
    record_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (sync, code)
) STRICT;
CREATE INDEX crm_sync_link_record ON crm_sync_link (sync, record_id);

-- Where each mapping's incremental reading stands, and the mapping it was reached with: a
-- changed mapping (a code table) compares every row again.
CREATE TABLE crm_sync_state (
    sync TEXT PRIMARY KEY,
    watermark TEXT,
    fingerprint TEXT NOT NULL
) STRICT;

-- Each run: how it was started, what it did, the rows it could not keep and, for a dry run,
-- what it would have changed.
CREATE TABLE crm_sync_run (
    id TEXT PRIMARY KEY,
    sync TEXT NOT NULL,
    trigger TEXT NOT NULL,
    dry_run INTEGER NOT NULL,
    full_compare INTEGER NOT NULL,
    -- running, succeeded, failed
    status TEXT NOT NULL,
    started_by TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    read_rows INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL DEFAULT 0,
    updated INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    unchanged INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    message TEXT,
    errors TEXT NOT NULL DEFAULT '[]',
    changes TEXT NOT NULL DEFAULT '[]'
) STRICT;
CREATE INDEX crm_sync_run_log ON crm_sync_run (sync, started_at);
