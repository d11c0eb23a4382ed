-- The packages installed over the core (industry templates, an implementer's own), each with
-- its items as installed: the base against which its next version is compared, so that an
-- upgrade takes what the package changed and keeps what an administrator changed; and the
-- records its data made under a key (`$key`), for its sample data to point at later. A
-- removed package keeps its row (`removed_at`): installed again, its data is not made twice.
CREATE TABLE crm_package (
    name text PRIMARY KEY,
    version text NOT NULL,
    items jsonb NOT NULL,
    keys jsonb NOT NULL DEFAULT '{}',
    sample_data boolean NOT NULL,
    installed_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    removed_at timestamptz,
    updated_by uuid
);
