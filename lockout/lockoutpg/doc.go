// Package lockoutpg is the Postgres store of package lockout, on pgx v5.
//
// Each Store method is a single SQL statement: Reserve is one multi-row
// upsert whose DO UPDATE branch decides, on the locked row, whether the
// attempt is granted; Settle locks the tickets' rows, updates them and
// appends the history record in one statement; Unlock likewise. Row locks
// are always taken in the order the guard lists counters, so concurrent
// attempts cannot deadlock. Every time is the database's now(), so app
// instances with skewed clocks share one view of windows and locks.
//
// Call Migrate once at start-up (every instance may; they take turns under
// an advisory lock). The tables are lockout_counter, lockout_attempt and
// lockout_schema_migrations, in Options.Schema or the search_path. The
// migrations are plain SQL under migrations/.
//
// Store takes a DB, which a *pgxpool.Pool, a *pgx.Conn and a pgx.Tx all
// satisfy. Inside a caller's transaction a reservation is visible to other
// instances only after commit, so the race protection holds only when
// Reserve runs outside a long transaction; use the pool for it.
package lockoutpg
