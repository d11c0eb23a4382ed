-- Merges of duplicate records (C-6): what each did, so that it can be shown and undone. The
-- business tables keep none of it: a loser is an ordinary record in the recycle bin.
CREATE TABLE crm_merge (
    id TEXT PRIMARY KEY,
    entity TEXT NOT NULL,
    survivor TEXT NOT NULL,
    -- The survivor's values before the merge, of the fields it changed: {field: value}.
    survivor_before TEXT NOT NULL,
    -- The survivor's version after the merge: undo is refused once it has moved on.
    survivor_version INTEGER NOT NULL,
    merged_by TEXT NOT NULL,
    merged_at TEXT NOT NULL,
    undone_by TEXT,
    undone_at TEXT
) STRICT;
CREATE INDEX crm_merge_survivor ON crm_merge (entity, survivor, merged_at);

-- The records a merge put in the recycle bin, merged into its survivor.
CREATE TABLE crm_merge_loser (
    merge_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    record_id TEXT NOT NULL,
    PRIMARY KEY (merge_id, position)
) STRICT;
CREATE INDEX crm_merge_loser_record ON crm_merge_loser (record_id);

-- Every reference a merge moved from a loser to the survivor: (entity, record, field).
CREATE TABLE crm_merge_reference (
    merge_id TEXT NOT NULL,
    entity TEXT NOT NULL,
    record_id TEXT NOT NULL,
    field TEXT NOT NULL,
    loser TEXT NOT NULL,
    PRIMARY KEY (merge_id, entity, record_id, field)
) STRICT;
