package auditpg_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/auditpg"
	"github.com/chatsdk/compliance/audit/audittest"
	"github.com/chatsdk/compliance/audit/tlog"
	"github.com/chatsdk/compliance/internal/pgtest"
)

// TestTreeConcurrentWritersOnTwoPools has two Stores on two pools (two app
// instances) append to one stream at once, so their compare-and-set
// appends collide and each finds its cached frontier stale, with AppendTx
// transactions, some rolled back, mixed in. The tree must come out as the
// tree of the entries stored: a root for every size, one hash row per
// committed batch, nothing of a rolled-back batch.
func TestTreeConcurrentWritersOnTwoPools(t *testing.T) {
	db := pgtest.New(t)
	pools := []*auditpg.Store{newStore(t, db, db.Pool), newStore(t, db, db.NewPool(t, nil))}
	ctx := context.Background()

	// Warm both caches on the same head, so the first appends collide.
	_, err := pools[0].Append(ctx, "t1", audittest.Events("t1", 0, 1))
	require.NoError(t, err)
	_, err = pools[1].Append(ctx, "t1", audittest.Events("t1", 1, 1))
	require.NoError(t, err)

	const writers, rounds = 4, 15
	var wg sync.WaitGroup
	errs := make(chan error, writers*rounds)
	for w := range writers {
		s := pools[w%2]
		pool := db.Pool
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				evs := audittest.Events("t1", 1000*w+10*r, 1+(w+r)%3)
				if w == 3 && r%3 == 0 {
					// AppendTx in a transaction, rolled back every other time.
					tx, err := pool.Begin(ctx)
					if err != nil {
						errs <- err
						return
					}
					_, err = s.AppendTx(ctx, tx, "t1", evs)
					if err == nil && r%2 == 0 {
						err = tx.Rollback(ctx)
					} else if err == nil {
						err = tx.Commit(ctx)
					}
					if err != nil {
						tx.Rollback(ctx)
						errs <- err
					}
					continue
				}
				if _, err := s.Append(ctx, "t1", evs); err != nil && !errors.Is(err, audit.ErrHeadMoved) {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	// The tree of the stored entries, size by size.
	var roots []tlog.Hash
	var f tlog.Frontier
	require.NoError(t, pools[0].Scan(ctx, "t1", 0, func(e *audit.Entry) error {
		require.Equal(t, f.Size()+1, e.Seq)
		f.Append(tlog.LeafHash(e.Hash))
		roots = append(roots, f.Root())
		return nil
	}))
	head, err := pools[1].Head(ctx, "t1")
	require.NoError(t, err)
	require.Equal(t, uint64(len(roots)), head.Seq)
	for _, s := range pools {
		for i, want := range roots {
			got, err := audit.TreeRoot(ctx, s, "t1", uint64(i+1))
			require.NoError(t, err)
			require.Equal(t, want, got, "root at size %d", i+1)
		}
	}
	var stored, bytes int64
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(length(hashes)), 0) FROM audit_tree_hashes WHERE stream = 't1'`).Scan(&stored, &bytes))
	require.Equal(t, tlog.StoredHashCount(head.Seq)*tlog.HashSize, bytes, "hashes of exactly the committed batches")

	keys := audittest.NewTreeKeys(t)
	_, err = audit.SignTreeHead(ctx, pools[1], keys.Signer, "t1", head.Seq)
	require.NoError(t, err)
	rep, err := audit.VerifyTree(ctx, pools[0], audit.TreeVerifyOptions{Stream: "t1", Log: keys.Verifiers})
	require.NoError(t, err)
	require.Equal(t, head.Seq, rep.Size)
	t.Logf("%d entries in %d batches", head.Seq, stored)
}
