// Package pgmigrate applies a Postgres adapter's embedded migrations: the
// numbered .sql files of one folder, each once, in order, in one
// transaction under a transaction-scoped advisory lock, so several app
// instances starting together apply each migration exactly once.
//
// A migration file is named NNNN_what.sql; its number is its version. The
// versions applied are recorded in the adapter's own bookkeeping table.
// When a schema is given, the transaction's search_path is set to it, so
// the files use unqualified table names; the schema must exist unless the
// Set says to create it.
package pgmigrate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ErrName means a migration file's name does not start with its number.
var ErrName = errors.New("migration name must start with its number")

// Beginner is what Apply needs of a database: a pool or a connection.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Set describes one adapter's migrations.
type Set struct {
	// Name prefixes every error and names the advisory lock, e.g.
	// "retentionpg".
	Name string
	// Table is the bookkeeping table, e.g. "retention_migrations".
	Table string
	// FS holds the files; Dir is their folder in it ("migrations").
	FS  fs.FS
	Dir string
	// CreateSchema creates the schema when it does not exist yet;
	// otherwise a missing schema is an error.
	CreateSchema bool
}

// Apply applies the migrations of set that schema has not had yet. It is
// idempotent. Errors are prefixed with set.Name and wrap the cause.
func Apply(ctx context.Context, db Beginner, set Set, schema string) error {
	names, err := fs.Glob(set.FS, path.Join(set.Dir, "*.sql"))
	if err != nil {
		return fmt.Errorf("%s: migrate: %w", set.Name, err)
	}
	sort.Strings(names)
	table := pgx.Identifier{set.Table}.Sanitize()

	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", set.Name+".migrate:"+schema); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if schema != "" && set.CreateSchema {
			if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
				return fmt.Errorf("create schema: %w", err)
			}
		}
		if schema != "" {
			if _, err := tx.Exec(ctx, "SELECT set_config('search_path', $1, true)", pgx.Identifier{schema}.Sanitize()); err != nil {
				return fmt.Errorf("search_path: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (
			version    integer     PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}

		for _, name := range names {
			base := path.Base(name)
			num, _, _ := strings.Cut(base, "_")
			version, err := strconv.Atoi(num)
			if err != nil {
				return fmt.Errorf("%s: %w", base, ErrName)
			}
			var done bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM "+table+" WHERE version = $1)", version).Scan(&done); err != nil {
				return err
			}
			if done {
				continue
			}
			body, err := fs.ReadFile(set.FS, name)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return fmt.Errorf("%s: %w", base, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO "+table+" (version) VALUES ($1)", version); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s: migrate: %w", set.Name, err)
	}
	return nil
}
