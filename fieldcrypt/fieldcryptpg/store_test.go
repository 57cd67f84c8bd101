package fieldcryptpg_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/chatsdk/compliance/fieldcrypt"
	"github.com/chatsdk/compliance/fieldcrypt/fieldcryptpg"
	"github.com/chatsdk/compliance/fieldcrypt/fieldcrypttest"
	"github.com/chatsdk/compliance/internal/pgtest"
)

func newStore(t *testing.T) (*fieldcryptpg.Store, *pgtest.DB) {
	t.Helper()
	db := pgtest.New(t)
	if err := fieldcryptpg.Migrate(context.Background(), db.Pool, fieldcryptpg.Config{}); err != nil {
		t.Fatal(err)
	}
	return fieldcryptpg.New(db.Pool, fieldcryptpg.Config{}), db
}

func TestStoreConformance(t *testing.T) {
	fieldcrypttest.Run(t, func(t *testing.T) fieldcrypt.Store {
		st, _ := newStore(t)
		return st
	})
}

func TestMigrateIdempotentAndConcurrent(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	cfg := fieldcryptpg.Config{Schema: db.Schema}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fieldcryptpg.Migrate(ctx, db.Pool, cfg)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
	}
	if err := fieldcryptpg.Migrate(ctx, db.Pool, cfg); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM fieldcrypt_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d migrations recorded, want 1", n)
	}
}

func TestSchemaConfigurable(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	cfg := fieldcryptpg.Config{Schema: db.Schema + "_keys"}
	t.Cleanup(func() {
		_, _ = db.Pool.Exec(context.Background(), `DROP SCHEMA IF EXISTS "`+cfg.Schema+`" CASCADE`)
	})
	if err := fieldcryptpg.Migrate(ctx, db.Pool, cfg); err != nil {
		t.Fatal(err)
	}
	st := fieldcryptpg.New(db.Pool, cfg)
	if err := st.Create(ctx, fieldcrypt.StoredKeyset{Scope: fieldcrypt.Scope{Tenant: "a"}, Purpose: fieldcrypt.PurposeAEAD, Version: 1, Wrapped: []byte("w")}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM "`+cfg.Schema+`".fieldcrypt_keysets`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("got %d keysets in the configured schema, want 1", n)
	}
}

// A Create racing a Shred must never leave a keyset behind the tombstone.
func TestCreateRacingShred(t *testing.T) {
	st, _ := newStore(t)
	ctx := context.Background()
	for i := range 20 {
		sc := fieldcrypt.Scope{Tenant: "a", Name: string(rune('a' + i))}
		var wg sync.WaitGroup
		var createErr, shredErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			createErr = st.Create(ctx, fieldcrypt.StoredKeyset{Scope: sc, Purpose: fieldcrypt.PurposeAEAD, Version: 1, Wrapped: []byte("w"), PrimarySince: time.Now(), UpdatedAt: time.Now()})
		}()
		go func() {
			defer wg.Done()
			shredErr = st.Shred(ctx, sc, time.Now())
		}()
		wg.Wait()
		if shredErr != nil {
			t.Fatal(shredErr)
		}
		if createErr != nil && !errors.Is(createErr, fieldcrypt.ErrShredded) {
			t.Fatal(createErr)
		}
		if _, err := st.Get(ctx, sc, fieldcrypt.PurposeAEAD); !errors.Is(err, fieldcrypt.ErrShredded) {
			t.Fatalf("after Create racing Shred: got %v, want ErrShredded", err)
		}
	}
}

// Two Keyrings on two pools, as two app instances would be.
func TestKeyringsShareStore(t *testing.T) {
	st, db := newStore(t)
	ctx := context.Background()
	kek := newKEK(t)
	kr1, err := fieldcrypt.New(fieldcrypt.Config{Store: st, KEK: kek})
	if err != nil {
		t.Fatal(err)
	}
	kr2, err := fieldcrypt.New(fieldcrypt.Config{Store: fieldcryptpg.New(db.NewPool(t, nil), fieldcryptpg.Config{}), KEK: kek})
	if err != nil {
		t.Fatal(err)
	}
	l := fieldcrypt.Location{Tenant: "a", Table: "message", Column: "text", Row: "1"}

	var wg sync.WaitGroup
	cts := make([][]byte, 2)
	errs := make([]error, 2)
	for i, kr := range []*fieldcrypt.Keyring{kr1, kr2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cts[i], errs[i] = kr.Encrypt(ctx, l, []byte("hi"))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, ct := range cts {
		for _, kr := range []*fieldcrypt.Keyring{kr1, kr2} {
			if got, err := kr.Decrypt(ctx, l, ct); err != nil || string(got) != "hi" {
				t.Fatalf("got %q, %v; both instances must share one keyset", got, err)
			}
		}
	}
	if _, err := kr1.Rotate(ctx, fieldcrypt.Scope{Tenant: "a"}); err != nil {
		t.Fatal(err)
	}
	ct, err := kr1.Encrypt(ctx, l, []byte("after"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := kr2.Decrypt(ctx, l, ct); err != nil || string(got) != "after" {
		t.Fatalf("other instance after rotation: got %q, %v", got, err)
	}
}

// A Store on a caller's transaction commits and rolls back with it, and so
// does a Column's batch.
func TestStoreAndColumnJoinCallerTransaction(t *testing.T) {
	st, db := newStore(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, messageDDL); err != nil {
		t.Fatal(err)
	}
	sc := fieldcrypt.Scope{Tenant: "a"}

	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inTx := fieldcryptpg.New(tx, fieldcryptpg.Config{})
	if err := inTx.Create(ctx, fieldcrypt.StoredKeyset{Scope: sc, Purpose: fieldcrypt.PurposeAEAD, Version: 1, Wrapped: []byte("w"), PrimarySince: time.Now(), UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := inTx.Get(ctx, sc, fieldcrypt.PurposeAEAD); err != nil {
		t.Fatalf("Get inside the transaction: %v", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO message (app_id, id, text_enc) VALUES ('a', 1, $1)`, fieldcrypt.KeyPrefix(8)); err != nil {
		t.Fatal(err)
	}
	col, err := fieldcryptpg.NewColumn(tx, fieldcryptpg.ColumnConfig{Table: "message", IDType: "bigint", Ciphertext: "text_enc"})
	if err != nil {
		t.Fatal(err)
	}
	done, err := col.SwapBatch(ctx, []fieldcrypt.SwapParams{{Scope: sc, ID: "1", Old: fieldcrypt.KeyPrefix(8), New: []byte("new")}})
	if err != nil || len(done) != 1 || !done[0] {
		t.Fatalf("SwapBatch in a transaction: %v, %v", done, err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	if _, err := st.Get(ctx, sc, fieldcrypt.PurposeAEAD); !errors.Is(err, fieldcrypt.ErrNotFound) {
		t.Fatalf("after rollback: got %v, want ErrNotFound", err)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM message`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("after rollback: %d rows, %v", n, err)
	}
}
