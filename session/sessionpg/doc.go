// Package sessionpg is the Postgres (pgx v5) [session.Store].
//
// Its tables (session_sessions, session_refresh_tokens,
// session_emergency_grants) are created by [Migrate] from the numbered SQL
// files in migrations/, which a team with its own migration tool can apply
// as they are. Several application instances may share the tables: every
// guarantee of the Store contract is made by a single SQL statement.
//
// A refresh-token rotation is one statement: it marks the presented token
// used, only if it is unused and its session live, and inserts the new
// token, so of concurrent rotations exactly one wins. Only when it changes
// nothing does a second query tell an unknown token from a replay or a dead
// session.
//
//	db, _ := pgxpool.New(ctx, url)
//	if err := sessionpg.Migrate(ctx, db, sessionpg.Config{}); err != nil { … }
//	store, _ := sessionpg.New(db, sessionpg.Config{})
//	m, _ := session.New(session.Config{Store: store, …})
package sessionpg
