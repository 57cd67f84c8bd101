package integritypg_test

import (
	"context"
	"testing"

	"github.com/chatsdk/compliance/integrity"
	"github.com/chatsdk/compliance/integrity/integritypg"
	"github.com/chatsdk/compliance/integrity/integritytest"
	"github.com/chatsdk/compliance/internal/pgtest"
	"github.com/jackc/pgx/v5/pgxpool"
)

// tamper edits the integrity tables directly, as someone with SQL access
// could.
type tamper struct{ pool *pgxpool.Pool }

func (t tamper) InsecureDeleteSealed(ctx context.Context, k integrity.Key) error {
	_, err := t.pool.Exec(ctx, "DELETE FROM integrity_tags WHERE domain = $1 AND app_id = $2 AND row_id = $3", k.Domain, k.Tenant, k.ID)
	return err
}

func (t tamper) InsecurePutSealed(ctx context.Context, s integrity.Sealed) error {
	_, err := t.pool.Exec(ctx, `INSERT INTO integrity_tags (domain, app_id, row_id, scope, key_id, tag) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (domain, app_id, row_id) DO UPDATE SET scope = EXCLUDED.scope, key_id = EXCLUDED.key_id, tag = EXCLUDED.tag`,
		s.Domain, s.Tenant, s.ID, s.Scope, int64(s.KeyID), s.Tag)
	return err
}

func (t tamper) InsecurePutDigest(ctx context.Context, d integrity.Digest) error {
	_, err := t.pool.Exec(ctx, `UPDATE integrity_digests SET row_count = $4, sum = $5, key_id = $6, tag = $7
		WHERE domain = $1 AND app_id = $2 AND scope = $3`, d.Domain, d.Tenant, d.Scope, int64(d.Count), d.Sum[:], int64(d.KeyID), d.Tag)
	return err
}

func newDB(t *testing.T) *pgtest.DB {
	t.Helper()
	db := pgtest.New(t)
	if err := integritypg.Migrate(context.Background(), db.Pool, integritypg.Config{}); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

func TestConformance(t *testing.T) {
	db := newDB(t)
	integritytest.Run(t, func(t *testing.T) integritytest.Harness {
		// One schema for the whole suite keeps it fast; each clause gets
		// its own tables by truncating.
		if _, err := db.Pool.Exec(context.Background(), "TRUNCATE integrity_tags, integrity_digests"); err != nil {
			t.Fatal(err)
		}
		return integritytest.Harness{Store: integritypg.New(db.Pool, integritypg.Config{}), Tamper: tamper{db.Pool}}
	})
}

func TestMigrateIsIdempotentAndConcurrent(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- integritypg.Migrate(ctx, db.NewPool(t, nil), integritypg.Config{Schema: db.Schema}) }()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
	}
	if err := integritypg.Migrate(ctx, db.Pool, integritypg.Config{Schema: db.Schema}); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM integrity_migrations").Scan(&n); err != nil || n != 1 {
		t.Fatalf("migrations recorded: %d, %v", n, err)
	}
}
