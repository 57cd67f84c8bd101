-- integrity: tags beside each protected row, signed scope digests, and the
-- verifier's findings. Applied by integritypg.Migrate with search_path set
-- to the configured schema.

CREATE TABLE IF NOT EXISTS integrity_tags (
    domain  text COLLATE "C" NOT NULL,
    app_id  text COLLATE "C" NOT NULL,
    row_id  text COLLATE "C" NOT NULL,
    scope   text COLLATE "C" NOT NULL,
    key_id  bigint NOT NULL,
    tag     bytea NOT NULL,
    PRIMARY KEY (domain, app_id, row_id)
);

-- No index on key_id: a reseal job pages through a domain in key order
-- anyway, and without it replacing a tag can be a HOT update.

CREATE TABLE IF NOT EXISTS integrity_digests (
    domain    text COLLATE "C" NOT NULL,
    app_id    text COLLATE "C" NOT NULL,
    scope     text COLLATE "C" NOT NULL,
    row_count bigint NOT NULL,
    sum       bytea NOT NULL,
    key_id    bigint NOT NULL,
    tag       bytea NOT NULL,
    PRIMARY KEY (domain, app_id, scope)
);

-- Findings are evidence: append-only.
CREATE TABLE IF NOT EXISTS integrity_findings (
    id         bigserial PRIMARY KEY,
    run_id     text NOT NULL,
    found_at   timestamptz NOT NULL DEFAULT now(),
    domain     text NOT NULL,
    app_id     text NOT NULL,
    scope      text NOT NULL,
    row_id     text NOT NULL,
    kind       text NOT NULL,
    key_id     bigint NOT NULL,
    want_count bigint NOT NULL,
    got_count  bigint NOT NULL
);

CREATE INDEX IF NOT EXISTS integrity_findings_run ON integrity_findings (run_id);

CREATE OR REPLACE FUNCTION integrity_findings_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'integrity_findings is append-only';
END;
$$;

CREATE OR REPLACE TRIGGER integrity_findings_no_update
    BEFORE UPDATE OR DELETE ON integrity_findings
    FOR EACH ROW EXECUTE FUNCTION integrity_findings_append_only();

CREATE OR REPLACE TRIGGER integrity_findings_no_truncate
    BEFORE TRUNCATE ON integrity_findings
    FOR EACH STATEMENT EXECUTE FUNCTION integrity_findings_append_only();

-- One row per scheduled job; claiming a run moves next_run forward, so
-- only one instance runs each period.
CREATE TABLE IF NOT EXISTS integrity_runs (
    job           text PRIMARY KEY,
    next_run      timestamptz NOT NULL,
    last_started  timestamptz,
    last_finished timestamptz,
    last_run_id   text
);
