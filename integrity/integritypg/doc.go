// Package integritypg is the Postgres adapter of package integrity: a
// [Store] that keeps row tags in integrity_tags and signed scope digests
// in integrity_digests, written in the caller's transaction, and a
// streaming [Verifier] that reads a declared application table joined with
// its tags, reports every bad row by id, appends its findings to
// integrity_findings (which refuses updates and deletes) and hands them to
// a hook, on a schedule that one instance at a time performs.
//
// Apply the schema with [Migrate]; the SQL is in migrations/ for teams
// that use their own tool.
package integritypg
