package sessionpg_test

import (
	"context"
	"log"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatsdk/compliance/session"
	"github.com/chatsdk/compliance/session/sessionpg"
)

// Wiring a Manager to Postgres. (Compiled, not run: it needs a database.)
func ExampleNew() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	cfg := sessionpg.Config{Schema: "app"}
	if err := sessionpg.Migrate(ctx, pool, cfg); err != nil {
		log.Fatal(err)
	}
	store, err := sessionpg.New(pool, cfg)
	if err != nil {
		log.Fatal(err)
	}

	key, _ := session.GenerateEd25519Key("2026-03")
	ring, _ := session.NewKeyRing(key)
	m, err := session.New(session.Config{Store: store, Keys: ring, Issuer: "https://auth.example", Audience: "chat-api"})
	if err != nil {
		log.Fatal(err)
	}
	_ = m
}
