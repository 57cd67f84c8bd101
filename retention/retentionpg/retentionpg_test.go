package retentionpg_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatsdk/compliance/internal/pgtest"
	"github.com/chatsdk/compliance/retention"
	"github.com/chatsdk/compliance/retention/retentionpg"
	"github.com/chatsdk/compliance/retention/retentiontest"
)

const messageDDL = `CREATE TABLE message (
	id         text        PRIMARY KEY,
	app_id     text        NOT NULL,
	created_at timestamptz NOT NULL,
	channel_id text,
	user_id    text
);
CREATE INDEX ON message (app_id, created_at, id);`

var messageTarget = retention.Target{Table: "message", ID: "id", Time: "created_at", Channel: "channel_id", User: "user_id"}

// fixture is a test's schema with the package's tables and a message table.
type fixture struct {
	db    *pgtest.DB
	store *retentionpg.Store
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := pgtest.New(t)
	ctx := context.Background()
	if err := retentionpg.Migrate(ctx, db.Pool, retentionpg.Config{}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, messageDDL); err != nil {
		t.Fatal(err)
	}
	return &fixture{db: db, store: newStore(t, db.Pool)}
}

func newStore(t testing.TB, pool *pgxpool.Pool) *retentionpg.Store {
	t.Helper()
	s, err := retentionpg.New(pool, retentionpg.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) insert(t testing.TB, rows ...retention.Row) {
	t.Helper()
	ctx := context.Background()
	_, err := f.db.Pool.CopyFrom(ctx, pgx.Identifier{"message"}, []string{"id", "app_id", "created_at", "channel_id", "user_id"},
		pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
			r := rows[i]
			return []any{r.ID, r.AppID, r.Time, r.Channel, r.User}, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) ids(t testing.TB) []string {
	t.Helper()
	rows, err := f.db.Pool.Query(context.Background(), "SELECT id FROM message ORDER BY id COLLATE \"C\"")
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestConformance(t *testing.T) {
	retentiontest.Run(t, func(t *testing.T) retentiontest.Harness {
		f := newFixture(t)
		return retentiontest.Harness{
			Store:  f.store,
			Target: messageTarget,
			Insert: f.insert,
			IDs:    f.ids,
			Other:  func(t testing.TB) retention.Store { return newStore(t, f.db.NewPool(t, nil)) },
			ExpireLeases: func(t testing.TB) {
				if _, err := f.db.Pool.Exec(context.Background(), "UPDATE retention_leases SET lease_until = now() - interval '1 second'"); err != nil {
					t.Fatal(err)
				}
			},
		}
	})
}

// Every table of the package carries the tenant (DESIGN rule 6), so it can
// be sharded by tenant.
func TestEveryTableCarriesTheTenant(t *testing.T) {
	f := newFixture(t)
	rows, err := f.db.Pool.Query(context.Background(), `SELECT c.relname FROM pg_class c
		WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
		AND c.relname LIKE 'retention\_%' AND c.relname <> 'retention_migrations'
		AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'app_id' AND NOT a.attisdropped)`)
	if err != nil {
		t.Fatal(err)
	}
	missing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) != 0 {
		t.Fatalf("tables without app_id: %v", missing)
	}
}
