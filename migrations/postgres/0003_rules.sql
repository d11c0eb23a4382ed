-- Every move of a record between stages, with the time it spent in the stage it left.
CREATE TABLE crm_stage_history (
    id bigserial PRIMARY KEY,
    entity text NOT NULL,
    record_id uuid NOT NULL,
    field text NOT NULL,
    from_stage text,
    to_stage text NOT NULL,
    actor uuid,
    at timestamptz NOT NULL,
    seconds_in_previous bigint
);
CREATE INDEX crm_stage_history_record ON crm_stage_history (entity, record_id, id);

-- Reminders for users: from rules (notify) and scheduled rules; done when the user says so.
CREATE TABLE crm_reminder (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    message text NOT NULL,
    entity text,
    record_id uuid,
    rule text,
    due_at timestamptz NOT NULL,
    done_at timestamptz,
    created_at timestamptz NOT NULL
);
CREATE INDEX crm_reminder_open ON crm_reminder (user_id, due_at) WHERE done_at IS NULL;

-- When each scheduled rule last ran, so a restart neither skips nor repeats a run.
CREATE TABLE crm_schedule_run (
    rule text PRIMARY KEY,
    last_run_at timestamptz NOT NULL
);

-- Approval steps of records (submit, approve, reject, recall), with comments.
CREATE TABLE crm_approval (
    id bigserial PRIMARY KEY,
    entity text NOT NULL,
    record_id uuid NOT NULL,
    action text NOT NULL,
    from_status text,
    to_status text NOT NULL,
    actor uuid NOT NULL,
    comment text,
    at timestamptz NOT NULL
);
CREATE INDEX crm_approval_record ON crm_approval (entity, record_id, id);
