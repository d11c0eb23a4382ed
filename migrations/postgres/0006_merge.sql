-- Merges of duplicate records (C-6): what each did, so that it can be shown and undone. The
-- business tables keep none of it: a loser is an ordinary record in the recycle bin.
CREATE TABLE crm_merge (
    id uuid PRIMARY KEY,
    entity text NOT NULL,
    survivor uuid NOT NULL,
    -- The survivor's values before the merge, of the fields it changed: {field: value}.
    survivor_before jsonb NOT NULL,
    -- The survivor's version after the merge: undo is refused once it has moved on.
    survivor_version bigint NOT NULL,
    merged_by uuid NOT NULL,
    merged_at timestamptz NOT NULL,
    undone_by uuid,
    undone_at timestamptz
);
CREATE INDEX crm_merge_survivor ON crm_merge (entity, survivor, merged_at);

-- The records a merge put in the recycle bin, merged into its survivor.
CREATE TABLE crm_merge_loser (
    merge_id uuid NOT NULL,
    position bigint NOT NULL,
    record_id uuid NOT NULL,
    PRIMARY KEY (merge_id, position)
);
CREATE INDEX crm_merge_loser_record ON crm_merge_loser (record_id);

-- Every reference a merge moved from a loser to the survivor: (entity, record, field).
CREATE TABLE crm_merge_reference (
    merge_id uuid NOT NULL,
    entity text NOT NULL,
    record_id uuid NOT NULL,
    field text NOT NULL,
    loser uuid NOT NULL,
    PRIMARY KEY (merge_id, entity, record_id, field)
);
