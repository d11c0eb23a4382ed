-- System tables of the engine. Entity tables are not here: they are made from metadata.

-- The catalog version: bumped by every metadata change, watched by every app node.
CREATE TABLE crm_catalog (
    id integer PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL
);
INSERT INTO crm_catalog (id, version) VALUES (1, 0);

-- One row per metadata document (entity, layout, list view, related panels, stage set).
CREATE TABLE crm_meta (
    kind text NOT NULL,
    name text NOT NULL,
    version bigint NOT NULL,
    body jsonb NOT NULL,
    updated_at timestamptz NOT NULL,
    updated_by uuid,
    PRIMARY KEY (kind, name)
);

-- Every metadata change: who, when, before and after, so it can be diffed and rolled back.
CREATE TABLE crm_meta_change (
    id bigserial PRIMARY KEY,
    catalog_version bigint NOT NULL,
    kind text NOT NULL,
    name text NOT NULL,
    before jsonb,
    after jsonb NOT NULL,
    changed_by uuid,
    changed_at timestamptz NOT NULL
);
CREATE INDEX crm_meta_change_doc ON crm_meta_change (kind, name, id);

-- Passwords, kept apart from the user records that admins can see and extend.
CREATE TABLE crm_credential (
    user_id uuid PRIMARY KEY,
    password_hash text NOT NULL,
    must_change boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL
);

-- The roles (metadata documents) each user holds.
CREATE TABLE crm_user_role (
    user_id uuid NOT NULL,
    role text NOT NULL,
    PRIMARY KEY (user_id, role)
);

-- Records shared with a user or a department, for reading or editing.
CREATE TABLE crm_share (
    entity text NOT NULL,
    record_id uuid NOT NULL,
    user_id uuid,
    department_id uuid,
    access text NOT NULL CHECK (access IN ('read', 'edit')),
    created_by uuid,
    created_at timestamptz NOT NULL,
    CHECK ((user_id IS NULL) <> (department_id IS NULL))
);
CREATE UNIQUE INDEX crm_share_grant ON crm_share (entity, record_id, COALESCE(user_id, '00000000-0000-0000-0000-000000000000'), COALESCE(department_id, '00000000-0000-0000-0000-000000000000'));
CREATE INDEX crm_share_user ON crm_share (entity, user_id, record_id);
CREATE INDEX crm_share_department ON crm_share (entity, department_id, record_id);

-- Browser sessions; only a SHA-256 of the session cookie is kept.
CREATE TABLE crm_session (
    id_hash text PRIMARY KEY,
    user_id uuid NOT NULL,
    csrf text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX crm_session_user ON crm_session (user_id);

-- API tokens; only a SHA-256 of the token is kept.
CREATE TABLE crm_token (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    token_hash text NOT NULL UNIQUE,
    name text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX crm_token_user ON crm_token (user_id);

-- Who changed what: one row per write, with each field's before and after.
CREATE TABLE crm_audit (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL,
    actor uuid,
    entity text NOT NULL,
    record_id uuid NOT NULL,
    action text NOT NULL,
    changes jsonb NOT NULL
);
CREATE INDEX crm_audit_record ON crm_audit (entity, record_id, id);

-- Record events for the search indexer, webhooks, mail and reminders, written in the same
-- transaction as the change they describe.
CREATE TABLE crm_outbox (
    seq bigserial PRIMARY KEY,
    at timestamptz NOT NULL,
    entity text NOT NULL,
    record_id uuid NOT NULL,
    event text NOT NULL,
    payload jsonb NOT NULL
);

-- Counters of auto-number fields, one per entity field.
CREATE TABLE crm_sequence (
    name text PRIMARY KEY,
    value bigint NOT NULL
);
