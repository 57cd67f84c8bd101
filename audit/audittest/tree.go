package audittest

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/tlog"
)

// TreeKeys are a checkpoint keyset's tree-head signer and verifiers.
type TreeKeys struct {
	Keys
	Signer    *tlog.Signer
	Verifiers []note.Verifier
}

// NewTreeKeys generates an Ed25519 keyset and its tree-head signer.
func NewTreeKeys(t testing.TB) TreeKeys {
	t.Helper()
	k := NewKeys(t)
	s, err := tlog.NewSigner("", k.Handle)
	require.NoError(t, err)
	pub, err := k.Handle.Public()
	require.NoError(t, err)
	vs, _, err := tlog.Verifiers("", pub)
	require.NoError(t, err)
	return TreeKeys{Keys: k, Signer: s, Verifiers: vs}
}

// runTree runs the tree clauses when the store is an [audit.TreeStore].
func runTree(t *testing.T, newStore func(t *testing.T) audit.Store) {
	probe := newStore(t)
	if _, ok := probe.(audit.TreeStore); !ok {
		t.Skip("the store keeps no Merkle tree (audit.TreeStore)")
	}
	ts := func(t *testing.T) audit.TreeStore { return newStore(t).(audit.TreeStore) }
	t.Run("TreeFollowsEveryAppend", func(t *testing.T) { testTreeFollows(t, ts(t)) })
	t.Run("TreeUntouchedByFailedAppend", func(t *testing.T) { testTreeAtomic(t, ts(t)) })
	t.Run("TreeOfConcurrentAppends", func(t *testing.T) { testTreeConcurrent(t, ts(t)) })
	t.Run("TreeHashesNotStoredAreAnError", func(t *testing.T) { testTreeMissing(t, ts(t)) })
	t.Run("TreeHeadsRoundTrip", func(t *testing.T) { testTreeHeads(t, ts(t)) })
	t.Run("TreeProofsVerify", func(t *testing.T) { testTreeProofs(t, ts(t)) })
}

// refRoots returns the RFC 6962 root of the stream's entries at every
// size, from 0, computed from the entries alone.
func refRoots(t *testing.T, s audit.Store, stream string) []tlog.Hash {
	t.Helper()
	var f tlog.Frontier
	roots := []tlog.Hash{f.Root()}
	for _, e := range scanAll(t, s, stream) {
		f.Append(tlog.LeafHash(e.Hash))
		roots = append(roots, f.Root())
	}
	return roots
}

func requireRoots(t *testing.T, s audit.TreeStore, stream string) {
	t.Helper()
	for size, want := range refRoots(t, s, stream) {
		got, err := audit.TreeRoot(t.Context(), s, stream, uint64(size))
		require.NoError(t, err, "root at size %d", size)
		require.Equal(t, want, got, "root at size %d", size)
	}
}

func testTreeFollows(t *testing.T, s audit.TreeStore) {
	ctx := t.Context()
	n := 0
	for _, batch := range []int{1, 1, 3, 8, 2, 17, 1, 31} {
		_, err := s.Append(ctx, "t1", Events("t1", n, batch))
		require.NoError(t, err)
		n += batch
		requireRoots(t, s, "t1")
	}
	_, err := s.Append(ctx, "t2", Events("t2", 0, 5))
	require.NoError(t, err)
	requireRoots(t, s, "t2")
	requireRoots(t, s, "t1")
}

func testTreeAtomic(t *testing.T, s audit.TreeStore) {
	ctx := t.Context()
	_, err := s.Append(ctx, "t1", Events("t1", 0, 3))
	require.NoError(t, err)
	bad := Events("t1", 3, 4)
	bad[3].Type = ""
	_, err = s.Append(ctx, "t1", bad)
	require.ErrorIs(t, err, audit.ErrInvalidEvent)
	_, err = s.ReadTreeHashes(ctx, "t1", []int64{tlog.StoredHashIndex(0, 3)})
	require.Error(t, err, "a failed batch must leave no tree hash")
	_, err = s.Append(ctx, "t1", Events("t1", 3, 4))
	require.NoError(t, err)
	requireRoots(t, s, "t1")
}

func testTreeConcurrent(t *testing.T, s audit.TreeStore) {
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				_, err := s.Append(context.Background(), "t1", Events("t1", w*100+i*3, 3))
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	requireRoots(t, s, "t1")
}

func testTreeMissing(t *testing.T, s audit.TreeStore) {
	ctx := t.Context()
	_, err := s.Append(ctx, "t1", Events("t1", 0, 4))
	require.NoError(t, err)
	_, err = s.ReadTreeHashes(ctx, "t1", []int64{0, tlog.StoredHashCount(4)})
	require.Error(t, err)
	_, err = s.ReadTreeHashes(ctx, "nobody", []int64{0})
	require.Error(t, err)
	_, err = audit.TreeRoot(ctx, s, "t1", 5)
	require.Error(t, err, "a root past the head")
}

func testTreeHeads(t *testing.T, s audit.TreeStore) {
	ctx := t.Context()
	keys := NewTreeKeys(t)
	_, err := s.Append(ctx, "t1", Events("t1", 0, 9))
	require.NoError(t, err)
	h5, err := audit.SignTreeHead(ctx, s, keys.Signer, "t1", 5)
	require.NoError(t, err)
	h9, err := audit.SignTreeHead(ctx, s, keys.Signer, "t1", 9)
	require.NoError(t, err)
	// A second head of size 5 does not replace the first.
	other := NewTreeKeys(t)
	_, err = audit.SignTreeHead(ctx, s, other.Signer, "t1", 5)
	require.NoError(t, err)
	_, err = audit.SignTreeHead(ctx, s, keys.Signer, "t1", 10)
	require.ErrorIs(t, err, audit.ErrNoTree, "a head past the stream's head")

	heads, err := s.TreeHeads(ctx, "t1")
	require.NoError(t, err)
	require.Equal(t, []audit.SignedTreeHead{h5, h9}, heads)
	none, err := s.TreeHeads(ctx, "t2")
	require.NoError(t, err)
	require.Empty(t, none)
	for _, h := range heads {
		th, err := h.Open(keys.Verifiers)
		require.NoError(t, err)
		require.Equal(t, refRoots(t, s, "t1")[h.Size], th.Root)
	}
	rep, err := audit.VerifyTree(ctx, s, audit.TreeVerifyOptions{Stream: "t1", Log: keys.Verifiers})
	require.NoError(t, err)
	require.Equal(t, uint64(9), rep.Size)
	require.Equal(t, 2, rep.Heads)
}

func testTreeProofs(t *testing.T, s audit.TreeStore) {
	ctx := t.Context()
	keys := NewTreeKeys(t)
	_, err := s.Append(ctx, "t1", Events("t1", 0, 21))
	require.NoError(t, err)
	var heads []audit.SignedTreeHead
	for _, size := range []uint64{1, 7, 8, 21} {
		h, err := audit.SignTreeHead(ctx, s, keys.Signer, "t1", size)
		require.NoError(t, err)
		heads = append(heads, h)
	}
	for _, h := range heads {
		for seq := uint64(1); seq <= h.Size; seq++ {
			p, err := audit.ProveInclusion(ctx, s, "t1", seq, h)
			require.NoError(t, err)
			th, err := p.Verify(keys.Verifiers)
			require.NoError(t, err, "entry %d under size %d", seq, h.Size)
			require.Equal(t, h.Size, th.Size)
		}
		_, err := audit.ProveInclusion(ctx, s, "t1", h.Size+1, h)
		require.ErrorIs(t, err, audit.ErrNoTree)
	}
	for i := range heads {
		for j := i; j < len(heads); j++ {
			p, err := audit.ProveConsistency(ctx, s, "t1", heads[i], heads[j])
			require.NoError(t, err)
			_, _, err = p.Verify(keys.Verifiers)
			require.NoError(t, err, "sizes %d→%d", heads[i].Size, heads[j].Size)
		}
	}
	_, err = audit.ProveConsistency(ctx, s, "t1", heads[2], heads[1])
	require.True(t, errors.Is(err, audit.ErrNoTree))
}
