package auditpg_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/auditpg"
	"github.com/chatsdk/compliance/audit/audittest"
	"github.com/chatsdk/compliance/audit/tlog"
	"github.com/chatsdk/compliance/internal/pgtest"
)

// TestTreeProofsSurvivePartitionDrop drops an expired month and checks
// that every proof about the remaining entries still verifies against the
// heads signed before the drop, and that the tree still grows after it.
func TestTreeProofsSurvivePartitionDrop(t *testing.T) {
	db := pgtest.New(t)
	s := newStore(t, db, db.Pool)
	ctx := context.Background()
	keys := audittest.NewTreeKeys(t)

	evs := marchAndMay(37, 27, time.Minute)
	for i := 0; i < len(evs); i += 10 {
		_, err := s.Append(ctx, "t1", evs[i:min(i+10, len(evs))])
		require.NoError(t, err)
	}
	early, err := audit.SignTreeHead(ctx, s, keys.Signer, "t1", 40)
	require.NoError(t, err)
	before, err := audit.SignTreeHead(ctx, s, keys.Signer, "t1", 64)
	require.NoError(t, err)

	dropped, err := s.DropExpired(ctx, auditpg.DropOptions{Signer: keys.Keys.Signer, Now: time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC)})
	require.NoError(t, err)
	require.Len(t, dropped, 1)
	require.Equal(t, uint64(37), dropped[0].Horizons[0].Seq)

	for seq := uint64(38); seq <= 64; seq++ {
		for _, h := range []audit.SignedTreeHead{early, before} {
			if seq > h.Size {
				continue
			}
			p, err := audit.ProveInclusion(ctx, s, "t1", seq, h)
			require.NoError(t, err)
			_, err = p.Verify(keys.Verifiers)
			require.NoError(t, err, "entry %d under size %d after the drop", seq, h.Size)
		}
	}
	_, err = audit.ProveInclusion(ctx, s, "t1", 12, before)
	require.ErrorIs(t, err, audit.ErrNoTree, "a dropped entry cannot be shown")

	// The tree grows on after the drop, and consistency holds across it.
	_, err = s.Append(ctx, "t1", audittest.Events("t1", 64, 9))
	require.NoError(t, err)
	after, err := audit.SignTreeHead(ctx, s, keys.Signer, "t1", 73)
	require.NoError(t, err)
	for _, old := range []audit.SignedTreeHead{early, before} {
		c, err := audit.ProveConsistency(ctx, s, "t1", old, after)
		require.NoError(t, err)
		_, _, err = c.Verify(keys.Verifiers)
		require.NoError(t, err, "from size %d", old.Size)
	}

	// The remaining entries still match every signed head, from the
	// horizon on, with the stored frontier standing in for the dropped.
	rep, err := audit.VerifyTree(ctx, s, audit.TreeVerifyOptions{Stream: "t1", Log: keys.Verifiers, From: 38})
	require.NoError(t, err)
	require.Equal(t, uint64(73), rep.Size)
	require.Equal(t, 3, rep.Heads)
}

// TestTreeAcrossStores has two Stores (two app instances) take turns on a
// stream, so each finds its cached frontier stale, and checks the tree.
func TestTreeAcrossStores(t *testing.T) {
	db := pgtest.New(t)
	a := newStore(t, db, db.Pool)
	b := newStore(t, db, db.NewPool(t, nil))
	ctx := context.Background()
	keys := audittest.NewTreeKeys(t)
	var f tlog.Frontier
	n := 0
	for round := range 12 {
		s := a
		if round%3 == 2 {
			s = b
		}
		got, err := s.Append(ctx, "t1", audittest.Events("t1", n, 1+round%4))
		require.NoError(t, err)
		for _, e := range got {
			f.Append(tlog.LeafHash(e.Hash))
		}
		n += len(got)
		for _, s := range []*auditpg.Store{a, b} {
			root, err := audit.TreeRoot(ctx, s, "t1", uint64(n))
			require.NoError(t, err)
			require.Equal(t, f.Root(), root, "after round %d", round)
		}
	}
	_, err := audit.SignTreeHead(ctx, b, keys.Signer, "t1", uint64(n))
	require.NoError(t, err)
	_, err = audit.VerifyTree(ctx, a, audit.TreeVerifyOptions{Stream: "t1", Log: keys.Verifiers})
	require.NoError(t, err)
}

// TestTreeTablesAreInsertOnly checks UPDATE, DELETE and TRUNCATE of the
// tree hashes and heads are refused.
func TestTreeTablesAreInsertOnly(t *testing.T) {
	db := pgtest.New(t)
	s := newStore(t, db, db.Pool)
	ctx := context.Background()
	keys := audittest.NewTreeKeys(t)
	_, err := s.Append(ctx, "t1", audittest.Events("t1", 0, 5))
	require.NoError(t, err)
	_, err = audit.SignTreeHead(ctx, s, keys.Signer, "t1", 5)
	require.NoError(t, err)
	for _, sql := range []string{
		`UPDATE audit_tree_hashes SET hashes = hashes`,
		`DELETE FROM audit_tree_hashes`,
		`TRUNCATE audit_tree_hashes`,
		`UPDATE audit_tree_heads SET note = note`,
		`DELETE FROM audit_tree_heads`,
		`TRUNCATE audit_tree_heads`,
	} {
		_, err := db.Pool.Exec(ctx, sql)
		require.Error(t, err, sql)
	}
}

// TestTreeTamperedHashMakesProofsFail edits a stored tree hash with
// triggers disabled: the proofs built from it no longer verify against the
// head signed before, so the database cannot forge one.
func TestTreeTamperedHashMakesProofsFail(t *testing.T) {
	db := pgtest.New(t)
	s := newStore(t, db, db.Pool)
	ctx := context.Background()
	keys := audittest.NewTreeKeys(t)
	_, err := s.Append(ctx, "t1", audittest.Events("t1", 0, 16))
	require.NoError(t, err)
	head, err := audit.SignTreeHead(ctx, s, keys.Signer, "t1", 16)
	require.NoError(t, err)

	// Leaf 9's hash is on the audit path of leaf 8.
	asSuperuser(t, db, func(tx pgx.Tx) {
		exec(t, tx, `UPDATE audit_tree_hashes SET hashes = set_byte(hashes, ($1 - first_index)::int * 32, get_byte(hashes, ($1 - first_index)::int * 32) # 255)
			WHERE stream = 't1' AND first_index <= $1 AND $1 < first_index + length(hashes) / 32`, tlog.StoredHashIndex(0, 9))
	})
	p, err := audit.ProveInclusion(ctx, s, "t1", 9, head)
	require.NoError(t, err)
	_, err = p.Verify(keys.Verifiers)
	require.ErrorIs(t, err, tlog.ErrBadProof)
}

// TestTreeOfManyEvents proves inclusion and consistency in a stream of
// 100,000 events on Postgres (a million runs on the memory store in the
// audit package).
func TestTreeOfManyEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 appends; not in -short")
	}
	db := pgtest.New(t)
	s := newStore(t, db, db.Pool)
	ctx := context.Background()
	keys := audittest.NewTreeKeys(t)
	const n, batch = 100_000, 500
	evs := make([]audit.Event, batch)
	var mid audit.SignedTreeHead
	for done := 0; done < n; done += batch {
		for i := range evs {
			evs[i] = audittest.Event("big", done+i)
			evs[i].Metadata = nil
		}
		_, err := s.Append(ctx, "big", evs)
		require.NoError(t, err)
		if done+batch == 65_500 {
			var err error
			mid, err = audit.SignTreeHead(ctx, s, keys.Signer, "big", uint64(done+batch))
			require.NoError(t, err)
		}
	}
	last, err := audit.SignTreeHead(ctx, s, keys.Signer, "big", n)
	require.NoError(t, err)
	for _, seq := range []uint64{1, 65_536, 65_537, 99_999, n} {
		p, err := audit.ProveInclusion(ctx, s, "big", seq, last)
		require.NoError(t, err)
		_, err = p.Verify(keys.Verifiers)
		require.NoError(t, err, fmt.Sprintf("entry %d", seq))
	}
	c, err := audit.ProveConsistency(ctx, s, "big", mid, last)
	require.NoError(t, err)
	_, _, err = c.Verify(keys.Verifiers)
	require.NoError(t, err)
	rep, err := audit.VerifyTree(ctx, s, audit.TreeVerifyOptions{Stream: "big", Log: keys.Verifiers})
	require.NoError(t, err)
	require.Equal(t, uint64(n), rep.Size)
}

// TestBackfillTree builds the tree of a stream appended without it (as
// before migration 3), after which appends extend it.
func TestBackfillTree(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	off, err := auditpg.New(db.Pool, auditpg.Config{DisableTree: true})
	require.NoError(t, err)
	require.NoError(t, off.Migrate(ctx, db.Pool))
	on := newStore(t, db, db.Pool)

	_, err = off.Append(ctx, "t1", audittest.Events("t1", 0, 9000))
	require.NoError(t, err)
	_, err = on.Append(ctx, "t1", audittest.Events("t1", 9000, 3))
	require.NoError(t, err)
	_, err = audit.TreeRoot(ctx, on, "t1", 9003)
	require.ErrorIs(t, err, audit.ErrNoTree, "no tree before the backfill")

	size, err := on.BackfillTree(ctx, "t1")
	require.NoError(t, err)
	require.Equal(t, uint64(9003), size)
	size, err = on.BackfillTree(ctx, "t1")
	require.NoError(t, err, "a second backfill leaves the tree alone")
	require.Equal(t, uint64(9003), size)

	_, err = on.Append(ctx, "t1", audittest.Events("t1", 9003, 5))
	require.NoError(t, err)
	var f tlog.Frontier
	require.NoError(t, on.Scan(ctx, "t1", 1, func(e *audit.Entry) error { f.Append(tlog.LeafHash(e.Hash)); return nil }))
	root, err := audit.TreeRoot(ctx, on, "t1", 9008)
	require.NoError(t, err)
	require.Equal(t, f.Root(), root)
}
