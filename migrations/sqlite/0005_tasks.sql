-- Long work a person started (an import, a duplicate scan, a reindex): how far it got and
-- what came of it, so a progress bar can follow it from any node and its report outlives it.
CREATE TABLE crm_task (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    entity TEXT,
    state TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    total INTEGER,
    result TEXT,
    error TEXT,
    node TEXT NOT NULL,
    created_by TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT
) STRICT;
CREATE INDEX crm_task_kind ON crm_task (kind, entity, created_at);

-- Pairs of records a person said are not duplicates of each other (`a` < `b`): the duplicate
-- scan and the check at entry leave them apart from then on.
CREATE TABLE crm_not_duplicate (
    entity TEXT NOT NULL,
    a TEXT NOT NULL,
    b TEXT NOT NULL,
    decided_by TEXT,
    decided_at TEXT NOT NULL,
    PRIMARY KEY (entity, a, b)
) STRICT;
