package lockoutpg

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrateLockKey is the advisory lock that serialises concurrent Migrate
// calls (several instances starting at once).
const migrateLockKey = "github.com/chatsdk/compliance/lockout/lockoutpg.Migrate"

// Migrate creates or upgrades the adapter's tables in opts.Schema (the
// connection's search_path when empty) by applying the embedded numbered
// migrations not applied yet. It is idempotent and safe to call from
// several instances at once: they take turns under an advisory lock. The
// migrations are plain SQL files under migrations/, for teams that apply
// schema changes with their own tool.
func Migrate(ctx context.Context, db DB, opts Options) error {
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("lockoutpg: list migrations: %w", err)
	}
	sort.Strings(files)

	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("lockoutpg: migrate: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()

	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", migrateLockKey); err != nil {
		return fmt.Errorf("lockoutpg: migrate: take advisory lock: %w", err)
	}
	if opts.Schema != "" {
		schema := pgx.Identifier{opts.Schema}.Sanitize()
		if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema); err != nil {
			return fmt.Errorf("lockoutpg: migrate: create schema: %w", err)
		}
		if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+schema); err != nil {
			return fmt.Errorf("lockoutpg: migrate: set search_path: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS lockout_schema_migrations (
		version    integer     PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("lockoutpg: migrate: create version table: %w", err)
	}

	for _, f := range files {
		base := strings.TrimPrefix(f, "migrations/")
		num, _, _ := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if err != nil {
			return fmt.Errorf("lockoutpg: migration %s has no number", base)
		}
		var applied bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM lockout_schema_migrations WHERE version = $1)", version).Scan(&applied); err != nil {
			return fmt.Errorf("lockoutpg: migrate: read version: %w", err)
		}
		if applied {
			continue
		}
		body, err := migrations.ReadFile(f)
		if err != nil {
			return fmt.Errorf("lockoutpg: read migration %s: %w", base, err)
		}
		if _, err := tx.Exec(ctx, string(body)); err != nil {
			return fmt.Errorf("lockoutpg: apply migration %s: %w", base, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO lockout_schema_migrations (version) VALUES ($1)", version); err != nil {
			return fmt.Errorf("lockoutpg: record migration %s: %w", base, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("lockoutpg: migrate: commit: %w", err)
	}
	return nil
}
