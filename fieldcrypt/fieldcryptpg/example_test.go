package fieldcryptpg_test

import (
	"context"
	"log"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/chatsdk/compliance/fieldcrypt"
	"github.com/chatsdk/compliance/fieldcrypt/fieldcryptpg"
)

// The wiring of an application: keysets in Postgres, a KEK from the KMS,
// and a rewrap of message.text_enc after a rotation. It needs a database,
// so it is compiled but not run.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://app@db/app")
	if err != nil {
		log.Fatal(err)
	}
	if err := fieldcryptpg.Migrate(ctx, pool, fieldcryptpg.Config{}); err != nil {
		log.Fatal(err)
	}
	var kek tink.AEAD // fieldcrypt.KEKFromURI("aws-kms://…") after awskek.Register
	kr, err := fieldcrypt.New(fieldcrypt.Config{Store: fieldcryptpg.New(pool, fieldcryptpg.Config{}), KEK: kek})
	if err != nil {
		log.Fatal(err)
	}

	clinic := fieldcrypt.Scope{Tenant: "clinic-1"}
	if _, err := kr.Rotate(ctx, clinic); err != nil {
		log.Fatal(err)
	}
	col, err := fieldcryptpg.NewColumn(pool, fieldcryptpg.ColumnConfig{Table: "message", IDType: "bigint", Ciphertext: "text_enc"})
	if err != nil {
		log.Fatal(err)
	}
	rw := &fieldcrypt.Rewrap{Keyring: kr, Rows: col, Scope: clinic, Table: "message", Column: "text"}
	rep, err := rw.Run(ctx)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("rewrapped %d rows, done: %v", rep.Rewrapped, rep.Done)
}
