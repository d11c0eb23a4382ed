-- What a user chose for their screens: language, theme.
CREATE TABLE crm_preference (
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (user_id, name)
) STRICT;

-- Personal saved list views: a name and the list's query (filters, columns, sort).
CREATE TABLE crm_saved_view (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    entity TEXT NOT NULL,
    name TEXT NOT NULL,
    query TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX crm_saved_view_name ON crm_saved_view (user_id, entity, name);
