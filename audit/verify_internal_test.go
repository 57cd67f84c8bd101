package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// edKeys is a stdlib Ed25519 signer for the package's internal tests (the
// external tests use Tink, through audittest).
type edKeys struct{ priv ed25519.PrivateKey }

func (k edKeys) Sign(data []byte) ([]byte, error) { return ed25519.Sign(k.priv, data), nil }
func (k edKeys) Verify(sig, data []byte) error {
	if !ed25519.Verify(k.priv.Public().(ed25519.PublicKey), data, sig) {
		return errors.New("bad")
	}
	return nil
}

func newEdKeys(t *testing.T) edKeys {
	_, priv, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	return edKeys{priv}
}

func testEvent(i int) Event {
	at := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)
	return Event{Tenant: "t1", Time: at, Actor: fmt.Sprint("u", i%3), Type: TypeDataRead,
		Category: CategoryDataAccess, Action: ActionRead, ResourceType: "message",
		ResourceID: fmt.Sprint("m", i), Success: true, RetainUntil: at.AddDate(6, 0, 0)}
}

// chainOf returns a memory store with n entries of stream t1 and a signed
// checkpoint at the head.
func chainOf(t *testing.T, n int, k edKeys) *MemoryStore {
	t.Helper()
	m := NewMemoryStore()
	evs := make([]Event, n)
	for i := range evs {
		evs[i] = testEvent(i)
	}
	entries, err := m.Append(context.Background(), "t1", evs)
	require.NoError(t, err)
	c := Checkpoint{Stream: "t1", Seq: uint64(n), Head: entries[n-1].Hash, Time: evs[n-1].Time}
	require.NoError(t, SignCheckpoint(k, &c))
	require.NoError(t, m.SaveCheckpoint(context.Background(), c))
	return m
}

func relink(s []Entry, from int) {
	for i := from; i < len(s); i++ {
		if i == 0 {
			s[i].PrevHash = GenesisHash()
		} else {
			s[i].PrevHash = s[i-1].Hash
		}
		s[i].Hash = EntryHash(&s[i])
	}
}

// rangeStore adds RangeScanner to a MemoryStore, for the parallel path.
type rangeStore struct{ *MemoryStore }

func (r rangeStore) ScanRange(ctx context.Context, stream string, from, to uint64, fn func(*Entry) error) error {
	return r.Scan(ctx, stream, from, func(e *Entry) error {
		if e.Seq > to {
			return nil
		}
		return fn(e)
	})
}

func (r rangeStore) LastSeq(_ context.Context, stream string) (uint64, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var last uint64
	for _, e := range r.streams[stream] {
		last = max(last, e.Seq)
	}
	return last, nil
}

func TestVerifyNamesEachTampering(t *testing.T) {
	old := minParallelRange
	minParallelRange = 2
	t.Cleanup(func() { minParallelRange = old })
	k := newEdKeys(t)
	cases := []struct {
		name   string
		tamper func(s []Entry) []Entry
		kind   FailureKind
		seq    uint64
	}{
		{"field edited", func(s []Entry) []Entry { s[4].Actor = "mallory"; return s }, FailAltered, 5},
		{"entry deleted", func(s []Entry) []Entry { return append(s[:4:4], s[5:]...) }, FailMissing, 5},
		{"entry deleted and renumbered", func(s []Entry) []Entry {
			s = append(s[:4:4], s[5:]...)
			for i := 4; i < len(s); i++ {
				s[i].Seq--
			}
			return s
		}, FailMissing, 5},
		{"forged entry inserted", func(s []Entry) []Entry {
			forged := s[3]
			forged.Actor, forged.ResourceID = "mallory", "m-forged"
			forged.Seq = 4
			forged.PrevHash = s[2].Hash
			forged.Hash = EntryHash(&forged)
			out := append(append(s[:3:3], forged), s[3:]...)
			for i := 4; i < len(out); i++ {
				out[i].Seq++
			}
			return out
		}, FailInserted, 4},
		{"duplicate seq inserted", func(s []Entry) []Entry {
			dup := s[3]
			dup.Actor = "mallory"
			return append(append(s[:4:4], dup), s[4:]...)
		}, FailInserted, 4},
		{"two entries swapped", func(s []Entry) []Entry {
			s[3], s[4] = s[4], s[3]
			s[3].Seq, s[4].Seq = 4, 5
			return s
		}, FailReordered, 4},
		{"entry replaced with consistent forgery", func(s []Entry) []Entry {
			s[4].Actor = "mallory"
			s[4].Hash = EntryHash(&s[4])
			return s
		}, FailAltered, 5},
		{"tail truncated", func(s []Entry) []Entry { return s[:7] }, FailTruncated, 8},
		{"whole chain rewritten", func(s []Entry) []Entry {
			s[2].Actor = "mallory"
			relink(s, 0)
			return s
		}, FailRewritten, 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, parallel := range []int{0, 3} {
				m := chainOf(t, 10, k)
				m.streams["t1"] = tc.tamper(m.streams["t1"])
				_, err := Verify(context.Background(), rangeStore{m}, VerifyOptions{Stream: "t1", Verifier: k, Parallel: parallel})
				var f *Failure
				require.ErrorAs(t, err, &f, "parallel %d", parallel)
				require.ErrorIs(t, err, ErrTampered)
				require.Equal(t, tc.kind, f.Kind, "parallel %d: %v", parallel, err)
				require.Equal(t, tc.seq, f.Seq, "parallel %d: %v", parallel, err)
			}
		})
	}
}

func TestVerifyCleanChain(t *testing.T) {
	old := minParallelRange
	minParallelRange = 2
	t.Cleanup(func() { minParallelRange = old })
	k := newEdKeys(t)
	m := chainOf(t, 10, k)
	for _, parallel := range []int{0, 2, 3, 5} {
		rep, err := Verify(context.Background(), rangeStore{m}, VerifyOptions{Stream: "t1", Verifier: k, Parallel: parallel})
		require.NoError(t, err, "parallel %d", parallel)
		require.Equal(t, 10, rep.Entries)
		require.Equal(t, uint64(10), rep.Head.Seq)
		require.Equal(t, m.streams["t1"][9].Hash, rep.Head.Hash)
		require.True(t, rep.Anchored)
		require.Equal(t, 1, rep.Checkpoints)
		require.Equal(t, uint64(10), rep.Vouched, "parallel %d", parallel)
	}
}

func TestVerifyForgedCheckpoint(t *testing.T) {
	k := newEdKeys(t)
	m := chainOf(t, 10, k)
	cps := m.checkpoints["t1"]
	cps[0].Seq = 9 // re-pointed, signature no longer covers it
	_, err := Verify(context.Background(), m, VerifyOptions{Stream: "t1", Verifier: k})
	var f *Failure
	require.ErrorAs(t, err, &f)
	require.Equal(t, FailForgedCheckpoint, f.Kind)

	// A checkpoint signed by another key is forged too.
	m = chainOf(t, 10, k)
	other := newEdKeys(t)
	c := Checkpoint{Stream: "t1", Seq: 5, Head: m.streams["t1"][4].Hash, Time: time.Now()}
	require.NoError(t, SignCheckpoint(other, &c))
	_, err = Verify(context.Background(), m, VerifyOptions{Stream: "t1", Verifier: k, Checkpoints: []Checkpoint{c}})
	require.ErrorAs(t, err, &f)
	require.Equal(t, FailForgedCheckpoint, f.Kind)
}

func TestVerifyRefusesOlderStateThanTrusted(t *testing.T) {
	k := newEdKeys(t)
	m := chainOf(t, 10, k)
	trusted := m.checkpoints["t1"][0]

	// Roll the database back: drop the tail and the checkpoint with it.
	m.streams["t1"] = m.streams["t1"][:6]
	m.checkpoints["t1"] = nil
	_, err := Verify(context.Background(), m, VerifyOptions{Stream: "t1", Verifier: k})
	require.NoError(t, err, "without outside knowledge a rolled-back chain looks whole")

	_, err = Verify(context.Background(), m, VerifyOptions{Stream: "t1", Verifier: k, Trusted: &trusted})
	var f *Failure
	require.ErrorAs(t, err, &f)
	require.Equal(t, FailTruncated, f.Kind)
}

func TestVerifyFromCheckpoint(t *testing.T) {
	k := newEdKeys(t)
	m := chainOf(t, 10, k)
	mid := m.streams["t1"][4]
	c := Checkpoint{Stream: "t1", Seq: 5, Head: mid.Hash, Time: mid.Time}
	require.NoError(t, SignCheckpoint(k, &c))
	require.NoError(t, m.SaveCheckpoint(context.Background(), c))

	rep, err := Verify(context.Background(), m, VerifyOptions{Stream: "t1", Verifier: k, From: 6})
	require.NoError(t, err)
	require.True(t, rep.Anchored)
	require.Equal(t, 5, rep.Entries)

	rep, err = Verify(context.Background(), m, VerifyOptions{Stream: "t1", Verifier: k, From: 4})
	require.NoError(t, err)
	require.False(t, rep.Anchored, "no checkpoint at seq 3: the first link is taken on trust")
}

func TestVerifyStartsAfterHorizon(t *testing.T) {
	k := newEdKeys(t)
	m := chainOf(t, 10, k)
	s := m.streams["t1"]
	h := Checkpoint{Stream: "t1", Seq: 4, Head: s[3].Hash, Time: s[3].Time, Kind: KindHorizon}
	require.NoError(t, SignCheckpoint(k, &h))
	require.NoError(t, m.SaveCheckpoint(context.Background(), h))
	m.streams["t1"] = s[4:] // pruned

	rep, err := Verify(context.Background(), m, VerifyOptions{Stream: "t1", Verifier: k})
	require.NoError(t, err)
	require.Equal(t, uint64(5), rep.From)
	require.Equal(t, 6, rep.Entries)
}

func TestEntryHashCoversEveryField(t *testing.T) {
	base := Entry{Event: testEvent(1), Stream: "t1", Seq: 3, PrevHash: GenesisHash()}
	base.SessionID, base.IP, base.UserAgent, base.Subject, base.FailureReason = "s", "ip", "ua", "p", "r"
	base.Metadata = map[string]string{"k": "v"}
	want := EntryHash(&base)
	edits := map[string]func(e *Entry){
		"stream": func(e *Entry) { e.Stream = "t2" }, "seq": func(e *Entry) { e.Seq++ },
		"prev":   func(e *Entry) { e.PrevHash = make([]byte, HashSize); e.PrevHash[0] = 1 },
		"tenant": func(e *Entry) { e.Tenant = "x" }, "time": func(e *Entry) { e.Time = e.Time.Add(time.Microsecond) },
		"actor": func(e *Entry) { e.Actor = "x" }, "session": func(e *Entry) { e.SessionID = "x" },
		"ip": func(e *Entry) { e.IP = "x" }, "ua": func(e *Entry) { e.UserAgent = "x" },
		"type": func(e *Entry) { e.Type = "x" }, "category": func(e *Entry) { e.Category = CategorySystem },
		"action": func(e *Entry) { e.Action = "x" }, "rtype": func(e *Entry) { e.ResourceType = "x" },
		"rid": func(e *Entry) { e.ResourceID = "x" }, "subject": func(e *Entry) { e.Subject = "x" },
		"success": func(e *Entry) { e.Success = !e.Success }, "reason": func(e *Entry) { e.FailureReason = "x" },
		"metadata value": func(e *Entry) { e.Metadata = map[string]string{"k": "w"} },
		"metadata split": func(e *Entry) { e.Metadata = map[string]string{"kv": ""} },
		"retain":         func(e *Entry) { e.RetainUntil = e.RetainUntil.Add(time.Microsecond) },
	}
	for name, edit := range edits {
		e := base
		edit(&e)
		require.NotEqual(t, want, EntryHash(&e), "editing %s must change the hash", name)
	}
	// Sub-microsecond differences do not: the database keeps microseconds.
	e := base
	e.Time = e.Time.Add(999 * time.Nanosecond)
	require.Equal(t, want, EntryHash(&e))
}

// rangeOnly fails the test if Verify falls back to a sequential Scan.
type rangeOnly struct {
	rangeStore
	t *testing.T
}

func (r rangeOnly) Scan(context.Context, string, uint64, func(*Entry) error) error {
	r.t.Error("a clean chain must verify without the sequential fallback")
	return nil
}

func TestVerifyParallelDoesNotFallBackOnACleanChain(t *testing.T) {
	old := minParallelRange
	minParallelRange = 2
	t.Cleanup(func() { minParallelRange = old })
	k := newEdKeys(t)
	m := chainOf(t, 10, k)
	rep, err := Verify(context.Background(), rangeOnly{rangeStore{m}, t}, VerifyOptions{Stream: "t1", Verifier: k, Parallel: 3})
	require.NoError(t, err)
	require.Equal(t, 10, rep.Entries)
}
