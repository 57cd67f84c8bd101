package retentionpg

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/chatsdk/compliance/internal/pgmigrate"
	"github.com/chatsdk/compliance/retention"
)

// DB is what the store needs of a database handle: a *pgxpool.Pool, a
// *pgx.Conn and a pgx.Tx all satisfy it. Given a pgx.Tx, each operation
// runs in a savepoint of the caller's transaction, and locks taken by it
// (a hold's) last until the caller commits.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Config configures a Store. The zero value is usable.
type Config struct {
	// Schema is the schema of the package's tables (retention_…). Defaults
	// to none: names are unqualified and resolved by the search_path.
	Schema string
}

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a retention.Store on Postgres. It is safe for concurrent use,
// and any number of processes may share its tables.
type Store struct {
	db     DB
	schema string
	t      tables

	mu      sync.Mutex
	targets map[string]*targetSQL // by target name
}

type tables struct {
	policies, holds, checkpoints, leases string
}

var _ retention.Store = (*Store)(nil)

// New returns a Store on db. Call Migrate first.
func New(db DB, cfg Config) (*Store, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: nil database", retention.ErrInvalid)
	}
	q := func(name string) string {
		if cfg.Schema == "" {
			return pgx.Identifier{name}.Sanitize()
		}
		return pgx.Identifier{cfg.Schema, name}.Sanitize()
	}
	return &Store{
		db:      db,
		schema:  cfg.Schema,
		t:       tables{q("retention_policies"), q("retention_holds"), q("retention_checkpoints"), q("retention_leases")},
		targets: map[string]*targetSQL{},
	}, nil
}

// Migrate applies the embedded migrations that have not been applied yet,
// under an advisory lock, so instances starting together apply each once.
// It is idempotent.
func Migrate(ctx context.Context, db DB, cfg Config) error {
	return pgmigrate.Apply(ctx, db, pgmigrate.Set{Name: "retentionpg", Table: "retention_migrations", FS: migrations, Dir: "migrations"}, cfg.Schema)
}

type txKey struct{}

// Tx returns the transaction of the batch a retention.BatchHook or a
// Target's Deleter is called in, so that what it writes (an audit entry, an
// integrity digest) commits or rolls back with the deletion.
func Tx(ctx context.Context) (pgx.Tx, bool) {
	tx, ok := ctx.Value(txKey{}).(pgx.Tx)
	return tx, ok
}

// key returns the text of an advisory lock key of this store's tables.
func (s *Store) key(kind, name string) string {
	return "retention." + kind + " " + strconv.Quote(s.schema) + " " + strconv.Quote(name)
}

// keyExpr is the advisory lock key for the key text in param: with no schema
// configured, the tables are the connection's current schema's.
func (s *Store) keyExpr(param string) string {
	if s.schema == "" {
		return "hashtextextended(" + param + " || current_schema(), 0)"
	}
	return "hashtextextended(" + param + ", 0)"
}

// UpdatePolicy implements retention.Store. It waits for the tenant's
// batches in flight that check the policy (BatchParams.CheckPolicy), so
// that each batch either commits before the change or sees it.
func (s *Store) UpdatePolicy(ctx context.Context, appID string, change func([]retention.PolicyVersion) (retention.PolicyVersion, error)) (retention.PolicyVersion, error) {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return retention.PolicyVersion{}, fmt.Errorf("retentionpg: update policy: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock("+s.keyExpr("$1")+")", s.key("policy", appID)); err != nil {
		return retention.PolicyVersion{}, fmt.Errorf("retentionpg: lock policy: %w", err)
	}
	history, err := s.policies(ctx, tx, appID)
	if err != nil {
		return retention.PolicyVersion{}, err
	}
	v, err := change(history)
	if err != nil {
		return retention.PolicyVersion{}, err
	}
	v.AppID = appID
	v.Version = int64(len(history)) + 1
	if len(history) > 0 {
		v.Version = history[len(history)-1].Version + 1
	}

	if _, err := tx.Exec(ctx, "INSERT INTO "+s.t.policies+` (app_id, version, kind, channel, period, author, set_at, effective_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		appID, v.Version, string(v.Kind), v.Channel, pgtype.Interval{Microseconds: v.Period.Microseconds(), Valid: true},
		v.Author, v.SetAt, v.EffectiveAt); err != nil {
		return retention.PolicyVersion{}, fmt.Errorf("retentionpg: insert policy: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return retention.PolicyVersion{}, fmt.Errorf("retentionpg: update policy: %w", err)
	}
	v.SetAt, v.EffectiveAt = v.SetAt.Truncate(time.Microsecond), v.EffectiveAt.Truncate(time.Microsecond)
	return v, nil
}

// Policies implements retention.Store.
func (s *Store) Policies(ctx context.Context, appID string) ([]retention.PolicyVersion, error) {
	return s.policies(ctx, s.db, appID)
}

func (s *Store) policies(ctx context.Context, db DB, appID string) ([]retention.PolicyVersion, error) {
	rows, err := db.Query(ctx, "SELECT version, kind, channel, period, author, set_at, effective_at FROM "+s.t.policies+
		" WHERE app_id = $1 ORDER BY version", appID)
	if err != nil {
		return nil, fmt.Errorf("retentionpg: policies: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (retention.PolicyVersion, error) {
		v := retention.PolicyVersion{AppID: appID}
		var kind string
		var period pgtype.Interval
		err := r.Scan(&v.Version, &kind, &v.Channel, &period, &v.Author, &v.SetAt, &v.EffectiveAt)
		v.Kind = retention.PolicyKind(kind)
		v.Period = time.Duration(period.Microseconds)*time.Microsecond +
			time.Duration(period.Days)*24*time.Hour + time.Duration(period.Months)*30*24*time.Hour
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("retentionpg: policies: %w", err)
	}
	return out, nil
}

// PolicyTenants implements retention.Store.
func (s *Store) PolicyTenants(ctx context.Context) ([]string, error) {
	rows, err := s.db.Query(ctx, "SELECT DISTINCT app_id FROM "+s.t.policies+" ORDER BY app_id")
	if err != nil {
		return nil, fmt.Errorf("retentionpg: tenants: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("retentionpg: tenants: %w", err)
	}
	return out, nil
}

// PlaceHold implements retention.Store. It waits for the tenant's batches
// in flight to commit or roll back, so that when it returns no batch can
// still delete a row the hold covers.
func (s *Store) PlaceHold(ctx context.Context, h retention.Hold) (retention.Hold, error) {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return retention.Hold{}, fmt.Errorf("retentionpg: place hold: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock("+s.keyExpr("$1")+")", s.key("hold", h.AppID)); err != nil {
		return retention.Hold{}, fmt.Errorf("retentionpg: lock holds: %w", err)
	}
	var id int64
	if err := tx.QueryRow(ctx, "INSERT INTO "+s.t.holds+` (app_id, kind, scope_id, reason, author, created_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		h.AppID, string(h.Scope.Kind), h.Scope.ID, h.Reason, h.Author, h.CreatedAt).Scan(&id); err != nil {
		return retention.Hold{}, fmt.Errorf("retentionpg: insert hold: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return retention.Hold{}, fmt.Errorf("retentionpg: place hold: %w", err)
	}
	h.ID = strconv.FormatInt(id, 10)
	h.CreatedAt = h.CreatedAt.Truncate(time.Microsecond)
	h.ReleasedAt, h.ReleasedBy = time.Time{}, ""
	return h, nil
}

// ReleaseHold implements retention.Store.
func (s *Store) ReleaseHold(ctx context.Context, appID, id, by string, at time.Time) error {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: no active hold %q", retention.ErrNotFound, id)
	}
	tag, err := s.db.Exec(ctx, "UPDATE "+s.t.holds+" SET released_at = $3, released_by = $4 WHERE app_id = $1 AND id = $2 AND released_at IS NULL",
		appID, n, at, by)
	if err != nil {
		return fmt.Errorf("retentionpg: release hold: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: no active hold %s", retention.ErrNotFound, id)
	}
	return nil
}

// Holds implements retention.Store.
func (s *Store) Holds(ctx context.Context, appID string) ([]retention.Hold, error) {
	rows, err := s.db.Query(ctx, "SELECT id, kind, scope_id, reason, author, created_at, released_at, coalesce(released_by, '') FROM "+s.t.holds+
		" WHERE app_id = $1 ORDER BY id", appID)
	if err != nil {
		return nil, fmt.Errorf("retentionpg: holds: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (retention.Hold, error) {
		h := retention.Hold{AppID: appID}
		var id int64
		var kind string
		var released pgtype.Timestamptz
		err := r.Scan(&id, &kind, &h.Scope.ID, &h.Reason, &h.Author, &h.CreatedAt, &released, &h.ReleasedBy)
		h.ID, h.Scope.Kind = strconv.FormatInt(id, 10), retention.ScopeKind(kind)
		if released.Valid {
			h.ReleasedAt = released.Time
		}
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("retentionpg: holds: %w", err)
	}
	return out, nil
}

// ReleaseLease implements retention.Store.
func (s *Store) ReleaseLease(ctx context.Context, target, owner string) error {
	if _, err := s.db.Exec(ctx, "DELETE FROM "+s.t.leases+" WHERE target = $1 AND owner = $2", target, owner); err != nil {
		return fmt.Errorf("retentionpg: release lease: %w", err)
	}
	return nil
}

// translate maps a batch's timeouts to retention.ErrTimeout, unless the
// caller's context ended the statement.
func translate(ctx context.Context, what string, err error) error {
	var pgErr *pgconn.PgError
	if ctx.Err() == nil && errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "55P03", "57014": // lock_not_available, query_canceled (statement_timeout)
			return fmt.Errorf("%w: %s: %s", retention.ErrTimeout, what, pgErr.Code)
		}
	}
	return fmt.Errorf("retentionpg: %s: %w", what, err)
}
