package tlog_test

import (
	"crypto/ed25519"
	"slices"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/chatsdk/compliance/audit/tlog"
)

func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte("chatsdk-compliance/audit/v1/app-1\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"))
	f.Add([]byte("o\n0\n\n"))
	f.Add([]byte("o\n01\nAAAA\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		h, err := tlog.ParseCheckpoint(text)
		if err != nil {
			return
		}
		// Whatever parses formats back to the same bytes: one spelling
		// per head.
		out, err := h.Format()
		if err != nil || string(out) != string(text) {
			t.Fatalf("parsed %q, formatted %q (%v)", text, out, err)
		}
	})
}

// FuzzOpenHead feeds arbitrary notes to the quorum verifier, with and
// without a real log signature and cosignature in the corpus. Whatever it
// accepts must carry the log's valid signature.
func FuzzOpenHead(f *testing.F) {
	fx := newFixture(f)
	c, err := tlog.NewCosigner("witness-a", ed25519.NewKeyFromSeed(make([]byte, 32)), nil)
	if err != nil {
		f.Fatal(err)
	}
	signed := fx.signed(f, fx.head(f, 9))
	cosigned, err := note.Sign(&note.Note{Text: string(mustText(f, fx.head(f, 9)))}, fx.signer, c)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(signed)
	f.Add(cosigned)
	f.Add([]byte("o\n1\nAAAA\n\n— x AAAA\n"))
	q := tlog.Quorum{Log: fx.logVs, Witnesses: []note.Verifier{c.Verifier()}, N: 0}
	v, _ := note.NewVerifier(fx.signer.VerifierKey())
	f.Fuzz(func(t *testing.T, msg []byte) {
		h, err := q.Verify(msg)
		if err != nil {
			return
		}
		n, err := note.Open(msg, note.VerifierList(v))
		if err != nil {
			t.Fatalf("accepted a note the standard verifier refuses: %v", err)
		}
		if back, err := tlog.ParseCheckpoint([]byte(n.Text)); err != nil || back != h {
			t.Fatalf("accepted head %+v differs from the note's text", h)
		}
	})
}

func mustText(t testing.TB, h tlog.TreeHead) []byte {
	t.Helper()
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzParseCosignatureKey(f *testing.F) {
	c, _ := tlog.NewCosigner("witness-a", ed25519.NewKeyFromSeed(make([]byte, 32)), nil)
	f.Add(c.Verifier().(*tlog.CosignatureVerifier).VerifierKey())
	f.Add("a+00000000+BA==")
	f.Fuzz(func(t *testing.T, vkey string) {
		v, err := tlog.ParseCosignatureKey(vkey)
		if err != nil {
			return
		}
		if v.VerifierKey() != vkey {
			t.Fatalf("parsed %q, re-encoded %q", vkey, v.VerifierKey())
		}
	})
}

// FuzzVerifyProofs offers arbitrary proofs for the heads of a real tree:
// whatever verifies must be the genuine proof, since another would need a
// SHA-256 collision. Sizes and indexes come from the fuzzer too, so the
// bounds checks are exercised with the hash checks.
func FuzzVerifyProofs(f *testing.F) {
	fx := newFixture(f)
	f.Add(uint8(11), uint8(37), uint8(5), []byte{})
	f.Add(uint8(0), uint8(0), uint8(0), make([]byte, 64))
	f.Add(uint8(40), uint8(3), uint8(39), make([]byte, 32*6))
	f.Fuzz(func(t *testing.T, m, n, idx uint8, raw []byte) {
		old, size := uint64(m)%41, uint64(n)%41
		proof := make([]tlog.Hash, len(raw)/tlog.HashSize)
		for i := range proof {
			copy(proof[i][:], raw[i*tlog.HashSize:])
		}
		if size > 0 && uint64(idx) < 64 {
			i := uint64(idx)
			if tlog.VerifyInclusion(fx.head(t, size), i, fx.leaves[min(i, 39)], proof) == nil {
				want, err := tlog.ProveInclusion(size, i, &fx.tree)
				if err != nil || !slices.Equal(want, proof) {
					t.Fatalf("a forged inclusion proof of leaf %d in size %d verified", i, size)
				}
			}
		}
		if old <= size && tlog.VerifyConsistency(fx.head(t, old), fx.head(t, size), proof) == nil {
			want, err := tlog.ProveConsistency(old, size, &fx.tree)
			if err != nil || !slices.Equal(want, proof) {
				t.Fatalf("a forged consistency proof %d→%d verified", old, size)
			}
		}
	})
}
