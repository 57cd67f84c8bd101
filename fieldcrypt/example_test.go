package fieldcrypt_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"

	"github.com/chatsdk/compliance/fieldcrypt"
)

// exampleKEK stands in for a KMS key; use fieldcrypt.KEKFromURI in
// production.
func exampleKEK() *keyset.Handle {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		panic(err)
	}
	return h
}

func Example() {
	ctx := context.Background()
	kek, _ := aead.New(exampleKEK())
	kr, err := fieldcrypt.New(fieldcrypt.Config{Store: fieldcrypt.NewMemoryStore(), KEK: kek})
	if err != nil {
		panic(err)
	}

	row := fieldcrypt.Location{Tenant: "clinic-1", Table: "message", Column: "text", Row: "42"}
	ct, err := kr.Encrypt(ctx, row, []byte("Your results are ready."))
	if err != nil {
		panic(err)
	}
	pt, err := kr.Decrypt(ctx, row, ct)
	fmt.Printf("%s %v\n", pt, err)

	// The same ciphertext pasted into another row does not decrypt.
	other := row
	other.Row = "43"
	_, err = kr.Decrypt(ctx, other, ct)
	fmt.Println(err)
	// Output:
	// Your results are ready. <nil>
	// fieldcrypt: decryption failed
}

func ExampleKeyring_Shred() {
	ctx := context.Background()
	kek, _ := aead.New(exampleKEK())
	kr, _ := fieldcrypt.New(fieldcrypt.Config{
		Store:   fieldcrypt.NewMemoryStore(),
		KEK:     kek,
		OnShred: func(e fieldcrypt.ShredEvent) { fmt.Println("shredded", e.Scope) },
	})

	note := fieldcrypt.Location{Tenant: "clinic-1", Table: "note", Column: "body", Row: "7", Scope: "patient:7"}
	ct, _ := kr.Encrypt(ctx, note, []byte("diagnosis"))

	// A retention hook shreds the patient's scope.
	if err := kr.Shred(ctx, note.ScopeOf()); err != nil {
		panic(err)
	}
	_, err := kr.Decrypt(ctx, note, ct)
	fmt.Println(errors.Is(err, fieldcrypt.ErrShredded))
	// Output:
	// shredded clinic-1/patient:7
	// true
}

func ExampleRewrap() {
	ctx := context.Background()
	kek, _ := aead.New(exampleKEK())
	kr, _ := fieldcrypt.New(fieldcrypt.Config{Store: fieldcrypt.NewMemoryStore(), KEK: kek})
	clinic := fieldcrypt.Scope{Tenant: "clinic-1"}
	col := fieldcrypt.NewMemoryColumn()
	for _, id := range []string{"1", "2", "3"} {
		ct, _ := kr.Encrypt(ctx, fieldcrypt.Location{Tenant: "clinic-1", Table: "message", Column: "text", Row: id}, []byte("m"+id))
		col.Put(clinic, id, ct)
	}

	newKey, _ := kr.Rotate(ctx, clinic)
	rw := &fieldcrypt.Rewrap{Keyring: kr, Rows: col, Scope: clinic, Table: "message", Column: "text", BatchSize: 2}
	rep, err := rw.Run(ctx)
	fmt.Println(rep.Rewrapped, rep.Done, rep.KeyID == newKey, err)
	// Output:
	// 3 true true <nil>
}

func ExampleKeyring_BlindIndex() {
	ctx := context.Background()
	kek, _ := aead.New(exampleKEK())
	kr, _ := fieldcrypt.New(fieldcrypt.Config{Store: fieldcrypt.NewMemoryStore(), KEK: kek})
	email := fieldcrypt.Index{Tenant: "clinic-1", Table: "patient", Column: "email", Bits: 32}

	stored, _ := kr.BlindIndex(ctx, email, "Jane.Doe@example.com")
	lookup, _ := kr.BlindIndex(ctx, email, "  jane.doe@EXAMPLE.com ")
	fmt.Println(len(stored), string(stored) == string(lookup))
	// Output:
	// 4 true
}
