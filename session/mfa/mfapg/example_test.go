package mfapg_test

import (
	"context"
	"os"

	"github.com/chatsdk/compliance/session/mfa"
	"github.com/chatsdk/compliance/session/mfa/mfapg"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// Example wires an Authenticator to Postgres. The AEAD stands for the
// application's field encryption; the example server wires fieldcrypt.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		panic(err)
	}
	defer pool.Close()

	opts := mfapg.Options{Schema: "app"}
	if err := mfapg.Migrate(ctx, pool, opts); err != nil {
		panic(err)
	}
	store := mfapg.New(pool, opts)

	var cipher tink.AEAD // from the application's keyset
	auth, err := mfa.New(mfa.Config{
		Store:    store,
		Policies: store,
		Sealer:   mfa.AEADSealer{AEAD: cipher},
		Issuer:   "Chat Health",
	})
	if err != nil {
		panic(err)
	}
	_ = auth
}
