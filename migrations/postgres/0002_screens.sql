-- What a user chose for their screens: language, theme.
CREATE TABLE crm_preference (
    user_id uuid NOT NULL,
    name text NOT NULL,
    value text NOT NULL,
    PRIMARY KEY (user_id, name)
);

-- Personal saved list views: a name and the list's query (filters, columns, sort).
CREATE TABLE crm_saved_view (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    entity text NOT NULL,
    name text NOT NULL,
    query text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX crm_saved_view_name ON crm_saved_view (user_id, entity, name);
