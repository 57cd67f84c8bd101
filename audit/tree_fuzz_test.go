package audit_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/audittest"
)

// FuzzInclusionProof decodes arbitrary proof files and checks them: no
// panic, and anything that verifies is a real entry of the signed tree.
func FuzzInclusionProof(f *testing.F) {
	keys := audittest.NewTreeKeys(f)
	s := audit.NewMemoryStore()
	entries, err := s.Append(f.Context(), "t1", audittest.Events("t1", 0, 6))
	if err != nil {
		f.Fatal(err)
	}
	head, err := audit.SignTreeHead(f.Context(), s, keys.Signer, "t1", 6)
	if err != nil {
		f.Fatal(err)
	}
	for seq := uint64(1); seq <= 6; seq += 2 {
		p, err := audit.ProveInclusion(f.Context(), s, "t1", seq, head)
		if err != nil {
			f.Fatal(err)
		}
		b, _ := json.Marshal(p)
		f.Add(b)
	}
	f.Add([]byte(`{"entry":{},"tree_head":"","proof":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var p audit.InclusionProof
		if json.Unmarshal(data, &p) != nil {
			return
		}
		if _, err := p.Verify(keys.Verifiers); err != nil {
			return
		}
		want := entries[p.Entry.Seq-1]
		if !bytes.Equal(p.Entry.Hash, want.Hash) || !bytes.Equal(audit.EntryHash(&p.Entry), want.Hash) {
			t.Fatalf("a proof of an entry that is not entry %d verified", p.Entry.Seq)
		}
	})
}
