package retentionpg_test

import (
	"context"
	"log"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatsdk/compliance/retention"
	"github.com/chatsdk/compliance/retention/retentionpg"
)

// Wiring a sweeper to Postgres. The batch hook runs inside each batch's
// transaction, which retentionpg.Tx returns, so an audit entry written
// through it commits or rolls back with the rows it describes.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	if err := retentionpg.Migrate(ctx, pool, retentionpg.Config{}); err != nil {
		log.Fatal(err)
	}
	store, err := retentionpg.New(pool, retentionpg.Config{})
	if err != nil {
		log.Fatal(err)
	}
	policies, err := retention.NewPolicies(store, retention.PoliciesConfig{})
	if err != nil {
		log.Fatal(err)
	}
	sweeper, err := retention.NewSweeper(policies, retention.SweeperConfig{
		Targets: []retention.Target{{Table: "message", ID: "id", Time: "created_at", Channel: "channel_id", User: "user_id"}},
		OnBatch: func(ctx context.Context, r retention.Record) error {
			tx, ok := retentionpg.Tx(ctx)
			if !ok {
				return nil
			}
			_, err := tx.Exec(ctx, "INSERT INTO sweep_log (app_id, target, deleted) VALUES ($1, $2, $3)", r.AppID, r.Target, r.Deleted)
			return err
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := sweeper.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
