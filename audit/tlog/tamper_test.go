package tlog_test

import (
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/chatsdk/compliance/audit/tlog"
)

// TestTamperedProofByteDetected changes every byte of inclusion and
// consistency proofs, one at a time, and expects each proof to fail.
func TestTamperedProofByteDetected(t *testing.T) {
	f := newFixture(t)
	head := f.head(t, 37)
	for _, idx := range []uint64{0, 13, 36} {
		p, err := tlog.ProveInclusion(37, idx, &f.tree)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.VerifyInclusion(head, idx, f.leaves[idx], p); err != nil {
			t.Fatal(err)
		}
		for i := range p {
			for b := range tlog.HashSize {
				bad := append([]tlog.Hash(nil), p...)
				bad[i][b] ^= 0x01
				if tlog.VerifyInclusion(head, idx, f.leaves[idx], bad) == nil {
					t.Fatalf("leaf %d: byte %d of proof hash %d changed, proof still verifies", idx, b, i)
				}
			}
		}
		// A dropped or an extra hash fails too.
		if tlog.VerifyInclusion(head, idx, f.leaves[idx], p[:len(p)-1]) == nil || tlog.VerifyInclusion(head, idx, f.leaves[idx], append(p, p[0])) == nil {
			t.Fatalf("leaf %d: a proof of the wrong length verified", idx)
		}
	}

	old := f.head(t, 11)
	p := f.proof(t, 11, 37)
	if err := tlog.VerifyConsistency(old, head, p); err != nil {
		t.Fatal(err)
	}
	for i := range p {
		for b := range tlog.HashSize {
			bad := append([]tlog.Hash(nil), p...)
			bad[i][b] ^= 0x01
			if tlog.VerifyConsistency(old, head, bad) == nil {
				t.Fatalf("byte %d of consistency hash %d changed, proof still verifies", b, i)
			}
		}
	}
	for _, h := range []*tlog.TreeHead{&old, &head} {
		for b := range tlog.HashSize {
			saved := *h
			h.Root[b] ^= 0x01
			if tlog.VerifyConsistency(old, head, p) == nil {
				t.Fatalf("root byte %d changed, consistency still verifies", b)
			}
			*h = saved
		}
	}
}

// TestTamperedCheckpointByteDetected changes every byte of a cosigned
// head, one at a time, and expects the quorum verifier to refuse each.
func TestTamperedCheckpointByteDetected(t *testing.T) {
	f := newFixture(t)
	w, c := newWitness(t, filepath.Join(t.TempDir(), "w.json"), "witness-a", f.logVs)
	signed := f.signed(t, f.head(t, 29))
	cosigned, err := tlog.Cosign(t.Context(), w, signed, 0, func(old uint64) ([]tlog.Hash, error) { return f.proof(t, old, 29), nil })
	if err != nil {
		t.Fatal(err)
	}
	q := tlog.Quorum{Log: f.logVs, Witnesses: []note.Verifier{c.Verifier()}, N: 1}
	want, err := q.Verify(cosigned)
	if err != nil {
		t.Fatal(err)
	}
	for i := range cosigned {
		for _, flip := range []byte{0x01, 0x02, 0x20, 0x80} {
			bad := append([]byte(nil), cosigned...)
			bad[i] ^= flip
			if got, err := q.Verify(bad); err == nil {
				t.Fatalf("byte %d ^ %#x: still verifies (head %+v, original %+v)", i, flip, got, want)
			}
		}
	}
}
