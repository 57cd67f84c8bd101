-- audit: the Merkle tree over each stream (package audit/tlog) and its
-- signed tree heads.
--
-- audit_tree_hashes holds the tree's stored hashes (leaf and interior, in
-- the storage order of golang.org/x/mod/sumdb/tlog): one row per appended
-- batch, written in the batch's own statement, whose hashes are the
-- 32-byte hashes from storage index first_index on. The table is not
-- partitioned, so dropping an expired entry partition keeps every hash a
-- proof about the remaining entries needs (about 64 bytes per entry).
-- It is insert-only like the entries: an altered hash makes proofs fail
-- against the signed heads, never pass.

CREATE TABLE IF NOT EXISTS {{schema}}audit_tree_hashes (
    stream      text   NOT NULL,
    first_index bigint NOT NULL CHECK (first_index >= 0),
    hashes      bytea  NOT NULL CHECK (length(hashes) > 0 AND length(hashes) % 32 = 0),
    PRIMARY KEY (stream, first_index)
);
-- Random bytes do not compress; EXTERNAL skips trying and lets a read of
-- one hash fetch only its chunk of a large batch.
ALTER TABLE {{schema}}audit_tree_hashes ALTER COLUMN hashes SET STORAGE EXTERNAL;

CREATE TABLE IF NOT EXISTS {{schema}}audit_tree_heads (
    stream text        NOT NULL,
    size   bigint      NOT NULL CHECK (size >= 0),
    note   text        NOT NULL,  -- a C2SP signed note: checkpoint and signatures
    at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, size)
);

DROP TRIGGER IF EXISTS audit_tree_hashes_insert_only ON {{schema}}audit_tree_hashes;
CREATE TRIGGER audit_tree_hashes_insert_only BEFORE UPDATE OR DELETE ON {{schema}}audit_tree_hashes
    FOR EACH ROW EXECUTE FUNCTION {{schema}}audit_refuse_change();
DROP TRIGGER IF EXISTS audit_tree_hashes_no_truncate ON {{schema}}audit_tree_hashes;
CREATE TRIGGER audit_tree_hashes_no_truncate BEFORE TRUNCATE ON {{schema}}audit_tree_hashes
    FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}audit_refuse_change();

DROP TRIGGER IF EXISTS audit_tree_heads_insert_only ON {{schema}}audit_tree_heads;
CREATE TRIGGER audit_tree_heads_insert_only BEFORE UPDATE OR DELETE ON {{schema}}audit_tree_heads
    FOR EACH ROW EXECUTE FUNCTION {{schema}}audit_refuse_change();
DROP TRIGGER IF EXISTS audit_tree_heads_no_truncate ON {{schema}}audit_tree_heads;
CREATE TRIGGER audit_tree_heads_no_truncate BEFORE TRUNCATE ON {{schema}}audit_tree_heads
    FOR EACH STATEMENT EXECUTE FUNCTION {{schema}}audit_refuse_change();
