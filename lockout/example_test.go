package lockout_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"time"

	"github.com/chatsdk/compliance/lockout"
)

// A log-in handler wraps its password check in Guard.Check. The sixth
// wrong password is refused without being checked.
func ExampleGuard_Check() {
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	guard, err := lockout.New(lockout.Config{
		Store: lockout.NewMemoryStore(func() time.Time { return clock }),
		Notify: func(_ context.Context, e lockout.LockEvent) error {
			fmt.Printf("notify owner of %s: locked until %s\n", e.Account, e.Until.Format(time.Kitchen))
			return nil
		},
	})
	if err != nil {
		panic(err)
	}

	attempt := lockout.Attempt{AppID: "clinic-1", Account: "alice@example.com", IP: netip.MustParseAddr("192.0.2.1")}
	verify := func(context.Context) (bool, error) {
		// The application compares the submitted password with the stored
		// hash here (and with a dummy hash when the account is unknown).
		return false, nil
	}
	for i := 1; i <= 6; i++ {
		err := guard.Check(context.Background(), attempt, verify)
		var locked *lockout.LockedError
		switch {
		case errors.As(err, &locked):
			fmt.Printf("attempt %d: refused, retry after %s\n", i, locked.RetryAfter)
		case errors.Is(err, lockout.ErrInvalidCredential):
			fmt.Printf("attempt %d: wrong password\n", i)
		}
	}
	// Output:
	// attempt 1: wrong password
	// attempt 2: wrong password
	// attempt 3: wrong password
	// attempt 4: wrong password
	// notify owner of alice@example.com: locked until 3:19AM
	// attempt 5: wrong password
	// attempt 6: refused, retry after 15m0s
}

// An administrator lifts a lock, giving a reason that goes to the audit
// hook.
func ExampleGuard_Unlock() {
	guard, err := lockout.New(lockout.Config{
		Store:  lockout.NewMemoryStore(nil),
		Policy: lockout.Policy{MaxFailures: 1},
		OnUnlock: func(_ context.Context, e lockout.UnlockEvent) error {
			fmt.Printf("audit: %s unlocked %s (%s), %d counter(s)\n", e.Actor, e.Account, e.Reason, len(e.Unlocked))
			return nil
		},
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	attempt := lockout.Attempt{AppID: "clinic-1", Account: "bob"}
	_ = guard.Check(ctx, attempt, func(context.Context) (bool, error) { return false, nil })

	st, _ := guard.Status(ctx, attempt)
	fmt.Println("locked:", st.Locked)
	if _, err := guard.Unlock(ctx, lockout.UnlockRequest{AppID: "clinic-1", Account: "bob",
		Actor: "admin-7", Reason: "identity confirmed by phone"}); err != nil {
		panic(err)
	}
	st, _ = guard.Status(ctx, attempt)
	fmt.Println("locked:", st.Locked)
	// Output:
	// locked: true
	// audit: admin-7 unlocked bob (identity confirmed by phone), 1 counter(s)
	// locked: false
}

// A refused attempt becomes a 429 with Retry-After.
func ExampleWriteTooManyRequests() {
	w := httptest.NewRecorder()
	err := &lockout.LockedError{Kind: lockout.KindAccount, RetryAfter: 90 * time.Second}
	if lockout.WriteTooManyRequests(w, err) {
		fmt.Println(w.Code, w.Header().Get("Retry-After"))
	}
	// Output:
	// 429 90
}
