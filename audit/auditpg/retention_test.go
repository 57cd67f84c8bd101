package auditpg_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/auditpg"
	"github.com/chatsdk/compliance/audit/audittest"
	"github.com/chatsdk/compliance/internal/pgtest"
)

// marchAndMay returns march events for stream t1 written step apart from
// 10 March 2026 and kept one month, then may events written step apart
// from 10 May 2026 and kept six years: by June only March has expired.
func marchAndMay(march, may int, step time.Duration) []audit.Event {
	start := [2]time.Time{time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 10, 0, 0, 0, 0, time.UTC)}
	keep := [2]time.Time{start[0].AddDate(0, 1, 0), start[1].AddDate(6, 0, 0)}
	evs := make([]audit.Event, 0, march+may)
	for i := range march + may {
		month, n := 0, i
		if i >= march {
			month, n = 1, i-march
		}
		e := audittest.Event("t1", i)
		e.Time, e.RetainUntil = start[month].Add(time.Duration(n)*step), keep[month]
		evs = append(evs, e)
	}
	return evs
}

func TestDropExpiredLeavesAVerifiableChain(t *testing.T) {
	db := pgtest.New(t)
	s := newStore(t, db, db.Pool)
	ctx := context.Background()
	keys := audittest.NewKeys(t)

	_, err := s.Append(ctx, "t1", marchAndMay(6, 4, time.Hour))
	require.NoError(t, err)

	pub := &audit.FilePublisher{Path: filepath.Join(t.TempDir(), "cp.jsonl")}
	now := time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC)
	dropped, err := s.DropExpired(ctx, auditpg.DropOptions{Signer: keys.Signer, Publisher: pub, Now: now})
	require.NoError(t, err)
	require.Len(t, dropped, 1, "March has expired; May has not, and nothing after it is looked at")
	require.Equal(t, "audit_entries_202603", dropped[0].Partition)
	require.Equal(t, int64(6), dropped[0].Entries)
	require.Equal(t, uint64(6), dropped[0].Horizons[0].Seq)

	rep, err := audit.Verify(ctx, s, audit.VerifyOptions{Stream: "t1", Verifier: keys.Verifier})
	require.NoError(t, err)
	require.Equal(t, uint64(7), rep.From)
	require.Equal(t, 4, rep.Entries)
	require.True(t, rep.Anchored)

	published, err := audit.ReadCheckpointFile(pub.Path)
	require.NoError(t, err)
	require.Len(t, published, 1)
	require.Equal(t, audit.KindHorizon, published[0].Kind)

	// Running again drops nothing more.
	dropped, err = s.DropExpired(ctx, auditpg.DropOptions{Signer: keys.Signer, Now: now})
	require.NoError(t, err)
	require.Empty(t, dropped)

	// Without a horizon, deleting the same entries would be caught.
	var n int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_entries`).Scan(&n))
	require.Equal(t, 4, n)
}

func TestDropExpiredRefusesAHole(t *testing.T) {
	db := pgtest.New(t)
	s := newStore(t, db, db.Pool)
	ctx := context.Background()
	keys := audittest.NewKeys(t)

	// A writer with a slow clock appends after the month ended, with an
	// earlier time: seq 2 lands in March although seq 1 is in April.
	a := audittest.Event("t1", 0)
	a.Time, a.RetainUntil = time.Date(2026, 4, 1, 0, 0, 1, 0, time.UTC), time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC)
	b := audittest.Event("t1", 1)
	b.Time, b.RetainUntil = time.Date(2026, 3, 31, 23, 59, 59, 0, time.UTC), time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC)
	_, err := s.Append(ctx, "t1", []audit.Event{a, b})
	require.NoError(t, err)

	_, err = s.DropExpired(ctx, auditpg.DropOptions{Signer: keys.Signer, Now: time.Date(2026, 4, 20, 0, 0, 0, 0, time.UTC)})
	require.ErrorIs(t, err, auditpg.ErrNotPrefix)
}

// lateWriter is a Publisher that, while DropExpired publishes its horizon,
// has another instance append a backdated entry to the partition about to
// be dropped.
type lateWriter struct {
	s   *auditpg.Store
	err error
}

func (w *lateWriter) Publish(ctx context.Context, _ audit.Checkpoint) error {
	e := audittest.Event("t1", 99)
	e.Time, e.RetainUntil = time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	_, w.err = w.s.Append(ctx, "t1", []audit.Event{e})
	return nil
}

func TestDropExpiredKeepsAPartitionWrittenDuringTheDrop(t *testing.T) {
	db := pgtest.New(t)
	s := newStore(t, db, db.Pool)
	ctx := context.Background()
	keys := audittest.NewKeys(t)

	_, err := s.Append(ctx, "t1", marchAndMay(3, 0, time.Hour))
	require.NoError(t, err)

	late := &lateWriter{s: s}
	_, err = s.DropExpired(ctx, auditpg.DropOptions{Signer: keys.Signer, Publisher: late, Now: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
	require.NoError(t, late.err)
	require.ErrorIs(t, err, auditpg.ErrPartitionChanged)

	var n int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_entries_202603`).Scan(&n))
	require.Equal(t, 4, n, "the entry appended during the drop is still there")
	rep, err := audit.Verify(ctx, s, audit.VerifyOptions{Stream: "t1", Verifier: keys.Verifier})
	require.NoError(t, err)
	require.Equal(t, uint64(4), rep.Head.Seq)
}
