// Package fieldcryptpg stores fieldcrypt's wrapped keysets in Postgres
// (pgx v5) and reads and rewrites encrypted columns of application tables
// for fieldcrypt's Rewrap and Backfill.
//
// [Store] implements fieldcrypt.Store: compare-and-swap updates on a
// version column, and shredding that deletes a scope's keysets and leaves a
// tombstone, ordered against concurrent creation by a row lock, so that
// several application instances can share one database. [Column]
// implements fieldcrypt.Rows and fieldcrypt.PlainRows on a table the
// application owns.
//
// The schema ships as numbered SQL files under migrations/, applied by
// [Migrate]; tables are prefixed fieldcrypt_.
//
// A shredded keyset's row is deleted, but Postgres keeps the dead tuple
// until VACUUM and in WAL and base backups until they expire: the
// guarantee of shredding is as long as those retention periods (see
// fieldcrypt.Keyring.Shred).
package fieldcryptpg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chatsdk/compliance/fieldcrypt"
)

// DB is what the adapter needs of a database handle: *pgxpool.Pool,
// *pgx.Conn and pgx.Tx all satisfy it, so keyset changes can join a
// caller's transaction.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Config configures a [Store] and [Migrate].
type Config struct {
	// Schema holds the fieldcrypt_ tables. Defaults to the connection's
	// search_path.
	Schema string
}

func (c Config) prefix() string {
	if c.Schema == "" {
		return ""
	}
	return pgx.Identifier{c.Schema}.Sanitize() + "."
}

// Store is a fieldcrypt.Store in Postgres. It is safe for concurrent use
// when its DB is (a pool is; a pgx.Tx is not).
type Store struct {
	db DB
	q  queries
}

var _ fieldcrypt.Store = (*Store)(nil)

type queries struct {
	get, ensureScope, lockScope, insert, update, shredScope, deleteKeysets, scopeState string
}

// New returns a Store on db. Run [Migrate] first.
func New(db DB, cfg Config) *Store {
	p := cfg.prefix()
	return &Store{db: db, q: queries{
		get: `SELECT s.shredded_at, k.version, k.wrapped, k.primary_since, k.updated_at
			FROM ` + p + `fieldcrypt_scopes s
			LEFT JOIN ` + p + `fieldcrypt_keysets k ON k.app_id = s.app_id AND k.scope = s.scope AND k.purpose = $3
			WHERE s.app_id = $1 AND s.scope = $2`,
		ensureScope: `INSERT INTO ` + p + `fieldcrypt_scopes (app_id, scope) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
		lockScope:   `SELECT shredded_at FROM ` + p + `fieldcrypt_scopes WHERE app_id = $1 AND scope = $2 FOR SHARE`,
		insert: `INSERT INTO ` + p + `fieldcrypt_keysets (app_id, scope, purpose, version, wrapped, primary_since, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
		update: `UPDATE ` + p + `fieldcrypt_keysets SET version = $4, wrapped = $5, primary_since = $6, updated_at = $7
			WHERE app_id = $1 AND scope = $2 AND purpose = $3 AND version = $4 - 1`,
		shredScope: `INSERT INTO ` + p + `fieldcrypt_scopes (app_id, scope, shredded_at) VALUES ($1, $2, $3)
			ON CONFLICT (app_id, scope) DO UPDATE SET shredded_at = COALESCE(fieldcrypt_scopes.shredded_at, EXCLUDED.shredded_at)`,
		deleteKeysets: `DELETE FROM ` + p + `fieldcrypt_keysets WHERE app_id = $1 AND scope = $2`,
		scopeState: `SELECT s.shredded_at, k.version FROM ` + p + `fieldcrypt_scopes s
			LEFT JOIN ` + p + `fieldcrypt_keysets k ON k.app_id = s.app_id AND k.scope = s.scope AND k.purpose = $3
			WHERE s.app_id = $1 AND s.scope = $2`,
	}}
}

// Get implements fieldcrypt.Store.
func (s *Store) Get(ctx context.Context, sc fieldcrypt.Scope, p fieldcrypt.Purpose) (fieldcrypt.StoredKeyset, error) {
	var (
		shredded           *time.Time
		version            *int64
		wrapped            []byte
		primarySince, upAt *time.Time
	)
	err := s.db.QueryRow(ctx, s.q.get, sc.Tenant, sc.Name, string(p)).Scan(&shredded, &version, &wrapped, &primarySince, &upAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return fieldcrypt.StoredKeyset{}, fieldcrypt.ErrNotFound
	}
	if err != nil {
		return fieldcrypt.StoredKeyset{}, fmt.Errorf("fieldcryptpg: get keyset: %w", err)
	}
	if shredded != nil {
		return fieldcrypt.StoredKeyset{}, fieldcrypt.ErrShredded
	}
	if version == nil {
		return fieldcrypt.StoredKeyset{}, fieldcrypt.ErrNotFound
	}
	return fieldcrypt.StoredKeyset{
		Scope:        sc,
		Purpose:      p,
		Version:      *version,
		Wrapped:      wrapped,
		PrimarySince: primarySince.UTC(),
		UpdatedAt:    upAt.UTC(),
	}, nil
}

// Create implements fieldcrypt.Store.
func (s *Store) Create(ctx context.Context, ks fieldcrypt.StoredKeyset) error {
	if ks.Version != 1 {
		return fmt.Errorf("fieldcryptpg: create keyset with version %d, want 1", ks.Version)
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, s.q.ensureScope, ks.Scope.Tenant, ks.Scope.Name); err != nil {
			return fmt.Errorf("fieldcryptpg: create keyset: %w", err)
		}
		var shredded *time.Time
		if err := tx.QueryRow(ctx, s.q.lockScope, ks.Scope.Tenant, ks.Scope.Name).Scan(&shredded); err != nil {
			return fmt.Errorf("fieldcryptpg: create keyset: %w", err)
		}
		if shredded != nil {
			return fieldcrypt.ErrShredded
		}
		tag, err := tx.Exec(ctx, s.q.insert, ks.Scope.Tenant, ks.Scope.Name, string(ks.Purpose), ks.Version, ks.Wrapped, ks.PrimarySince, ks.UpdatedAt)
		if err != nil {
			return fmt.Errorf("fieldcryptpg: create keyset: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return fieldcrypt.ErrConflict
		}
		return nil
	})
}

// Update implements fieldcrypt.Store.
func (s *Store) Update(ctx context.Context, ks fieldcrypt.StoredKeyset) error {
	tag, err := s.db.Exec(ctx, s.q.update, ks.Scope.Tenant, ks.Scope.Name, string(ks.Purpose), ks.Version, ks.Wrapped, ks.PrimarySince, ks.UpdatedAt)
	if err != nil {
		return fmt.Errorf("fieldcryptpg: update keyset: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}

	// Say why nothing changed.
	var (
		shredded *time.Time
		version  *int64
	)
	err = s.db.QueryRow(ctx, s.q.scopeState, ks.Scope.Tenant, ks.Scope.Name, string(ks.Purpose)).Scan(&shredded, &version)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fieldcrypt.ErrNotFound
	case err != nil:
		return fmt.Errorf("fieldcryptpg: update keyset: %w", err)
	case shredded != nil:
		return fieldcrypt.ErrShredded
	case version == nil:
		return fieldcrypt.ErrNotFound
	}
	return fieldcrypt.ErrConflict
}

// Shred implements fieldcrypt.Store.
func (s *Store) Shred(ctx context.Context, sc fieldcrypt.Scope, at time.Time) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, s.q.shredScope, sc.Tenant, sc.Name, at); err != nil {
			return fmt.Errorf("fieldcryptpg: shred: %w", err)
		}
		if _, err := tx.Exec(ctx, s.q.deleteKeysets, sc.Tenant, sc.Name); err != nil {
			return fmt.Errorf("fieldcryptpg: shred: %w", err)
		}
		return nil
	})
}

func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("fieldcryptpg: begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit

	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("fieldcryptpg: commit: %w", err)
	}
	return nil
}
