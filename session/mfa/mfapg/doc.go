// Package mfapg is the Postgres adapter of session/mfa: a [Store] that
// implements mfa.Store and mfa.PolicyStore on pgx v5, with embedded
// migrations.
//
// The replay defence is one conditional UPDATE: the last used time step
// is raised only where it is lower than the new one, so of several app
// instances racing with one code, Postgres lets exactly one row update
// succeed. Recovery codes are spent the same way (used_at IS NULL).
//
// Tables are prefixed mfa_ and live in Options.Schema, or in the
// connection's search_path when it is empty. The SQL in migrations/ can
// be applied by hand or by another tool; [Migrate] applies it itself,
// idempotently, under an advisory lock.
package mfapg
