package sessionpg

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chatsdk/compliance/internal/pgmigrate"
	"github.com/chatsdk/compliance/session"
)

// DB is what the store needs of a database handle: a *pgxpool.Pool, a
// *pgx.Conn and a pgx.Tx all satisfy it, so a session can be opened in the
// caller's transaction.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// TxBeginner is a DB that can begin a transaction, as [Migrate] needs.
type TxBeginner interface {
	DB
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Config configures a Store and Migrate. The zero value is usable.
type Config struct {
	// Schema holds the session_… tables. Defaults to none: names are
	// unqualified and resolved by the connection's search_path.
	Schema string
}

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a session.Store on Postgres. It is safe for concurrent use.
type Store struct {
	db DB
	q  queries
}

var _ session.Store = (*Store)(nil)

// queries are the store's SQL, with the table names filled in.
type queries struct {
	create, get, rotate, lookup, touch, setAMR, revoke, revokeUser, userSessions, grants, purge string
}

// columns are the session columns every query returns, in scan order.
const columns = `id, app_id, user_id, amr, created_at, last_seen_at, expires_at, revoked_at, revoke_reason, emergency_grant_id`

// New returns a Store on db. Call Migrate first.
func New(db DB, cfg Config) (*Store, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: sessionpg: nil database", session.ErrInvalidConfig)
	}
	name := func(table string) string {
		if cfg.Schema == "" {
			return pgx.Identifier{table}.Sanitize()
		}
		return pgx.Identifier{cfg.Schema, table}.Sanitize()
	}
	r := strings.NewReplacer(
		"{sessions}", name("session_sessions"),
		"{refresh}", name("session_refresh_tokens"),
		"{grants}", name("session_emergency_grants"),
		"{cols}", columns,
	)
	q := queries{
		create: `WITH s AS (
				INSERT INTO {sessions} (` + columns + `)
				VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, '', $8)
				RETURNING id, app_id, created_at
			), r AS (
				INSERT INTO {refresh} (token_hash, app_id, session_id, created_at)
				SELECT $9, app_id, id, created_at FROM s
			)
			INSERT INTO {grants} (app_id, id, user_id, granted_by, reason, session_id, created_at, expires_at)
			SELECT s.app_id, $10::text, $3, $11, $12, s.id, $13, $14 FROM s WHERE $10::text IS NOT NULL`,
		get: `SELECT {cols} FROM {sessions} WHERE id = $1`,
		// $1 old hash, $2 new hash, $3 now, $4 idle cutoff, $5 grace cutoff
		// (NULL without a grace window: then no used token passes).
		rotate: `WITH old AS (
				UPDATE {refresh} r SET used_at = COALESCE(r.used_at, $3)
				FROM {sessions} s
				WHERE r.token_hash = $1 AND s.id = r.session_id
				  AND (r.used_at IS NULL OR r.used_at > $5::timestamptz)
				  AND s.revoked_at IS NULL AND s.expires_at > $3 AND s.last_seen_at > $4
				RETURNING s.id, s.app_id, s.user_id, s.amr, s.created_at, s.last_seen_at, s.expires_at,
				          s.revoked_at, s.revoke_reason, s.emergency_grant_id
			), ins AS (
				INSERT INTO {refresh} (token_hash, app_id, session_id, created_at)
				SELECT $2, app_id, id, $3 FROM old
			)
			SELECT {cols} FROM old`,
		lookup: `SELECT r.used_at, s.id, s.app_id, s.user_id, s.amr, s.created_at, s.last_seen_at, s.expires_at,
				s.revoked_at, s.revoke_reason, s.emergency_grant_id
			FROM {refresh} r JOIN {sessions} s ON s.id = r.session_id
			WHERE r.token_hash = $1`,
		// $1 id, $2 now, $3 idle cutoff.
		touch: `WITH u AS (
				UPDATE {sessions} SET last_seen_at = $2
				WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2 AND last_seen_at > $3 AND last_seen_at < $2
				RETURNING {cols}
			)
			SELECT {cols} FROM u
			UNION ALL
			SELECT {cols} FROM {sessions} WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM u)`,
		setAMR: `WITH u AS (
				UPDATE {sessions} SET amr = $2 WHERE id = $1 AND revoked_at IS NULL
				RETURNING {cols}
			)
			SELECT {cols} FROM u
			UNION ALL
			SELECT {cols} FROM {sessions} WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM u)`,
		revoke: `WITH u AS (
				UPDATE {sessions} SET revoked_at = $2, revoke_reason = $3
				WHERE id = $1 AND revoked_at IS NULL
				RETURNING id
			)
			SELECT EXISTS (SELECT 1 FROM u), EXISTS (SELECT 1 FROM {sessions} WHERE id = $1)`,
		revokeUser: `UPDATE {sessions} SET revoked_at = $3, revoke_reason = $4
			WHERE app_id = $1 AND user_id = $2 AND revoked_at IS NULL
			RETURNING id`,
		userSessions: `SELECT {cols} FROM {sessions}
			WHERE app_id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > $3
			ORDER BY created_at DESC, id`,
		grants: `SELECT id, app_id, user_id, granted_by, reason, session_id, created_at, expires_at
			FROM {grants} WHERE app_id = $1 AND created_at >= $2 AND created_at < $3
			ORDER BY created_at, id`,
		purge: `DELETE FROM {sessions} WHERE id IN (
				SELECT id FROM {sessions} WHERE expires_at < $1 ORDER BY expires_at LIMIT $2
				FOR UPDATE SKIP LOCKED)`,
	}
	for _, p := range []*string{&q.create, &q.get, &q.rotate, &q.lookup, &q.touch, &q.setAMR, &q.revoke, &q.revokeUser, &q.userSessions, &q.grants, &q.purge} {
		*p = r.Replace(*p)
	}
	return &Store{db: db, q: q}, nil
}

// Migrate applies the embedded migrations not yet applied, in one
// transaction under an advisory lock, so instances starting together apply
// each once. It is idempotent.
func Migrate(ctx context.Context, db TxBeginner, cfg Config) error {
	return pgmigrate.Apply(ctx, db, pgmigrate.Set{Name: "sessionpg", Table: "session_migrations", FS: migrations, Dir: "migrations"}, cfg.Schema)
}

// scanSession scans the session columns, after any leading destinations.
func scanSession(row pgx.Row, lead ...any) (session.Session, error) {
	var (
		s       session.Session
		revoked *time.Time
		reason  string
	)
	dest := append(lead, &s.ID, &s.AppID, &s.UserID, &s.AMR, &s.CreatedAt, &s.LastSeenAt, &s.ExpiresAt, &revoked, &reason, &s.EmergencyGrantID)
	if err := row.Scan(dest...); err != nil {
		return session.Session{}, err
	}
	s.CreatedAt, s.LastSeenAt, s.ExpiresAt = s.CreatedAt.UTC(), s.LastSeenAt.UTC(), s.ExpiresAt.UTC()
	if revoked != nil {
		s.RevokedAt = revoked.UTC()
	}
	s.RevokeReason = session.Reason(reason)
	return s, nil
}

// one scans a single session, mapping no row to session.ErrNotFound.
func one(row pgx.Row, op string) (session.Session, error) {
	s, err := scanSession(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return session.Session{}, session.ErrNotFound
	}
	if err != nil {
		return session.Session{}, fmt.Errorf("sessionpg: %s: %w", op, err)
	}
	return s, nil
}

// CreateSession implements session.Store, in one statement.
func (st *Store) CreateSession(ctx context.Context, ns session.NewSession) error {
	s := ns.Session
	var gid, by, reason *string
	var gCreated, gExpires *time.Time
	if g := ns.Grant; g != nil {
		gid, by, reason, gCreated, gExpires = &g.ID, &g.GrantedBy, &g.Reason, &g.CreatedAt, &g.ExpiresAt
	}
	amr := s.AMR
	if amr == nil {
		amr = []string{}
	}
	_, err := st.db.Exec(ctx, st.q.create,
		s.ID, s.AppID, s.UserID, amr, s.CreatedAt, s.LastSeenAt, s.ExpiresAt, s.EmergencyGrantID,
		ns.RefreshHash, gid, by, reason, gCreated, gExpires)
	if err != nil {
		return fmt.Errorf("sessionpg: create session: %w", err)
	}
	return nil
}

// Session implements session.Store.
func (st *Store) Session(ctx context.Context, id string) (session.Session, error) {
	return one(st.db.QueryRow(ctx, st.q.get, id), "get session")
}

// RotateRefresh implements session.Store: one conditional statement, and a
// second read only when it changed nothing.
func (st *Store) RotateRefresh(ctx context.Context, p session.RotateParams) (session.RotateResult, error) {
	var grace *time.Time
	if !p.GraceCutoff.IsZero() {
		grace = &p.GraceCutoff
	}
	s, err := scanSession(st.db.QueryRow(ctx, st.q.rotate, p.OldHash, p.NewHash, p.Now, p.IdleCutoff, grace))
	if err == nil {
		return session.RotateResult{Rotated: true, Known: true, Session: s}, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return session.RotateResult{}, fmt.Errorf("sessionpg: rotate refresh token: %w", err)
	}

	var used *time.Time
	s, err = scanSession(st.db.QueryRow(ctx, st.q.lookup, p.OldHash), &used)
	if errors.Is(err, pgx.ErrNoRows) {
		return session.RotateResult{}, nil
	}
	if err != nil {
		return session.RotateResult{}, fmt.Errorf("sessionpg: look up refresh token: %w", err)
	}
	res := session.RotateResult{Known: true, Session: s}
	res.Reused = used != nil && (grace == nil || !used.After(p.GraceCutoff))
	return res, nil
}

// Touch implements session.Store.
func (st *Store) Touch(ctx context.Context, id string, now, idleCutoff time.Time) (session.Session, error) {
	return one(st.db.QueryRow(ctx, st.q.touch, id, now, idleCutoff), "touch session")
}

// SetAMR implements session.Store.
func (st *Store) SetAMR(ctx context.Context, id string, amr []string) (session.Session, error) {
	if amr == nil {
		amr = []string{}
	}
	return one(st.db.QueryRow(ctx, st.q.setAMR, id, amr), "set amr")
}

// Revoke implements session.Store.
func (st *Store) Revoke(ctx context.Context, id string, now time.Time, reason session.Reason) (bool, error) {
	var done, exists bool
	if err := st.db.QueryRow(ctx, st.q.revoke, id, now, string(reason)).Scan(&done, &exists); err != nil {
		return false, fmt.Errorf("sessionpg: revoke: %w", err)
	}
	if !exists {
		return false, session.ErrNotFound
	}
	return done, nil
}

// RevokeUser implements session.Store.
func (st *Store) RevokeUser(ctx context.Context, appID, userID string, now time.Time, reason session.Reason) ([]string, error) {
	rows, err := st.db.Query(ctx, st.q.revokeUser, appID, userID, now, string(reason))
	if err != nil {
		return nil, fmt.Errorf("sessionpg: revoke user: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("sessionpg: revoke user: %w", err)
	}
	sort.Strings(ids)
	return ids, nil
}

// UserSessions implements session.Store.
func (st *Store) UserSessions(ctx context.Context, appID, userID string, now time.Time) ([]session.Session, error) {
	rows, err := st.db.Query(ctx, st.q.userSessions, appID, userID, now)
	if err != nil {
		return nil, fmt.Errorf("sessionpg: list sessions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (session.Session, error) { return scanSession(r) })
	if err != nil {
		return nil, fmt.Errorf("sessionpg: list sessions: %w", err)
	}
	return out, nil
}

// EmergencyGrants implements session.Store.
func (st *Store) EmergencyGrants(ctx context.Context, appID string, from, to time.Time) ([]session.EmergencyGrant, error) {
	rows, err := st.db.Query(ctx, st.q.grants, appID, from, to)
	if err != nil {
		return nil, fmt.Errorf("sessionpg: list emergency grants: %w", err)
	}
	gs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (session.EmergencyGrant, error) {
		var g session.EmergencyGrant
		err := r.Scan(&g.ID, &g.AppID, &g.UserID, &g.GrantedBy, &g.Reason, &g.SessionID, &g.CreatedAt, &g.ExpiresAt)
		g.CreatedAt, g.ExpiresAt = g.CreatedAt.UTC(), g.ExpiresAt.UTC()
		return g, err
	})
	if err != nil {
		return nil, fmt.Errorf("sessionpg: list emergency grants: %w", err)
	}
	return gs, nil
}

// purgeBatch is how many sessions one purge statement deletes, so no
// statement holds its locks for long.
const purgeBatch = 1000

// Purge implements session.Store, in batches of purgeBatch sessions, each
// its own statement; refresh tokens go with their sessions. Rows another
// purge holds are skipped, so concurrent purges share the work.
func (st *Store) Purge(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		tag, err := st.db.Exec(ctx, st.q.purge, before, purgeBatch)
		if err != nil {
			return total, fmt.Errorf("sessionpg: purge: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < purgeBatch {
			return total, nil
		}
	}
}
