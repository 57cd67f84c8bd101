-- retention: policies, legal holds, sweep checkpoints and leases.
-- Applied by retentionpg.Migrate with search_path set to the configured
-- schema; teams with their own migration tool can apply it as it is.

-- Every change to a tenant's retention policy, never edited.
CREATE TABLE retention_policies (
    app_id       text        NOT NULL,
    version      bigint      NOT NULL CHECK (version > 0),
    kind         text        NOT NULL CHECK (kind IN ('period', 'minimum')),
    channel      text        NOT NULL DEFAULT '',   -- '' is the tenant-wide period
    period       interval    NOT NULL,
    author       text        NOT NULL,
    set_at       timestamptz NOT NULL,
    effective_at timestamptz NOT NULL,
    PRIMARY KEY (app_id, version)
);

-- Legal holds. A row is active while released_at is NULL.
CREATE TABLE retention_holds (
    app_id      text        NOT NULL,
    id          bigint      GENERATED ALWAYS AS IDENTITY,
    kind        text        NOT NULL CHECK (kind IN ('tenant', 'channel', 'user', 'resource')),
    scope_id    text        NOT NULL,
    reason      text        NOT NULL,
    author      text        NOT NULL,
    created_at  timestamptz NOT NULL,
    released_at timestamptz,
    released_by text,
    PRIMARY KEY (app_id, id)
);

-- The sweep's hold check reads only active holds.
CREATE INDEX retention_holds_active ON retention_holds (app_id, kind, scope_id) WHERE released_at IS NULL;

-- Where an unfinished sweep of a scope resumes: the last row of its last
-- committed batch, in (time, id) order.
CREATE TABLE retention_checkpoints (
    app_id      text        NOT NULL,
    target      text        NOT NULL,
    scope       text        NOT NULL,
    cursor_time timestamptz NOT NULL,
    cursor_id   text        NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (app_id, target, scope)
);

-- Which instance sweeps a tenant's rows of a target, until when. The lease
-- is what keeps a second instance off them; like every table here it
-- carries the tenant, so it shards with the tenant's other rows.
CREATE TABLE retention_leases (
    app_id      text        NOT NULL,
    target      text        NOT NULL,
    owner       text        NOT NULL,
    lease_until timestamptz NOT NULL,
    PRIMARY KEY (app_id, target)
);
