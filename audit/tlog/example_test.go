package tlog_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/signature"
	"golang.org/x/mod/sumdb/note"

	"github.com/chatsdk/compliance/audit/tlog"
)

// Example builds the tree of five entries, signs its head, has a file
// witness cosign it, and checks an inclusion proof the way an auditor
// does: the head with a quorum of one witness, then the audit path.
func Example() {
	// The log's keys: the audit checkpoint keyset, and its public half.
	h, _ := keyset.NewHandle(signature.ED25519KeyTemplate())
	signer, _ := tlog.NewSigner("", h)
	pub, _ := h.Public()
	logKeys, _, _ := tlog.Verifiers("", pub)

	// A store keeps the hashes AppendLeaves returns, in order.
	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	var leaves []tlog.Hash
	for i := range 5 {
		entryHash := sha256.Sum256(fmt.Appendf(nil, "entry %d", i+1))
		leaves = append(leaves, tlog.LeafHash(entryHash[:]))
	}
	hs, _ := tlog.AppendLeaves(0, leaves, reader)
	stored = append(stored, hs...)

	// Sign the head of size 5 and have a witness cosign it.
	origin, _ := tlog.Origin("app-1")
	root, _ := tlog.TreeRoot(5, reader)
	signed, _ := tlog.SignHead(signer, tlog.TreeHead{Origin: origin, Size: 5, Root: root})
	dir, _ := os.MkdirTemp("", "witness")
	defer os.RemoveAll(dir)
	_, wkey, _ := ed25519.GenerateKey(nil)
	cosigner, _ := tlog.NewCosigner("witness-a", wkey, nil)
	witness, _ := tlog.NewFileWitness(filepath.Join(dir, "state.json"), cosigner, logKeys)
	cosigned, err := tlog.Cosign(context.Background(), witness, signed, 0, func(old uint64) ([]tlog.Hash, error) {
		return tlog.ProveConsistency(old, 5, reader)
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	// The auditor: the head with a quorum, then entry 3's audit path.
	q := tlog.Quorum{Log: logKeys, Witnesses: []note.Verifier{cosigner.Verifier()}, N: 1}
	head, err := q.Verify(cosigned)
	if err != nil {
		fmt.Println(err)
		return
	}
	proof, _ := tlog.ProveInclusion(5, 2, reader)
	fmt.Println(head.Origin, head.Size)
	fmt.Println("entry 3 included:", tlog.VerifyInclusion(head, 2, leaves[2], proof) == nil)
	fmt.Println("as entry 4:", tlog.VerifyInclusion(head, 3, leaves[2], proof) == nil)
	// Output:
	// chatsdk-compliance/audit/v1/app-1 5
	// entry 3 included: true
	// as entry 4: false
}
