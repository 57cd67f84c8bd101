package retention_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/chatsdk/compliance/retention"
)

var t0 = time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)

var messages = retention.Target{Table: "message", ID: "id", Time: "created_at", Channel: "channel_id", User: "user_id"}

func newPolicies(t *testing.T, store retention.Store, now func() time.Time) *retention.Policies {
	t.Helper()
	p, err := retention.NewPolicies(store, retention.PoliciesConfig{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigValidation(t *testing.T) {
	p := newPolicies(t, retention.NewMemoryStore(), nil)
	cases := []struct {
		name string
		cfg  retention.SweeperConfig
	}{
		{"no targets", retention.SweeperConfig{}},
		{"no table", retention.SweeperConfig{Targets: []retention.Target{{ID: "id", Time: "t"}}}},
		{"no id", retention.SweeperConfig{Targets: []retention.Target{{Table: "m", Time: "t"}}}},
		{"no time", retention.SweeperConfig{Targets: []retention.Target{{Table: "m", ID: "id"}}}},
		{"duplicate names", retention.SweeperConfig{Targets: []retention.Target{messages, messages}}},
		{"min above max", retention.SweeperConfig{Targets: []retention.Target{messages}, MinBatch: 10, MaxBatch: 5}},
		{"negative duty", retention.SweeperConfig{Targets: []retention.Target{messages}, Duty: -0.5}},
		{"duty above one", retention.SweeperConfig{Targets: []retention.Target{messages}, Duty: 1.5}},
		{"negative rate cap", retention.SweeperConfig{Targets: []retention.Target{messages}, MaxRate: -1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := retention.NewSweeper(p, c.cfg); !errors.Is(err, retention.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := retention.NewSweeper(nil, retention.SweeperConfig{Targets: []retention.Target{messages}}); !errors.Is(err, retention.ErrInvalid) {
		t.Fatalf("nil policies: err = %v", err)
	}
	for _, cfg := range []retention.PoliciesConfig{{DefaultPeriod: -1}, {Grace: -time.Hour}} {
		if _, err := retention.NewPolicies(retention.NewMemoryStore(), cfg); !errors.Is(err, retention.ErrInvalid) {
			t.Fatalf("NewPolicies(%+v): err = %v, want ErrInvalid", cfg, err)
		}
	}
	if _, err := retention.NewPolicies(nil, retention.PoliciesConfig{}); !errors.Is(err, retention.ErrInvalid) {
		t.Fatalf("nil store: err = %v", err)
	}
}

func TestPolicyInputValidation(t *testing.T) {
	ctx := context.Background()
	p := newPolicies(t, retention.NewMemoryStore(), nil)
	day := 24 * time.Hour
	for _, c := range []struct {
		name    string
		app, ch string
		period  time.Duration
	}{
		{"empty tenant", "", "", day},
		{"negative", "a", "", -day},
		{"zero tenant period", "a", "", 0},
		{"absurdly long", "a", "", 1000 * 365 * day},
	} {
		if _, err := p.SetPeriod(ctx, c.app, c.ch, c.period, "x"); !errors.Is(err, retention.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", c.name, err)
		}
	}
	if _, err := p.LockMinimum(ctx, "a", 0, "x"); !errors.Is(err, retention.ErrInvalid) {
		t.Errorf("zero minimum: err = %v", err)
	}
	for _, s := range []retention.Scope{{Kind: "planet", ID: "x"}, {Kind: retention.ScopeChannel}, {Kind: retention.ScopeTenant, ID: "x"}} {
		if _, err := p.PlaceHold(ctx, "a", s, "r", "x"); !errors.Is(err, retention.ErrInvalid) {
			t.Errorf("hold on %+v: err = %v, want ErrInvalid", s, err)
		}
	}
	if _, err := p.PlaceHold(ctx, "", retention.Tenant, "r", "x"); !errors.Is(err, retention.ErrInvalid) {
		t.Errorf("hold without tenant: err = %v", err)
	}
}

// timeoutStore fails the first n batches with ErrTimeout, recording the
// limits it was asked for.
type timeoutStore struct {
	*retention.MemoryStore
	n      int
	limits []int
}

func (s *timeoutStore) SweepBatch(ctx context.Context, p retention.BatchParams) (retention.BatchResult, error) {
	s.limits = append(s.limits, p.Limit)
	if s.n > 0 {
		s.n--
		return retention.BatchResult{}, retention.ErrTimeout
	}
	return s.MemoryStore.SweepBatch(ctx, p)
}

func TestTimedOutBatchesShrinkAndBackOff(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name     string
		failures int
		wantErr  bool
	}{
		{"recovers", 3, false},
		{"gives up", 10, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			store := &timeoutStore{MemoryStore: retention.NewMemoryStore(), n: c.failures}
			store.Insert("message", retention.Row{ID: "a", AppID: "app", Time: t0.Add(-3000 * 24 * time.Hour)})
			var waits []time.Duration
			s, err := retention.NewSweeper(newPolicies(t, store, func() time.Time { return t0 }), retention.SweeperConfig{
				Targets:   []retention.Target{messages},
				Tenants:   func(context.Context) ([]string, error) { return []string{"app"}, nil },
				BatchSize: 800, MinBatch: 100, Retries: 4, Backoff: time.Second,
				Sleep: func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return nil },
			})
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Run(ctx)
			if got := errors.Is(err, retention.ErrTimeout); got != c.wantErr {
				t.Fatalf("err = %v, want timeout %v", err, c.wantErr)
			}
			wantLimits := []int{800, 400, 200, 100}
			wantWaits := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}
			if c.wantErr {
				wantLimits = []int{800, 400, 200, 100, 100}
				wantWaits = append(wantWaits, 8*time.Second)
			}
			if !equal(store.limits, wantLimits) || !equal(waits, wantWaits) {
				t.Fatalf("limits %v waits %v, want %v and %v", store.limits, waits, wantLimits, wantWaits)
			}
			if left := len(store.Rows("message")); left != map[bool]int{false: 0, true: 1}[c.wantErr] {
				t.Fatalf("%d rows left", left)
			}
		})
	}
}

func equal[T comparable](a, b []T) bool {
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

func TestRunDaily(t *testing.T) {
	store := retention.NewMemoryStore()
	now := t0
	clock := func() time.Time { return now }
	p := newPolicies(t, store, clock)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var waits []time.Duration
	s, err := retention.NewSweeper(p, retention.SweeperConfig{
		Targets: []retention.Target{messages},
		Tenants: func(context.Context) ([]string, error) { return []string{"app"}, nil },
		Sleep: func(ctx context.Context, d time.Duration) error {
			waits = append(waits, d)
			now = now.Add(d)
			return ctx.Err()
		},
	})
	if err != nil {
		t.Fatal(err)
	}

	var runs []time.Time
	err = s.RunDaily(ctx, 2*time.Hour, 30*time.Minute, func(rep retention.Report, err error) {
		if err != nil {
			t.Error(err)
		}
		runs = append(runs, rep.Started)
		if len(runs) == 3 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("RunDaily returned %v, want context.Canceled", err)
	}
	if len(runs) != 3 {
		t.Fatalf("%d runs, want 3", len(runs))
	}
	for i, r := range runs {
		day := time.Date(2026, 6, 2+i, 2, 0, 0, 0, time.UTC)
		if r.Before(day) || !r.Before(day.Add(30*time.Minute)) {
			t.Errorf("run %d at %v, want within 30 minutes after %v", i, r, day)
		}
	}
}

// A target without a channel column keeps its rows for the longest period
// any channel of the tenant has.
func TestTargetWithoutChannelsKeepsLongest(t *testing.T) {
	ctx := context.Background()
	day := 24 * time.Hour
	now := t0.Add(-48 * time.Hour)
	store := retention.NewMemoryStore()
	p := newPolicies(t, store, func() time.Time { return now })
	for _, c := range []struct {
		channel string
		period  time.Duration
	}{{"", 30 * day}, {"short", 10 * day}, {"long", 90 * day}} {
		if _, err := p.SetPeriod(ctx, "app", c.channel, c.period, "x"); err != nil {
			t.Fatal(err)
		}
	}
	now = t0
	store.Insert("upload",
		retention.Row{ID: "60", AppID: "app", Time: t0.Add(-60 * day)},
		retention.Row{ID: "95", AppID: "app", Time: t0.Add(-95 * day)})

	s, err := retention.NewSweeper(p, retention.SweeperConfig{Targets: []retention.Target{{Table: "upload", ID: "id", Time: "at"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if rows := store.Rows("upload"); len(rows) != 1 || rows[0].ID != "60" {
		t.Fatalf("left %+v, want only the 60-day-old row", rows)
	}
}

// The policy re-read during a long sweep keeps a target without a channel
// column at the longest period too, not the tenant's own.
func TestTargetWithoutChannelsKeepsLongestAfterReRead(t *testing.T) {
	ctx := context.Background()
	day := 24 * time.Hour
	now := t0.Add(-48 * time.Hour)
	store := retention.NewMemoryStore()
	p := newPolicies(t, store, func() time.Time { return now })
	for _, c := range []struct {
		channel string
		period  time.Duration
	}{{"", 30 * day}, {"long", 90 * day}} {
		if _, err := p.SetPeriod(ctx, "app", c.channel, c.period, "x"); err != nil {
			t.Fatal(err)
		}
	}
	now = t0
	for i := range 10 {
		store.Insert("upload", retention.Row{ID: fmt.Sprintf("old%d", i), AppID: "app", Time: t0.Add(-95 * day).Add(time.Duration(i) * time.Second)})
	}
	store.Insert("upload", retention.Row{ID: "young", AppID: "app", Time: t0.Add(-60 * day)})

	s, err := retention.NewSweeper(p, retention.SweeperConfig{
		Targets:   []retention.Target{{Table: "upload", ID: "id", Time: "at"}},
		BatchSize: 4, MinBatch: 4, MaxBatch: 4,
		Now: func() time.Time { return now },
		// Each pause lets the clock pass the sweeper's re-read interval.
		Sleep: func(ctx context.Context, _ time.Duration) error { now = now.Add(2 * time.Second); return ctx.Err() },
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rows := store.Rows("upload"); len(rows) != 1 || rows[0].ID != "young" || rep.Deleted != 10 {
		t.Fatalf("left %+v after deleting %d, want only the 60-day-old row", rows, rep.Deleted)
	}
}

// changingStore refuses every batch as if the tenant's policies changed
// each time the sweeper read them.
type changingStore struct {
	*retention.MemoryStore
	batches int
}

func (s *changingStore) SweepBatch(context.Context, retention.BatchParams) (retention.BatchResult, error) {
	s.batches++
	return retention.BatchResult{}, retention.ErrPolicyChanged
}

// Policies that change without end make the sweep give the scope up with
// ErrPolicyChanged rather than retry forever; nothing is deleted.
func TestEndlessPolicyChangesGiveUp(t *testing.T) {
	ctx := context.Background()
	store := &changingStore{MemoryStore: retention.NewMemoryStore()}
	store.Insert("message", retention.Row{ID: "old", AppID: "app", Time: t0.Add(-retention.DefaultPeriod - time.Hour)})
	p := newPolicies(t, store, func() time.Time { return t0 })
	s, err := retention.NewSweeper(p, retention.SweeperConfig{
		Targets: []retention.Target{messages},
		Tenants: func(context.Context) ([]string, error) { return []string{"app"}, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(ctx); !errors.Is(err, retention.ErrPolicyChanged) {
		t.Fatalf("err = %v, want ErrPolicyChanged", err)
	}
	if store.batches < 2 || store.batches > 20 {
		t.Fatalf("%d batches tried, want a few retries and then none", store.batches)
	}
	if rows := store.Rows("message"); len(rows) != 1 {
		t.Fatalf("left %+v", rows)
	}
}
