package fieldcryptpg

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the schema as numbered SQL files, for teams that apply
// migrations with their own tool. In each file, {{schema}} stands for the
// schema and a dot, or for nothing.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// migrateLock is the advisory lock key that serialises Migrate across
// instances: the first eight bytes of "fieldcry" as an integer.
const migrateLock = 0x6669656c64637279

// Migrate applies the migrations not yet applied, in one transaction under
// an advisory lock, so instances starting at once apply each file exactly
// once. It is idempotent.
func Migrate(ctx context.Context, db DB, cfg Config) error {
	p := cfg.prefix()
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("fieldcryptpg: migrate: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit

	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrateLock)); err != nil {
		return fmt.Errorf("fieldcryptpg: migrate: lock: %w", err)
	}
	if cfg.Schema != "" {
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+strings.TrimSuffix(p, ".")); err != nil {
			return fmt.Errorf("fieldcryptpg: migrate: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+p+`fieldcrypt_migrations (
		version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("fieldcryptpg: migrate: %w", err)
	}

	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("fieldcryptpg: migrate: %w", err)
	}
	sort.Strings(files)
	for _, f := range files {
		base := f[strings.LastIndex(f, "/")+1:]
		num, _, _ := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if err != nil {
			return fmt.Errorf("fieldcryptpg: migrate: bad file name %s", base)
		}
		var done bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+p+`fieldcrypt_migrations WHERE version = $1)`, version).Scan(&done); err != nil {
			return fmt.Errorf("fieldcryptpg: migrate: %w", err)
		}
		if done {
			continue
		}
		body, err := migrations.ReadFile(f)
		if err != nil {
			return fmt.Errorf("fieldcryptpg: migrate: %w", err)
		}
		if _, err := tx.Exec(ctx, strings.ReplaceAll(string(body), "{{schema}}", p)); err != nil {
			return fmt.Errorf("fieldcryptpg: migrate: %s: %w", base, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+p+`fieldcrypt_migrations (version) VALUES ($1)`, version); err != nil {
			return fmt.Errorf("fieldcryptpg: migrate: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("fieldcryptpg: migrate: commit: %w", err)
	}
	return nil
}
