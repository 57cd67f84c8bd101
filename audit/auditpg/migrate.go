package auditpg

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the embedded migration files, for teams that apply
// schema changes with their own tool. Each file holds the placeholder
// {{schema}}, to be replaced by a quoted schema name and a dot, or removed.
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrations, "migrations")
	return sub
}

// migrateLockID is the advisory lock key Migrate holds: "audit" in ASCII.
const migrateLockID = 0x6175646974

// Migrate brings the schema up to date and creates the entry partitions of
// the previous month through PartitionsAhead months ahead. It is idempotent
// and safe when several instances start at once: it runs in one transaction
// under an advisory lock. db is a pool, a connection or a transaction.
func (s *Store) Migrate(ctx context.Context, db Querier) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("auditpg: migrate: %w", err)
	}
	defer tx.Rollback(ctx)

	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrateLockID)); err != nil {
		return fmt.Errorf("auditpg: migrate lock: %w", err)
	}
	if _, err := tx.Exec(ctx, s.sql("CREATE TABLE IF NOT EXISTS {{schema}}audit_migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")); err != nil {
		return fmt.Errorf("auditpg: migrate: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("auditpg: migrate: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		version, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("auditpg: migration %s has no number", base)
		}
		var done bool
		if err := tx.QueryRow(ctx, s.sql("SELECT EXISTS (SELECT 1 FROM {{schema}}audit_migrations WHERE version = $1)"), version).Scan(&done); err != nil {
			return fmt.Errorf("auditpg: migrate: %w", err)
		}
		if done {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("auditpg: migrate: %w", err)
		}
		if _, err := tx.Exec(ctx, s.sql(string(body))); err != nil {
			return fmt.Errorf("auditpg: migration %s: %w", base, err)
		}
		if _, err := tx.Exec(ctx, s.sql("INSERT INTO {{schema}}audit_migrations (version) VALUES ($1)"), version); err != nil {
			return fmt.Errorf("auditpg: migrate: %w", err)
		}
	}

	now := s.now().UTC()
	now = time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	for m := -1; m <= s.partitionsAhead; m++ {
		if err := s.createPartition(ctx, tx, now.AddDate(0, m, 0)); err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("auditpg: migrate: %w", err)
	}
	for m := -1; m <= s.partitionsAhead; m++ {
		s.markMonth(now.AddDate(0, m, 0))
	}
	return nil
}

// EnsurePartitions creates the monthly partitions covering from through
// months months after it. Migrate calls it for the months around now;
// Append calls it for an entry whose month has none; a scheduled job may
// call it to create partitions ahead of time.
func (s *Store) EnsurePartitions(ctx context.Context, q Querier, from time.Time, months int) error {
	from = from.UTC()
	from = time.Date(from.Year(), from.Month(), 1, 0, 0, 0, 0, time.UTC)
	for m := 0; m <= months; m++ {
		if err := s.createPartition(ctx, q, from.AddDate(0, m, 0)); err != nil {
			return err
		}
		s.markMonth(from.AddDate(0, m, 0))
	}
	return nil
}

func (s *Store) createPartition(ctx context.Context, q Querier, day time.Time) error {
	day = day.UTC()
	d := time.Date(day.Year(), day.Month(), 1, 0, 0, 0, 0, time.UTC)
	tx, err := q.Begin(ctx) // a savepoint when q is a transaction
	if err != nil {
		return fmt.Errorf("auditpg: create partition: %w", err)
	}
	defer tx.Rollback(ctx)

	// Serialise creators of the same month across instances.
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrateLockID)<<8|int64(d.Month())); err != nil {
		return fmt.Errorf("auditpg: partition lock: %w", err)
	}
	if _, err := tx.Exec(ctx, s.sql("SELECT {{schema}}audit_create_partition($1::date)"), d); err != nil {
		return fmt.Errorf("auditpg: create partition %s: %w", d.Format("2006-01"), err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("auditpg: create partition: %w", err)
	}
	return nil
}
