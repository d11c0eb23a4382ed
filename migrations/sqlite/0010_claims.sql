-- A user's entries in the audit log by action: how many records they claimed from a pool
-- today.
CREATE INDEX crm_audit_actor ON crm_audit (actor, action, at);
