package mfatest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chatsdk/compliance/session/mfa"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// NewStore returns a fresh, empty store for one subtest. It may register
// cleanups on t.
type NewStore func(t *testing.T) mfa.Store

// NewPolicyStore returns a fresh, empty policy store for one subtest.
type NewPolicyStore func(t *testing.T) mfa.PolicyStore

// Concurrency is how many goroutines the race clauses start.
const Concurrency = 20

// t0 is the suite's clock, at whole seconds so that every store keeps it
// exactly.
var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// Run runs the Store contract against stores made by newStore.
func Run(t *testing.T, newStore NewStore) {
	t.Helper()
	clauses := []struct {
		name string
		fn   func(*testing.T, mfa.Store)
	}{
		{"EnrolmentMissing", testEnrolmentMissing},
		{"SavePendingRoundTrip", testSavePendingRoundTrip},
		{"SavePendingReplacesPending", testSavePendingReplacesPending},
		{"SavePendingRefusedWhenActive", testSavePendingRefusedWhenActive},
		{"ActivateNeedsMatchingPending", testActivateNeedsMatchingPending},
		{"ActivateSetsStepAndCodes", testActivateSetsStepAndCodes},
		{"AdvanceStepOnlyForward", testAdvanceStepOnlyForward},
		{"AdvanceStepNeedsActiveEnrolment", testAdvanceStepNeedsActiveEnrolment},
		{"AdvanceStepRaceHasOneWinner", testAdvanceStepRace},
		{"RecoveryCodeSingleUse", testRecoveryCodeSingleUse},
		{"RecoveryCodeRaceHasOneWinner", testRecoveryCodeRace},
		{"RecoveryCodeBoundToAccount", testRecoveryCodeBoundToAccount},
		{"ReplaceRecoveryCodes", testReplaceRecoveryCodes},
		{"DeleteRemovesEverything", testDelete},
		{"TenantsAreIsolated", testTenantsIsolated},
		{"VerifyRaceHasOneWinner", testVerifyRace},
		{"VerifyRaceOfTwoHasOneWinner", testVerifyRaceOfTwo},
		{"ConfirmedCodeCannotVerify", testConfirmedCodeCannotVerify},
		{"ConfirmRaceHasOneWinner", testConfirmRace},
	}
	for _, c := range clauses {
		t.Run(c.name, func(t *testing.T) {
			c.fn(t, newStore(t))
		})
	}
}

// RunPolicyStore runs the PolicyStore contract against stores made by
// newStore.
func RunPolicyStore(t *testing.T, newStore NewPolicyStore) {
	t.Helper()
	t.Run("PolicyMissing", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Policy(context.Background(), "tenant-a"); !errors.Is(err, mfa.ErrNoPolicy) {
			t.Fatalf("Policy of a tenant without one: err = %v, want ErrNoPolicy", err)
		}
	})
	t.Run("PolicyRoundTripAndReplace", func(t *testing.T) {
		ctx := context.Background()
		s := newStore(t)
		for _, want := range []mfa.Policy{
			{Required: true, GracePeriod: 7 * 24 * time.Hour},
			{Required: false},
			{Required: true, GracePeriod: 90 * time.Minute},
		} {
			if err := s.SetPolicy(ctx, "tenant-a", want); err != nil {
				t.Fatal(err)
			}
			got, err := s.Policy(ctx, "tenant-a")
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("Policy = %+v, want %+v", got, want)
			}
		}
	})
	t.Run("PolicyTenantsAreIsolated", func(t *testing.T) {
		ctx := context.Background()
		s := newStore(t)
		if err := s.SetPolicy(ctx, "tenant-a", mfa.Policy{Required: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Policy(ctx, "tenant-b"); !errors.Is(err, mfa.ErrNoPolicy) {
			t.Fatalf("tenant-b sees tenant-a's policy: err = %v", err)
		}
	})
}

func pending(tenant, account, id string) mfa.Enrolment {
	return mfa.Enrolment{
		TenantID:      tenant,
		AccountID:     account,
		ID:            id,
		State:         mfa.StatePending,
		SealedSecret:  []byte("sealed:" + id),
		Algorithm:     mfa.SHA256,
		Digits:        8,
		PeriodSeconds: 30,
		CreatedAt:     t0,
	}
}

// activeEnrolment saves and activates an enrolment with the given
// recovery code hashes and returns it.
func activeEnrolment(t *testing.T, s mfa.Store, tenant, account string, step int64, hashes [][]byte) mfa.Enrolment {
	t.Helper()
	ctx := context.Background()
	e := pending(tenant, account, "e-"+tenant+"-"+account)
	if err := s.SavePending(ctx, e); err != nil {
		t.Fatalf("SavePending: %v", err)
	}
	err := s.Activate(ctx, mfa.ActivateParams{
		TenantID: tenant, AccountID: account, EnrolmentID: e.ID, Step: step, At: t0.Add(time.Minute), RecoveryHashes: hashes,
	})
	if err != nil {
		t.Fatalf("Activate: %v", err)
	}
	e.State, e.LastStep, e.ActivatedAt = mfa.StateActive, step, t0.Add(time.Minute)
	return e
}

func hashes(prefix string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		h := sha256.Sum256([]byte(fmt.Sprintf("%s-%d", prefix, i)))
		out[i] = h[:]
	}
	return out
}

func mustEnrolment(t *testing.T, s mfa.Store, tenant, account string) mfa.Enrolment {
	t.Helper()
	e, err := s.Enrolment(context.Background(), tenant, account)
	if err != nil {
		t.Fatalf("Enrolment(%s, %s): %v", tenant, account, err)
	}
	return e
}

func equalEnrolment(t *testing.T, got, want mfa.Enrolment) {
	t.Helper()
	if got.TenantID != want.TenantID || got.AccountID != want.AccountID || got.ID != want.ID ||
		got.State != want.State || string(got.SealedSecret) != string(want.SealedSecret) ||
		got.Algorithm != want.Algorithm || got.Digits != want.Digits || got.PeriodSeconds != want.PeriodSeconds ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.ActivatedAt.Equal(want.ActivatedAt) ||
		(want.State == mfa.StateActive && got.LastStep != want.LastStep) {
		t.Errorf("enrolment = %+v\nwant        %+v", got, want)
	}
}

func testEnrolmentMissing(t *testing.T, s mfa.Store) {
	if _, err := s.Enrolment(context.Background(), "tenant-a", "alice"); !errors.Is(err, mfa.ErrNotEnrolled) {
		t.Fatalf("Enrolment of an unknown account: err = %v, want ErrNotEnrolled", err)
	}
}

func testSavePendingRoundTrip(t *testing.T, s mfa.Store) {
	want := pending("tenant-a", "alice", "e1")
	if err := s.SavePending(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	equalEnrolment(t, mustEnrolment(t, s, "tenant-a", "alice"), want)
}

func testSavePendingReplacesPending(t *testing.T, s mfa.Store) {
	ctx := context.Background()
	if err := s.SavePending(ctx, pending("tenant-a", "alice", "e1")); err != nil {
		t.Fatal(err)
	}
	want := pending("tenant-a", "alice", "e2")
	if err := s.SavePending(ctx, want); err != nil {
		t.Fatalf("second SavePending: %v", err)
	}
	equalEnrolment(t, mustEnrolment(t, s, "tenant-a", "alice"), want)

	err := s.Activate(ctx, mfa.ActivateParams{TenantID: "tenant-a", AccountID: "alice", EnrolmentID: "e1", Step: 1, At: t0})
	if !errors.Is(err, mfa.ErrNotEnrolled) {
		t.Fatalf("Activate of the replaced enrolment: err = %v, want ErrNotEnrolled", err)
	}
}

func testSavePendingRefusedWhenActive(t *testing.T, s mfa.Store) {
	want := activeEnrolment(t, s, "tenant-a", "alice", 5, nil)
	err := s.SavePending(context.Background(), pending("tenant-a", "alice", "e-new"))
	if !errors.Is(err, mfa.ErrAlreadyEnrolled) {
		t.Fatalf("SavePending over an active enrolment: err = %v, want ErrAlreadyEnrolled", err)
	}
	equalEnrolment(t, mustEnrolment(t, s, "tenant-a", "alice"), want)
}

func testActivateNeedsMatchingPending(t *testing.T, s mfa.Store) {
	ctx := context.Background()
	p := mfa.ActivateParams{TenantID: "tenant-a", AccountID: "alice", EnrolmentID: "e1", Step: 3, At: t0}
	if err := s.Activate(ctx, p); !errors.Is(err, mfa.ErrNotEnrolled) {
		t.Fatalf("Activate without an enrolment: err = %v, want ErrNotEnrolled", err)
	}
	if err := s.SavePending(ctx, pending("tenant-a", "alice", "e1")); err != nil {
		t.Fatal(err)
	}
	wrong := p
	wrong.EnrolmentID = "e-other"
	if err := s.Activate(ctx, wrong); !errors.Is(err, mfa.ErrNotEnrolled) {
		t.Fatalf("Activate with another enrolment id: err = %v, want ErrNotEnrolled", err)
	}
	if err := s.Activate(ctx, p); err != nil {
		t.Fatalf("Activate: %v", err)
	}
	if err := s.Activate(ctx, p); !errors.Is(err, mfa.ErrNotEnrolled) {
		t.Fatalf("second Activate: err = %v, want ErrNotEnrolled", err)
	}
}

func testActivateSetsStepAndCodes(t *testing.T, s mfa.Store) {
	want := activeEnrolment(t, s, "tenant-a", "alice", 42, hashes("a", 3))
	equalEnrolment(t, mustEnrolment(t, s, "tenant-a", "alice"), want)
	n, err := s.RecoveryCodesLeft(context.Background(), "tenant-a", "alice")
	if err != nil || n != 3 {
		t.Fatalf("RecoveryCodesLeft = %d, %v; want 3", n, err)
	}
}

func testAdvanceStepOnlyForward(t *testing.T, s mfa.Store) {
	ctx := context.Background()
	e := activeEnrolment(t, s, "tenant-a", "alice", 100, nil)
	p := mfa.AdvanceParams{TenantID: "tenant-a", AccountID: "alice", EnrolmentID: e.ID, At: t0}
	for _, c := range []struct {
		step int64
		want error
	}{
		{99, mfa.ErrReplayed},
		{100, mfa.ErrReplayed},
		{101, nil},
		{101, mfa.ErrReplayed},
		{100, mfa.ErrReplayed},
		{103, nil},
		{102, mfa.ErrReplayed},
	} {
		p.Step = c.step
		err := s.AdvanceStep(ctx, p)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Fatalf("AdvanceStep(%d): err = %v, want %v", c.step, err, c.want)
		}
	}
	if got := mustEnrolment(t, s, "tenant-a", "alice").LastStep; got != 103 {
		t.Fatalf("LastStep = %d, want 103", got)
	}
}

func testAdvanceStepNeedsActiveEnrolment(t *testing.T, s mfa.Store) {
	ctx := context.Background()
	p := mfa.AdvanceParams{TenantID: "tenant-a", AccountID: "alice", EnrolmentID: "e1", Step: 7, At: t0}
	if err := s.AdvanceStep(ctx, p); !errors.Is(err, mfa.ErrNotEnrolled) {
		t.Fatalf("AdvanceStep without enrolment: err = %v, want ErrNotEnrolled", err)
	}
	if err := s.SavePending(ctx, pending("tenant-a", "alice", "e1")); err != nil {
		t.Fatal(err)
	}
	if err := s.AdvanceStep(ctx, p); !errors.Is(err, mfa.ErrNotEnrolled) {
		t.Fatalf("AdvanceStep on a pending enrolment: err = %v, want ErrNotEnrolled", err)
	}
	if err := s.Activate(ctx, mfa.ActivateParams{TenantID: "tenant-a", AccountID: "alice", EnrolmentID: "e1", Step: 1, At: t0}); err != nil {
		t.Fatal(err)
	}
	p.EnrolmentID = "e-stale"
	if err := s.AdvanceStep(ctx, p); !errors.Is(err, mfa.ErrNotEnrolled) {
		t.Fatalf("AdvanceStep with a stale enrolment id: err = %v, want ErrNotEnrolled", err)
	}
}

// race runs fn from Concurrency goroutines released at once and returns
// how many returned nil; every other error must match loser.
func race(t *testing.T, loser error, fn func() error) int {
	t.Helper()
	return raceN(t, Concurrency, loser, fn)
}

// raceN is race with n goroutines.
func raceN(t *testing.T, n int, loser error, fn func() error) int {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, n)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn()
		}()
	}
	close(start)
	wg.Wait()

	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, loser):
			t.Errorf("a losing call returned %v, want %v", err, loser)
		}
	}
	return wins
}

func testAdvanceStepRace(t *testing.T, s mfa.Store) {
	e := activeEnrolment(t, s, "tenant-a", "alice", 10, nil)
	p := mfa.AdvanceParams{TenantID: "tenant-a", AccountID: "alice", EnrolmentID: e.ID, Step: 11, At: t0}
	if wins := race(t, mfa.ErrReplayed, func() error { return s.AdvanceStep(context.Background(), p) }); wins != 1 {
		t.Fatalf("%d of %d concurrent AdvanceStep calls with one step passed, want exactly 1", wins, Concurrency)
	}
}

func testRecoveryCodeSingleUse(t *testing.T, s mfa.Store) {
	ctx := context.Background()
	hs := hashes("a", 3)
	activeEnrolment(t, s, "tenant-a", "alice", 1, hs)
	p := mfa.UseRecoveryCodeParams{TenantID: "tenant-a", AccountID: "alice", Hash: hs[1], At: t0}
	left, err := s.UseRecoveryCode(ctx, p)
	if err != nil || left != 2 {
		t.Fatalf("first use: left = %d, err = %v; want 2, nil", left, err)
	}
	if _, err := s.UseRecoveryCode(ctx, p); !errors.Is(err, mfa.ErrInvalidCode) {
		t.Fatalf("second use: err = %v, want ErrInvalidCode", err)
	}
	p.Hash = hashes("unknown", 1)[0]
	if _, err := s.UseRecoveryCode(ctx, p); !errors.Is(err, mfa.ErrInvalidCode) {
		t.Fatalf("unknown code: err = %v, want ErrInvalidCode", err)
	}
	if n, err := s.RecoveryCodesLeft(ctx, "tenant-a", "alice"); err != nil || n != 2 {
		t.Fatalf("RecoveryCodesLeft = %d, %v; want 2", n, err)
	}
}

func testRecoveryCodeRace(t *testing.T, s mfa.Store) {
	hs := hashes("a", 2)
	activeEnrolment(t, s, "tenant-a", "alice", 1, hs)
	p := mfa.UseRecoveryCodeParams{TenantID: "tenant-a", AccountID: "alice", Hash: hs[0], At: t0}
	wins := race(t, mfa.ErrInvalidCode, func() error {
		_, err := s.UseRecoveryCode(context.Background(), p)
		return err
	})
	if wins != 1 {
		t.Fatalf("%d of %d concurrent uses of one recovery code passed, want exactly 1", wins, Concurrency)
	}
}

func testRecoveryCodeBoundToAccount(t *testing.T, s mfa.Store) {
	ctx := context.Background()
	hs := hashes("a", 2)
	activeEnrolment(t, s, "tenant-a", "alice", 1, hs)
	activeEnrolment(t, s, "tenant-a", "bob", 1, hashes("b", 2))
	activeEnrolment(t, s, "tenant-b", "alice", 1, hashes("c", 2))
	for _, who := range [][2]string{{"tenant-a", "bob"}, {"tenant-b", "alice"}} {
		_, err := s.UseRecoveryCode(ctx, mfa.UseRecoveryCodeParams{TenantID: who[0], AccountID: who[1], Hash: hs[0], At: t0})
		if !errors.Is(err, mfa.ErrInvalidCode) {
			t.Errorf("alice's code used by %s/%s: err = %v, want ErrInvalidCode", who[0], who[1], err)
		}
	}
}

func testReplaceRecoveryCodes(t *testing.T, s mfa.Store) {
	ctx := context.Background()
	old := hashes("old", 3)
	e := activeEnrolment(t, s, "tenant-a", "alice", 1, old)
	if _, err := s.UseRecoveryCode(ctx, mfa.UseRecoveryCodeParams{TenantID: "tenant-a", AccountID: "alice", Hash: old[0], At: t0}); err != nil {
		t.Fatal(err)
	}
	fresh := hashes("new", 4)
	p := mfa.RecoveryCodesParams{TenantID: "tenant-a", AccountID: "alice", EnrolmentID: "e-stale", Hashes: fresh}
	if err := s.ReplaceRecoveryCodes(ctx, p); !errors.Is(err, mfa.ErrNotEnrolled) {
		t.Fatalf("ReplaceRecoveryCodes with a stale enrolment id: err = %v, want ErrNotEnrolled", err)
	}
	p.EnrolmentID = e.ID
	if err := s.ReplaceRecoveryCodes(ctx, p); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RecoveryCodesLeft(ctx, "tenant-a", "alice"); err != nil || n != 4 {
		t.Fatalf("RecoveryCodesLeft = %d, %v; want 4", n, err)
	}
	if _, err := s.UseRecoveryCode(ctx, mfa.UseRecoveryCodeParams{TenantID: "tenant-a", AccountID: "alice", Hash: old[1], At: t0}); !errors.Is(err, mfa.ErrInvalidCode) {
		t.Fatalf("old code after replacement: err = %v, want ErrInvalidCode", err)
	}
	if _, err := s.UseRecoveryCode(ctx, mfa.UseRecoveryCodeParams{TenantID: "tenant-a", AccountID: "alice", Hash: fresh[3], At: t0}); err != nil {
		t.Fatalf("new code: %v", err)
	}
}

func testDelete(t *testing.T, s mfa.Store) {
	ctx := context.Background()
	hs := hashes("a", 2)
	activeEnrolment(t, s, "tenant-a", "alice", 1, hs)
	if err := s.Delete(ctx, "tenant-a", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Enrolment(ctx, "tenant-a", "alice"); !errors.Is(err, mfa.ErrNotEnrolled) {
		t.Fatalf("Enrolment after Delete: err = %v, want ErrNotEnrolled", err)
	}
	if n, err := s.RecoveryCodesLeft(ctx, "tenant-a", "alice"); err != nil || n != 0 {
		t.Fatalf("RecoveryCodesLeft after Delete = %d, %v; want 0", n, err)
	}
	if _, err := s.UseRecoveryCode(ctx, mfa.UseRecoveryCodeParams{TenantID: "tenant-a", AccountID: "alice", Hash: hs[0], At: t0}); !errors.Is(err, mfa.ErrInvalidCode) {
		t.Fatalf("code after Delete: err = %v, want ErrInvalidCode", err)
	}
	if err := s.Delete(ctx, "tenant-a", "alice"); err != nil {
		t.Fatalf("Delete of nothing: %v", err)
	}
	if err := s.SavePending(ctx, pending("tenant-a", "alice", "e-again")); err != nil {
		t.Fatalf("SavePending after Delete: %v", err)
	}
}

func testTenantsIsolated(t *testing.T, s mfa.Store) {
	ctx := context.Background()
	a := activeEnrolment(t, s, "tenant-a", "alice", 50, nil)
	if _, err := s.Enrolment(ctx, "tenant-b", "alice"); !errors.Is(err, mfa.ErrNotEnrolled) {
		t.Fatalf("tenant-b sees tenant-a's enrolment: err = %v", err)
	}
	b := pending("tenant-b", "alice", a.ID)
	if err := s.SavePending(ctx, b); err != nil {
		t.Fatalf("SavePending in tenant-b: %v", err)
	}
	if err := s.Delete(ctx, "tenant-b", "alice"); err != nil {
		t.Fatal(err)
	}
	equalEnrolment(t, mustEnrolment(t, s, "tenant-a", "alice"), a)
}

// plainSealer is a Sealer for the end-to-end clauses; the Authenticator's
// own tests check sealing itself.
type plainSealer struct{}

func (plainSealer) Seal(_ context.Context, b mfa.Binding, secret []byte) ([]byte, error) {
	return append(append([]byte{}, b.AssociatedData()...), secret...), nil
}

func (plainSealer) Open(_ context.Context, b mfa.Binding, sealed []byte) ([]byte, error) {
	ad := b.AssociatedData()
	if len(sealed) < len(ad) || string(sealed[:len(ad)]) != string(ad) {
		return nil, mfa.ErrUnseal
	}
	return sealed[len(ad):], nil
}

// enrolled returns an Authenticator on s at a fixed clock with a confirmed
// enrolment of tenant-a/alice, and the base32 secret.
func enrolled(t *testing.T, s mfa.Store, now *time.Time) (*mfa.Authenticator, string) {
	t.Helper()
	ctx := context.Background()
	a, err := mfa.New(mfa.Config{
		Store: s, Sealer: plainSealer{}, Issuer: "Suite", RecoveryCodes: 2,
		Now: func() time.Time { return *now },
	})
	if err != nil {
		t.Fatal(err)
	}
	setup, err := a.Enrol(ctx, mfa.EnrolParams{TenantID: "tenant-a", AccountID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Confirm(ctx, mfa.CodeParams{TenantID: "tenant-a", AccountID: "alice", Code: code(t, setup.Secret, *now)}); err != nil {
		t.Fatal(err)
	}
	return a, setup.Secret
}

func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testVerifyRace(t *testing.T, s mfa.Store) {
	now := t0
	a, secret := enrolled(t, s, &now)
	now = now.Add(30 * time.Second)
	c := code(t, secret, now)
	wins := race(t, mfa.ErrReplayed, func() error {
		_, err := a.Verify(context.Background(), mfa.CodeParams{TenantID: "tenant-a", AccountID: "alice", Code: c})
		return err
	})
	if wins != 1 {
		t.Fatalf("%d of %d concurrent Verify calls with one code passed, want exactly 1", wins, Concurrency)
	}
}

func testVerifyRaceOfTwo(t *testing.T, s mfa.Store) {
	now := t0
	a, secret := enrolled(t, s, &now)
	for i := 1; i <= 5; i++ {
		now = t0.Add(time.Duration(i) * 30 * time.Second)
		c := code(t, secret, now)
		wins := raceN(t, 2, mfa.ErrReplayed, func() error {
			_, err := a.Verify(context.Background(), mfa.CodeParams{TenantID: "tenant-a", AccountID: "alice", Code: c})
			return err
		})
		if wins != 1 {
			t.Fatalf("round %d: %d of 2 concurrent Verify calls with one code passed, want exactly 1", i, wins)
		}
	}
}

// testConfirmRace confirms one pending enrolment from many goroutines
// with one code: one confirmation wins, and only its recovery codes work.
func testConfirmRace(t *testing.T, s mfa.Store) {
	ctx := context.Background()
	now := t0
	a, err := mfa.New(mfa.Config{Store: s, Sealer: plainSealer{}, Issuer: "Suite", RecoveryCodes: 1, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	setup, err := a.Enrol(ctx, mfa.EnrolParams{TenantID: "tenant-a", AccountID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	c := code(t, setup.Secret, now)
	var mu sync.Mutex
	var issued [][]string
	wins := race(t, mfa.ErrNotEnrolled, func() error {
		conf, err := a.Confirm(ctx, mfa.CodeParams{TenantID: "tenant-a", AccountID: "alice", Code: c})
		if err == nil {
			mu.Lock()
			issued = append(issued, conf.RecoveryCodes)
			mu.Unlock()
		}
		return err
	})
	if wins != 1 {
		t.Fatalf("%d of %d concurrent confirmations passed, want exactly 1", wins, Concurrency)
	}
	if _, err := a.VerifyRecoveryCode(ctx, mfa.CodeParams{TenantID: "tenant-a", AccountID: "alice", Code: issued[0][0]}); err != nil {
		t.Fatalf("the winning confirmation's recovery code: %v", err)
	}
}

func testConfirmedCodeCannotVerify(t *testing.T, s mfa.Store) {
	now := t0
	a, secret := enrolled(t, s, &now)
	_, err := a.Verify(context.Background(), mfa.CodeParams{TenantID: "tenant-a", AccountID: "alice", Code: code(t, secret, now)})
	if !errors.Is(err, mfa.ErrReplayed) {
		t.Fatalf("Verify with the code that confirmed the enrolment: err = %v, want ErrReplayed", err)
	}
}

// Instances is how many app instances RunInstances simulates.
const Instances = 4

// RunInstances checks the replay defence across app instances: open
// returns a function that makes a new Store (in Postgres, on a pool of its
// own) over one shared storage. Each of [Instances] Authenticators gets
// its own Store; one code is then submitted [Concurrency] times across
// all of them at once, and exactly one submission must pass. The same
// holds for one recovery code.
func RunInstances(t *testing.T, open func(t *testing.T) func() mfa.Store) {
	t.Helper()
	t.Run("VerifyRaceAcrossInstances", func(t *testing.T) {
		ctx := context.Background()
		newStore := open(t)
		now := t0
		first, secret := enrolled(t, newStore(), &now)
		codes, err := first.RegenerateRecoveryCodes(ctx, "tenant-a", "alice")
		if err != nil {
			t.Fatal(err)
		}

		auths := []*mfa.Authenticator{first}
		for len(auths) < Instances {
			a, err := mfa.New(mfa.Config{Store: newStore(), Sealer: plainSealer{}, Issuer: "Suite", Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			auths = append(auths, a)
		}
		now = now.Add(30 * time.Second)
		c := code(t, secret, now)

		var mu sync.Mutex
		next := 0
		pick := func() *mfa.Authenticator {
			mu.Lock()
			defer mu.Unlock()
			next++
			return auths[next%len(auths)]
		}
		p := mfa.CodeParams{TenantID: "tenant-a", AccountID: "alice", Code: c}
		if wins := race(t, mfa.ErrReplayed, func() error { _, err := pick().Verify(ctx, p); return err }); wins != 1 {
			t.Fatalf("%d of %d submissions of one code across %d instances passed, want exactly 1", wins, Concurrency, Instances)
		}
		p.Code = codes[0]
		if wins := race(t, mfa.ErrInvalidCode, func() error { _, err := pick().VerifyRecoveryCode(ctx, p); return err }); wins != 1 {
			t.Fatalf("%d of %d submissions of one recovery code across %d instances passed, want exactly 1", wins, Concurrency, Instances)
		}
	})
}
