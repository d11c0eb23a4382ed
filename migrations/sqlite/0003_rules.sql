-- Every move of a record between stages, with the time it spent in the stage it left.
CREATE TABLE crm_stage_history (
    id INTEGER PRIMARY KEY,
    entity TEXT NOT NULL,
    record_id TEXT NOT NULL,
    field TEXT NOT NULL,
    from_stage TEXT,
    to_stage TEXT NOT NULL,
    actor TEXT,
    at TEXT NOT NULL,
    seconds_in_previous INTEGER
) STRICT;
CREATE INDEX crm_stage_history_record ON crm_stage_history (entity, record_id, id);

-- Reminders for users: from rules (notify) and scheduled rules; done when the user says so.
CREATE TABLE crm_reminder (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    message TEXT NOT NULL,
    entity TEXT,
    record_id TEXT,
    rule TEXT,
    due_at TEXT NOT NULL,
    done_at TEXT,
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX crm_reminder_open ON crm_reminder (user_id, due_at) WHERE done_at IS NULL;

-- When each scheduled rule last ran, so a restart neither skips nor repeats a run.
CREATE TABLE crm_schedule_run (
    rule TEXT PRIMARY KEY,
    last_run_at TEXT NOT NULL
) STRICT;

-- Approval steps of records (submit, approve, reject, recall), with comments.
CREATE TABLE crm_approval (
    id INTEGER PRIMARY KEY,
    entity TEXT NOT NULL,
    record_id TEXT NOT NULL,
    action TEXT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    actor TEXT NOT NULL,
    comment TEXT,
    at TEXT NOT NULL
) STRICT;
CREATE INDEX crm_approval_record ON crm_approval (entity, record_id, id);
