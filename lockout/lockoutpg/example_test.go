package lockoutpg_test

import (
	"context"
	"log"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatsdk/compliance/lockout"
	"github.com/chatsdk/compliance/lockout/lockoutpg"
)

// Wiring a guard to Postgres: migrate once at start-up (every instance may),
// then build the guard on the store. Every instance of the application that
// shares the database shares the counters.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	if err := lockoutpg.Migrate(ctx, pool, lockoutpg.Options{}); err != nil {
		log.Fatal(err)
	}
	store, err := lockoutpg.New(pool, lockoutpg.Options{})
	if err != nil {
		log.Fatal(err)
	}
	guard, err := lockout.New(lockout.Config{Store: store})
	if err != nil {
		log.Fatal(err)
	}
	_ = guard // guard.Check(ctx, attempt, verify) around every credential check
}
