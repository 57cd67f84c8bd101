// Package auditpg is the Postgres store of package audit, on pgx v5.
//
// # Schema
//
// [Store.Migrate] applies the embedded migrations (see [Migrations]) under
// an advisory lock, so several instances may start at once. The tables are
// prefixed audit_ and live in [Config.Schema] or the search_path:
//
//   - audit_heads: one row per stream, the chain head (seq, hash);
//   - audit_entries: the entries, range-partitioned by month on the entry
//     time, with UNIQUE (stream, seq) in each partition;
//   - audit_checkpoints: the signed checkpoints.
//
// Triggers refuse UPDATE, DELETE and TRUNCATE on entries and checkpoints,
// including TRUNCATE of a single partition. Triggers stop mistakes and the
// application role, not a superuser; the hash chain and the checkpoints
// published outside the database are what catch a superuser. Revoke the
// application role's other rights as well (README.md shows how).
//
// # Writers
//
// [Store.Append] serves audit.Log's group commit: the batch and the head
// move are one statement, ordered across instances by the head row's lock.
// [Store.AppendTx] appends inside the caller's transaction, so an entry
// commits atomically with the change it describes; it holds the stream's
// head lock until that transaction ends.
//
// # Partitions
//
// Migrate creates the previous month through [Config.PartitionsAhead]
// months ahead; Append creates a missing month on demand, and
// [Store.EnsurePartitions] lets a scheduled job create months ahead.
package auditpg
