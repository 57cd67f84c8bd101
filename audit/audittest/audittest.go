// Package audittest is the conformance suite every [audit.Store] must pass.
// An adapter's test calls [Run] with a constructor that returns a fresh,
// empty store; the suite runs one subtest per clause of the Store contract:
//
//	func TestConformance(t *testing.T) {
//		audittest.Run(t, func(t *testing.T) audit.Store { return newStore(t) })
//	}
//
// The in-memory store and auditpg both run it, so they cannot drift. It also
// exports [Keys], a Tink Ed25519 signer and verifier for tests.
package audittest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/signature"

	"github.com/chatsdk/compliance/audit"
)

// Keys is a fresh Ed25519 keyset for checkpoint signatures: Signer holds
// the private keyset, Verifier only the public one.
type Keys struct {
	Handle   *keyset.Handle
	Signer   audit.Signer
	Verifier audit.SignatureVerifier
}

// NewKeys generates a Tink Ed25519 keyset for t.
func NewKeys(t testing.TB) Keys {
	t.Helper()
	h, err := keyset.NewHandle(signature.ED25519KeyTemplate())
	require.NoError(t, err)
	return keysOf(t, h)
}

func keysOf(t testing.TB, h *keyset.Handle) Keys {
	t.Helper()
	s, err := signature.NewSigner(h)
	require.NoError(t, err)
	pub, err := h.Public()
	require.NoError(t, err)
	v, err := signature.NewVerifier(pub)
	require.NoError(t, err)
	return Keys{Handle: h, Signer: s, Verifier: v}
}

// Event returns a valid event of tenant with every field set, distinct for
// each i.
func Event(tenant string, i int) audit.Event {
	at := time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC).Add(time.Duration(i) * time.Second)
	return audit.Event{
		Tenant:        tenant,
		Time:          at,
		Actor:         fmt.Sprintf("user-%d", i%5),
		SessionID:     fmt.Sprintf("sess-%d", i%3),
		IP:            "192.0.2.7",
		UserAgent:     "audittest/1.0",
		Type:          audit.TypeDataRead,
		Category:      audit.CategoryDataAccess,
		Action:        audit.ActionRead,
		ResourceType:  "message",
		ResourceID:    fmt.Sprintf("msg-%d", i),
		Subject:       fmt.Sprintf("patient-%d", i%4),
		Success:       i%7 != 0,
		FailureReason: "",
		Metadata:      map[string]string{"channel": fmt.Sprintf("ch-%d", i%2), "n": fmt.Sprint(i)},
		RetainUntil:   at.AddDate(6, 0, 0),
	}
}

// Events returns n events of tenant from Event(tenant, start) on.
func Events(tenant string, start, n int) []audit.Event {
	evs := make([]audit.Event, n)
	for i := range evs {
		evs[i] = Event(tenant, start+i)
	}
	return evs
}

// Run runs the conformance suite. newStore must return a fresh, empty
// store each time it is called.
func Run(t *testing.T, newStore func(t *testing.T) audit.Store) {
	t.Run("HeadOfUnknownStream", func(t *testing.T) { testHeadUnknown(t, newStore(t)) })
	t.Run("AppendAssignsGaplessChain", func(t *testing.T) { testAppendChain(t, newStore(t)) })
	t.Run("AppendIsAllOrNothing", func(t *testing.T) { testAppendAtomic(t, newStore(t)) })
	t.Run("AppendHonoursContext", func(t *testing.T) { testAppendContext(t, newStore(t)) })
	t.Run("StreamsAreIndependent", func(t *testing.T) { testStreams(t, newStore(t)) })
	t.Run("EveryFieldRoundTrips", func(t *testing.T) { testRoundTrip(t, newStore(t)) })
	t.Run("ConcurrentAppendsKeepOneChain", func(t *testing.T) { testConcurrent(t, newStore(t)) })
	t.Run("ScanFromAndStop", func(t *testing.T) { testScan(t, newStore(t)) })
	t.Run("ScanRangeIfOffered", func(t *testing.T) { testScanRange(t, newStore(t)) })
	t.Run("QueryFilters", func(t *testing.T) { testQueryFilters(t, newStore(t)) })
	t.Run("QueryPaginates", func(t *testing.T) { testQueryPages(t, newStore(t)) })
	t.Run("QueryRejectsBadInput", func(t *testing.T) { testQueryBad(t, newStore(t)) })
	t.Run("CheckpointsRoundTrip", func(t *testing.T) { testCheckpoints(t, newStore(t)) })
	t.Run("LogChainVerifies", func(t *testing.T) { testLogVerifies(t, newStore(t)) })
	t.Run("TreeIfOffered", func(t *testing.T) { runTree(t, newStore) })
}

func testHeadUnknown(t *testing.T, s audit.Store) {
	h, err := s.Head(t.Context(), "nobody")
	require.NoError(t, err)
	require.Equal(t, uint64(0), h.Seq)
	require.Equal(t, audit.GenesisHash(), h.Hash)
}

func testAppendChain(t *testing.T, s audit.Store) {
	ctx := t.Context()
	first, err := s.Append(ctx, "t1", Events("t1", 0, 3))
	require.NoError(t, err)
	second, err := s.Append(ctx, "t1", Events("t1", 3, 2))
	require.NoError(t, err)

	all := append(first, second...)
	prev := audit.GenesisHash()
	for i, e := range all {
		require.Equal(t, uint64(i+1), e.Seq, "seq of entry %d", i)
		require.Equal(t, "t1", e.Stream)
		require.Equal(t, prev, e.PrevHash, "prev hash of seq %d", e.Seq)
		require.Equal(t, audit.EntryHash(&e), e.Hash, "hash of seq %d", e.Seq)
		prev = e.Hash
	}
	h, err := s.Head(ctx, "t1")
	require.NoError(t, err)
	require.Equal(t, uint64(5), h.Seq)
	require.Equal(t, prev, h.Hash)
}

func testAppendAtomic(t *testing.T, s audit.Store) {
	ctx := t.Context()
	_, err := s.Append(ctx, "t1", Events("t1", 0, 2))
	require.NoError(t, err)

	bad := Events("t1", 2, 3)
	bad[2].Type = ""
	_, err = s.Append(ctx, "t1", bad)
	require.ErrorIs(t, err, audit.ErrInvalidEvent)

	h, err := s.Head(ctx, "t1")
	require.NoError(t, err)
	require.Equal(t, uint64(2), h.Seq, "a failed batch must leave no entry")
	require.Len(t, scanAll(t, s, "t1"), 2)
}

func testAppendContext(t *testing.T, s audit.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Append(ctx, "t1", Events("t1", 0, 2))
	require.Error(t, err, "a cancelled context must not append")
	h, err := s.Head(t.Context(), "t1")
	require.NoError(t, err)
	require.Equal(t, uint64(0), h.Seq)
}

func testStreams(t *testing.T, s audit.Store) {
	ctx := t.Context()
	_, err := s.Append(ctx, "a", Events("a", 0, 2))
	require.NoError(t, err)
	got, err := s.Append(ctx, "b", Events("b", 0, 1))
	require.NoError(t, err)
	require.Equal(t, uint64(1), got[0].Seq)
	require.Equal(t, audit.GenesisHash(), got[0].PrevHash)
	require.Len(t, scanAll(t, s, "a"), 2)
	require.Len(t, scanAll(t, s, "b"), 1)
}

func testRoundTrip(t *testing.T, s audit.Store) {
	ctx := t.Context()
	ev := Event("t1", 1)
	ev.FailureReason = "wrong password"
	ev.Success = false
	ev.Metadata = map[string]string{"ä": "ü", "empty": ""}
	empty := Event("t1", 2)
	empty.Metadata = nil
	empty.Actor, empty.IP, empty.UserAgent, empty.SessionID = "", "", "", ""
	appended, err := s.Append(ctx, "t1", []audit.Event{ev, empty})
	require.NoError(t, err)

	got := scanAll(t, s, "t1")
	require.Len(t, got, 2)
	for i := range got {
		want := appended[i]
		require.True(t, got[i].Time.Equal(want.Time), "time of seq %d", i+1)
		require.Equal(t, want.Time.UnixMicro(), got[i].Time.UnixMicro())
		require.Equal(t, 0, got[i].Time.Nanosecond()%1000, "time kept at microseconds")
		require.Equal(t, audit.EntryHash(&want), audit.EntryHash(&got[i]), "stored entry %d must hash as appended", i+1)
		require.Equal(t, want.Hash, got[i].Hash)
		require.Equal(t, want.PrevHash, got[i].PrevHash)
		require.Equal(t, want.Actor, got[i].Actor)
		require.Equal(t, want.FailureReason, got[i].FailureReason)
		require.Equal(t, len(want.Metadata), len(got[i].Metadata))
	}
	require.Equal(t, "ü", got[0].Metadata["ä"])
}

func testConcurrent(t *testing.T, s audit.Store) {
	const writers, batches, size = 6, 10, 5
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				if _, err := s.Append(context.Background(), "t1", Events("t1", (w*batches+b)*size, size)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	got := scanAll(t, s, "t1")
	require.Len(t, got, writers*batches*size)
	prev := audit.GenesisHash()
	for i, e := range got {
		require.Equal(t, uint64(i+1), e.Seq)
		require.Equal(t, prev, e.PrevHash, "fork at seq %d", e.Seq)
		require.Equal(t, audit.EntryHash(&e), e.Hash)
		prev = e.Hash
	}
}

func testScan(t *testing.T, s audit.Store) {
	ctx := t.Context()
	_, err := s.Append(ctx, "t1", Events("t1", 0, 6))
	require.NoError(t, err)

	var seqs []uint64
	require.NoError(t, s.Scan(ctx, "t1", 4, func(e *audit.Entry) error {
		seqs = append(seqs, e.Seq)
		return nil
	}))
	require.Equal(t, []uint64{4, 5, 6}, seqs)

	stop := errors.New("stop")
	n := 0
	err = s.Scan(ctx, "t1", 1, func(*audit.Entry) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 2, n)
}

func testScanRange(t *testing.T, s audit.Store) {
	rs, ok := s.(audit.RangeScanner)
	if !ok {
		t.Skip("the store does not implement audit.RangeScanner")
	}
	ctx := t.Context()
	last, err := rs.LastSeq(ctx, "t1")
	require.NoError(t, err)
	require.Equal(t, uint64(0), last)
	_, err = s.Append(ctx, "t1", Events("t1", 0, 8))
	require.NoError(t, err)
	last, err = rs.LastSeq(ctx, "t1")
	require.NoError(t, err)
	require.Equal(t, uint64(8), last)

	var seqs []uint64
	require.NoError(t, rs.ScanRange(ctx, "t1", 3, 5, func(e *audit.Entry) error {
		seqs = append(seqs, e.Seq)
		return nil
	}))
	require.Equal(t, []uint64{3, 4, 5}, seqs)
}

func testQueryFilters(t *testing.T, s audit.Store) {
	ctx := t.Context()
	evs := Events("t1", 0, 20)
	evs[3].Type, evs[3].Category, evs[3].Action = audit.TypeLoginFailed, audit.CategoryAuthentication, audit.ActionLogin
	_, err := s.Append(ctx, "t1", evs)
	require.NoError(t, err)
	_, err = s.Append(ctx, "t2", Events("t2", 0, 5))
	require.NoError(t, err)

	no := false
	base := evs[0].Time
	cases := []struct {
		name string
		q    audit.Query
		want func(e *audit.Event) bool
	}{
		{"tenant", audit.Query{Tenant: "t1"}, func(*audit.Event) bool { return true }},
		{"actor", audit.Query{Tenant: "t1", Actor: "user-2"}, func(e *audit.Event) bool { return e.Actor == "user-2" }},
		{"resource", audit.Query{Tenant: "t1", ResourceType: "message", ResourceID: "msg-7"}, func(e *audit.Event) bool { return e.ResourceID == "msg-7" }},
		{"subject", audit.Query{Tenant: "t1", Subject: "patient-1"}, func(e *audit.Event) bool { return e.Subject == "patient-1" }},
		{"type", audit.Query{Tenant: "t1", Type: audit.TypeLoginFailed}, func(e *audit.Event) bool { return e.Type == audit.TypeLoginFailed }},
		{"category", audit.Query{Tenant: "t1", Category: audit.CategoryDataAccess}, func(e *audit.Event) bool { return e.Category == audit.CategoryDataAccess }},
		{"outcome", audit.Query{Tenant: "t1", Success: &no}, func(e *audit.Event) bool { return !e.Success }},
		{"time range", audit.Query{Tenant: "t1", Since: base.Add(5 * time.Second), Until: base.Add(9 * time.Second)}, func(e *audit.Event) bool {
			return !e.Time.Before(base.Add(5*time.Second).Truncate(time.Microsecond)) && e.Time.Before(base.Add(9*time.Second))
		}},
		// Bounds finer than the stored microseconds are truncated to the
		// microsecond, as entry times are, so every store draws the line
		// at the same entry: T+1ns bounds as T does.
		{"sub-microsecond bounds", audit.Query{Tenant: "t1", Since: us(evs[3].Time).Add(time.Nanosecond), Until: us(evs[7].Time).Add(time.Nanosecond)}, func(e *audit.Event) bool {
			at := us(e.Time)
			return !at.Before(us(evs[3].Time)) && at.Before(us(evs[7].Time))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			page, err := s.Query(ctx, tc.q)
			require.NoError(t, err)
			var want []string
			for i := len(evs) - 1; i >= 0; i-- {
				if tc.want(&evs[i]) {
					want = append(want, evs[i].ResourceID)
				}
			}
			var got []string
			for _, e := range page.Entries {
				require.Equal(t, "t1", e.Tenant, "query crossed tenants")
				got = append(got, e.ResourceID)
			}
			require.Equal(t, want, got, "newest first, filtered")
			require.Empty(t, page.Next)
		})
	}
}

// us is t as a store keeps it: UTC, truncated to the microsecond.
func us(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func testQueryPages(t *testing.T, s audit.Store) {
	ctx := t.Context()
	evs := Events("t1", 0, 25)
	for i := range evs {
		if i%3 == 0 { // equal times: the order must still be total
			evs[i].Time = evs[0].Time
		}
	}
	_, err := s.Append(ctx, "t1", evs)
	require.NoError(t, err)

	var seen []uint64
	q := audit.Query{Tenant: "t1", Limit: 10}
	pages := 0
	for {
		page, err := s.Query(ctx, q)
		require.NoError(t, err)
		pages++
		for _, e := range page.Entries {
			seen = append(seen, e.Seq)
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	require.Equal(t, 3, pages)
	require.Len(t, seen, 25)
	sorted := slices.Clone(seen)
	slices.Sort(sorted)
	require.Equal(t, 25, len(slices.Compact(sorted)), "no entry twice")
}

func testQueryBad(t *testing.T, s audit.Store) {
	ctx := t.Context()
	_, err := s.Query(ctx, audit.Query{})
	require.Error(t, err, "a query without tenant must fail")
	_, err = s.Query(ctx, audit.Query{Tenant: "t1", Cursor: "not-a-cursor"})
	require.ErrorIs(t, err, audit.ErrBadCursor)
}

func testCheckpoints(t *testing.T, s audit.Store) {
	ctx := t.Context()
	keys := NewKeys(t)
	at := time.Date(2026, 1, 2, 3, 4, 5, 6007, time.UTC)
	var want []audit.Checkpoint
	for _, seq := range []uint64{20, 10} {
		c := audit.Checkpoint{Stream: "t1", Seq: seq, Head: make([]byte, audit.HashSize), Time: at}
		c.Head[0] = byte(seq)
		require.NoError(t, audit.SignCheckpoint(keys.Signer, &c))
		require.NoError(t, s.SaveCheckpoint(ctx, c))
		require.NoError(t, s.SaveCheckpoint(ctx, c), "saving twice is not an error")
		want = append([]audit.Checkpoint{c}, want...)
	}
	got, err := s.Checkpoints(ctx, "t1")
	require.NoError(t, err)
	require.Len(t, got, 2)
	for i := range got {
		require.Equal(t, want[i].Seq, got[i].Seq)
		require.Equal(t, want[i].Head, got[i].Head)
		require.Equal(t, want[i].Kind, got[i].Kind)
		require.True(t, want[i].Time.Equal(got[i].Time))
		require.NoError(t, audit.VerifyCheckpoint(keys.Verifier, &got[i]), "a stored checkpoint still verifies")
	}
	other, err := s.Checkpoints(ctx, "t2")
	require.NoError(t, err)
	require.Empty(t, other)
}

func testLogVerifies(t *testing.T, s audit.Store) {
	ctx := t.Context()
	keys := NewKeys(t)
	log, err := audit.New(audit.Config{Store: s, Signer: keys.Signer, CheckpointEvery: 10})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				_, err := log.Record(ctx, Event("t1", w*10+i))
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	require.NoError(t, log.Close(ctx))
	_, err = log.Checkpoint(ctx, "t1")
	require.NoError(t, err)

	rep, err := audit.Verify(ctx, s, audit.VerifyOptions{Stream: "t1", Verifier: keys.Verifier})
	require.NoError(t, err)
	require.Equal(t, 40, rep.Entries)
	require.Equal(t, uint64(40), rep.Head.Seq)
	require.GreaterOrEqual(t, rep.Checkpoints, 1)
}

func scanAll(t *testing.T, s audit.Store, stream string) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	require.NoError(t, s.Scan(t.Context(), stream, 0, func(e *audit.Entry) error {
		// The Entry is only valid during the call: keep a deep copy.
		c := *e
		c.PrevHash = slices.Clone(e.PrevHash)
		c.Hash = slices.Clone(e.Hash)
		c.Metadata = maps.Clone(e.Metadata)
		out = append(out, c)
		return nil
	}))
	return out
}
