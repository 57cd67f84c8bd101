package integrity_test

import (
	"context"
	"fmt"
	"time"

	"github.com/chatsdk/compliance/integrity"
	"github.com/chatsdk/compliance/integrity/integritytest"
	"github.com/chatsdk/compliance/internal/canon"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/mac"
)

func Example() {
	ctx := context.Background()

	// In production the keyset comes from a KMS-encrypted keyset file.
	h, err := keyset.NewHandle(mac.HMACSHA256Tag256KeyTemplate())
	if err != nil {
		panic(err)
	}
	keys, err := integrity.NewKeys(h)
	if err != nil {
		panic(err)
	}
	sealer, err := integrity.New(integrity.Config{Keys: keys, Store: integrity.NewMemoryStore()})
	if err != nil {
		panic(err)
	}

	// The application's table: here, a map playing the database.
	table := integritytest.NewTable()
	at := time.Date(2026, 12, 3, 9, 30, 0, 0, time.UTC)
	for i, text := range []string{"hello", "how are you?", "fine"} {
		r := integrity.Record{
			Domain: "message", Tenant: "app-1", ID: fmt.Sprint(i + 1),
			Scope:  integrity.DayScope("chan-7", at),
			Fields: []canon.Value{canon.String("chan-7"), canon.String(text), canon.Time(at)},
		}
		table.Set(r)
		if err := sealer.Seal(ctx, r); err != nil {
			panic(err)
		}
	}

	// A retention sweep deletes message 1 and calls the hook.
	table.Delete(integrity.Key{Domain: "message", Tenant: "app-1", ID: "1"})
	if _, err := sealer.Forget(ctx, "message", "app-1", []string{"1"}); err != nil {
		panic(err)
	}

	// Someone edits message 2 and deletes message 3 behind our back.
	table.Set(integrity.Record{Domain: "message", Tenant: "app-1", ID: "2",
		Fields: []canon.Value{canon.String("chan-7"), canon.String("how are you!"), canon.Time(at)}})
	table.Delete(integrity.Key{Domain: "message", Tenant: "app-1", ID: "3"})

	sum, err := sealer.Verify(ctx, "message", table.Rows("message"), func(f integrity.Finding) {
		fmt.Println(f.Kind, f.Tenant, f.ID)
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("rows read:", sum.Rows, "ok:", sum.OK())
	// Output:
	// altered app-1 2
	// missing app-1 3
	// rows read: 1 ok: false
}

func ExampleSealer_Check() {
	ctx := context.Background()
	h, err := keyset.NewHandle(mac.HMACSHA256Tag256KeyTemplate())
	if err != nil {
		panic(err)
	}
	keys, err := integrity.NewKeys(h)
	if err != nil {
		panic(err)
	}
	sealer, _ := integrity.New(integrity.Config{Keys: keys, Store: integrity.NewMemoryStore()})

	r := integrity.Record{Domain: "note", Tenant: "app-1", ID: "n1", Scope: "patient-9",
		Fields: []canon.Value{canon.String("BP 120/80")}}
	if err := sealer.Seal(ctx, r); err != nil {
		panic(err)
	}
	fmt.Println(sealer.Check(ctx, r))

	r.Fields = []canon.Value{canon.String("BP 180/80")}
	fmt.Println(sealer.Check(ctx, r))
	// Output:
	// <nil>
	// integrity: tag mismatch
}
