-- audit: the chain heads, the insert-only entries table (monthly range
-- partitions on the entry time) and the signed checkpoints.
--
-- {{schema}} is replaced by the configured schema and a dot, or by nothing
-- for the connection's search_path.

CREATE TABLE IF NOT EXISTS {{schema}}audit_heads (
    stream text   PRIMARY KEY,
    seq    bigint NOT NULL CHECK (seq >= 0),
    hash   bytea  NOT NULL CHECK (length(hash) = 32)
);

CREATE TABLE IF NOT EXISTS {{schema}}audit_entries (
    stream         text        NOT NULL,
    seq            bigint      NOT NULL CHECK (seq > 0),
    prev_hash      bytea       NOT NULL,
    hash           bytea       NOT NULL,
    tenant         text        NOT NULL,  -- app_id
    at             timestamptz NOT NULL,
    actor          text        NOT NULL,
    session_id     text        NOT NULL,
    ip             text        NOT NULL,  -- as given: inet would normalise it and break the hash
    user_agent     text        NOT NULL,
    type           text        NOT NULL,
    category       text        NOT NULL,
    action         text        NOT NULL,
    resource_type  text        NOT NULL,
    resource_id    text        NOT NULL,
    subject        text        NOT NULL,
    success        boolean     NOT NULL,
    failure_reason text        NOT NULL,
    metadata       jsonb,                 -- string values only; NULL when empty
    retain_until   timestamptz NOT NULL
    -- No key on the parent: a partitioned table's unique keys must hold the
    -- partition key, and (stream, seq, at) would not stop a repeated seq.
    -- Each partition has UNIQUE (stream, seq) of its own instead (see
    -- audit_create_partition), the backstop behind the head lock; the
    -- verifier catches a repeat across months.
) PARTITION BY RANGE (at);

CREATE INDEX IF NOT EXISTS audit_entries_tenant_at ON {{schema}}audit_entries (tenant, at DESC, stream DESC, seq DESC);
CREATE INDEX IF NOT EXISTS audit_entries_actor ON {{schema}}audit_entries (tenant, actor, at DESC);
CREATE INDEX IF NOT EXISTS audit_entries_resource ON {{schema}}audit_entries (tenant, resource_type, resource_id, at DESC);
CREATE INDEX IF NOT EXISTS audit_entries_subject ON {{schema}}audit_entries (tenant, subject, at DESC) WHERE subject <> '';

CREATE TABLE IF NOT EXISTS {{schema}}audit_checkpoints (
    stream    text        NOT NULL,
    seq       bigint      NOT NULL,
    kind      text        NOT NULL,
    head      bytea       NOT NULL,
    at        timestamptz NOT NULL,
    signature bytea       NOT NULL,
    PRIMARY KEY (stream, seq, kind)
);

-- Insert-only: every UPDATE, DELETE and TRUNCATE is refused. Old entries
-- leave only by dropping whole partitions (auditpg's DropExpired).
CREATE OR REPLACE FUNCTION {{schema}}audit_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit: % on % is not allowed: the audit log is insert-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

DROP TRIGGER IF EXISTS audit_entries_insert_only ON {{schema}}audit_entries;
CREATE TRIGGER audit_entries_insert_only BEFORE UPDATE OR DELETE ON {{schema}}audit_entries
    FOR EACH ROW EXECUTE FUNCTION {{schema}}audit_refuse_change();
DROP TRIGGER IF EXISTS audit_entries_no_truncate ON {{schema}}audit_entries;
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON {{schema}}audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}audit_refuse_change();

DROP TRIGGER IF EXISTS audit_checkpoints_insert_only ON {{schema}}audit_checkpoints;
CREATE TRIGGER audit_checkpoints_insert_only BEFORE UPDATE OR DELETE ON {{schema}}audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION {{schema}}audit_refuse_change();
DROP TRIGGER IF EXISTS audit_checkpoints_no_truncate ON {{schema}}audit_checkpoints;
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON {{schema}}audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}audit_refuse_change();

-- audit_create_partition creates the partition of the month holding day,
-- with its UNIQUE (stream, seq) and its own TRUNCATE guard (a TRUNCATE of a
-- partition does not fire the parent's statement triggers). It is a no-op
-- for a month that exists.
CREATE OR REPLACE FUNCTION {{schema}}audit_create_partition(day date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    lo   date := date_trunc('month', day)::date;
    hi   date := (date_trunc('month', day) + interval '1 month')::date;
    part text := 'audit_entries_' || to_char(lo, 'YYYYMM');
    sch  text := (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.oid = '{{schema}}audit_entries'::regclass);
BEGIN
    IF to_regclass(quote_ident(sch) || '.' || quote_ident(part)) IS NOT NULL THEN
        RETURN;
    END IF;
    EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.audit_entries FOR VALUES FROM (%L) TO (%L)',
                   sch, part, sch, lo::timestamp AT TIME ZONE 'UTC', hi::timestamp AT TIME ZONE 'UTC');
    EXECUTE format('CREATE UNIQUE INDEX %I ON %I.%I (stream, seq)', part || '_stream_seq', sch, part);
    EXECUTE format('CREATE TRIGGER audit_partition_no_truncate BEFORE TRUNCATE ON %I.%I FOR EACH STATEMENT EXECUTE FUNCTION %I.audit_refuse_change()',
                   sch, part, sch);
END
$$;
