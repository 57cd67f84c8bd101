package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/chatsdk/compliance/audit/auditpg"
	"github.com/chatsdk/compliance/fieldcrypt/fieldcryptpg"
	"github.com/chatsdk/compliance/integrity/integritypg"
	"github.com/chatsdk/compliance/lockout/lockoutpg"
	"github.com/chatsdk/compliance/retention/retentionpg"
	"github.com/chatsdk/compliance/session/mfa/mfapg"
	"github.com/chatsdk/compliance/session/sessionpg"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migration applies one package's schema.
type migration struct {
	name  string
	apply func(ctx context.Context, pool *pgxpool.Pool, schema string) error
}

var migrations = []migration{
	{"audit", func(ctx context.Context, pool *pgxpool.Pool, schema string) error {
		s, err := auditpg.New(pool, auditpg.Config{Schema: schema})
		if err != nil {
			return err
		}
		return s.Migrate(ctx, pool)
	}},
	{"fieldcrypt", func(ctx context.Context, pool *pgxpool.Pool, schema string) error {
		return fieldcryptpg.Migrate(ctx, pool, fieldcryptpg.Config{Schema: schema})
	}},
	{"integrity", func(ctx context.Context, pool *pgxpool.Pool, schema string) error {
		return integritypg.Migrate(ctx, pool, integritypg.Config{Schema: schema})
	}},
	{"retention", func(ctx context.Context, pool *pgxpool.Pool, schema string) error {
		return retentionpg.Migrate(ctx, pool, retentionpg.Config{Schema: schema})
	}},
	{"session", func(ctx context.Context, pool *pgxpool.Pool, schema string) error {
		return sessionpg.Migrate(ctx, pool, sessionpg.Config{Schema: schema})
	}},
	{"mfa", func(ctx context.Context, pool *pgxpool.Pool, schema string) error {
		return mfapg.Migrate(ctx, pool, mfapg.Options{Schema: schema})
	}},
	{"lockout", func(ctx context.Context, pool *pgxpool.Pool, schema string) error {
		return lockoutpg.Migrate(ctx, pool, lockoutpg.Options{Schema: schema})
	}},
}

type migrateResult struct {
	Package string `json:"package"`
	Seconds string `json:"seconds"`
}

func migrateCommand() *command {
	return &command{
		name:     "migrate",
		summary:  "apply every package's schema migrations (idempotent, safe while the application runs)",
		synopsis: "[--only audit,retention,…]",
		example:  "compliancectl migrate --database-url postgres://admin@db:5432/chat --schema compliance",
		bind: func(fs *flag.FlagSet, e *env) func([]string) error {
			only := fs.String("only", "", "comma-separated packages to migrate (audit, fieldcrypt, integrity, retention, session, mfa, lockout); default all")
			return func(args []string) error {
				if len(args) > 0 {
					return usagef("migrate takes no arguments, got %q", args[0])
				}
				want, err := selectMigrations(*only)
				if err != nil {
					return err
				}
				pool, err := e.connect()
				if err != nil {
					return err
				}
				var done []migrateResult
				for _, m := range want {
					start := time.Now()
					if err := m.apply(e.ctx, pool, e.schema); err != nil {
						return fmt.Errorf("migrating %s failed (the packages before it were applied; rerunning is safe): %w", m.name, err)
					}
					done = append(done, migrateResult{Package: m.name, Seconds: fmt.Sprintf("%.3f", time.Since(start).Seconds())})
				}
				return e.emit(map[string]any{"migrated": done}, func(w io.Writer) {
					for _, d := range done {
						fmt.Fprintf(w, "%-10s up to date (%ss)\n", d.Package, d.Seconds)
					}
				})
			}
		},
	}
}

func selectMigrations(only string) ([]migration, error) {
	if only == "" {
		return migrations, nil
	}
	var out []migration
	for _, name := range strings.Split(only, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, m := range migrations {
			if m.name == name {
				out = append(out, m)
				found = true
			}
		}
		if !found {
			return nil, usagef("--only: unknown package %q; choose from audit, fieldcrypt, integrity, retention, session, mfa, lockout", name)
		}
	}
	return out, nil
}
