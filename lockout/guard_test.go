package lockout_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chatsdk/compliance/lockout"
	"github.com/chatsdk/compliance/lockout/lockouttest"
)

var ctx = context.Background()

type bundle struct {
	clock *lockouttest.Clock
	store *lockout.MemoryStore
	guard *lockout.Guard
	locks []lockout.LockEvent
	sent  []lockout.LockEvent
}

func setup(t *testing.T, p lockout.Policy) *bundle {
	t.Helper()
	b := &bundle{clock: lockouttest.NewClock()}
	b.store = lockout.NewMemoryStore(b.clock.Now)
	g, err := lockout.New(lockout.Config{
		Store:  b.store,
		Policy: p,
		OnLock: func(_ context.Context, e lockout.LockEvent) error { b.locks = append(b.locks, e); return nil },
		Notify: func(_ context.Context, e lockout.LockEvent) error { b.sent = append(b.sent, e); return nil },
	})
	require.NoError(t, err)
	b.guard = g
	return b
}

func wrong(context.Context) (bool, error) { return false, nil }
func right(context.Context) (bool, error) { return true, nil }

func alice() lockout.Attempt {
	return lockout.Attempt{AppID: "app-1", Account: "alice", IP: netip.MustParseAddr("192.0.2.1")}
}

// checkThenCount is the unsafe pattern the guard replaces: look at the
// status, check the credential, then count the failure.
func checkThenCount(g *lockout.Guard, a lockout.Attempt, verify func(context.Context) (bool, error)) error {
	st, err := g.Status(ctx, a)
	if err != nil {
		return err
	}
	if st.Locked {
		return &lockout.LockedError{Kind: lockout.KindAccount}
	}
	ok, err := verify(ctx)
	if err != nil || ok {
		return err
	}
	r, err := g.Reserve(ctx, a)
	if err == nil {
		err = r.Fail(ctx)
	}
	if err == nil || errors.Is(err, lockout.ErrLocked) {
		return lockout.ErrInvalidCredential
	}
	return err
}

// TestRaceHarnessCatchesCheckThenCount shows that the race test of the
// conformance suite fails without the reserve-before-check defence: the
// same harness lets every attempt through the unsafe pattern.
func TestRaceHarnessCatchesCheckThenCount(t *testing.T) {
	b := setup(t, lockout.Policy{})
	unsafe := lockouttest.ConcurrentChecks(t, 100, func(_ int, verify func(context.Context) (bool, error)) error {
		return checkThenCount(b.guard, alice(), verify)
	})
	require.Greater(t, unsafe, 5, "the harness did not expose the check-then-count race")

	b = setup(t, lockout.Policy{})
	safe := lockouttest.ConcurrentChecks(t, 100, func(_ int, verify func(context.Context) (bool, error)) error {
		return b.guard.Check(ctx, alice(), verify)
	})
	require.Equal(t, 5, safe)
}

func TestCheckVerifyErrorGivesBack(t *testing.T) {
	b := setup(t, lockout.Policy{})
	boom := errors.New("hash store down")
	err := b.guard.Check(ctx, alice(), func(context.Context) (bool, error) { return false, boom })
	require.ErrorIs(t, err, boom)
	require.NotErrorIs(t, err, lockout.ErrInvalidCredential)

	st, err := b.guard.Status(ctx, alice())
	require.NoError(t, err)
	for _, c := range st.Counters {
		require.Zero(t, c.Failures, "%s counter kept a cancelled attempt", c.Key.Kind)
	}
	recs, err := b.guard.History(ctx, "app-1", "alice", netip.Addr{}, 0)
	require.NoError(t, err)
	require.Empty(t, recs, "a cancelled attempt was recorded")
}

func TestCheckPanicCountsFailure(t *testing.T) {
	b := setup(t, lockout.Policy{})
	require.Panics(t, func() {
		_ = b.guard.Check(ctx, alice(), func(context.Context) (bool, error) { panic("verify bug") })
	})
	st, err := b.guard.Status(ctx, alice())
	require.NoError(t, err)
	require.Equal(t, 1, st.Counters[0].Failures, "a panicking check must count as a failure")
}

func TestUnsettledReservationCountsAsFailure(t *testing.T) {
	b := setup(t, lockout.Policy{MaxFailures: 2})
	_, err := b.guard.Reserve(ctx, alice()) // the instance dies here
	require.NoError(t, err)
	_, err = b.guard.Reserve(ctx, alice())
	require.NoError(t, err)
	_, err = b.guard.Reserve(ctx, alice())
	var le *lockout.LockedError
	require.ErrorAs(t, err, &le, "lost reservations were not counted")
	require.Equal(t, time.Second, le.RetryAfter)
}

func TestSettleTwice(t *testing.T) {
	b := setup(t, lockout.Policy{})
	r, err := b.guard.Reserve(ctx, alice())
	require.NoError(t, err)
	require.NoError(t, r.Fail(ctx))
	require.ErrorIs(t, r.Succeed(ctx), lockout.ErrSettled)
	require.ErrorIs(t, r.Cancel(ctx), lockout.ErrSettled)
}

func TestSettleSurvivesCancelledContext(t *testing.T) {
	b := setup(t, lockout.Policy{MaxFailures: 1})
	cctx, cancel := context.WithCancel(ctx)
	err := b.guard.Check(cctx, alice(), func(context.Context) (bool, error) {
		cancel() // the client hangs up while its guess is checked
		return false, nil
	})
	require.ErrorIs(t, err, lockout.ErrInvalidCredential)
	require.ErrorIs(t, b.guard.Check(ctx, alice(), right), lockout.ErrLocked, "hanging up skipped the lock")
}

func TestFactorsCountSeparately(t *testing.T) {
	b := setup(t, lockout.Policy{})
	totp := alice()
	totp.Factor = lockout.FactorTOTP
	for i := 0; i < 5; i++ {
		require.ErrorIs(t, b.guard.Check(ctx, totp, wrong), lockout.ErrInvalidCredential)
	}
	require.ErrorIs(t, b.guard.Check(ctx, totp, right), lockout.ErrLocked)
	require.NoError(t, b.guard.Check(ctx, alice(), right), "TOTP failures locked the password factor")
}

func TestNotifyOncePerInterval(t *testing.T) {
	b := setup(t, lockout.Policy{IPMaxFailures: 5})
	for round := 0; round < 3; round++ {
		for i := 0; i < 5; i++ {
			_ = b.guard.Check(ctx, alice(), wrong)
		}
		b.clock.Advance(15 * time.Minute)
	}
	require.Len(t, b.locks, 6, "three account locks and three IP locks go to the lock hook")
	require.Len(t, b.sent, 1, "one notification within the hour, none for the IP counter")
	require.Equal(t, lockout.KindAccount, b.sent[0].Kind)
	require.Equal(t, "alice", b.sent[0].Account)
	require.Equal(t, "192.0.2.1", b.sent[0].IP)

	b.clock.Advance(time.Hour)
	for i := 0; i < 5; i++ {
		_ = b.guard.Check(ctx, alice(), wrong)
	}
	require.Len(t, b.sent, 2, "no notification after the interval")
}

func TestHookErrorsReachTheCaller(t *testing.T) {
	auditDown := errors.New("audit store down")
	g, err := lockout.New(lockout.Config{
		Store:    lockout.NewMemoryStore(lockouttest.NewClock().Now),
		Policy:   lockout.Policy{MaxFailures: 1},
		OnLock:   func(context.Context, lockout.LockEvent) error { return auditDown },
		OnUnlock: func(context.Context, lockout.UnlockEvent) error { return auditDown },
	})
	require.NoError(t, err)
	err = g.Check(ctx, alice(), wrong)
	require.ErrorIs(t, err, lockout.ErrInvalidCredential)
	require.ErrorIs(t, err, auditDown, "a failed audit hook was dropped")
	_, err = g.Unlock(ctx, lockout.UnlockRequest{AppID: "app-1", Account: "alice", Actor: "admin", Reason: "verified by phone"})
	require.ErrorIs(t, err, auditDown)
}

func TestGrowingLocks(t *testing.T) {
	b := setup(t, lockout.Policy{LockDurations: []time.Duration{15 * time.Minute, time.Hour, 4 * time.Hour}})
	var got []time.Duration
	for lock := 0; lock < 4; lock++ {
		for i := 0; i < 5; i++ {
			_ = b.guard.Check(ctx, alice(), wrong)
		}
		var le *lockout.LockedError
		require.ErrorAs(t, b.guard.Check(ctx, alice(), wrong), &le)
		got = append(got, le.RetryAfter)
		b.clock.Advance(le.RetryAfter)
	}
	require.Equal(t, []time.Duration{15 * time.Minute, time.Hour, 4 * time.Hour, 4 * time.Hour}, got)
}

func TestHistoryAndRetention(t *testing.T) {
	b := setup(t, lockout.Policy{MaxFailures: 2})
	_ = b.guard.Check(ctx, alice(), wrong)
	_ = b.guard.Check(ctx, alice(), wrong)
	_ = b.guard.Check(ctx, alice(), right)
	recs, err := b.guard.History(ctx, "app-1", "ALICE", netip.Addr{}, 0)
	require.NoError(t, err)
	var outcomes []lockout.Outcome
	for _, r := range recs {
		outcomes = append(outcomes, r.Outcome)
		require.Equal(t, "192.0.2.1", r.IP)
	}
	require.Equal(t, []lockout.Outcome{lockout.OutcomeDenied, lockout.OutcomeFailure, lockout.OutcomeFailure}, outcomes)

	b.clock.Advance(b.guard.Policy().HistoryRetention + time.Second)
	res, err := b.guard.Prune(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(3), res.Records)
}

func TestInvalidAttempts(t *testing.T) {
	b := setup(t, lockout.Policy{})
	for name, a := range map[string]lockout.Attempt{
		"no app":      {Account: "alice"},
		"no account":  {AppID: "app-1", Account: "  "},
		"too long":    {AppID: "app-1", Account: strings.Repeat("a", lockout.MaxAccountLen+1)},
		"odd factor":  {AppID: "app-1", Account: "alice", Factor: "sms"},
		"also status": {AppID: "", Account: ""},
	} {
		t.Run(name, func(t *testing.T) {
			called := false
			err := b.guard.Check(ctx, a, func(context.Context) (bool, error) { called = true; return true, nil })
			require.ErrorIs(t, err, lockout.ErrInvalidAttempt)
			require.False(t, called)
		})
	}
}

func TestPolicyValidation(t *testing.T) {
	store := lockout.NewMemoryStore(nil)
	for field, p := range map[string]lockout.Policy{
		"MaxFailures":     {MaxFailures: -1},
		"Window":          {Window: time.Millisecond},
		"LockDurations":   {LockDurations: []time.Duration{time.Minute, 0}},
		"IPv6Prefix":      {IPv6Prefix: 129},
		"NotifyInterval":  {NotifyInterval: -time.Second},
		"IPLockDurations": {IPLockDurations: []time.Duration{-time.Second}},
	} {
		_, err := lockout.New(lockout.Config{Store: store, Policy: p})
		require.ErrorIs(t, err, lockout.ErrInvalidPolicy, field)
		require.Contains(t, err.Error(), field)
	}
	_, err := lockout.New(lockout.Config{})
	require.ErrorIs(t, err, lockout.ErrInvalidPolicy)
	require.Contains(t, err.Error(), "Store")
}

func TestDefaultPolicy(t *testing.T) {
	p := lockout.DefaultPolicy()
	require.Equal(t, 5, p.MaxFailures)
	require.Equal(t, 15*time.Minute, p.Window)
	require.Equal(t, []time.Duration{15 * time.Minute}, p.LockDurations)
	require.Equal(t, 100, p.HardCap)
	require.False(t, p.PerAccountAndIP)
	require.Equal(t, 50, p.AccountMaxFailures)
	require.Equal(t, 100, p.IPMaxFailures)
	require.Equal(t, 64, p.IPv6Prefix)
	require.Equal(t, time.Hour, p.NotifyInterval)
}

func TestWriteTooManyRequests(t *testing.T) {
	for _, tc := range []struct {
		err        error
		handled    bool
		retryAfter string
	}{
		{&lockout.LockedError{RetryAfter: 14*time.Minute + 100*time.Millisecond}, true, "841"},
		{fmt.Errorf("login: %w", &lockout.LockedError{RetryAfter: time.Millisecond}), true, "1"},
		{&lockout.LockedError{Hard: true}, true, ""},
		{lockout.ErrInvalidCredential, false, ""},
		{nil, false, ""},
	} {
		w := httptest.NewRecorder()
		require.Equal(t, tc.handled, lockout.WriteTooManyRequests(w, tc.err), "%v", tc.err)
		require.Equal(t, tc.retryAfter, w.Header().Get("Retry-After"), "%v", tc.err)
		if tc.handled {
			require.Equal(t, http.StatusTooManyRequests, w.Code)
			require.NotContains(t, w.Body.String(), "account")
		}
	}
}

func TestAccountAndIPLocksDoNotNotify(t *testing.T) {
	b := setup(t, lockout.Policy{PerAccountAndIP: true})
	for i := 0; i < 6; i++ {
		a := alice()
		a.IP = netip.AddrFrom4([4]byte{203, 0, 113, byte(i)})
		for j := 0; j < 5; j++ {
			_ = b.guard.Check(ctx, a, wrong)
		}
	}
	require.Len(t, b.locks, 6, "each address's lock goes to the lock hook")
	for _, e := range b.locks {
		require.Equal(t, lockout.KindAccountIP, e.Kind)
	}
	require.Empty(t, b.sent, "locking attackers' addresses out must not email the owner")
}

func TestHardCapReportedBeforeSettlement(t *testing.T) {
	b := setup(t, lockout.Policy{MaxFailures: 10, HardCap: 3})
	for i := 0; i < 3; i++ {
		_, err := b.guard.Reserve(ctx, alice()) // never settled
		require.NoError(t, err)
	}
	_, err := b.guard.Reserve(ctx, alice())
	var le *lockout.LockedError
	require.ErrorAs(t, err, &le)
	require.True(t, le.Hard, "a counter at its hard cap was reported as a short wait")
	require.Zero(t, le.RetryAfter)
}
