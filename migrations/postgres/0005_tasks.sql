-- Long work a person started (an import, a duplicate scan, a reindex): how far it got and
-- what came of it, so a progress bar can follow it from any node and its report outlives it.
CREATE TABLE crm_task (
    id uuid PRIMARY KEY,
    kind text NOT NULL,
    entity text,
    state text NOT NULL,
    done bigint NOT NULL DEFAULT 0,
    total bigint,
    result jsonb,
    error text,
    node text NOT NULL,
    created_by uuid,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    finished_at timestamptz
);
CREATE INDEX crm_task_kind ON crm_task (kind, entity, created_at);

-- Pairs of records a person said are not duplicates of each other (`a` < `b`): the duplicate
-- scan and the check at entry leave them apart from then on.
CREATE TABLE crm_not_duplicate (
    entity text NOT NULL,
    a uuid NOT NULL,
    b uuid NOT NULL,
    decided_by uuid,
    decided_at timestamptz NOT NULL,
    PRIMARY KEY (entity, a, b)
);
