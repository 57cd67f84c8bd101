package lockoutpg

import (
	"context"
	"embed"

	"github.com/chatsdk/compliance/internal/pgmigrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate creates or upgrades the adapter's tables in opts.Schema (the
// connection's search_path when empty) by applying the embedded numbered
// migrations not applied yet. It is idempotent and safe to call from
// several instances at once: they take turns under an advisory lock. The
// migrations are plain SQL files under migrations/, for teams that apply
// schema changes with their own tool.
func Migrate(ctx context.Context, db DB, opts Options) error {
	return pgmigrate.Apply(ctx, db, pgmigrate.Set{Name: "lockoutpg", Table: "lockout_schema_migrations", FS: migrations, Dir: "migrations", CreateSchema: true}, opts.Schema)
}
