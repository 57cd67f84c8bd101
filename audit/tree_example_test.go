package audit_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/signature"
	"golang.org/x/mod/sumdb/note"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/audittest"
	"github.com/chatsdk/compliance/audit/tlog"
)

// ExampleTreePublisher signs a tree head at every checkpoint, has a
// witness cosign it, and proves one entry to an auditor who holds only the
// public keyset and the witness's key.
func ExampleTreePublisher() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "witness")
	defer os.RemoveAll(dir)

	// The application's checkpoint keyset signs both the checkpoints and
	// the tree heads.
	priv, _ := keyset.NewHandle(signature.ED25519KeyTemplate())
	checkpointSigner, _ := signature.NewSigner(priv)
	treeSigner, _ := tlog.NewSigner("", priv)
	pub, _ := priv.Public()
	logKeys, _, _ := tlog.Verifiers("", pub)

	// A witness, run by someone else, with its own key.
	_, wkey, _ := ed25519.GenerateKey(nil)
	cosigner, _ := tlog.NewCosigner("witness.example", wkey, nil)
	witness, _ := tlog.NewFileWitness(filepath.Join(dir, "witness.json"), cosigner, logKeys)

	store := audit.NewMemoryStore()
	log, _ := audit.New(audit.Config{
		Store: store, Signer: checkpointSigner, CheckpointEvery: 4,
		Publisher: &audit.TreePublisher{Store: store, Signer: treeSigner, Witnesses: []tlog.Witness{witness}},
	})
	for i := range 8 {
		if _, err := log.Record(ctx, audittest.Event("clinic-1", i)); err != nil {
			panic(err)
		}
	}
	log.Close(ctx)

	// The operator proves entry 3 under the latest head.
	head, _ := audit.LatestTreeHead(ctx, store, "clinic-1", 3)
	proof, _ := audit.ProveInclusion(ctx, store, "clinic-1", 3, head)

	// The auditor, offline, demands the witness's cosignature.
	q := &tlog.Quorum{Log: logKeys, Witnesses: []note.Verifier{cosigner.Verifier()}, N: 1}
	th, err := proof.VerifyQuorum(q)
	fmt.Println(th.Origin, th.Size, len(proof.Proof), err)
	// Output: chatsdk-compliance/audit/v1/clinic-1 8 3 <nil>
}
