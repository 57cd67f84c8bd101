-- audit: a chain head only moves forward. The application role may UPDATE
-- audit_heads (every batch moves the head), so without this it could set a
-- head back, and the next batches would reuse sequence numbers: a fork
-- (across months, where no UNIQUE (stream, seq) spans the partitions) or
-- appends refused for good. Deleting or truncating heads is refused too.

CREATE OR REPLACE FUNCTION {{schema}}audit_head_forward() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.stream <> OLD.stream OR NEW.seq <= OLD.seq THEN
        RAISE EXCEPTION 'audit: a chain head only moves forward'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS audit_heads_forward_only ON {{schema}}audit_heads;
CREATE TRIGGER audit_heads_forward_only BEFORE UPDATE ON {{schema}}audit_heads
    FOR EACH ROW EXECUTE FUNCTION {{schema}}audit_head_forward();
DROP TRIGGER IF EXISTS audit_heads_no_delete ON {{schema}}audit_heads;
CREATE TRIGGER audit_heads_no_delete BEFORE DELETE ON {{schema}}audit_heads
    FOR EACH ROW EXECUTE FUNCTION {{schema}}audit_refuse_change();
DROP TRIGGER IF EXISTS audit_heads_no_truncate ON {{schema}}audit_heads;
CREATE TRIGGER audit_heads_no_truncate BEFORE TRUNCATE ON {{schema}}audit_heads
    FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}audit_refuse_change();
