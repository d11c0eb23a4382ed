-- Reports users build in the browser and save (D-2): private to their owner, or shared with
-- roles. The document is a report as metadata writes it; who reads it runs it in their own
-- scope, so sharing a report shares its design, never its data.
CREATE TABLE crm_user_report (
    id uuid PRIMARY KEY,
    owner uuid NOT NULL,
    doc jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX crm_user_report_owner ON crm_user_report (owner);

-- The roles a saved report is shared with.
CREATE TABLE crm_user_report_role (
    report_id uuid NOT NULL,
    role text NOT NULL,
    PRIMARY KEY (report_id, role)
);
CREATE INDEX crm_user_report_role_role ON crm_user_report_role (role);
