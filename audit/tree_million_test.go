package audit_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/audittest"
	"github.com/chatsdk/compliance/audit/tlog"
)

// bigStore is a read-only TreeStore of a synthesized stream: a million
// entry hashes, most of them made up (the tree does not care what an entry
// hash hashes), a sample of them the hashes of real entries, and the tree
// hashes a store would keep, built the way a store builds them, batch by
// batch. It lets the million-event test skip a million appends.
type bigStore struct {
	stream string
	data   [][32]byte // entry hash of seq i+1
	real   map[uint64]audit.Entry
	hashes []tlog.Hash
	heads  []audit.SignedTreeHead
}

var (
	_ audit.TreeStore    = (*bigStore)(nil)
	_ audit.RangeScanner = (*bigStore)(nil)
)

func (b *bigStore) Append(context.Context, string, []audit.Event) ([]audit.Entry, error) {
	return nil, errors.New("bigStore is read-only")
}

func (b *bigStore) Head(_ context.Context, stream string) (audit.Head, error) {
	if stream != b.stream || len(b.data) == 0 {
		return audit.Head{Stream: stream}, nil
	}
	return audit.Head{Stream: stream, Seq: uint64(len(b.data)), Hash: b.data[len(b.data)-1][:]}, nil
}

func (b *bigStore) entry(seq uint64) audit.Entry {
	if e, ok := b.real[seq]; ok {
		return e
	}
	return audit.Entry{Stream: b.stream, Seq: seq, Hash: b.data[seq-1][:]}
}

func (b *bigStore) ScanRange(_ context.Context, stream string, from, to uint64, fn func(*audit.Entry) error) error {
	if stream != b.stream {
		return nil
	}
	for seq := max(from, 1); seq <= min(to, uint64(len(b.data))); seq++ {
		e := b.entry(seq)
		if err := fn(&e); err != nil {
			return err
		}
	}
	return nil
}

func (b *bigStore) Scan(ctx context.Context, stream string, from uint64, fn func(*audit.Entry) error) error {
	return b.ScanRange(ctx, stream, from, uint64(len(b.data)), fn)
}

func (b *bigStore) LastSeq(context.Context, string) (uint64, error) { return uint64(len(b.data)), nil }

func (b *bigStore) Query(context.Context, audit.Query) (audit.Page, error) { return audit.Page{}, nil }

func (b *bigStore) SaveCheckpoint(context.Context, audit.Checkpoint) error { return nil }

func (b *bigStore) Checkpoints(context.Context, string) ([]audit.Checkpoint, error) { return nil, nil }

func (b *bigStore) ReadTreeHashes(_ context.Context, stream string, idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if stream != b.stream || x < 0 || x >= int64(len(b.hashes)) {
			return nil, fmt.Errorf("%w: hash %d", audit.ErrNoTree, x)
		}
		out[i] = b.hashes[x]
	}
	return out, nil
}

func (b *bigStore) SaveTreeHead(_ context.Context, h audit.SignedTreeHead) error {
	b.heads = append(b.heads, h)
	slices.SortFunc(b.heads, func(x, y audit.SignedTreeHead) int { return int(x.Size) - int(y.Size) })
	return nil
}

func (b *bigStore) TreeHeads(context.Context, string) ([]audit.SignedTreeHead, error) {
	return slices.Clone(b.heads), nil
}

// TestTreeMillionEvents builds the tree of a stream of a million entries
// in batches of 1000, as a store does, and checks it against roots
// streamed independently by a frontier: inclusion proofs of entries at
// every power-of-two edge and at random, under many tree sizes; consistency
// proofs between many pairs of sizes; the audit-level proofs and VerifyTree
// on signed heads; and that a proof of one size does not pass for another.
func TestTreeMillionEvents(t *testing.T) {
	const n, batch = 1_000_000, 1000
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(12, 1))

	// The sizes heads are taken at and the entries proved.
	sizeSet := map[uint64]bool{1: true, 2: true, 3: true, 524_000: true, n: true}
	seqSet := map[uint64]bool{1: true, 2: true, 524_000: true, n - 1: true, n: true}
	for k := 1; k < 20; k++ {
		for _, d := range []int64{-1, 0, 1} {
			sizeSet[uint64(int64(1)<<k+d)] = true
			seqSet[uint64(int64(1)<<k+d)] = true
		}
	}
	for range 64 {
		sizeSet[1+rng.Uint64N(n)] = true
		seqSet[1+rng.Uint64N(n)] = true
	}
	sizes := sortedKeys(sizeSet)
	seqs := sortedKeys(seqSet)

	// Synthesize the entry hashes; the sampled ones are real entries.
	s := &bigStore{stream: "big", data: make([][32]byte, n), real: map[uint64]audit.Entry{}}
	var ctr [8]byte
	for i := range s.data {
		binary.BigEndian.PutUint64(ctr[:], uint64(i))
		s.data[i] = sha256.Sum256(ctr[:])
	}
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, seq := range seqs {
		prev := audit.Head{Stream: "big", Seq: seq - 1}
		if seq > 1 {
			prev.Hash = s.data[seq-2][:]
		}
		es, err := audit.Link(prev, []audit.Event{{Tenant: "big", Time: at, Actor: "u", Type: audit.TypeDataRead,
			Category: audit.CategoryDataAccess, Action: audit.ActionRead, ResourceType: "message",
			ResourceID: fmt.Sprint(seq), Success: true, RetainUntil: at.AddDate(6, 0, 0)}})
		require.NoError(t, err)
		s.real[seq] = es[0]
		copy(s.data[seq-1][:], es[0].Hash)
	}

	// Build the stored hashes batch by batch, and stream the roots at the
	// chosen sizes with a frontier.
	roots := map[uint64]tlog.Hash{}
	var front tlog.Frontier
	ents := make([]audit.Entry, batch)
	next := 0
	for start := uint64(0); start < n; start += batch {
		for i := range ents {
			ents[i] = audit.Entry{Seq: start + uint64(i) + 1, Hash: s.data[start+uint64(i)][:]}
		}
		hs, err := audit.TreeHashes(start, ents, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			return s.ReadTreeHashes(ctx, "big", idx)
		}))
		require.NoError(t, err)
		require.Equal(t, tlog.StoredHashIndex(0, start), int64(len(s.hashes)))
		s.hashes = append(s.hashes, hs...)
		for i := range ents {
			front.Append(tlog.LeafHash(ents[i].Hash))
			for next < len(sizes) && sizes[next] == front.Size() {
				roots[front.Size()] = front.Root()
				next++
			}
		}
	}
	require.Equal(t, tlog.StoredHashCount(n), int64(len(s.hashes)))
	require.Len(t, roots, len(sizes))

	origin, err := tlog.Origin("big")
	require.NoError(t, err)
	head := func(size uint64) tlog.TreeHead { return tlog.TreeHead{Origin: origin, Size: size, Root: roots[size]} }
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return s.ReadTreeHashes(ctx, "big", idx) })
	for _, size := range sizes {
		root, err := tlog.TreeRoot(size, r)
		require.NoError(t, err)
		require.Equal(t, roots[size], root, "root at size %d", size)
	}

	// Inclusion of every sampled entry under every size that covers it,
	// and not as another leaf or under a size that does not cover it.
	proofs := 0
	for _, seq := range seqs {
		leaf := tlog.LeafHash(s.data[seq-1][:])
		for _, size := range sizes {
			if size < seq {
				continue
			}
			p, err := tlog.ProveInclusion(size, seq-1, r)
			require.NoError(t, err)
			require.LessOrEqual(t, len(p), 20, "a path is about log2(n) hashes")
			require.NoError(t, tlog.VerifyInclusion(head(size), seq-1, leaf, p), "entry %d under size %d", seq, size)
			if seq < size {
				require.ErrorIs(t, tlog.VerifyInclusion(head(size), seq, leaf, p), tlog.ErrBadProof, "entry %d as leaf %d", seq, seq)
			}
			proofs++
		}
		_, err := tlog.ProveInclusion(seq-1, seq-1, r)
		require.Error(t, err, "entry %d under a tree of size %d", seq, seq-1)
	}

	// Consistency between every pair of neighbouring sizes and many
	// random pairs; a proof does not pass for the wrong old root.
	pairs := 0
	check := func(a, b uint64) {
		p, err := tlog.ProveConsistency(a, b, r)
		require.NoError(t, err)
		require.NoError(t, tlog.VerifyConsistency(head(a), head(b), p), "sizes %d→%d", a, b)
		if a != b && a > 1 {
			wrong := head(a)
			wrong.Root[0] ^= 1
			require.ErrorIs(t, tlog.VerifyConsistency(wrong, head(b), p), tlog.ErrBadProof)
		}
		pairs++
	}
	for i := range sizes {
		check(sizes[i], sizes[i])
		if i+1 < len(sizes) {
			check(sizes[i], sizes[i+1])
		}
		check(sizes[i], n)
	}
	for range 400 {
		a, b := sizes[rng.IntN(len(sizes))], sizes[rng.IntN(len(sizes))]
		check(min(a, b), max(a, b))
	}
	t.Logf("%d inclusion and %d consistency proofs checked", proofs, pairs)

	// The audit level: signed heads, proofs of real entries, VerifyTree.
	keys := audittest.NewTreeKeys(t)
	mid, err := audit.SignTreeHead(ctx, s, keys.Signer, "big", 524_000)
	require.NoError(t, err)
	last, err := audit.SignTreeHead(ctx, s, keys.Signer, "big", n)
	require.NoError(t, err)
	for _, seq := range seqs {
		for _, h := range []audit.SignedTreeHead{mid, last} {
			if seq > h.Size {
				continue
			}
			p, err := audit.ProveInclusion(ctx, s, "big", seq, h)
			require.NoError(t, err)
			got, err := p.Verify(keys.Verifiers)
			require.NoError(t, err, "entry %d under the head of size %d", seq, h.Size)
			require.Equal(t, h.Size, got.Size)
		}
	}
	c, err := audit.ProveConsistency(ctx, s, "big", mid, last)
	require.NoError(t, err)
	older, newer, err := c.Verify(keys.Verifiers)
	require.NoError(t, err)
	require.Equal(t, uint64(524_000), older.Size)
	require.Equal(t, uint64(n), newer.Size)

	rep, err := audit.VerifyTree(ctx, s, audit.TreeVerifyOptions{Stream: "big", Log: keys.Verifiers})
	require.NoError(t, err)
	require.Equal(t, 2, rep.Heads)
	require.Equal(t, uint64(n), rep.Size)
	require.Equal(t, n, rep.Entries)
}

func sortedKeys(m map[uint64]bool) []uint64 {
	out := make([]uint64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
