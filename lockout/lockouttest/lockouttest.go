// Package lockouttest is the conformance suite of lockout.Store. Run calls
// one subtest per clause of the Store contract, plus the Guard properties
// that depend on the store (the concurrent-attempt race, unknown accounts,
// several app instances), so the memory store, lockoutpg and any other
// adapter are held to the same behaviour.
//
// An adapter's test supplies a Harness: the store, a way to move the
// store's clock forward, and optionally more instances on the same state
// (for a database store, stores on other connection pools).
package lockouttest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chatsdk/compliance/lockout"
)

// Harness is what the suite needs of a store under test.
type Harness struct {
	// Store is the store under test, empty.
	Store lockout.Store
	// Advance moves the store's clock forward by d. Required.
	Advance func(t *testing.T, d time.Duration)
	// Instances, when not nil, returns n stores that share Store's state
	// as separate app instances would (other pools on the same database).
	// When nil, the suite uses Store n times.
	Instances func(t *testing.T, n int) []lockout.Store
}

// Clock is a settable clock for stores that take one, such as
// lockout.NewMemoryStore. It starts at a fixed instant at microsecond
// precision and is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock at 2026-01-02 03:04:05 UTC.
func NewClock() *Clock {
	return &Clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Run runs the conformance suite. newHarness is called once per subtest
// and must return a harness on an empty store.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	clauses := []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"ReserveGrantsUpToLimit", testReserveGrantsUpToLimit},
		{"FailureAtLimitLocks", testFailureAtLimitLocks},
		{"LockExpires", testLockExpires},
		{"WindowExpires", testWindowExpires},
		{"GrowingLockDurations", testGrowingLockDurations},
		{"SuccessResets", testSuccessResets},
		{"SuccessWithoutResetGivesBack", testSuccessWithoutResetGivesBack},
		{"CancelGivesBack", testCancelGivesBack},
		{"StaleEpochLeftAlone", testStaleEpochLeftAlone},
		{"HardCapNeedsUnlock", testHardCapNeedsUnlock},
		{"NotifyRateLimited", testNotifyRateLimited},
		{"UnlockSelects", testUnlockSelects},
		{"CountersIndependent", testCountersIndependent},
		{"LockedCounterCountsNone", testLockedCounterCountsNone},
		{"StatusReportsExisting", testStatusReportsExisting},
		{"HistoryNewestFirst", testHistoryNewestFirst},
		{"PruneRetention", testPruneRetention},
		{"ConcurrentReserveAcrossInstances", testConcurrentReserve},
		{"GuardRaceAdmitsOnlyAllowedChecks", testGuardRace},
		{"GuardLockExpiry", testGuardLockExpiry},
		{"GuardHardCapNeedsAdminUnlock", testGuardHardCap},
		{"GuardIPLimit", testGuardIPLimit},
		{"GuardAccountAndIPKeepsVictimIn", testGuardAccountAndIP},
		{"GuardUnknownAccountLikeKnown", testGuardUnknownLikeKnown},
		{"GuardInstancesAgree", testGuardInstancesAgree},
	}
	for _, c := range clauses {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			require.NotNil(t, h.Store, "harness has no Store")
			require.NotNil(t, h.Advance, "harness has no Advance")
			c.fn(t, h)
		})
	}
}

func (h Harness) instances(t *testing.T, n int) []lockout.Store {
	if h.Instances == nil {
		out := make([]lockout.Store, n)
		for i := range out {
			out[i] = h.Store
		}
		return out
	}
	out := h.Instances(t, n)
	require.Len(t, out, n)
	return out
}

var ctx = context.Background()

func acct(name string) lockout.CounterKey {
	return lockout.CounterKey{AppID: "app-1", Kind: lockout.KindAccount, Factor: lockout.FactorPassword, Account: name}
}

func ipKey(ip string) lockout.CounterKey {
	return lockout.CounterKey{AppID: "app-1", Kind: lockout.KindIP, IP: ip}
}

func limit(max int) lockout.Limit {
	return lockout.Limit{MaxFailures: max, Window: 15 * time.Minute, LockDurations: []time.Duration{15 * time.Minute},
		ResetOnSuccess: true, NotifyInterval: time.Hour}
}

func reserve(t *testing.T, s lockout.Store, k lockout.CounterKey, l lockout.Limit) lockout.Decision {
	t.Helper()
	res, err := s.Reserve(ctx, []lockout.ReserveRequest{{Key: k, Limit: l}})
	require.NoError(t, err)
	require.Len(t, res.Decisions, 1)
	require.Equal(t, k, res.Decisions[0].Key)
	return res.Decisions[0]
}

func settle(t *testing.T, s lockout.Store, o lockout.Outcome, k lockout.CounterKey, l lockout.Limit, d lockout.Decision) lockout.SettleResult {
	t.Helper()
	res, err := s.Settle(ctx, lockout.SettleParams{Outcome: o, Tickets: []lockout.Ticket{{Key: k, Limit: l, Epoch: d.Epoch}}})
	require.NoError(t, err)
	return res
}

// fail makes one full failed attempt and returns the settlement.
func fail(t *testing.T, s lockout.Store, k lockout.CounterKey, l lockout.Limit) lockout.SettleResult {
	t.Helper()
	d := reserve(t, s, k, l)
	require.True(t, d.Granted, "reservation refused: %+v", d)
	return settle(t, s, lockout.OutcomeFailure, k, l, d)
}

func status(t *testing.T, s lockout.Store, k lockout.CounterKey) (lockout.Counter, time.Time) {
	t.Helper()
	res, err := s.Status(ctx, []lockout.CounterKey{k})
	require.NoError(t, err)
	require.Len(t, res.Counters, 1)
	return res.Counters[0], res.Now
}

func testReserveGrantsUpToLimit(t *testing.T, h Harness) {
	k, l := acct("alice"), limit(3)
	for i := 1; i <= 3; i++ {
		d := reserve(t, h.Store, k, l)
		require.True(t, d.Granted, "reservation %d", i)
		require.Equal(t, i, d.Failures, "failures after reservation %d", i)
		require.Equal(t, i, d.Consecutive)
		require.True(t, d.LockedUntil.IsZero())
	}
	d := reserve(t, h.Store, k, l)
	require.False(t, d.Granted, "a fourth reservation beyond the limit of 3 was granted")
	require.Equal(t, 3, d.Failures, "a refused reservation changed the count")
	require.Equal(t, 3, d.Consecutive)
	require.True(t, d.LockedUntil.IsZero(), "in-flight reservations alone must not lock")
}

func testFailureAtLimitLocks(t *testing.T, h Harness) {
	k, l := acct("alice"), limit(3)
	for i := 0; i < 2; i++ {
		require.Empty(t, fail(t, h.Store, k, l).Locks, "failure %d locked", i+1)
	}
	res := fail(t, h.Store, k, l)
	require.Len(t, res.Locks, 1, "the third failure did not lock")
	lt := res.Locks[0]
	require.Equal(t, k, lt.Key)
	require.False(t, lt.Hard)
	require.Equal(t, res.Now.Add(15*time.Minute), lt.Until, "lock end is not store clock + duration")
	require.Equal(t, 3, lt.Consecutive)

	d := reserve(t, h.Store, k, l)
	require.False(t, d.Granted)
	require.Equal(t, lt.Until, d.LockedUntil)
	c, _ := status(t, h.Store, k)
	require.Equal(t, 1, c.LockCount)
	require.Equal(t, 0, c.Failures, "a lock must clear the count")
}

func testLockExpires(t *testing.T, h Harness) {
	k, l := acct("alice"), limit(2)
	fail(t, h.Store, k, l)
	res := fail(t, h.Store, k, l)
	require.Len(t, res.Locks, 1)

	h.Advance(t, 15*time.Minute-time.Second)
	require.False(t, reserve(t, h.Store, k, l).Granted, "lock lifted a second early")
	h.Advance(t, time.Second)
	d := reserve(t, h.Store, k, l)
	require.True(t, d.Granted, "lock did not expire after its duration")
	require.Equal(t, 1, d.Failures)
	require.True(t, d.LockedUntil.IsZero())
	require.Equal(t, 3, d.Consecutive, "consecutive failures must survive a lock")
}

func testWindowExpires(t *testing.T, h Harness) {
	k, l := acct("alice"), limit(3)
	fail(t, h.Store, k, l)
	fail(t, h.Store, k, l)
	h.Advance(t, 15*time.Minute)
	d := reserve(t, h.Store, k, l)
	require.True(t, d.Granted)
	require.Equal(t, 1, d.Failures, "failures of an expired window still count")
	require.Empty(t, settle(t, h.Store, lockout.OutcomeFailure, k, l, d).Locks)
}

func testGrowingLockDurations(t *testing.T, h Harness) {
	k, l := acct("alice"), limit(1)
	l.LockDurations = []time.Duration{time.Minute, 10 * time.Minute}
	for i, want := range []time.Duration{time.Minute, 10 * time.Minute, 10 * time.Minute} {
		res := fail(t, h.Store, k, l)
		require.Len(t, res.Locks, 1)
		require.Equal(t, res.Now.Add(want), res.Locks[0].Until, "lock %d", i+1)
		h.Advance(t, want)
	}
	d := reserve(t, h.Store, k, l)
	require.True(t, d.Granted)
	settle(t, h.Store, lockout.OutcomeSuccess, k, l, d)
	res := fail(t, h.Store, k, l)
	require.Equal(t, res.Now.Add(time.Minute), res.Locks[0].Until, "a success must restart the durations")
}

func testSuccessResets(t *testing.T, h Harness) {
	k, l := acct("alice"), limit(3)
	fail(t, h.Store, k, l)
	fail(t, h.Store, k, l)
	d := reserve(t, h.Store, k, l)
	require.True(t, d.Granted)
	require.Empty(t, settle(t, h.Store, lockout.OutcomeSuccess, k, l, d).Locks)
	c, _ := status(t, h.Store, k)
	require.Equal(t, 0, c.Failures)
	require.Equal(t, 0, c.Consecutive)
	require.Equal(t, 0, c.LockCount)
	require.True(t, reserve(t, h.Store, k, l).Granted)
}

func testSuccessWithoutResetGivesBack(t *testing.T, h Harness) {
	k, l := ipKey("192.0.2.1"), limit(3)
	l.ResetOnSuccess = false
	fail(t, h.Store, k, l)
	d := reserve(t, h.Store, k, l)
	settle(t, h.Store, lockout.OutcomeSuccess, k, l, d)
	c, _ := status(t, h.Store, k)
	require.Equal(t, 1, c.Failures, "a success on a non-resetting counter must only give back its own reservation")
}

func testCancelGivesBack(t *testing.T, h Harness) {
	k, l := acct("alice"), limit(3)
	fail(t, h.Store, k, l)
	d := reserve(t, h.Store, k, l)
	require.Equal(t, 2, d.Failures)
	require.Empty(t, settle(t, h.Store, lockout.OutcomeCancelled, k, l, d).Locks)
	c, _ := status(t, h.Store, k)
	require.Equal(t, 1, c.Failures)
	require.Equal(t, 1, c.Consecutive)

	// A refused attempt gives back its other tickets and records itself
	// as denied in the same call; a cancelled record is not kept.
	d = reserve(t, h.Store, k, l)
	denied := lockout.AttemptRecord{AppID: "app-1", Account: "alice", Factor: lockout.FactorPassword, Outcome: lockout.OutcomeDenied}
	_, err := h.Store.Settle(ctx, lockout.SettleParams{Outcome: lockout.OutcomeCancelled,
		Tickets: []lockout.Ticket{{Key: k, Limit: l, Epoch: d.Epoch}}, Record: &denied})
	require.NoError(t, err)
	cancelled := denied
	cancelled.Outcome = lockout.OutcomeCancelled
	_, err = h.Store.Settle(ctx, lockout.SettleParams{Outcome: lockout.OutcomeCancelled, Record: &cancelled})
	require.NoError(t, err)
	c, _ = status(t, h.Store, k)
	require.Equal(t, 1, c.Failures)
	recs, err := h.Store.History(ctx, lockout.HistoryQuery{AppID: "app-1"})
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, lockout.OutcomeDenied, recs[0].Outcome)
}

func testStaleEpochLeftAlone(t *testing.T, h Harness) {
	k, l := acct("alice"), limit(2)
	old := reserve(t, h.Store, k, l)
	h.Advance(t, 15*time.Minute) // the window ends while the check runs
	d1 := reserve(t, h.Store, k, l)
	require.NotEqual(t, old.Epoch, d1.Epoch, "a new window must start a new epoch")
	d2 := reserve(t, h.Store, k, l)
	require.Equal(t, 2, d2.Failures)

	require.Empty(t, settle(t, h.Store, lockout.OutcomeFailure, k, l, old).Locks, "a stale ticket locked the newer run")
	settle(t, h.Store, lockout.OutcomeCancelled, k, l, old)
	c, _ := status(t, h.Store, k)
	require.Equal(t, 2, c.Failures, "a stale ticket changed the newer run's count")
	require.Len(t, settle(t, h.Store, lockout.OutcomeFailure, k, l, d2).Locks, 1)
}

func testHardCapNeedsUnlock(t *testing.T, h Harness) {
	k, l := acct("alice"), limit(2)
	l.HardCap = 5
	l.LockDurations = []time.Duration{time.Minute}
	var last lockout.SettleResult
	for i := 0; i < 5; i++ {
		d := reserve(t, h.Store, k, l)
		require.True(t, d.Granted, "attempt %d refused", i+1)
		last = settle(t, h.Store, lockout.OutcomeFailure, k, l, d)
		h.Advance(t, time.Minute)
	}
	require.Len(t, last.Locks, 1)
	require.True(t, last.Locks[0].Hard, "the fifth consecutive failure did not hard-lock")
	require.True(t, last.Locks[0].Until.IsZero())

	h.Advance(t, 24*time.Hour)
	d := reserve(t, h.Store, k, l)
	require.False(t, d.Granted, "a hard lock expired by itself")
	require.True(t, d.Hard)

	res, err := h.Store.Unlock(ctx, lockout.UnlockParams{AppID: k.AppID, Account: k.Account})
	require.NoError(t, err)
	require.Equal(t, []lockout.CounterKey{k}, res.Unlocked)
	d = reserve(t, h.Store, k, l)
	require.True(t, d.Granted, "unlock did not lift the hard lock")
	require.Equal(t, 1, d.Consecutive)
}

func testNotifyRateLimited(t *testing.T, h Harness) {
	k, l := acct("alice"), limit(1)
	l.LockDurations = []time.Duration{time.Minute}
	var got []bool
	for i := 0; i < 3; i++ {
		res := fail(t, h.Store, k, l)
		require.Len(t, res.Locks, 1)
		got = append(got, res.Locks[0].Notify)
		h.Advance(t, time.Minute)
	}
	h.Advance(t, time.Hour)
	res := fail(t, h.Store, k, l)
	got = append(got, res.Locks[0].Notify)
	require.Equal(t, []bool{true, false, false, true}, got, "notifications must be at most one per interval")

	l.NotifyInterval = 0
	h.Advance(t, 2*time.Hour)
	res = fail(t, h.Store, acct("bob"), l)
	require.False(t, res.Locks[0].Notify, "a zero interval must not notify")
}

func testUnlockSelects(t *testing.T, h Harness) {
	l := limit(1)
	pw := acct("alice")
	totp := pw
	totp.Factor = lockout.FactorTOTP
	pair := lockout.CounterKey{AppID: "app-1", Kind: lockout.KindAccountIP, Factor: lockout.FactorPassword, Account: "alice", IP: "192.0.2.1"}
	other := acct("bob")
	ip := ipKey("192.0.2.1")
	otherApp := pw
	otherApp.AppID = "app-2"
	for _, k := range []lockout.CounterKey{pw, totp, pair, other, ip, otherApp} {
		require.Len(t, fail(t, h.Store, k, l).Locks, 1)
	}

	res, err := h.Store.Unlock(ctx, lockout.UnlockParams{AppID: "app-1", Account: "alice", Factor: lockout.FactorTOTP})
	require.NoError(t, err)
	require.Equal(t, []lockout.CounterKey{totp}, res.Unlocked)

	res, err = h.Store.Unlock(ctx, lockout.UnlockParams{AppID: "app-1", Account: "alice"})
	require.NoError(t, err)
	want := []lockout.CounterKey{pw, pair}
	lockout.SortKeys(want)
	require.Equal(t, want, res.Unlocked)

	res, err = h.Store.Unlock(ctx, lockout.UnlockParams{AppID: "app-1", IP: "192.0.2.1"})
	require.NoError(t, err)
	require.Equal(t, []lockout.CounterKey{ip}, res.Unlocked)

	res, err = h.Store.Unlock(ctx, lockout.UnlockParams{AppID: "app-1", Account: "alice"})
	require.NoError(t, err)
	require.Empty(t, res.Unlocked, "counters already clear were reported unlocked")
	require.False(t, reserve(t, h.Store, other, l).Granted, "unlock touched another account")
	require.False(t, reserve(t, h.Store, otherApp, l).Granted, "unlock touched another tenant")
}

func testCountersIndependent(t *testing.T, h Harness) {
	a, ip := acct("alice"), ipKey("192.0.2.1")
	la, li := limit(5), limit(1)
	li.ResetOnSuccess = false
	fail(t, h.Store, ip, li)

	res, err := h.Store.Reserve(ctx, []lockout.ReserveRequest{{Key: a, Limit: la}, {Key: ip, Limit: li}})
	require.NoError(t, err)
	require.Len(t, res.Decisions, 2)
	require.Equal(t, a, res.Decisions[0].Key, "decisions out of request order")
	require.Equal(t, ip, res.Decisions[1].Key)
	require.False(t, res.Decisions[1].Granted)
	require.True(t, res.Decisions[1].LockedUntil.After(res.Now), "the refusing counter reports no lock")

	// The address's lock is its own: the account's counter is untouched,
	// and an attempt from elsewhere is granted.
	c, _ := status(t, h.Store, a)
	require.Equal(t, 0, c.Failures, "the address's failures reached the account")
	require.True(t, reserve(t, h.Store, a, la).Granted)
}

// A locked counter refuses the attempt, so the others must not count it
// either: a request refused by its address's lock (or an account-and-IP
// lock) that took one of the account's allowed attempts, even until it is
// given back, would let a locked-out attacker keep the account's attempts
// in flight, or help lock it by racing its owner's failures.
func testLockedCounterCountsNone(t *testing.T, h Harness) {
	a, ip := acct("alice"), ipKey("192.0.2.1")
	la, li := limit(5), limit(1)
	li.ResetOnSuccess = false
	fail(t, h.Store, ip, li) // the address is locked

	for i := 0; i < 3; i++ {
		res, err := h.Store.Reserve(ctx, []lockout.ReserveRequest{{Key: a, Limit: la}, {Key: ip, Limit: li}})
		require.NoError(t, err)
		require.False(t, res.Decisions[0].Granted, "the account counted an attempt its address's lock refused")
		require.Equal(t, 0, res.Decisions[0].Failures)
		require.False(t, res.Decisions[1].Granted)
	}
	c, _ := status(t, h.Store, a)
	require.Equal(t, 0, c.Failures)
	require.Equal(t, 0, c.Consecutive)

	// A counter at its hard cap blocks the others the same way.
	hc := acct("bob")
	lh := limit(1)
	lh.HardCap = 1
	res := fail(t, h.Store, hc, lh)
	require.True(t, res.Locks[0].Hard)
	other := ipKey("192.0.2.2")
	rr, err := h.Store.Reserve(ctx, []lockout.ReserveRequest{{Key: hc, Limit: lh}, {Key: other, Limit: li}})
	require.NoError(t, err)
	require.False(t, rr.Decisions[0].Granted)
	require.False(t, rr.Decisions[1].Granted, "an address counted an attempt on a hard-locked account")
	require.Equal(t, 0, rr.Decisions[1].Failures)
}

func testStatusReportsExisting(t *testing.T, h Harness) {
	k, l := acct("alice"), limit(5)
	fail(t, h.Store, k, l)
	res, err := h.Store.Status(ctx, []lockout.CounterKey{acct("nobody"), k})
	require.NoError(t, err)
	require.Len(t, res.Counters, 1, "a counter that does not exist was reported")
	c := res.Counters[0]
	require.Equal(t, k, c.Key)
	require.Equal(t, 1, c.Failures)
	require.Equal(t, 1, c.Consecutive)
	require.False(t, c.WindowStart.After(res.Now), "window starts after the store's clock")
	require.False(t, c.Hard)
	require.True(t, c.LockedUntil.IsZero())
}

func testHistoryNewestFirst(t *testing.T, h Harness) {
	recs := []lockout.AttemptRecord{
		{AppID: "app-1", Account: "alice", Factor: lockout.FactorPassword, IP: "192.0.2.1", Outcome: lockout.OutcomeFailure},
		{AppID: "app-1", Account: "bob", Factor: lockout.FactorPassword, IP: "192.0.2.1", Outcome: lockout.OutcomeDenied},
		{AppID: "app-1", Account: "alice", Factor: lockout.FactorTOTP, Outcome: lockout.OutcomeSuccess},
		{AppID: "app-2", Account: "alice", Factor: lockout.FactorPassword, IP: "192.0.2.1", Outcome: lockout.OutcomeFailure},
	}
	var times []time.Time
	for _, r := range recs {
		r := r
		res, err := h.Store.Settle(ctx, lockout.SettleParams{Outcome: r.Outcome, Record: &r})
		require.NoError(t, err)
		times = append(times, res.Now)
	}
	want := func(i int) lockout.AttemptRecord { r := recs[i]; r.At = times[i]; return r }

	got, err := h.Store.History(ctx, lockout.HistoryQuery{AppID: "app-1", Account: "alice"})
	require.NoError(t, err)
	require.Equal(t, []lockout.AttemptRecord{want(2), want(0)}, normalize(got))

	got, err = h.Store.History(ctx, lockout.HistoryQuery{AppID: "app-1", IP: "192.0.2.1", Limit: 1})
	require.NoError(t, err)
	require.Equal(t, []lockout.AttemptRecord{want(1)}, normalize(got))

	got, err = h.Store.History(ctx, lockout.HistoryQuery{AppID: "app-1"})
	require.NoError(t, err)
	require.Len(t, got, 3)
}

// normalize puts times in UTC so records from any store compare equal.
func normalize(rs []lockout.AttemptRecord) []lockout.AttemptRecord {
	for i := range rs {
		rs[i].At = rs[i].At.UTC()
	}
	return rs
}

func testPruneRetention(t *testing.T, h Harness) {
	rec := lockout.AttemptRecord{AppID: "app-1", Account: "alice", Factor: lockout.FactorPassword, Outcome: lockout.OutcomeFailure}
	_, err := h.Store.Settle(ctx, lockout.SettleParams{Outcome: lockout.OutcomeFailure, Record: &rec})
	require.NoError(t, err)
	hard := acct("hard")
	lh := limit(1)
	lh.HardCap = 1
	require.True(t, fail(t, h.Store, hard, lh).Locks[0].Hard)
	fail(t, h.Store, acct("idle"), limit(5))

	h.Advance(t, 10*24*time.Hour)
	_, err = h.Store.Settle(ctx, lockout.SettleParams{Outcome: lockout.OutcomeFailure, Record: &rec})
	require.NoError(t, err)
	fail(t, h.Store, acct("fresh"), limit(5))

	res, err := h.Store.Prune(ctx, lockout.PruneParams{HistoryAge: 5 * 24 * time.Hour, CounterIdle: 5 * 24 * time.Hour})
	require.NoError(t, err)
	require.Equal(t, lockout.PruneResult{Records: 1, Counters: 1}, res)
	got, err := h.Store.History(ctx, lockout.HistoryQuery{AppID: "app-1"})
	require.NoError(t, err)
	require.Len(t, got, 1)
	st, err := h.Store.Status(ctx, []lockout.CounterKey{hard, acct("idle"), acct("fresh")})
	require.NoError(t, err)
	require.Len(t, st.Counters, 2, "prune must keep hard-locked and recent counters")

	res, err = h.Store.Prune(ctx, lockout.PruneParams{})
	require.NoError(t, err)
	require.Equal(t, lockout.PruneResult{}, res, "zero ages must delete nothing")
}

func testConcurrentReserve(t *testing.T, h Harness) {
	const n, max = 100, 5
	stores := h.instances(t, 4)
	k, l := acct("alice"), limit(max)
	var granted atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(s lockout.Store) {
			defer wg.Done()
			res, err := s.Reserve(ctx, []lockout.ReserveRequest{{Key: k, Limit: l}})
			if err != nil {
				errs <- err
				return
			}
			if res.Decisions[0].Granted {
				granted.Add(1)
			}
		}(stores[i%len(stores)])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, int64(max), granted.Load(), "concurrent reservations granted")
}

// ConcurrentChecks starts n attempts at once through check and counts the
// credential checks they make. Each attempt's verify reports a wrong
// credential, but only after every attempt has either been refused or
// reached its own verify: an implementation that checks first and counts
// afterwards lets all n through, one that reserves first lets through only
// what its limit allows. check must call verify at most once and return
// once the attempt is over.
func ConcurrentChecks(t *testing.T, n int, check func(i int, verify func(context.Context) (bool, error)) error) int {
	t.Helper()
	var checks, arrived atomic.Int64
	all := make(chan struct{})
	arrive := func() {
		if arrived.Add(1) == int64(n) {
			close(all)
		}
	}

	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			called := false
			verify := func(context.Context) (bool, error) {
				called = true
				checks.Add(1)
				arrive()
				select {
				case <-all:
				case <-time.After(20 * time.Second):
					t.Error("attempts never all arrived")
				}
				return false, nil
			}
			err := check(i, verify)
			if !called {
				arrive()
				if !errors.Is(err, lockout.ErrLocked) {
					t.Errorf("attempt %d refused with %v, want ErrLocked", i, err)
				}
			} else if !errors.Is(err, lockout.ErrInvalidCredential) {
				t.Errorf("attempt %d checked, got %v, want ErrInvalidCredential", i, err)
			}
		}(i)
	}
	wg.Wait()
	return int(checks.Load())
}

func newGuard(t *testing.T, s lockout.Store, p lockout.Policy) *lockout.Guard {
	t.Helper()
	g, err := lockout.New(lockout.Config{Store: s, Policy: p})
	require.NoError(t, err)
	return g
}

func attempt(account, ip string) lockout.Attempt {
	a := lockout.Attempt{AppID: "app-1", Account: account}
	if ip != "" {
		a.IP = netip.MustParseAddr(ip)
	}
	return a
}

func testGuardRace(t *testing.T, h Harness) {
	const n = 100
	stores := h.instances(t, 4)
	guards := make([]*lockout.Guard, len(stores))
	for i, s := range stores {
		guards[i] = newGuard(t, s, lockout.Policy{})
	}
	checks := ConcurrentChecks(t, n, func(i int, verify func(context.Context) (bool, error)) error {
		// Each attempt from its own address, so only the account counter
		// can stop them.
		ip := fmt.Sprintf("198.51.100.%d", i+1)
		return guards[i%len(guards)].Check(ctx, attempt("alice", ip), verify)
	})
	require.Equal(t, 5, checks, "credential checks admitted for %d concurrent wrong passwords", n)

	st, err := guards[0].Status(ctx, attempt("alice", ""))
	require.NoError(t, err)
	require.True(t, st.Locked, "the account did not lock after the race")
}

func testGuardLockExpiry(t *testing.T, h Harness) {
	g := newGuard(t, h.Store, lockout.Policy{})
	wrong := func(context.Context) (bool, error) { return false, nil }
	right := func(context.Context) (bool, error) { return true, nil }
	a := attempt("alice", "192.0.2.1")
	for i := 0; i < 5; i++ {
		require.ErrorIs(t, g.Check(ctx, a, wrong), lockout.ErrInvalidCredential)
	}
	err := g.Check(ctx, a, right)
	var le *lockout.LockedError
	require.ErrorAs(t, err, &le, "the right password got through a lock")
	require.InDelta(t, float64(15*time.Minute), float64(le.RetryAfter), float64(time.Second))

	h.Advance(t, 10*time.Minute)
	require.ErrorAs(t, g.Check(ctx, a, right), &le)
	require.InDelta(t, float64(5*time.Minute), float64(le.RetryAfter), float64(time.Second))

	h.Advance(t, 5*time.Minute)
	require.NoError(t, g.Check(ctx, a, right), "the lock did not expire after 15 minutes")
	st, err := g.Status(ctx, a)
	require.NoError(t, err)
	require.False(t, st.Locked)
	require.Equal(t, 0, st.Counters[0].Consecutive)
}

func testGuardHardCap(t *testing.T, h Harness) {
	var locks []lockout.LockEvent
	var unlocks []lockout.UnlockEvent
	g, err := lockout.New(lockout.Config{Store: h.Store,
		Policy:   lockout.Policy{MaxFailures: 5, HardCap: 12, IPMaxFailures: -1},
		OnLock:   func(_ context.Context, e lockout.LockEvent) error { locks = append(locks, e); return nil },
		OnUnlock: func(_ context.Context, e lockout.UnlockEvent) error { unlocks = append(unlocks, e); return nil },
	})
	require.NoError(t, err)
	wrong := func(context.Context) (bool, error) { return false, nil }
	a := attempt("alice", "")
	checks := 0
	counted := func(ctx context.Context) (bool, error) { checks++; return wrong(ctx) }
	for i := 0; i < 60; i++ { // an attempt a minute for an hour
		_ = g.Check(ctx, a, counted)
		h.Advance(t, time.Minute)
	}
	require.Equal(t, 12, checks, "checks allowed before the hard cap")
	require.Len(t, locks, 3)
	require.True(t, locks[2].Hard, "the cap did not produce a hard lock")

	var le *lockout.LockedError
	require.ErrorAs(t, g.Check(ctx, a, wrong), &le)
	require.True(t, le.Hard)

	_, err = g.Unlock(ctx, lockout.UnlockRequest{AppID: "app-1", Account: "alice", Actor: "admin-7"})
	require.ErrorIs(t, err, lockout.ErrReasonRequired)
	keys, err := g.Unlock(ctx, lockout.UnlockRequest{AppID: "app-1", Account: "Alice", Actor: "admin-7", Reason: "ticket 42"})
	require.NoError(t, err)
	require.Len(t, keys, 1)
	require.Len(t, unlocks, 1)
	require.Equal(t, "ticket 42", unlocks[0].Reason)
	require.Equal(t, "alice", unlocks[0].Account)
	require.NoError(t, g.Check(ctx, a, func(context.Context) (bool, error) { return true, nil }))
}

func testGuardIPLimit(t *testing.T, h Harness) {
	g := newGuard(t, h.Store, lockout.Policy{IPMaxFailures: 10})
	wrong := func(context.Context) (bool, error) { return false, nil }
	checks := 0
	counted := func(ctx context.Context) (bool, error) { checks++; return wrong(ctx) }
	// Spraying: one guess at each of many accounts from one address.
	for i := 0; i < 30; i++ {
		_ = g.Check(ctx, attempt(fmt.Sprintf("user%d", i), "203.0.113.9"), counted)
	}
	require.Equal(t, 10, checks, "checks from one address across accounts")

	var le *lockout.LockedError
	require.ErrorAs(t, g.Check(ctx, attempt("user0", "203.0.113.9"), wrong), &le)
	require.Equal(t, lockout.KindIP, le.Kind)
	require.NoError(t, g.Check(ctx, attempt("user0", "203.0.113.10"), func(context.Context) (bool, error) { return true, nil }),
		"the IP lock kept another address out")

	// IPv6 addresses count by their /64.
	g6 := newGuard(t, h.Store, lockout.Policy{IPMaxFailures: 3})
	checks = 0
	for i := 0; i < 6; i++ {
		_ = g6.Check(ctx, attempt(fmt.Sprintf("v6user%d", i), fmt.Sprintf("2001:db8:1:2::%x", i+1)), counted)
	}
	require.Equal(t, 3, checks, "one /64 must count as one source")
}

func testGuardAccountAndIP(t *testing.T, h Harness) {
	g := newGuard(t, h.Store, lockout.Policy{PerAccountAndIP: true})
	wrong := func(context.Context) (bool, error) { return false, nil }
	right := func(context.Context) (bool, error) { return true, nil }
	attacker, victim := attempt("alice", "203.0.113.66"), attempt("alice", "192.0.2.10")
	for i := 0; i < 20; i++ {
		_ = g.Check(ctx, attacker, wrong)
	}
	require.ErrorIs(t, g.Check(ctx, attacker, right), lockout.ErrLocked, "the attacker's address is not locked")
	require.NoError(t, g.Check(ctx, victim, right), "the victim was locked out from another address")

	// Without the mode, the same attack locks the victim out.
	h2 := newGuard(t, h.Store, lockout.Policy{})
	bob, bobHome := attempt("bob", "203.0.113.66"), attempt("bob", "192.0.2.10")
	for i := 0; i < 20; i++ {
		_ = h2.Check(ctx, bob, wrong)
	}
	require.ErrorIs(t, h2.Check(ctx, bobHome, right), lockout.ErrLocked)

	// A spread attack still locks the account as a whole.
	checks := 0
	counted := func(ctx context.Context) (bool, error) { checks++; return false, nil }
	for i := 0; i < 200; i++ {
		_ = g.Check(ctx, attempt("carol", fmt.Sprintf("198.51.100.%d", i%200+1)), counted)
	}
	require.Equal(t, g.Policy().AccountMaxFailures, checks, "account-wide limit in account-and-IP mode")
}

// recorder wraps a store and logs every call with the account identifier
// replaced, so two runs can be compared operation by operation.
type recorder struct {
	lockout.Store
	account string
	ops     []string
}

func (r *recorder) mask(v any) string {
	return strings.ReplaceAll(fmt.Sprintf("%+v", v), r.account, "ACCOUNT")
}

func (r *recorder) Reserve(ctx context.Context, reqs []lockout.ReserveRequest) (lockout.ReserveResult, error) {
	res, err := r.Store.Reserve(ctx, reqs)
	r.ops = append(r.ops, "reserve "+r.mask(reqs)+" -> "+r.mask(decisionsOnly(res.Decisions))+fmt.Sprint(err))
	return res, err
}

func (r *recorder) Settle(ctx context.Context, p lockout.SettleParams) (lockout.SettleResult, error) {
	res, err := r.Store.Settle(ctx, p)
	r.ops = append(r.ops, "settle "+r.mask(p.Outcome)+r.mask(ticketsOnly(p.Tickets))+r.mask(recordOnly(p.Record))+" -> "+r.mask(len(res.Locks))+fmt.Sprint(err))
	return res, err
}

// decisionsOnly drops the times, which differ between runs.
func decisionsOnly(ds []lockout.Decision) []string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%v/%v/%d/%d/%v/%v", d.Key, d.Granted, d.Failures, d.Consecutive, d.LockedUntil.IsZero(), d.Hard))
	}
	return out
}

// ticketsOnly drops the epochs, which depend on what the store saw before.
func ticketsOnly(ts []lockout.Ticket) []string {
	var out []string
	for _, t := range ts {
		out = append(out, fmt.Sprintf("%v/%v", t.Key, t.Limit))
	}
	return out
}

func recordOnly(r *lockout.AttemptRecord) string {
	if r == nil {
		return "no record"
	}
	return fmt.Sprintf("%s/%s/%s/%s/%s", r.AppID, r.Account, r.Factor, r.IP, r.Outcome)
}

func testGuardUnknownLikeKnown(t *testing.T, h Harness) {
	// The application knows alice and not mallory; for mallory its verify
	// checks a dummy hash and reports false, as it must.
	users := map[string]string{"alice": "correct horse"}
	verifyFor := func(name, password string) func(context.Context) (bool, error) {
		return func(context.Context) (bool, error) {
			want, ok := users[name]
			return ok && want == password, nil
		}
	}

	run := func(name string) ([]string, []string) {
		rec := &recorder{Store: h.Store, account: name}
		g := newGuard(t, rec, lockout.Policy{})
		var results []string
		for i := 0; i < 7; i++ {
			err := g.Check(ctx, attempt(name, "192.0.2.77"), verifyFor(name, "guess"))
			var le *lockout.LockedError
			if errors.As(err, &le) {
				results = append(results, fmt.Sprintf("locked %s %v %v", le.Kind, le.RetryAfter.Round(time.Minute), le.Hard))
			} else {
				results = append(results, fmt.Sprint(err))
			}
		}
		st, err := g.Status(ctx, attempt(name, "192.0.2.77"))
		require.NoError(t, err)
		results = append(results, fmt.Sprintf("status %v %v %d", st.Locked, st.Until.Sub(st.Now).Round(time.Minute), len(st.Counters)))
		return results, rec.ops
	}

	knownRes, knownOps := run("alice")
	h.Advance(t, time.Hour) // the address's counter must not differ between the two runs
	_, err := h.Store.Unlock(ctx, lockout.UnlockParams{AppID: "app-1", IP: "192.0.2.77"})
	require.NoError(t, err)
	unknownRes, unknownOps := run("mallory")

	require.Equal(t, knownRes, unknownRes, "an unknown account was answered differently")
	require.Equal(t, knownOps, unknownOps, "the store saw different operations for an unknown account")
	require.Len(t, knownOps, 14, "reserve and settle for five checks and for two refusals")
}

func testGuardInstancesAgree(t *testing.T, h Harness) {
	stores := h.instances(t, 2)
	g1, g2 := newGuard(t, stores[0], lockout.Policy{}), newGuard(t, stores[1], lockout.Policy{})
	wrong := func(context.Context) (bool, error) { return false, nil }
	a := attempt("alice", "192.0.2.1")
	for i := 0; i < 5; i++ {
		g := g1
		if i%2 == 1 {
			g = g2
		}
		require.ErrorIs(t, g.Check(ctx, a, wrong), lockout.ErrInvalidCredential)
	}
	var e1, e2 *lockout.LockedError
	require.ErrorAs(t, g1.Check(ctx, a, wrong), &e1)
	require.ErrorAs(t, g2.Check(ctx, a, wrong), &e2)
	require.True(t, e1.Until.Equal(e2.Until), "instances disagree on the lock's end: %v and %v", e1.Until, e2.Until)

	s1, err := g1.Status(ctx, a)
	require.NoError(t, err)
	s2, err := g2.Status(ctx, a)
	require.NoError(t, err)
	require.True(t, s1.Until.Equal(s2.Until))
	require.Equal(t, s1.Counters[0].Consecutive, s2.Counters[0].Consecutive)
}
