package audit_test

import (
	"context"
	"fmt"
	"time"

	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/signature"

	"github.com/chatsdk/compliance/audit"
)

func Example() {
	ctx := context.Background()

	// The application holds the signing keyset; auditors get the public one.
	priv, _ := keyset.NewHandle(signature.ED25519KeyTemplate())
	signer, _ := signature.NewSigner(priv)
	pub, _ := priv.Public()
	verifier, _ := signature.NewVerifier(pub)

	store := audit.NewMemoryStore()
	log, err := audit.New(audit.Config{Store: store, Signer: signer})
	if err != nil {
		panic(err)
	}
	defer log.Close(ctx)

	entry, err := log.Record(ctx, audit.Event{
		Tenant:       "clinic-1",
		Time:         time.Date(2026, 5, 1, 9, 30, 0, 0, time.UTC),
		Actor:        "dr-lee",
		Type:         audit.TypeDataRead,
		Category:     audit.CategoryDataAccess,
		Action:       audit.ActionRead,
		ResourceType: "message",
		ResourceID:   "msg-42",
		Subject:      "patient-7",
		Success:      true,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("seq", entry.Seq)

	if _, err := log.Checkpoint(ctx, "clinic-1"); err != nil {
		panic(err)
	}
	rep, err := audit.Verify(ctx, store, audit.VerifyOptions{Stream: "clinic-1", Verifier: verifier})
	fmt.Println("verified", rep.Entries, "entries,", rep.Checkpoints, "checkpoint, error:", err)
	// Output:
	// seq 1
	// verified 1 entries, 1 checkpoint, error: <nil>
}
