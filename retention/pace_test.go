package retention

import (
	"context"
	"fmt"
	"testing"
	"time"
)

const ms = time.Millisecond

func TestPacerSize(t *testing.T) {
	p := pacer{target: 250 * ms, duty: 0.5, min: 100, max: 10000}
	for _, c := range []struct {
		name    string
		limit   int
		scanned int
		elapsed time.Duration
		want    int
	}{
		{"fast full batch grows to the measured rate", 1000, 1000, 200 * ms, 1250},
		{"growth is at most twofold", 1000, 1000, 10 * ms, 2000},
		{"growth stops at MaxBatch", 8000, 8000, 100 * ms, 10000},
		{"slow batch shrinks to the measured rate", 1000, 1000, 400 * ms, 625},
		{"shrinking is at most by half", 1000, 1000, 5 * time.Second, 500},
		{"shrinking stops at MinBatch", 150, 150, time.Second, 100},
		{"a short last batch says nothing", 1000, 10, 10 * ms, 1000},
		{"a short batch that overran still shrinks", 1000, 10, 500 * ms, 500},
		{"within a tenth of the target stays", 1000, 1000, 240 * ms, 1000},
		{"an unmeasurably fast batch doubles", 1000, 1000, 0, 2000},
	} {
		if got := p.size(c.limit, c.scanned, c.elapsed); got != c.want {
			t.Errorf("%s: size(%d, %d, %v) = %d, want %d", c.name, c.limit, c.scanned, c.elapsed, got, c.want)
		}
	}
}

func TestPacerPause(t *testing.T) {
	for _, c := range []struct {
		name    string
		p       pacer
		scanned int
		elapsed time.Duration
		want    time.Duration
	}{
		{"half the time: a pause as long as the batch", pacer{duty: 0.5}, 1000, 200 * ms, 200 * ms},
		{"a quarter of the time: three times the batch", pacer{duty: 0.25}, 1000, 200 * ms, 600 * ms},
		{"duty 1 does not pause", pacer{duty: 1}, 1000, 200 * ms, 0},
		{"the floor when duty asks less", pacer{duty: 0.5, floor: time.Second}, 1000, 200 * ms, time.Second},
		{"the rate cap when it asks more", pacer{duty: 0.5, maxRate: 1000}, 1000, 200 * ms, 800 * ms},
		{"the rate cap is met already", pacer{duty: 1, maxRate: 10000}, 1000, 200 * ms, 0},
		{"nothing scanned: duty only", pacer{duty: 0.5, maxRate: 1}, 0, 10 * ms, 10 * ms},
	} {
		if got := c.p.pause(c.scanned, c.elapsed); got != c.want {
			t.Errorf("%s: pause(%d, %v) = %v, want %v", c.name, c.scanned, c.elapsed, got, c.want)
		}
	}
}

// fakeClock is the time a pacedStore's batches and the sweeper's pauses
// pass on.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time          { return c.now }
func (c *fakeClock) advance(d time.Duration) { c.now = c.now.Add(d) }

// pacedStore is a memory store whose batches take perRow a row on the fake
// clock, and which records each batch's size and start.
type pacedStore struct {
	*MemoryStore
	clock  *fakeClock
	perRow time.Duration
	// slowAfter batches, a row costs slowdown times as much: the server
	// got busier.
	slowAfter int
	slowdown  time.Duration
	limits    []int
	starts    []time.Time
}

func (s *pacedStore) SweepBatch(ctx context.Context, p BatchParams) (BatchResult, error) {
	s.limits = append(s.limits, p.Limit)
	s.starts = append(s.starts, s.clock.now)
	res, err := s.MemoryStore.SweepBatch(ctx, p)
	cost := s.perRow
	if s.slowAfter > 0 && len(s.limits) > s.slowAfter {
		cost *= s.slowdown
	}
	s.clock.advance(time.Duration(res.Scanned) * cost)
	return res, err
}

// The sweeper sizes batches to BatchTime from the measured rate and pauses
// so that batches take Duty of the time; when rows get slower, batches
// shrink and the share of time stays put, so throughput gives way.
func TestSweeperPacesBatches(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{now: time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)}
	store := &pacedStore{MemoryStore: NewMemoryStore(), clock: clock, perRow: 100 * time.Microsecond, slowAfter: 8, slowdown: 4}
	old := clock.now.Add(-DefaultPeriod - 24*time.Hour)
	for i := range 20_000 {
		store.Insert("message", Row{ID: fmt.Sprintf("m%06d", i), AppID: "app", Time: old.Add(time.Duration(i) * time.Millisecond)})
	}
	policies, err := NewPolicies(store, PoliciesConfig{Now: func() time.Time { return clock.now }})
	if err != nil {
		t.Fatal(err)
	}
	var pauses []time.Duration
	s, err := NewSweeper(policies, SweeperConfig{
		Targets:   []Target{{Table: "message", ID: "id", Time: "created_at"}},
		Tenants:   func(context.Context) ([]string, error) { return []string{"app"}, nil },
		BatchSize: 100, MinBatch: 10, BatchTime: 100 * ms, Duty: 0.4,
		Sleep: func(ctx context.Context, d time.Duration) error {
			pauses = append(pauses, d)
			clock.advance(d)
			return ctx.Err()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.clock = clock.Now

	rep, err := s.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deleted != 20_000 {
		t.Fatalf("deleted %d rows, want all 20000", rep.Deleted)
	}

	// At 100µs a row a 100ms batch is 1,000 rows: reached by doubling
	// from 100 (100, 200, 400, 800, then 1,000), and held. From the ninth
	// batch rows cost 400µs: the ninth overruns fourfold and halves the
	// size, the tenth still overruns and halves it again, and the size
	// settles at 250.
	want := []int{100, 200, 400, 800, 1000, 1000, 1000, 1000, 1000, 500, 250, 250}
	if !equalInts(store.limits[:len(want)], want) {
		t.Fatalf("batch sizes %v, want %v first", store.limits, want)
	}
	for _, l := range store.limits[len(want):] {
		if l != 250 {
			t.Fatalf("batch sizes %v: did not settle at 250", store.limits)
		}
	}

	// Each pause is 1.5 times the batch before it (a duty of 0.4), so
	// between consecutive batch starts 40% of the time was batch.
	for i, d := range pauses {
		took := time.Duration(store.limits[i]) * store.perRow
		if i >= store.slowAfter {
			took *= store.slowdown
		}
		if want := took * 3 / 2; d != want {
			t.Fatalf("pause %d after a batch of %v is %v, want %v", i, took, d, want)
		}
	}
	if len(pauses) != len(store.limits)-1 {
		t.Fatalf("%d pauses between %d batches", len(pauses), len(store.limits))
	}
}

// MaxRate caps rows a second over batches and pauses together.
func TestSweeperMaxRate(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{now: time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)}
	store := &pacedStore{MemoryStore: NewMemoryStore(), clock: clock, perRow: 100 * time.Microsecond}
	old := clock.now.Add(-DefaultPeriod - 24*time.Hour)
	for i := range 4_900 {
		store.Insert("message", Row{ID: fmt.Sprintf("m%06d", i), AppID: "app", Time: old.Add(time.Duration(i) * time.Millisecond)})
	}
	policies, err := NewPolicies(store, PoliciesConfig{Now: func() time.Time { return clock.now }})
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSweeper(policies, SweeperConfig{
		Targets:   []Target{{Table: "message", ID: "id", Time: "created_at"}},
		Tenants:   func(context.Context) ([]string, error) { return []string{"app"}, nil },
		BatchSize: 500, MinBatch: 500, MaxBatch: 500, Duty: 1, MaxRate: 2_000,
		Sleep: func(ctx context.Context, d time.Duration) error { clock.advance(d); return ctx.Err() },
	})
	if err != nil {
		t.Fatal(err)
	}
	s.clock = clock.Now

	start := clock.now
	if _, err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	// Ten batches (nine of 500 and one of 400) at 2,000 rows/s start a
	// quarter second apart.
	if len(store.starts) != 10 {
		t.Fatalf("%d batches, want 10", len(store.starts))
	}
	for i, at := range store.starts {
		if want := start.Add(time.Duration(i) * 250 * ms); !at.Equal(want) {
			t.Fatalf("batch %d started at +%v, want +%v", i, at.Sub(start), want.Sub(start))
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
