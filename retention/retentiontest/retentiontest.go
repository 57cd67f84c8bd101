package retentiontest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chatsdk/compliance/retention"
)

// Harness is what a store under test gives the suite.
type Harness struct {
	// Store is a fresh, empty store.
	Store retention.Store
	// Target is an empty table with channel and user columns, whose ids are
	// text (the suite's ids sort the same as text and as Go strings).
	Target retention.Target
	// Insert adds rows to Target's table.
	Insert func(t testing.TB, rows ...retention.Row)
	// IDs returns the ids left in Target's table, sorted.
	IDs func(t testing.TB) []string
	// Other, when not nil, returns another handle on the same store, as a
	// second app instance would open it. Nil: Store is shared.
	Other func(t testing.TB) retention.Store
	// ExpireLeases, when not nil, makes every lease in the store expire,
	// for a store that measures leases by its own clock rather than the
	// sweeper's. Nil: advancing the sweeper's clock past the lease does.
	ExpireLeases func(t testing.TB)
}

// Run runs the suite. newHarness is called once per subtest.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	clauses := []struct {
		name string
		run  func(t *testing.T, e *env)
	}{
		{"DefaultPeriod", testDefaultPeriod},
		{"VersionsAreNumbered", testVersionsAreNumbered},
		{"ShortenedPeriodWaitsOutGrace", testShortenWaitsGrace},
		{"LengtheningCancelsPendingShortening", testUndoDuringGrace},
		{"MinimumOnlyExtends", testMinimumOnlyExtends},
		{"Precedence", testPrecedence},
		{"SweepDeletesOnlyExpired", testSweepDeletesOnlyExpired},
		{"ChannelOverride", testChannelOverride},
		{"HeldRowsSurvive", testHeldRowsSurvive},
		{"ReleasedHoldAllowsDeletion", testReleasedHold},
		{"HoldPlacedDuringSweep", testHoldDuringSweep},
		{"LengtheningAppliesDuringSweep", testLengthenDuringSweep},
		{"LengtheningAfterPolicyReadWins", testLengthenAfterRead},
		{"KilledMidBatchResumes", testKilledMidBatch},
		{"LeaseKeepsOtherInstancesOff", testLease},
		{"LeaseIsPerTenant", testLeasePerTenant},
		{"TwoSweepersDeleteAndRecordOnce", testTwoSweepers},
		{"DryRunDeletesNothing", testDryRun},
		{"RecordRollsBackWithBatch", testRecordRollsBack},
		{"DeleterRunsInBatch", testDeleter},
	}
	for _, c := range clauses {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			c.run(t, newEnv(t, h))
		})
	}
}

// Clock is a settable clock for tests.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const day = 24 * time.Hour

// epoch is when the tests' sweeps run; rows' ages count back from it.
// Policies are set at setup, a grace period earlier: the first period a
// tenant sets is shorter than the default, so it too waits out the grace.
var (
	epoch = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	setup = epoch.Add(-retention.DefaultGrace - time.Hour)
)

type env struct {
	h        Harness
	ctx      context.Context
	clock    *Clock
	policies *retention.Policies
	records  *Records
}

func newEnv(t *testing.T, h Harness) *env {
	t.Helper()
	if h.Target.Name == "" {
		h.Target.Name = h.Target.Table
	}
	clock := NewClock(setup)
	p, err := retention.NewPolicies(h.Store, retention.PoliciesConfig{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &env{h: h, ctx: context.Background(), clock: clock, policies: p, records: &Records{}}
}

// Records collects batch records; its Hook is a retention.BatchHook. Safe
// for concurrent use.
type Records struct {
	mu   sync.Mutex
	list []retention.Record
}

// Hook records r.
func (rs *Records) Hook(_ context.Context, r retention.Record) error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.list = append(rs.list, r)
	return nil
}

// List returns the records so far.
func (rs *Records) List() []retention.Record {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return slices.Clone(rs.list)
}

// CheckOnce fails t unless the records name each of want exactly once and
// nothing else, and each record's counts agree with its ids.
func (rs *Records) CheckOnce(t testing.TB, want []string) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range rs.List() {
		if r.Deleted != len(r.IDs) || r.Deleted == 0 || r.MinID != slices.Min(r.IDs) || r.MaxID != slices.Max(r.IDs) {
			t.Errorf("record %+v: counts and ids disagree", r)
		}
		for _, id := range r.IDs {
			seen[id]++
		}
	}
	for _, id := range want {
		if seen[id] != 1 {
			t.Errorf("row %s recorded %d times, want once", id, seen[id])
		}
		delete(seen, id)
	}
	for id, n := range seen {
		t.Errorf("row %s recorded %d times, want never", id, n)
	}
}

// settle moves the clock from setup to epoch, past the grace period of the
// policies set so far.
func (e *env) settle(t testing.TB) {
	t.Helper()
	if e.clock.Now().After(epoch) {
		t.Fatal("settle called twice")
	}
	e.clock.Set(epoch)
}

// expireLeases advances the clock by d, past the leases taken so far, and
// has the store expire them if it keeps its own time.
func (e *env) expireLeases(t testing.TB, d time.Duration) {
	t.Helper()
	e.clock.Advance(d)
	if e.h.ExpireLeases != nil {
		e.h.ExpireLeases(t)
	}
}

func (e *env) sweeper(t testing.TB, store retention.Store, mod func(*retention.SweeperConfig)) *retention.Sweeper {
	t.Helper()
	p := e.policies
	if store != e.h.Store {
		var err error
		p, err = retention.NewPolicies(store, retention.PoliciesConfig{Now: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
	}
	cfg := retention.SweeperConfig{
		Targets:  []retention.Target{e.h.Target},
		OnBatch:  e.records.Hook,
		Tenants:  func(context.Context) ([]string, error) { return []string{"app1", "app2"}, nil },
		Instance: "one",
		IDs:      true,
		Sleep:    func(ctx context.Context, _ time.Duration) error { return ctx.Err() },
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := retention.NewSweeper(p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rows makes n rows of app, aged age, ids prefix000.. in one channel and
// user.
func rows(prefix, app, channel, user string, n int, age time.Duration) []retention.Row {
	out := make([]retention.Row, n)
	for i := range out {
		out[i] = retention.Row{
			ID: fmt.Sprintf("%s%04d", prefix, i), AppID: app, Channel: channel, User: user,
			Time: epoch.Add(-age).Add(time.Duration(i) * time.Second),
		}
	}
	return out
}

func ids(rs []retention.Row) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func sorted(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	slices.Sort(out)
	if out == nil {
		out = []string{}
	}
	return out
}

func (e *env) checkLeft(t testing.TB, want []string) {
	t.Helper()
	got := e.h.IDs(t)
	if got == nil {
		got = []string{}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("rows left = %v\nwant %v", got, want)
	}
}

func (e *env) run(t testing.TB, s *retention.Sweeper) retention.Report {
	t.Helper()
	rep, err := s.Run(e.ctx)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func testDefaultPeriod(t *testing.T, e *env) {
	e.settle(t)
	r := must[retention.Resolved](t)(e.policies.Resolve(e.ctx, "app1", epoch))
	if r.Tenant != retention.DefaultPeriod || r.Version != 0 || r.Period("c1") != retention.DefaultPeriod {
		t.Fatalf("resolved %+v, want the default period at version 0", r)
	}

	old := rows("a", "app1", "c1", "u1", 2, retention.DefaultPeriod+day)
	young := rows("b", "app1", "c1", "u1", 2, retention.DefaultPeriod-day)
	e.h.Insert(t, append(old, young...)...)
	e.run(t, e.sweeper(t, e.h.Store, nil))
	e.checkLeft(t, ids(young))
}

func testVersionsAreNumbered(t *testing.T, e *env) {
	mustV := must[retention.PolicyVersion](t)
	v1 := mustV(e.policies.SetPeriod(e.ctx, "app1", "", 400*day, "alice"))
	v2 := mustV(e.policies.SetPeriod(e.ctx, "app1", "c1", 500*day, "alice"))
	v3 := mustV(e.policies.LockMinimum(e.ctx, "app1", 100*day, "bob"))
	other := mustV(e.policies.SetPeriod(e.ctx, "app2", "", 400*day, "carol"))
	if v1.Version != 1 || v2.Version != 2 || v3.Version != 3 || other.Version != 1 {
		t.Fatalf("versions %d %d %d (other tenant %d), want 1 2 3 (1)", v1.Version, v2.Version, v3.Version, other.Version)
	}

	history := must[[]retention.PolicyVersion](t)(e.policies.Store().Policies(e.ctx, "app1"))
	if len(history) != 3 || history[1].Channel != "c1" || history[1].Period != 500*day || history[2].Kind != retention.KindMinimum || history[0].Author != "alice" {
		t.Fatalf("history %+v", history)
	}
	// Going from the default to 400 days is a shortening: it waits.
	if !history[0].SetAt.Equal(setup) || !history[0].EffectiveAt.Equal(setup.Add(retention.DefaultGrace)) {
		t.Fatalf("first version set %v effective %v, want set at %v, effective a grace period later", history[0].SetAt, history[0].EffectiveAt, setup)
	}
	if !history[2].EffectiveAt.Equal(history[2].SetAt) {
		t.Fatalf("a minimum waited until %v", history[2].EffectiveAt)
	}
	tenants := must[[]string](t)(e.policies.Store().PolicyTenants(e.ctx))
	if !slices.Equal(tenants, []string{"app1", "app2"}) {
		t.Fatalf("PolicyTenants = %v", tenants)
	}
}

func testShortenWaitsGrace(t *testing.T, e *env) {
	mustV := must[retention.PolicyVersion](t)
	mustV(e.policies.SetPeriod(e.ctx, "app1", "", 365*day, "alice"))
	e.settle(t)
	short := mustV(e.policies.SetPeriod(e.ctx, "app1", "", 30*day, "alice"))
	if want := epoch.Add(retention.DefaultGrace); !short.EffectiveAt.Equal(want) {
		t.Fatalf("shortening effective at %v, want %v", short.EffectiveAt, want)
	}

	rs := rows("a", "app1", "c1", "u1", 3, 100*day)
	e.h.Insert(t, rs...)
	s := e.sweeper(t, e.h.Store, nil)
	e.run(t, s)
	e.checkLeft(t, ids(rs)) // inside the grace period: the old 365 days rule

	e.clock.Advance(retention.DefaultGrace - time.Second)
	e.run(t, s)
	e.checkLeft(t, ids(rs))

	e.clock.Advance(time.Second)
	e.run(t, s)
	e.checkLeft(t, []string{})
	if recs := e.records.List(); len(recs) != 1 || recs[0].PolicyVersion != 2 || recs[0].Period != 30*day {
		t.Fatalf("records %+v, want one batch under version 2 (30 days)", recs)
	}
}

func testUndoDuringGrace(t *testing.T, e *env) {
	mustV := must[retention.PolicyVersion](t)
	mustV(e.policies.SetPeriod(e.ctx, "app1", "", 365*day, "alice"))
	e.settle(t)
	mustV(e.policies.SetPeriod(e.ctx, "app1", "", 30*day, "alice")) // a mistake
	e.clock.Advance(time.Hour)
	undo := mustV(e.policies.SetPeriod(e.ctx, "app1", "", 365*day, "alice"))
	if !undo.EffectiveAt.Equal(e.clock.Now()) {
		t.Fatalf("undo effective at %v, want now", undo.EffectiveAt)
	}

	// A further shortening made during the grace period cancels the first
	// one too: 30 days never applies, 60 days applies from its own end of
	// grace.
	mustV(e.policies.SetPeriod(e.ctx, "app1", "", 30*day, "alice"))
	e.clock.Advance(time.Hour)
	sixty := mustV(e.policies.SetPeriod(e.ctx, "app1", "", 60*day, "alice"))

	for _, c := range []struct {
		at   time.Time
		want time.Duration
	}{
		{epoch.Add(24*time.Hour + time.Minute), 365 * day},
		{epoch.Add(25*time.Hour + 30*time.Minute), 365 * day},
		{sixty.EffectiveAt.Add(-time.Second), 365 * day},
		{sixty.EffectiveAt, 60 * day},
	} {
		r := must[retention.Resolved](t)(e.policies.Resolve(e.ctx, "app1", c.at))
		if got := r.Period(""); got != c.want {
			t.Errorf("period at %v = %v, want %v", c.at, got, c.want)
		}
	}

	rs := rows("a", "app1", "c1", "u1", 3, 100*day)
	e.h.Insert(t, rs...)
	e.clock.Advance(2 * day)
	e.run(t, e.sweeper(t, e.h.Store, nil))
	e.checkLeft(t, []string{}) // 60 days in force by now
}

func testMinimumOnlyExtends(t *testing.T, e *env) {
	e.settle(t)
	if _, err := e.policies.LockMinimum(e.ctx, "app1", 90*day, "cso"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.policies.LockMinimum(e.ctx, "app1", 30*day, "cso"); !errors.Is(err, retention.ErrMinimumLocked) {
		t.Fatalf("lowering the minimum: err = %v, want ErrMinimumLocked", err)
	}
	if _, err := e.policies.LockMinimum(e.ctx, "app1", 120*day, "cso"); err != nil {
		t.Fatalf("raising the minimum: %v", err)
	}
	r := must[retention.Resolved](t)(e.policies.Resolve(e.ctx, "app1", epoch))
	if r.Minimum != 120*day {
		t.Fatalf("minimum %v, want 120 days", r.Minimum)
	}
	history := must[[]retention.PolicyVersion](t)(e.policies.Store().Policies(e.ctx, "app1"))
	if len(history) != 2 {
		t.Fatalf("%d versions stored, want 2: a refused change stores nothing", len(history))
	}
}

func testPrecedence(t *testing.T, e *env) {
	mustV := must[retention.PolicyVersion](t)
	mustV(e.policies.SetPeriod(e.ctx, "app1", "", 100*day, "a"))
	mustV(e.policies.SetPeriod(e.ctx, "app1", "short", 10*day, "a"))
	mustV(e.policies.SetPeriod(e.ctx, "app1", "long", 200*day, "a"))
	mustV(e.policies.SetPeriod(e.ctx, "app1", "tiny", 1*day, "a"))
	mustV(e.policies.LockMinimum(e.ctx, "app1", 5*day, "a"))
	if _, err := e.policies.PlaceHold(e.ctx, "app1", retention.User("suspect"), "litigation", "counsel"); err != nil {
		t.Fatal(err)
	}
	e.settle(t)

	cases := []struct {
		name    string
		app     string
		channel string
		user    string
		age     time.Duration
		delete  bool
		reason  retention.Reason
	}{
		{"hold beats every period", "app1", "short", "suspect", 1000 * day, false, retention.ReasonHold},
		{"minimum beats a shorter channel", "app1", "tiny", "u", 3 * day, false, retention.ReasonMinimum},
		{"minimum applies past its length", "app1", "tiny", "u", 6 * day, true, retention.ReasonMinimum},
		{"shorter channel beats tenant", "app1", "short", "u", 11 * day, true, retention.ReasonChannel},
		{"longer channel beats tenant", "app1", "long", "u", 150 * day, false, retention.ReasonChannel},
		{"tenant period elsewhere", "app1", "other", "u", 150 * day, true, retention.ReasonTenant},
		{"tenant period, young row", "app1", "other", "u", 50 * day, false, retention.ReasonTenant},
		{"default for a tenant with no policy", "app2", "short", "u", 150 * day, false, retention.ReasonDefault},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			row := retention.Row{ID: "x", AppID: c.app, Channel: c.channel, User: c.user, Time: epoch.Add(-c.age)}
			v := must[retention.Verdict](t)(e.policies.Explain(e.ctx, row, epoch))
			if v.Delete != c.delete || v.Reason != c.reason {
				t.Fatalf("verdict %+v, want delete %v by %s", v, c.delete, c.reason)
			}
		})
	}

	// The sweep agrees with Explain.
	var all []retention.Row
	var want []string
	for i, c := range cases {
		row := retention.Row{ID: fmt.Sprintf("p%02d", i), AppID: c.app, Channel: c.channel, User: c.user, Time: epoch.Add(-c.age)}
		all = append(all, row)
		if !c.delete {
			want = append(want, row.ID)
		}
	}
	e.h.Insert(t, all...)
	e.run(t, e.sweeper(t, e.h.Store, nil))
	e.checkLeft(t, sorted(want))
}

func testSweepDeletesOnlyExpired(t *testing.T, e *env) {
	must[retention.PolicyVersion](t)(e.policies.SetPeriod(e.ctx, "app1", "", 30*day, "a"))
	e.settle(t)
	old := rows("a", "app1", "c1", "u1", 25, 31*day)
	young := rows("b", "app1", "c1", "u1", 5, 29*day)
	otherTenant := rows("c", "app2", "c1", "u1", 5, 31*day) // app2: default period
	e.h.Insert(t, append(append(old, young...), otherTenant...)...)

	rep := e.run(t, e.sweeper(t, e.h.Store, func(c *retention.SweeperConfig) {
		c.BatchSize, c.MinBatch, c.MaxBatch = 10, 10, 10
		c.IDs = false
	}))
	e.checkLeft(t, sorted(ids(young), ids(otherTenant)))
	if rep.Deleted != 25 || rep.Batches != 3 {
		t.Fatalf("report %+v, want 25 rows in 3 batches", rep)
	}
	var ranges [][3]string
	for _, r := range e.records.List() {
		if r.IDs != nil {
			t.Fatalf("record carries ids though SweeperConfig.IDs is off")
		}
		ranges = append(ranges, [3]string{r.MinID, r.MaxID, fmt.Sprint(r.Deleted)})
	}
	if want := [][3]string{{"a0000", "a0009", "10"}, {"a0010", "a0019", "10"}, {"a0020", "a0024", "5"}}; !slices.Equal(ranges, want) {
		t.Fatalf("recorded ranges %v, want %v", ranges, want)
	}
	for _, r := range e.records.List() {
		if r.AppID != "app1" || r.Scope != retention.Tenant || r.PolicyVersion != 1 || r.Owner != "one" || !r.MaxTime.Before(r.Cutoff) || r.MinTime.After(r.MaxTime) {
			t.Fatalf("record %+v", r)
		}
	}
}

func testChannelOverride(t *testing.T, e *env) {
	mustV := must[retention.PolicyVersion](t)
	mustV(e.policies.SetPeriod(e.ctx, "app1", "", 100*day, "a"))
	mustV(e.policies.SetPeriod(e.ctx, "app1", "fast", 10*day, "a"))
	mustV(e.policies.SetPeriod(e.ctx, "app1", "slow", 300*day, "a"))
	e.settle(t)
	fast := rows("f", "app1", "fast", "u", 3, 20*day)
	slow := rows("s", "app1", "slow", "u", 3, 200*day)
	plain := rows("p", "app1", "plain", "u", 3, 200*day)
	young := rows("y", "app1", "plain", "u", 3, 20*day)
	e.h.Insert(t, append(append(append(fast, slow...), plain...), young...)...)

	e.run(t, e.sweeper(t, e.h.Store, nil))
	e.checkLeft(t, sorted(ids(slow), ids(young)))
	scopes := map[retention.Scope]int{}
	for _, r := range e.records.List() {
		scopes[r.Scope] += r.Deleted
	}
	if scopes[retention.Channel("fast")] != 3 || scopes[retention.Tenant] != 3 || len(scopes) != 2 {
		t.Fatalf("deleted per scope %v", scopes)
	}

	// Removing an override is a shortening here: it waits out the grace.
	mustV(e.policies.SetPeriod(e.ctx, "app1", "slow", 0, "a"))
	e.run(t, e.sweeper(t, e.h.Store, nil))
	e.checkLeft(t, sorted(ids(slow), ids(young)))
	e.clock.Advance(retention.DefaultGrace)
	e.run(t, e.sweeper(t, e.h.Store, nil))
	e.checkLeft(t, sorted(ids(young)))
}

func testHeldRowsSurvive(t *testing.T, e *env) {
	scopes := []struct {
		scope retention.Scope
		held  func(r retention.Row) bool
	}{
		{retention.Tenant, func(retention.Row) bool { return true }},
		{retention.Channel("c2"), func(r retention.Row) bool { return r.Channel == "c2" }},
		{retention.User("u2"), func(r retention.Row) bool { return r.User == "u2" }},
		{retention.Resource("r3"), func(r retention.Row) bool { return r.ID == "r3" }},
	}
	for i := range scopes {
		must[retention.PolicyVersion](t)(e.policies.SetPeriod(e.ctx, fmt.Sprintf("hold%d", i), "", 30*day, "a"))
	}
	e.settle(t)
	for i, sc := range scopes {
		t.Run(string(sc.scope.Kind), func(t *testing.T) {
			app := fmt.Sprintf("hold%d", i)
			var all []retention.Row
			for j, ch := range []string{"c1", "c2"} {
				for k, u := range []string{"u1", "u2"} {
					all = append(all, rows(fmt.Sprintf("%c%d%d", 'a'+i, j, k), app, ch, u, 3, 40*day)...)
				}
			}
			all = append(all, retention.Row{ID: fmt.Sprintf("r%d", i), AppID: app, Channel: "c1", User: "u1", Time: epoch.Add(-50 * day)})
			e.h.Insert(t, all...)
			if _, err := e.policies.PlaceHold(e.ctx, app, sc.scope, "case 12", "counsel"); err != nil {
				t.Fatal(err)
			}

			s := e.sweeper(t, e.h.Store, func(c *retention.SweeperConfig) {
				c.Tenants = func(context.Context) ([]string, error) { return []string{app}, nil }
				c.BatchSize, c.MinBatch = 4, 1
			})
			e.run(t, s)

			var want []string
			for _, r := range all {
				if sc.held(r) {
					want = append(want, r.ID)
				}
			}
			var left []string
			for _, id := range e.h.IDs(t) {
				for _, r := range all {
					if r.ID == id {
						left = append(left, id)
					}
				}
			}
			if !slices.Equal(sorted(left), sorted(want)) {
				t.Fatalf("left %v, want %v", left, want)
			}
		})
	}
}

func testReleasedHold(t *testing.T, e *env) {
	must[retention.PolicyVersion](t)(e.policies.SetPeriod(e.ctx, "app1", "", 30*day, "a"))
	e.settle(t)
	rs := rows("a", "app1", "c1", "u1", 3, 40*day)
	e.h.Insert(t, rs...)
	h := must[retention.Hold](t)(e.policies.PlaceHold(e.ctx, "app1", retention.Channel("c1"), "case", "counsel"))
	if h.ID == "" || !h.Active() || !h.CreatedAt.Equal(epoch) {
		t.Fatalf("placed hold %+v", h)
	}

	s := e.sweeper(t, e.h.Store, nil)
	e.run(t, s)
	e.checkLeft(t, ids(rs))

	if err := e.policies.ReleaseHold(e.ctx, "app2", h.ID, "counsel"); !errors.Is(err, retention.ErrNotFound) {
		t.Fatalf("release by another tenant: err = %v, want ErrNotFound", err)
	}
	e.clock.Advance(time.Minute)
	if err := e.policies.ReleaseHold(e.ctx, "app1", h.ID, "counsel"); err != nil {
		t.Fatal(err)
	}
	if err := e.policies.ReleaseHold(e.ctx, "app1", h.ID, "counsel"); !errors.Is(err, retention.ErrNotFound) {
		t.Fatalf("second release: err = %v, want ErrNotFound", err)
	}
	holds := must[[]retention.Hold](t)(e.policies.Holds(e.ctx, "app1"))
	if len(holds) != 1 || holds[0].Active() || !holds[0].ReleasedAt.Equal(epoch.Add(time.Minute)) || holds[0].ReleasedBy != "counsel" || holds[0].Reason != "case" {
		t.Fatalf("holds after release %+v", holds)
	}

	e.run(t, s)
	e.checkLeft(t, []string{})
}

func testHoldDuringSweep(t *testing.T, e *env) {
	must[retention.PolicyVersion](t)(e.policies.SetPeriod(e.ctx, "app1", "", 30*day, "a"))
	e.settle(t)
	first := rows("a", "app1", "c1", "u1", 5, 40*day)
	later := rows("b", "app1", "c2", "u1", 5, 39*day)
	e.h.Insert(t, append(first, later...)...)

	placed := false
	s := e.sweeper(t, e.h.Store, func(c *retention.SweeperConfig) {
		c.BatchSize, c.MinBatch = 5, 1
		c.Sleep = func(ctx context.Context, _ time.Duration) error {
			if !placed { // between the first and second batch
				placed = true
				if _, err := e.policies.PlaceHold(ctx, "app1", retention.Channel("c2"), "new case", "counsel"); err != nil {
					return err
				}
			}
			return ctx.Err()
		}
	})
	e.run(t, s)
	if !placed {
		t.Fatal("the sweep ran in one batch; the test needs two")
	}
	e.checkLeft(t, ids(later))
	e.records.CheckOnce(t, ids(first))
}

func testLengthenDuringSweep(t *testing.T, e *env) {
	must[retention.PolicyVersion](t)(e.policies.SetPeriod(e.ctx, "app1", "", 30*day, "a"))
	e.settle(t)
	rs := rows("a", "app1", "c1", "u1", 20, 40*day)
	e.h.Insert(t, rs...)

	changed := false
	s := e.sweeper(t, e.h.Store, func(c *retention.SweeperConfig) {
		c.BatchSize, c.MinBatch, c.MaxBatch = 5, 5, 5
		c.Sleep = func(ctx context.Context, _ time.Duration) error {
			if !changed {
				changed = true
				if _, err := e.policies.SetPeriod(ctx, "app1", "", 100*day, "a"); err != nil {
					return err
				}
				e.clock.Advance(2 * time.Second)
			}
			return ctx.Err()
		}
	})
	e.run(t, s)
	e.checkLeft(t, ids(rs[5:]))
	e.records.CheckOnce(t, ids(rs[:5]))
}

// beforeBatch is a store that calls before ahead of each SweepBatch (n
// counts them from 1), after the sweeper has read the policies for it.
type beforeBatch struct {
	retention.Store
	n      int
	before func(ctx context.Context, n int) error
}

// SweepBatch calls before, then the store's SweepBatch.
func (b *beforeBatch) SweepBatch(ctx context.Context, p retention.BatchParams) (retention.BatchResult, error) {
	b.n++
	if err := b.before(ctx, b.n); err != nil {
		return retention.BatchResult{}, err
	}
	return b.Store.SweepBatch(ctx, p)
}

// testLengthenAfterRead: a period lengthened after the sweeper read the
// policies for a batch, and before the batch ran, already holds for that
// batch: the batch checks the policy version it was planned on.
func testLengthenAfterRead(t *testing.T, e *env) {
	must[retention.PolicyVersion](t)(e.policies.SetPeriod(e.ctx, "app1", "", 30*day, "a"))
	e.settle(t)
	rs := rows("a", "app1", "c1", "u1", 20, 40*day)
	e.h.Insert(t, rs...)

	store := &beforeBatch{Store: e.h.Store, before: func(ctx context.Context, n int) error {
		if n == 2 {
			_, err := e.policies.SetPeriod(ctx, "app1", "", 100*day, "a")
			return err
		}
		return nil
	}}
	s := e.sweeper(t, store, func(c *retention.SweeperConfig) { c.BatchSize, c.MinBatch, c.MaxBatch = 5, 5, 5 })
	e.run(t, s)
	if store.n < 2 {
		t.Fatalf("%d batches; the test needs two", store.n)
	}
	e.checkLeft(t, ids(rs[5:]))
	e.records.CheckOnce(t, ids(rs[:5]))
}

func testKilledMidBatch(t *testing.T, e *env) {
	must[retention.PolicyVersion](t)(e.policies.SetPeriod(e.ctx, "app1", "", 30*day, "a"))
	e.settle(t)
	rs := rows("a", "app1", "c1", "u1", 20, 40*day)
	young := rows("z", "app1", "c1", "u1", 2, 10*day)
	e.h.Insert(t, append(rs, young...)...)

	ctx, kill := context.WithCancel(e.ctx)
	defer kill()
	batches := 0
	s := e.sweeper(t, e.h.Store, func(c *retention.SweeperConfig) {
		c.BatchSize, c.MinBatch, c.MaxBatch = 4, 4, 4
		c.OnBatch = func(ctx context.Context, r retention.Record) error {
			batches++
			if batches == 3 {
				kill() // the process dies inside the third batch
				return ctx.Err()
			}
			return e.records.Hook(ctx, r)
		}
	})
	if _, err := s.Run(ctx); err == nil {
		t.Fatal("killed run returned no error")
	}
	e.checkLeft(t, sorted(ids(rs[8:]), ids(young)))
	if n := len(e.records.List()); n != 2 {
		t.Fatalf("%d batches recorded before the kill, want 2", n)
	}

	// A restart resumes; with the checkpoint, the first batch starts at the
	// third batch's rows.
	var firstScanned []string
	restarted := e.sweeper(t, e.h.Store, func(c *retention.SweeperConfig) {
		c.BatchSize, c.MinBatch, c.MaxBatch = 4, 4, 4
		c.OnBatch = func(ctx context.Context, r retention.Record) error {
			if firstScanned == nil {
				firstScanned = r.IDs
			}
			return e.records.Hook(ctx, r)
		}
	})
	e.run(t, restarted)
	e.checkLeft(t, ids(young))
	e.records.CheckOnce(t, ids(rs))
	if len(firstScanned) == 0 || firstScanned[0] != rs[8].ID {
		t.Fatalf("resumed batch starts at %v, want %s", firstScanned, rs[8].ID)
	}
}

func testLease(t *testing.T, e *env) {
	must[retention.PolicyVersion](t)(e.policies.SetPeriod(e.ctx, "app1", "", 30*day, "a"))
	e.settle(t)
	rs := rows("a", "app1", "c1", "u1", 12, 40*day)
	e.h.Insert(t, rs...)

	// Instance one dies after its first batch, leaving its lease.
	ctx, kill := context.WithCancel(e.ctx)
	defer kill()
	one := e.sweeper(t, e.h.Store, func(c *retention.SweeperConfig) {
		c.BatchSize, c.MinBatch, c.MaxBatch = 4, 4, 4
		c.Sleep = func(context.Context, time.Duration) error { kill(); return context.Canceled }
	})
	if _, err := one.Run(ctx); err == nil {
		t.Fatal("killed run returned no error")
	}
	e.checkLeft(t, ids(rs[4:]))

	store := e.h.Store
	if e.h.Other != nil {
		store = e.h.Other(t)
	}
	two := e.sweeper(t, store, func(c *retention.SweeperConfig) {
		c.Instance = "two"
		c.BatchSize, c.MinBatch, c.MaxBatch = 4, 4, 4
	})
	rep := e.run(t, two)
	if !slices.Equal(rep.Busy, []string{e.h.Target.Name}) || rep.Deleted != 0 {
		t.Fatalf("second instance within the lease: report %+v, want the target busy", rep)
	}
	e.checkLeft(t, ids(rs[4:]))

	e.expireLeases(t, time.Minute+time.Second)
	rep = e.run(t, two)
	if len(rep.Busy) != 0 || rep.Deleted != 8 {
		t.Fatalf("after the lease expired: report %+v, want 8 rows deleted", rep)
	}
	e.checkLeft(t, []string{})
	e.records.CheckOnce(t, ids(rs))

	// A finished run releases its lease: instance one may sweep at once.
	e.h.Insert(t, rows("b", "app1", "c1", "u1", 2, 40*day)...)
	if rep := e.run(t, e.sweeper(t, e.h.Store, nil)); len(rep.Busy) != 0 || rep.Deleted != 2 {
		t.Fatalf("after a finished run: report %+v", rep)
	}
}

// testLeasePerTenant: a lease covers one tenant's rows of the target, so
// an instance left holding app1's lease keeps others off app1 only.
func testLeasePerTenant(t *testing.T, e *env) {
	must[retention.PolicyVersion](t)(e.policies.SetPeriod(e.ctx, "app1", "", 30*day, "a"))
	must[retention.PolicyVersion](t)(e.policies.SetPeriod(e.ctx, "app2", "", 30*day, "a"))
	e.settle(t)
	a := rows("a", "app1", "c1", "u1", 8, 40*day)
	b := rows("b", "app2", "c1", "u1", 3, 40*day)
	e.h.Insert(t, append(a, b...)...)

	ctx, kill := context.WithCancel(e.ctx)
	defer kill()
	one := e.sweeper(t, e.h.Store, func(c *retention.SweeperConfig) {
		c.BatchSize, c.MinBatch, c.MaxBatch = 4, 4, 4
		c.Tenants = func(context.Context) ([]string, error) { return []string{"app1"}, nil }
		c.Sleep = func(context.Context, time.Duration) error { kill(); return context.Canceled }
	})
	if _, err := one.Run(ctx); err == nil {
		t.Fatal("killed run returned no error")
	}

	store := e.h.Store
	if e.h.Other != nil {
		store = e.h.Other(t)
	}
	two := e.sweeper(t, store, func(c *retention.SweeperConfig) {
		c.Instance = "two"
		c.Tenants = func(context.Context) ([]string, error) { return []string{"app2"}, nil }
	})
	if rep := e.run(t, two); len(rep.Busy) != 0 || rep.Deleted != 3 {
		t.Fatalf("app2 while app1's lease is held: report %+v, want 3 rows deleted", rep)
	}
	e.checkLeft(t, ids(a[4:]))

	both := e.sweeper(t, store, func(c *retention.SweeperConfig) { c.Instance = "two" })
	if rep := e.run(t, both); !slices.Equal(rep.Busy, []string{e.h.Target.Name}) || rep.Deleted != 0 {
		t.Fatalf("app1 while its lease is held: report %+v, want the target busy", rep)
	}
	e.checkLeft(t, ids(a[4:]))
}

func testTwoSweepers(t *testing.T, e *env) {
	must[retention.PolicyVersion](t)(e.policies.SetPeriod(e.ctx, "app1", "", 30*day, "a"))
	must[retention.PolicyVersion](t)(e.policies.SetPeriod(e.ctx, "app2", "", 30*day, "a"))
	e.settle(t)
	a := rows("a", "app1", "c1", "u1", 60, 40*day)
	b := rows("b", "app2", "c1", "u1", 60, 40*day)
	e.h.Insert(t, append(a, b...)...)

	other := e.h.Store
	if e.h.Other != nil {
		other = e.h.Other(t)
	}
	sweepers := []*retention.Sweeper{
		e.sweeper(t, e.h.Store, func(c *retention.SweeperConfig) { c.BatchSize, c.MinBatch = 7, 1 }),
		e.sweeper(t, other, func(c *retention.SweeperConfig) { c.BatchSize, c.MinBatch, c.Instance = 7, 1, "two" }),
	}
	for round := 0; round < 3; round++ {
		var wg sync.WaitGroup
		errs := make([]error, len(sweepers))
		for i, s := range sweepers {
			wg.Go(func() { _, errs[i] = s.Run(e.ctx) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		if len(e.h.IDs(t)) == 0 {
			break
		}
		e.expireLeases(t, 2*time.Minute) // a crashed leader's lease, if any
	}
	e.checkLeft(t, []string{})
	e.records.CheckOnce(t, sorted(ids(a), ids(b)))
}

func testDryRun(t *testing.T, e *env) {
	mustV := must[retention.PolicyVersion](t)
	mustV(e.policies.SetPeriod(e.ctx, "app1", "", 30*day, "a"))
	mustV(e.policies.SetPeriod(e.ctx, "app1", "c2", 10*day, "a"))
	e.settle(t)
	e.h.Insert(t, rows("a", "app1", "c1", "u1", 4, 40*day)...)
	e.h.Insert(t, rows("b", "app1", "c1", "u2", 3, 25*day)...) // due within 10 days
	e.h.Insert(t, rows("c", "app1", "c2", "u1", 2, 15*day)...)
	e.h.Insert(t, rows("d", "app2", "c1", "u1", 2, 40*day)...)
	must[retention.Hold](t)(e.policies.PlaceHold(e.ctx, "app1", retention.Resource("a0001"), "case", "counsel"))
	before := e.h.IDs(t)

	s := e.sweeper(t, e.h.Store, nil)
	got := must[[]retention.Due](t)(s.DryRun(e.ctx))
	want := map[string][2]int64{"app1/channel:c2": {2, 0}, "app1/tenant": {4, 1}, "app2/tenant": {0, 0}}
	checkDue(t, "dry run", got, want)

	got = must[[]retention.Due](t)(s.Forecast(e.ctx, 10*day+time.Minute))
	want = map[string][2]int64{"app1/channel:c2": {2, 0}, "app1/tenant": {7, 1}, "app2/tenant": {0, 0}}
	checkDue(t, "forecast", got, want)

	e.checkLeft(t, before)
	if n := len(e.records.List()); n != 0 {
		t.Fatalf("%d batches recorded by a dry run", n)
	}
}

func checkDue(t *testing.T, what string, got []retention.Due, want map[string][2]int64) {
	t.Helper()
	m := map[string][2]int64{}
	for _, d := range got {
		m[d.AppID+"/"+d.Scope.String()] = [2]int64{d.Due, d.Held}
	}
	if len(m) != len(want) {
		t.Fatalf("%s: %v, want %v", what, m, want)
	}
	for k, w := range want {
		if m[k] != w {
			t.Fatalf("%s: %v, want %v", what, m, want)
		}
	}
}

func testRecordRollsBack(t *testing.T, e *env) {
	must[retention.PolicyVersion](t)(e.policies.SetPeriod(e.ctx, "app1", "", 30*day, "a"))
	e.settle(t)
	rs := rows("a", "app1", "c1", "u1", 6, 40*day)
	e.h.Insert(t, rs...)

	boom := errors.New("audit log unavailable")
	s := e.sweeper(t, e.h.Store, func(c *retention.SweeperConfig) {
		c.OnBatch = func(context.Context, retention.Record) error { return boom }
	})
	_, err := s.Run(e.ctx)
	if !errors.Is(err, retention.ErrHook) || !errors.Is(err, boom) {
		t.Fatalf("err = %v, want ErrHook wrapping the hook's error", err)
	}
	e.checkLeft(t, ids(rs))

	e.run(t, e.sweeper(t, e.h.Store, nil))
	e.checkLeft(t, []string{})
	e.records.CheckOnce(t, ids(rs))
}

func testDeleter(t *testing.T, e *env) {
	must[retention.PolicyVersion](t)(e.policies.SetPeriod(e.ctx, "app1", "", 30*day, "a"))
	e.settle(t)
	rs := rows("a", "app1", "c1", "u1", 6, 40*day)
	e.h.Insert(t, rs...)

	var got []string
	fail := true
	s := e.sweeper(t, e.h.Store, func(c *retention.SweeperConfig) {
		c.Targets[0].Deleter = func(_ context.Context, d retention.Deleted) error {
			if d.AppID != "app1" || d.Target != e.h.Target.Name {
				return fmt.Errorf("deleter got %s/%s", d.AppID, d.Target)
			}
			if fail {
				return errors.New("object store down")
			}
			got = append(got, d.IDs...)
			return nil
		}
	})
	if _, err := s.Run(e.ctx); !errors.Is(err, retention.ErrHook) {
		t.Fatalf("err = %v, want ErrHook", err)
	}
	e.checkLeft(t, ids(rs))
	if n := len(e.records.List()); n != 0 {
		t.Fatalf("%d batches recorded though the deleter failed", n)
	}

	fail = false
	e.run(t, s)
	e.checkLeft(t, []string{})
	if !slices.Equal(got, ids(rs)) {
		t.Fatalf("deleter got %v, want %v", got, ids(rs))
	}
	e.records.CheckOnce(t, ids(rs))
}
