package tlog_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/signature"
	"golang.org/x/mod/sumdb/note"

	"github.com/chatsdk/compliance/audit/tlog"
)

// fixture is a log key, a tree of 40 leaves and helpers to sign its heads.
type fixture struct {
	signer *tlog.Signer
	logVs  []note.Verifier
	tree   memTree
	leaves []tlog.Hash
	origin string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	h, err := keyset.NewHandle(signature.ED25519KeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	s, err := tlog.NewSigner("", h)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := h.Public()
	if err != nil {
		t.Fatal(err)
	}
	vs, _, err := tlog.Verifiers("", pub)
	if err != nil {
		t.Fatal(err)
	}
	origin, _ := tlog.Origin("app-1")
	f := &fixture{signer: s, logVs: vs, origin: origin}
	for i := range 40 {
		f.leaves = append(f.leaves, tlog.LeafHash(leafData(i)))
	}
	f.tree.append(t, 0, f.leaves)
	return f
}

func (f *fixture) head(t testing.TB, size uint64) tlog.TreeHead {
	t.Helper()
	root, err := tlog.TreeRoot(size, &f.tree)
	if err != nil {
		t.Fatal(err)
	}
	return tlog.TreeHead{Origin: f.origin, Size: size, Root: root}
}

func (f *fixture) signed(t testing.TB, h tlog.TreeHead) []byte {
	t.Helper()
	b, err := tlog.SignHead(f.signer, h)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *fixture) proof(t testing.TB, old, new uint64) []tlog.Hash {
	t.Helper()
	p, err := tlog.ProveConsistency(old, new, &f.tree)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newWitness(t testing.TB, path, name string, logs []note.Verifier) (*tlog.FileWitness, *tlog.Cosigner) {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tlog.NewCosigner(name, key, func() time.Time { return time.Unix(1700000000, 0) })
	if err != nil {
		t.Fatal(err)
	}
	w, err := tlog.NewFileWitness(path, c, logs)
	if err != nil {
		t.Fatal(err)
	}
	return w, c
}

func TestSignedHeadRoundTripsAndStandardVerifierAccepts(t *testing.T) {
	f := newFixture(t)
	h := f.head(t, 17)
	signed := f.signed(t, h)

	got, _, err := tlog.OpenHead(signed, f.logVs)
	if err != nil {
		t.Fatal(err)
	}
	if got != h {
		t.Fatalf("opened %+v, want %+v", got, h)
	}

	// A verifier that knows nothing of Tink or this package checks it
	// with the standard verifier key alone.
	v, err := note.NewVerifier(f.signer.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		t.Fatalf("standard note verifier: %v", err)
	}
	if want, _ := h.Format(); n.Text != string(want) {
		t.Fatalf("note text %q, want %q", n.Text, want)
	}
}

func TestRotatedKeysOverlap(t *testing.T) {
	h, err := keyset.NewHandle(signature.ED25519KeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	oldSigner, err := tlog.NewSigner("", h)
	if err != nil {
		t.Fatal(err)
	}
	m := keyset.NewManagerFromHandle(h)
	id, err := m.Add(signature.ED25519KeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetPrimary(id); err != nil {
		t.Fatal(err)
	}
	rotated, err := m.Handle()
	if err != nil {
		t.Fatal(err)
	}
	newSigner, err := tlog.NewSigner("", rotated)
	if err != nil {
		t.Fatal(err)
	}
	if newSigner.KeyHash() == oldSigner.KeyHash() {
		t.Fatal("rotation did not change the signing key")
	}
	pub, err := rotated.Public()
	if err != nil {
		t.Fatal(err)
	}
	vs, vkeys, err := tlog.Verifiers("", pub)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || len(vkeys) != 2 {
		t.Fatalf("%d verifiers for a keyset of two keys", len(vs))
	}
	head := tlog.TreeHead{Origin: "o", Size: 1, Root: tlog.LeafHash([]byte("x"))}
	for _, s := range []*tlog.Signer{oldSigner, newSigner} {
		signed, err := tlog.SignHead(s, head)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := tlog.OpenHead(signed, vs); err != nil {
			t.Fatalf("head signed by key %08x: %v", s.KeyHash(), err)
		}
	}

	// A verifier holding only the new key refuses the old key's heads.
	only, _, err := tlog.Verifiers("", mustPublic(t, newKeysetOnly(t)))
	if err != nil {
		t.Fatal(err)
	}
	signed, _ := tlog.SignHead(oldSigner, head)
	if _, _, err := tlog.OpenHead(signed, only); !errors.Is(err, tlog.ErrBadSignature) {
		t.Fatalf("a head of an unknown key: %v, want ErrBadSignature", err)
	}
}

func newKeysetOnly(t testing.TB) *keyset.Handle {
	t.Helper()
	h, err := keyset.NewHandle(signature.ED25519KeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func mustPublic(t testing.TB, h *keyset.Handle) *keyset.Handle {
	t.Helper()
	p, err := h.Public()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWitnessCosignsExtensions(t *testing.T) {
	f := newFixture(t)
	w, c := newWitness(t, filepath.Join(t.TempDir(), "w.json"), "witness-a", f.logVs)
	ctx := t.Context()

	var last uint64
	for _, size := range []uint64{3, 3, 10, 11, 32, 40} {
		signed := f.signed(t, f.head(t, size))
		cosigned, err := tlog.Cosign(ctx, w, signed, last, func(old uint64) ([]tlog.Hash, error) { return f.proof(t, old, size), nil })
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		q := tlog.Quorum{Log: f.logVs, Witnesses: []note.Verifier{c.Verifier()}, N: 1}
		if _, err := q.Verify(cosigned); err != nil {
			t.Fatalf("size %d: quorum of the witness's cosignature: %v", size, err)
		}
		last = size
	}
	got, ok, err := w.Latest(f.origin)
	if err != nil || !ok || got != f.head(t, 40) {
		t.Fatalf("latest = %+v %v %v, want the head of size 40", got, ok, err)
	}
}

func TestWitnessTellsItsSizeOnConflict(t *testing.T) {
	f := newFixture(t)
	w, _ := newWitness(t, filepath.Join(t.TempDir(), "w.json"), "witness-a", f.logVs)
	ctx := t.Context()
	if _, err := w.AddCheckpoint(ctx, tlog.AddRequest{Checkpoint: f.signed(t, f.head(t, 8))}); err != nil {
		t.Fatal(err)
	}
	_, err := w.AddCheckpoint(ctx, tlog.AddRequest{OldSize: 5, Proof: f.proof(t, 5, 20), Checkpoint: f.signed(t, f.head(t, 20))})
	var conflict *tlog.ConflictError
	if !errors.As(err, &conflict) || conflict.Size != 8 {
		t.Fatalf("err = %v, want a conflict naming size 8", err)
	}
}

// TestWitnessCatchesFork shows the witness refusing a second history: a
// head of the same size with another root, and a larger head that does not
// extend the one it cosigned.
func TestWitnessCatchesFork(t *testing.T) {
	f := newFixture(t)
	path := filepath.Join(t.TempDir(), "w.json")
	w, _ := newWitness(t, path, "witness-a", f.logVs)
	ctx := t.Context()
	if _, err := w.AddCheckpoint(ctx, tlog.AddRequest{Checkpoint: f.signed(t, f.head(t, 20))}); err != nil {
		t.Fatal(err)
	}

	// The forked history: leaf 7 differs, everything is signed properly.
	var fork memTree
	forked := append([]tlog.Hash(nil), f.leaves...)
	forked[7] = tlog.LeafHash([]byte("a different event"))
	fork.append(t, 0, forked)
	root20, _ := tlog.TreeRoot(20, &fork)
	same := tlog.TreeHead{Origin: f.origin, Size: 20, Root: root20}
	_, err := w.AddCheckpoint(ctx, tlog.AddRequest{OldSize: 20, Checkpoint: f.signed(t, same)})
	if !errors.Is(err, tlog.ErrFork) {
		t.Fatalf("same size, another root: %v, want ErrFork", err)
	}

	root30, _ := tlog.TreeRoot(30, &fork)
	bigger := tlog.TreeHead{Origin: f.origin, Size: 30, Root: root30}
	p, _ := tlog.ProveConsistency(20, 30, &fork)
	_, err = w.AddCheckpoint(ctx, tlog.AddRequest{OldSize: 20, Proof: p, Checkpoint: f.signed(t, bigger)})
	if !errors.Is(err, tlog.ErrFork) {
		t.Fatalf("a larger head of the fork: %v, want ErrFork", err)
	}

	// A witness restarted on the same file remembers.
	w2, _ := newWitness(t, path, "witness-a", f.logVs)
	if _, err := w2.AddCheckpoint(ctx, tlog.AddRequest{OldSize: 20, Checkpoint: f.signed(t, same)}); !errors.Is(err, tlog.ErrFork) {
		t.Fatalf("after a restart: %v, want ErrFork", err)
	}
	got, _, _ := w2.Latest(f.origin)
	if got != f.head(t, 20) {
		t.Fatal("a refused head replaced the witness's state")
	}
}

func TestWitnessRefusesRollback(t *testing.T) {
	f := newFixture(t)
	path := filepath.Join(t.TempDir(), "w.json")
	w, _ := newWitness(t, path, "witness-a", f.logVs)
	ctx := t.Context()
	if _, err := w.AddCheckpoint(ctx, tlog.AddRequest{Checkpoint: f.signed(t, f.head(t, 30))}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []*tlog.FileWitness{w, func() *tlog.FileWitness { w, _ := newWitness(t, path, "witness-a", f.logVs); return w }()} {
		_, err := w.AddCheckpoint(ctx, tlog.AddRequest{OldSize: 30, Checkpoint: f.signed(t, f.head(t, 12))})
		if !errors.Is(err, tlog.ErrRollback) {
			t.Fatalf("a smaller head: %v, want ErrRollback", err)
		}
	}
}

func TestWitnessRefusesUnsignedHeads(t *testing.T) {
	f := newFixture(t)
	other := newFixture(t) // another log's key
	w, _ := newWitness(t, filepath.Join(t.TempDir(), "w.json"), "witness-a", f.logVs)
	_, err := w.AddCheckpoint(t.Context(), tlog.AddRequest{Checkpoint: other.signed(t, f.head(t, 5))})
	if !errors.Is(err, tlog.ErrBadSignature) {
		t.Fatalf("a head signed by another key: %v, want ErrBadSignature", err)
	}
}

func TestQuorumRefusesTooFewCosignatures(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	wa, ca := newWitness(t, filepath.Join(dir, "a.json"), "witness-a", f.logVs)
	wb, cb := newWitness(t, filepath.Join(dir, "b.json"), "witness-b", f.logVs)
	wx, _ := newWitness(t, filepath.Join(dir, "x.json"), "witness-x", f.logVs) // unknown to the verifier
	ctx := t.Context()
	signed := f.signed(t, f.head(t, 25))
	proof := func(old uint64) ([]tlog.Hash, error) { return f.proof(t, old, 25), nil }
	q := tlog.Quorum{Log: f.logVs, Witnesses: []note.Verifier{ca.Verifier(), cb.Verifier()}, N: 2}

	if _, err := q.Verify(signed); !errors.Is(err, tlog.ErrNoQuorum) {
		t.Fatalf("no cosignature: %v, want ErrNoQuorum", err)
	}
	one, err := tlog.Cosign(ctx, wa, signed, 0, proof)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Verify(one); !errors.Is(err, tlog.ErrNoQuorum) {
		t.Fatalf("one of two: %v, want ErrNoQuorum", err)
	}
	withUnknown, err := tlog.Cosign(ctx, wx, one, 0, proof)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Verify(withUnknown); !errors.Is(err, tlog.ErrNoQuorum) {
		t.Fatalf("one known and one unknown: %v, want ErrNoQuorum", err)
	}
	// The same witness twice still counts once.
	line := bytes.SplitAfter(one, []byte("\n"))
	twice := append(append([]byte(nil), one...), line[len(line)-2]...)
	if _, err := q.Verify(twice); !errors.Is(err, tlog.ErrNoQuorum) {
		t.Fatalf("one witness twice: %v, want ErrNoQuorum", err)
	}
	both, err := tlog.Cosign(ctx, wb, withUnknown, 0, proof)
	if err != nil {
		t.Fatal(err)
	}
	got, err := q.Verify(both)
	if err != nil {
		t.Fatalf("two of two: %v", err)
	}
	if got != f.head(t, 25) {
		t.Fatal("quorum returned another head")
	}

	// A cosignature copied onto another head does not verify.
	otherHead := f.signed(t, f.head(t, 26))
	cosigs := both[bytes.Index(both, []byte("\n\n"))+2:]
	var moved []byte
	moved = append(moved, otherHead...)
	moved = append(moved, cosigs[bytes.Index(cosigs, []byte("\n"))+1:]...)
	if _, err := q.Verify(moved); !errors.Is(err, tlog.ErrBadSignature) {
		t.Fatalf("cosignatures moved to another head: %v, want ErrBadSignature", err)
	}
}

func TestCosignatureKeyRoundTrips(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	c, err := tlog.NewCosigner("witness-a", key, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := c.Verifier().(*tlog.CosignatureVerifier)
	back, err := tlog.ParseCosignatureKey(v.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	if back.Name() != v.Name() || back.KeyHash() != v.KeyHash() {
		t.Fatal("parsed witness key differs")
	}
	vk := []byte(v.VerifierKey())
	vk[len(vk)-2] ^= 1
	if _, err := tlog.ParseCosignatureKey(string(vk)); err == nil {
		t.Fatal("a damaged witness key parsed")
	}
}

// TestQuorumCountsOnlyWitnesses checks that the log's own signature is no
// cosignature: a quorum whose witness list names the log's key is refused
// as misconfigured; and that a second key under one witness name counts
// once.
func TestQuorumCountsOnlyWitnesses(t *testing.T) {
	f := newFixture(t)
	signed := f.signed(t, f.head(t, 12))
	q := tlog.Quorum{Log: f.logVs, Witnesses: append([]note.Verifier(nil), f.logVs...), N: 1}
	if _, err := q.Verify(signed); !errors.Is(err, tlog.ErrKey) {
		t.Fatalf("the log's key listed as a witness: %v, want ErrKey", err)
	}

	dir := t.TempDir()
	wa, ca := newWitness(t, filepath.Join(dir, "a.json"), "witness-a", f.logVs)
	wa2, ca2 := newWitness(t, filepath.Join(dir, "a2.json"), "witness-a", f.logVs) // same name, another key
	proof := func(old uint64) ([]tlog.Hash, error) { return f.proof(t, old, 12), nil }
	one, err := tlog.Cosign(t.Context(), wa, signed, 0, proof)
	if err != nil {
		t.Fatal(err)
	}
	two, err := tlog.Cosign(t.Context(), wa2, one, 0, proof)
	if err != nil {
		t.Fatal(err)
	}
	q = tlog.Quorum{Log: f.logVs, Witnesses: []note.Verifier{ca.Verifier(), ca2.Verifier()}, N: 2}
	if _, err := q.Verify(two); !errors.Is(err, tlog.ErrNoQuorum) {
		t.Fatalf("two keys of one witness name: %v, want ErrNoQuorum", err)
	}
}

// TestWitnessFileSharedByTwoInstances has two FileWitness values on one
// state file (as two processes would be) offered two forks of one size at
// the same moment: at most one may cosign.
func TestWitnessFileSharedByTwoInstances(t *testing.T) {
	f := newFixture(t)
	var fork memTree
	forked := append([]tlog.Hash(nil), f.leaves...)
	forked[3] = tlog.LeafHash([]byte("a different event"))
	fork.append(t, 0, forked)
	root, _ := tlog.TreeRoot(20, &fork)
	heads := [2][]byte{f.signed(t, f.head(t, 20)), f.signed(t, tlog.TreeHead{Origin: f.origin, Size: 20, Root: root})}
	_, key, _ := ed25519.GenerateKey(nil)
	c, err := tlog.NewCosigner("witness-a", key, nil)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 20 {
		path := filepath.Join(t.TempDir(), "w.json")
		var ws [2]*tlog.FileWitness
		for i := range ws {
			if ws[i], err = tlog.NewFileWitness(path, c, f.logVs); err != nil {
				t.Fatal(err)
			}
		}
		start := make(chan struct{})
		errs := make(chan error, 2)
		for i := range ws {
			go func() {
				<-start
				_, err := ws[i].AddCheckpoint(t.Context(), tlog.AddRequest{Checkpoint: heads[i]})
				errs <- err
			}()
		}
		close(start)
		ok := 0
		for range ws {
			if err := <-errs; err == nil {
				ok++
			} else if !errors.Is(err, tlog.ErrFork) {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d of two forks of size 20 cosigned", round, ok)
		}
	}
}

// TestWitnessStateSurvivesCrashMidWrite leaves what a crash during a save
// leaves, a half-written temporary file beside the state, and checks a
// restarted witness still holds the last head; a damaged state file itself
// makes the witness refuse to cosign rather than start afresh.
func TestWitnessStateSurvivesCrashMidWrite(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "w.json")
	w, _ := newWitness(t, path, "witness-a", f.logVs)
	if _, err := w.AddCheckpoint(t.Context(), tlog.AddRequest{Checkpoint: f.signed(t, f.head(t, 20))}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "w.json.123456"), []byte(`{"chatsdk-compliance/audit/v1/app-1":{"size":`), 0o600); err != nil {
		t.Fatal(err)
	}
	w2, _ := newWitness(t, path, "witness-a", f.logVs)
	if got, ok, err := w2.Latest(f.origin); err != nil || !ok || got != f.head(t, 20) {
		t.Fatalf("after a crash mid-write: %+v %v %v, want the head of size 20", got, ok, err)
	}
	if _, err := w2.AddCheckpoint(t.Context(), tlog.AddRequest{OldSize: 20, Checkpoint: f.signed(t, f.head(t, 12))}); !errors.Is(err, tlog.ErrRollback) {
		t.Fatalf("a rollback after the crash: %v, want ErrRollback", err)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := w2.AddCheckpoint(t.Context(), tlog.AddRequest{Checkpoint: f.signed(t, f.head(t, 12))}); !errors.Is(err, tlog.ErrMalformed) {
		t.Fatalf("a damaged state file: %v, want ErrMalformed", err)
	}
}
