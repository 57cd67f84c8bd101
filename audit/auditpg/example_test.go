package auditpg_test

import (
	"context"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/auditpg"
)

// Example wires a Log to Postgres. It is compiled but not run: it needs a
// database.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		panic(err)
	}
	defer pool.Close()

	store, err := auditpg.New(pool, auditpg.Config{Schema: "compliance"})
	if err != nil {
		panic(err)
	}
	if err := store.Migrate(ctx, pool); err != nil {
		panic(err)
	}
	log, err := audit.New(audit.Config{Store: store})
	if err != nil {
		panic(err)
	}
	defer log.Close(ctx)

	// Recorded with the group commit...
	_, err = log.Record(ctx, audit.Event{Tenant: "clinic-1", Actor: "dr-lee", Type: audit.TypeDataRead,
		Category: audit.CategoryDataAccess, Action: audit.ActionRead, ResourceType: "message", ResourceID: "m-1", Success: true})
	fmt.Println(err)

	// ...or atomically with a business change.
	tx, err := pool.Begin(ctx)
	if err != nil {
		panic(err)
	}
	defer tx.Rollback(ctx)
	ev := audit.Event{Tenant: "clinic-1", Actor: "dr-lee", Type: audit.TypeDataDeleted,
		Category: audit.CategoryDataModification, Action: audit.ActionDelete, ResourceType: "message", ResourceID: "m-1", Success: true}
	if err := log.Prepare(&ev); err != nil {
		panic(err)
	}
	if _, err := store.AppendTx(ctx, tx, ev.Tenant, []audit.Event{ev}); err != nil {
		panic(err)
	}
	// ... DELETE the message in tx ...
	_ = tx.Commit(ctx)
}
