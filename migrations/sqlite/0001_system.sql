-- System tables of the engine. Entity tables are not here: they are made from metadata.

-- The catalog version: bumped by every metadata change, watched by every app node.
CREATE TABLE crm_catalog (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
) STRICT;
INSERT INTO crm_catalog (id, version) VALUES (1, 0);

-- One row per metadata document (entity, layout, list view, related panels, stage set).
CREATE TABLE crm_meta (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT,
    PRIMARY KEY (kind, name)
) STRICT;

-- Every metadata change: who, when, before and after, so it can be diffed and rolled back.
CREATE TABLE crm_meta_change (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    catalog_version INTEGER NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    before TEXT,
    after TEXT NOT NULL,
    changed_by TEXT,
    changed_at TEXT NOT NULL
) STRICT;
CREATE INDEX crm_meta_change_doc ON crm_meta_change (kind, name, id);

-- Passwords, kept apart from the user records that admins can see and extend.
CREATE TABLE crm_credential (
    user_id TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    must_change INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
) STRICT;

-- The roles (metadata documents) each user holds.
CREATE TABLE crm_user_role (
    user_id TEXT NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (user_id, role)
) STRICT;

-- Records shared with a user or a department, for reading or editing.
CREATE TABLE crm_share (
    entity TEXT NOT NULL,
    record_id TEXT NOT NULL,
    user_id TEXT,
    department_id TEXT,
    access TEXT NOT NULL CHECK (access IN ('read', 'edit')),
    created_by TEXT,
    created_at TEXT NOT NULL,
    CHECK ((user_id IS NULL) <> (department_id IS NULL))
) STRICT;
CREATE UNIQUE INDEX crm_share_grant ON crm_share (entity, record_id, COALESCE(user_id, ''), COALESCE(department_id, ''));
CREATE INDEX crm_share_user ON crm_share (entity, user_id, record_id);
CREATE INDEX crm_share_department ON crm_share (entity, department_id, record_id);

-- Browser sessions; only a SHA-256 of the session cookie is kept.
CREATE TABLE crm_session (
    id_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
) STRICT;
CREATE INDEX crm_session_user ON crm_session (user_id);

-- API tokens; only a SHA-256 of the token is kept.
CREATE TABLE crm_token (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT
) STRICT;
CREATE INDEX crm_token_user ON crm_token (user_id);

-- Who changed what: one row per write, with each field's before and after.
CREATE TABLE crm_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT,
    entity TEXT NOT NULL,
    record_id TEXT NOT NULL,
    action TEXT NOT NULL,
    changes TEXT NOT NULL
) STRICT;
CREATE INDEX crm_audit_record ON crm_audit (entity, record_id, id);

-- Record events for the search indexer, webhooks, mail and reminders, written in the same
-- transaction as the change they describe.
CREATE TABLE crm_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    entity TEXT NOT NULL,
    record_id TEXT NOT NULL,
    event TEXT NOT NULL,
    payload TEXT NOT NULL
) STRICT;

-- Counters of auto-number fields, one per entity field.
CREATE TABLE crm_sequence (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
