package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/audittest"
	"github.com/chatsdk/compliance/audit/tlog"
)

func TestInclusionProofCatchesAlteredEntryAndProof(t *testing.T) {
	ctx := t.Context()
	s := audit.NewMemoryStore()
	keys := audittest.NewTreeKeys(t)
	_, err := s.Append(ctx, "t1", audittest.Events("t1", 0, 13))
	require.NoError(t, err)
	head, err := audit.SignTreeHead(ctx, s, keys.Signer, "t1", 13)
	require.NoError(t, err)
	p, err := audit.ProveInclusion(ctx, s, "t1", 6, head)
	require.NoError(t, err)
	_, err = p.Verify(keys.Verifiers)
	require.NoError(t, err)

	edited := p
	edited.Entry.Actor = "someone-else"
	_, err = edited.Verify(keys.Verifiers)
	var f *audit.Failure
	require.ErrorAs(t, err, &f, "an edited field")
	require.Equal(t, audit.FailAltered, f.Kind)

	// An entry rehashed after the edit hashes right but is not in the tree.
	rehashed := edited
	rehashed.Entry.Hash = audit.EntryHash(&rehashed.Entry)
	_, err = rehashed.Verify(keys.Verifiers)
	require.ErrorIs(t, err, tlog.ErrBadProof)

	moved := p
	moved.Entry.Seq = 7
	moved.Entry.Hash = audit.EntryHash(&moved.Entry)
	_, err = moved.Verify(keys.Verifiers)
	require.Error(t, err, "an entry claimed at another position")

	for i := range p.Proof {
		bad := p
		bad.Proof = append([]tlog.Hash(nil), p.Proof...)
		bad.Proof[i][31] ^= 0x80
		_, err := bad.Verify(keys.Verifiers)
		require.ErrorIs(t, err, tlog.ErrBadProof, "proof hash %d changed", i)
	}

	other := audittest.NewTreeKeys(t)
	_, err = p.Verify(other.Verifiers)
	require.ErrorIs(t, err, tlog.ErrBadSignature, "a head checked with another key")
}

// TestVerifyTreeCatchesAnotherHistory shows a stream whose entries were
// replaced after a tree head was signed: the chain alone may look fine
// (it was recomputed), but the signed tree head does not match.
func TestVerifyTreeCatchesAnotherHistory(t *testing.T) {
	ctx := t.Context()
	keys := audittest.NewTreeKeys(t)
	honest := audit.NewMemoryStore()
	_, err := honest.Append(ctx, "t1", audittest.Events("t1", 0, 20))
	require.NoError(t, err)
	head, err := audit.SignTreeHead(ctx, honest, keys.Signer, "t1", 20)
	require.NoError(t, err)

	rewritten := audit.NewMemoryStore()
	evs := audittest.Events("t1", 0, 20)
	evs[11].Actor = "covered-up"
	_, err = rewritten.Append(ctx, "t1", evs)
	require.NoError(t, err)

	_, err = audit.VerifyTree(ctx, rewritten, audit.TreeVerifyOptions{Stream: "t1", Log: keys.Verifiers, Heads: []audit.SignedTreeHead{head}})
	var f *audit.Failure
	require.ErrorAs(t, err, &f)
	require.Equal(t, audit.FailTreeMismatch, f.Kind)
	require.Equal(t, uint64(20), f.Seq)

	// A head whose signature was damaged.
	forged := head
	forged.Note = forged.Note[:len(forged.Note)-6] + "AAAA=\n"
	_, err = audit.VerifyTree(ctx, honest, audit.TreeVerifyOptions{Stream: "t1", Log: keys.Verifiers, Heads: []audit.SignedTreeHead{forged}})
	require.ErrorAs(t, err, &f)
	require.Equal(t, audit.FailForgedTreeHead, f.Kind)

	// A truncated stream under a head that covers more.
	short := audit.NewMemoryStore()
	_, err = short.Append(ctx, "t1", audittest.Events("t1", 0, 15))
	require.NoError(t, err)
	_, err = audit.VerifyTree(ctx, short, audit.TreeVerifyOptions{Stream: "t1", Log: keys.Verifiers, Heads: []audit.SignedTreeHead{head}})
	require.ErrorAs(t, err, &f)
	require.Equal(t, audit.FailTruncated, f.Kind)
}

// TestTreePublisherWitnessesEveryCheckpoint wires a Log, a TreePublisher
// and two file witnesses, and checks heads with a quorum of both.
func TestTreePublisherWitnessesEveryCheckpoint(t *testing.T) {
	ctx := t.Context()
	keys := audittest.NewTreeKeys(t)
	store := audit.NewMemoryStore()
	dir := t.TempDir()
	var witnesses []tlog.Witness
	var wvs []note.Verifier
	for _, name := range []string{"witness-a", "witness-b"} {
		_, key, err := ed25519.GenerateKey(nil)
		require.NoError(t, err)
		c, err := tlog.NewCosigner(name, key, nil)
		require.NoError(t, err)
		w, err := tlog.NewFileWitness(filepath.Join(dir, name+".json"), c, keys.Verifiers)
		require.NoError(t, err)
		witnesses = append(witnesses, w)
		wvs = append(wvs, c.Verifier())
	}
	var published []audit.Checkpoint
	pub := &audit.TreePublisher{Store: store, Signer: keys.Signer, Witnesses: witnesses,
		Next: publisherFunc(func(_ context.Context, c audit.Checkpoint) error { published = append(published, c); return nil })}
	var errs []error
	log, err := audit.New(audit.Config{Store: store, Signer: keys.Keys.Signer, Publisher: pub, CheckpointEvery: 10,
		OnError: func(_ string, err error) { errs = append(errs, err) }})
	require.NoError(t, err)
	for i := range 35 {
		_, err := log.Record(ctx, audittest.Event("t1", i))
		require.NoError(t, err)
	}
	_, err = log.Checkpoint(ctx, "t1")
	require.NoError(t, err)
	require.NoError(t, log.Close(ctx))
	require.Empty(t, errs)
	require.NotEmpty(t, published)

	heads, err := store.TreeHeads(ctx, "t1")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(heads), 3)
	q := &tlog.Quorum{Log: keys.Verifiers, Witnesses: wvs, N: 2}
	for _, h := range heads {
		_, err := q.Verify([]byte(h.Note))
		require.NoError(t, err, "head of size %d", h.Size)
	}
	last := heads[len(heads)-1]
	require.Equal(t, uint64(35), last.Size)
	p, err := audit.ProveInclusion(ctx, store, "t1", 17, last)
	require.NoError(t, err)
	_, err = p.VerifyQuorum(q)
	require.NoError(t, err)

	// A head short of the quorum is refused.
	bare, err := audit.SignTreeHead(ctx, store, keys.Signer, "t1", 35)
	require.NoError(t, err)
	bareHead, err := tlog.SignHead(keys.Signer, mustOpen(t, bare, keys.Verifiers))
	require.NoError(t, err)
	p.Head = string(bareHead)
	_, err = p.VerifyQuorum(q)
	require.True(t, errors.Is(err, tlog.ErrNoQuorum), "got %v", err)
}

func mustOpen(t *testing.T, h audit.SignedTreeHead, vs []note.Verifier) tlog.TreeHead {
	t.Helper()
	th, err := h.Open(vs)
	require.NoError(t, err)
	return th
}

type publisherFunc func(context.Context, audit.Checkpoint) error

func (f publisherFunc) Publish(ctx context.Context, c audit.Checkpoint) error { return f(ctx, c) }

// TestExportCarriesTreeHeads exports a period from the middle of a
// stream and checks its tree offline from the export alone: the frontier
// line anchors at the signed head before the period, and every head in the
// period matches the exported entries.
func TestExportCarriesTreeHeads(t *testing.T) {
	ctx := t.Context()
	keys := audittest.NewTreeKeys(t)
	store := audit.NewMemoryStore()
	pub := &audit.TreePublisher{Store: store, Signer: keys.Signer}
	log, err := audit.New(audit.Config{Store: store, Signer: keys.Keys.Signer, Publisher: pub, CheckpointEvery: 10,
		OnError: func(_ string, err error) { t.Error(err) }})
	require.NoError(t, err)
	var entries []audit.Entry
	for i := range 45 {
		e, err := log.Record(ctx, audittest.Event("t1", i))
		require.NoError(t, err)
		entries = append(entries, e)
	}
	_, err = log.Checkpoint(ctx, "t1")
	require.NoError(t, err)
	require.NoError(t, log.Close(ctx))

	var buf bytes.Buffer
	_, err = audit.Export(ctx, &buf, store, audit.ExportOptions{Stream: "t1", Since: entries[14].Time, Until: entries[25].Time})
	require.NoError(t, err)
	src, err := audit.ReadExport(bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	size, front, ok := src.TreeFrontier()
	require.True(t, ok, "an export from the middle carries the tree frontier")
	require.Equal(t, src.From-1, size)

	rep, err := audit.VerifyTree(ctx, src, audit.TreeVerifyOptions{Stream: "t1", Log: keys.Verifiers, From: src.From, Frontier: front})
	require.NoError(t, err)
	require.True(t, rep.Anchored)
	require.Equal(t, uint64(30), rep.Size)
	_, err = audit.Verify(ctx, src, audit.VerifyOptions{Stream: "t1", Verifier: keys.Keys.Verifier, From: src.From})
	require.NoError(t, err, "the chain verification still reads the export")

	// A frontier that was changed no longer matches the signed head.
	front[0][0] ^= 1
	_, err = audit.VerifyTree(ctx, src, audit.TreeVerifyOptions{Stream: "t1", Log: keys.Verifiers, From: src.From, Frontier: front})
	var f *audit.Failure
	require.ErrorAs(t, err, &f)
	require.Equal(t, audit.FailTreeMismatch, f.Kind)
}

// TestProofsAreBoundToTheirStreamAndOrder checks that a proof made for
// one stream does not pass for another stream's entry or head, and that a
// consistency proof with its heads swapped (an old head replayed as the
// newer) is a rollback.
func TestProofsAreBoundToTheirStreamAndOrder(t *testing.T) {
	ctx := t.Context()
	s := audit.NewMemoryStore()
	keys := audittest.NewTreeKeys(t)
	for _, stream := range []string{"a", "b"} {
		_, err := s.Append(ctx, stream, audittest.Events(stream, 0, 9))
		require.NoError(t, err)
	}
	headA, err := audit.SignTreeHead(ctx, s, keys.Signer, "a", 9)
	require.NoError(t, err)
	headB, err := audit.SignTreeHead(ctx, s, keys.Signer, "b", 9)
	require.NoError(t, err)
	oldA, err := audit.SignTreeHead(ctx, s, keys.Signer, "a", 4)
	require.NoError(t, err)

	p, err := audit.ProveInclusion(ctx, s, "a", 3, headA)
	require.NoError(t, err)
	_, err = p.Verify(keys.Verifiers)
	require.NoError(t, err)
	// Stream a's entry and path under stream b's head.
	moved := p
	moved.Head = headB.Note
	_, err = moved.Verify(keys.Verifiers)
	require.ErrorIs(t, err, tlog.ErrBadProof)
	_, err = audit.ProveInclusion(ctx, s, "a", 3, headB)
	require.ErrorIs(t, err, audit.ErrNoTree)
	// The entry relabelled as stream b's, rehashed so it looks whole.
	relabelled := p
	relabelled.Entry.Stream = "b"
	relabelled.Entry.Hash = audit.EntryHash(&relabelled.Entry)
	relabelled.Head = headB.Note
	_, err = relabelled.Verify(keys.Verifiers)
	require.ErrorIs(t, err, tlog.ErrBadProof)
	// A SignedTreeHead relabelled with another stream does not open.
	wrong := headA
	wrong.Stream = "b"
	_, err = wrong.Open(keys.Verifiers)
	require.ErrorIs(t, err, tlog.ErrBadSignature)

	c, err := audit.ProveConsistency(ctx, s, "a", oldA, headA)
	require.NoError(t, err)
	_, _, err = c.Verify(keys.Verifiers)
	require.NoError(t, err)
	swapped := audit.ConsistencyProof{Old: c.New, New: c.Old, Proof: c.Proof}
	_, _, err = swapped.Verify(keys.Verifiers)
	require.ErrorIs(t, err, tlog.ErrRollback)
	across := c
	across.New = headB.Note
	_, _, err = across.Verify(keys.Verifiers)
	require.ErrorIs(t, err, tlog.ErrBadProof, "heads of two streams")
}

// TestVerifyTreeRefusesARolledBackStore checks a store set back to an
// older state (a restored backup, say) against a newer signed head the
// auditor kept: the head it replays is refused as truncated.
func TestVerifyTreeRefusesARolledBackStore(t *testing.T) {
	ctx := t.Context()
	keys := audittest.NewTreeKeys(t)
	now := audit.NewMemoryStore()
	_, err := now.Append(ctx, "t1", audittest.Events("t1", 0, 9))
	require.NoError(t, err)
	kept, err := audit.SignTreeHead(ctx, now, keys.Signer, "t1", 9)
	require.NoError(t, err)

	backup := audit.NewMemoryStore()
	_, err = backup.Append(ctx, "t1", audittest.Events("t1", 0, 5))
	require.NoError(t, err)
	_, err = audit.SignTreeHead(ctx, backup, keys.Signer, "t1", 5)
	require.NoError(t, err)
	_, err = audit.VerifyTree(ctx, backup, audit.TreeVerifyOptions{Stream: "t1", Log: keys.Verifiers})
	require.NoError(t, err, "alone, the backup looks whole")
	_, err = audit.VerifyTree(ctx, backup, audit.TreeVerifyOptions{Stream: "t1", Log: keys.Verifiers, Heads: []audit.SignedTreeHead{kept}})
	var f *audit.Failure
	require.ErrorAs(t, err, &f)
	require.Equal(t, audit.FailTruncated, f.Kind)
}

// TestReadExportRefusesMixedTreeLines refuses a line that carries a tree
// frontier and a tree head at once (the head would be dropped unseen), and
// a second frontier.
func TestReadExportRefusesMixedTreeLines(t *testing.T) {
	head := `{"stream":"t1","size":3,"note":"x"}`
	front := `{"size":2,"hashes":[]}`
	for name, text := range map[string]string{
		"frontier and head": `{"tree_head":` + head + `,"tree_frontier":` + front + "}\n",
		"two frontiers":     `{"tree_frontier":` + front + "}\n" + `{"tree_frontier":` + front + "}\n",
	} {
		_, err := audit.ReadExport(strings.NewReader(text))
		require.ErrorIs(t, err, audit.ErrBadExport, name)
	}
}
