// Package integritypg is the Postgres adapter of package integrity.
//
// [Store] keeps one row per sealed row in integrity_tags (domain, tenant,
// row id, scope, key id, tag) and one signed digest per scope in
// integrity_digests. Bind it to the transaction that writes a protected
// row with [Store.With] and give that to integrity.Sealer.WithStore, so
// the row, its tag and its scope's digest commit or roll back together:
//
//	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
//		// INSERT or UPDATE the message row, then:
//		return sealer.WithStore(store.With(tx)).Seal(ctx, rec)
//	})
//
// A retention sweep does the same for its deletions: its per-batch hook,
// given the sweep's transaction, the tenant, the table and the deleted ids,
// calls the function [Store.ForgetHook] returns (which is
// sealer.WithStore(store.With(tx)).Forget(ctx, table, tenant, ids)).
// (With package retention's Postgres adapter, the transaction of a
// Target's Deleter is retentionpg.Tx(ctx).) Forget is idempotent, and may
// run before or after the DELETE in that transaction.
//
// [Verifier] checks a declared [Table]: every row's tag, every tag's row
// and every scope's digest, in one read-only snapshot. By default it scans
// the table and integrity_tags at once on two connections that share an
// exported snapshot and matches them in memory, which avoids a full outer
// join in the database (several times slower) at the cost of holding the
// rows one scan has read ahead of the other; VerifierConfig.JoinInDatabase
// chooses the join instead. Findings are appended to integrity_findings,
// which refuses UPDATE, DELETE and TRUNCATE, and handed to a hook.
// [Verifier.Schedule] runs it daily by default, claiming each run in
// integrity_runs so that of several instances only one performs it.
//
// Timestamps are read in binary form (microseconds since 2000-01-01 UTC),
// so neither the session's TimeZone nor its DateStyle can change what a
// row encodes to.
//
// Apply the schema with [Migrate]; the SQL is in migrations/ for teams
// that use their own tool.
package integritypg
