package integritypg_test

import (
	"context"
	"log"
	"log/slog"
	"time"

	"github.com/chatsdk/compliance/integrity"
	"github.com/chatsdk/compliance/integrity/integritypg"
	"github.com/chatsdk/compliance/internal/canon"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tink-crypto/tink-go/v2/keyset"
)

// Example shows the wiring in an application: seal in the transaction
// that writes the row, forget in the transaction that deletes it, and
// verify daily on one instance. It needs a database, so it does not run
// as a test.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://app@db/app")
	if err != nil {
		log.Fatal(err)
	}
	if err := integritypg.Migrate(ctx, pool, integritypg.Config{}); err != nil {
		log.Fatal(err)
	}
	var handle *keyset.Handle // read from a KMS-encrypted keyset
	keys, err := integrity.NewKeys(handle)
	if err != nil {
		log.Fatal(err)
	}
	store := integritypg.New(pool, integritypg.Config{})
	sealer, err := integrity.New(integrity.Config{Keys: keys, Store: store})
	if err != nil {
		log.Fatal(err)
	}

	// Writing a message: the row and its tag commit together.
	at := canon.TruncateTime(time.Now())
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var id string
		if err := tx.QueryRow(ctx, "INSERT INTO message (app_id, channel_id, body, created_at) VALUES ($1, $2, $3, $4) RETURNING id::text",
			"app-1", "chan-7", "hello", at).Scan(&id); err != nil {
			return err
		}
		return sealer.WithStore(store.With(tx)).Seal(ctx, integrity.Record{
			Domain: "message", Tenant: "app-1", ID: id, Scope: integrity.DayScope("chan-7", at),
			Fields: []canon.Value{canon.String("chan-7"), canon.String("hello"), canon.Time(at)},
		})
	})
	if err != nil {
		log.Fatal(err)
	}

	// A retention sweep's per-batch hook, given the sweep's transaction
	// tx, the tenant and the deleted ids, forgets them in that same
	// transaction:
	forget := func(ctx context.Context, tx pgx.Tx, tenant, table string, ids []string) error {
		_, err := sealer.WithStore(store.With(tx)).Forget(ctx, table, tenant, ids)
		return err
	}
	_ = forget

	// Verification, daily, on whichever instance claims the run.
	v, err := integritypg.NewVerifier(integritypg.VerifierConfig{
		Store:  store,
		Sealer: sealer,
		Tables: []integritypg.Table{{Domain: "message", Columns: []integritypg.Column{
			{Name: "channel_id", Kind: canon.KindString},
			{Name: "body", Kind: canon.KindString},
			{Name: "created_at", Kind: canon.KindTime},
		}}},
		OnFinding: func(ctx context.Context, run string, f integrity.Finding) {
			slog.WarnContext(ctx, "integrity finding", "run", run, "kind", f.Kind.String(), "table", f.Domain, "tenant", f.Tenant, "id", f.ID)
		},
		Logger: slog.Default(),
	})
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = v.Schedule(ctx) }()
}
