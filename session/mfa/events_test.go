package mfa_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatsdk/compliance/session/mfa"
)

func TestEvents(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var got []mfa.Event
	b := newAuthenticator(t, func(c *mfa.Config) {
		c.OnEvent = func(e mfa.Event) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, e)
		}
	})
	p := mfa.CodeParams{TenantID: "tenant-a", AccountID: "alice"}

	setup, err := b.a.Enrol(ctx, mfa.EnrolParams{TenantID: "tenant-a", AccountID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	p.Code = wrongCode(code(t, setup.Secret, start))
	_, _ = b.a.Confirm(ctx, p)
	p.Code = code(t, setup.Secret, start)
	conf, err := b.a.Confirm(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	b.clock.Set(start.Add(30 * time.Second))
	p.Code = code(t, setup.Secret, start.Add(30*time.Second))
	_, _ = b.a.Verify(ctx, p)
	_, _ = b.a.Verify(ctx, p)
	p.Code = conf.RecoveryCodes[0]
	_, _ = b.a.VerifyRecoveryCode(ctx, p)
	_, _ = b.a.VerifyRecoveryCode(ctx, p)
	_, _ = b.a.RegenerateRecoveryCodes(ctx, "tenant-a", "alice")
	_ = b.a.Disable(ctx, "tenant-a", "alice")

	want := []struct {
		kind   mfa.EventKind
		method mfa.Method
	}{
		{mfa.EventEnrolmentStarted, ""},
		{mfa.EventFailed, mfa.MethodTOTP},
		{mfa.EventEnrolled, mfa.MethodTOTP},
		{mfa.EventVerified, mfa.MethodTOTP},
		{mfa.EventReplayed, mfa.MethodTOTP},
		{mfa.EventVerified, mfa.MethodRecoveryCode},
		{mfa.EventFailed, mfa.MethodRecoveryCode},
		{mfa.EventRecoveryCodesRegenerated, ""},
		{mfa.EventDisabled, ""},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		e := got[i]
		if e.Kind != w.kind || e.Method != w.method || e.TenantID != "tenant-a" || e.AccountID != "alice" || e.At.IsZero() {
			t.Errorf("event %d = %+v, want %s/%s", i, e, w.kind, w.method)
		}
	}
	if got[5].RecoveryCodesLeft != mfa.DefaultRecoveryCodes-1 {
		t.Errorf("recovery event left = %d", got[5].RecoveryCodesLeft)
	}
}

// FuzzVerifyCode submits arbitrary input as a TOTP code: Verify must not
// panic, and must pass only the right code.
func FuzzVerifyCode(f *testing.F) {
	for _, s := range []string{"000000", "123 456", "", "１２３４５６", "12345\x00", strings.Repeat("9", 100), "-12345"} {
		f.Add(s)
	}
	b := enrolled(f)
	right := code(f, b.secret, start.Add(time.Hour))
	b.clock.Set(start.Add(time.Hour))
	f.Fuzz(func(t *testing.T, s string) {
		_, err := b.verify(s)
		if err == nil && strings.ReplaceAll(s, " ", "") != right {
			t.Fatalf("Verify(%q) passed; the right code is %s", s, right)
		}
	})
}

// FuzzVerifyRecoveryCode does the same for recovery codes.
func FuzzVerifyRecoveryCode(f *testing.F) {
	f.Add("abcd-efgh-ijkl-mnop")
	f.Add("")
	f.Add("AAAA AAAA AAAA AAAA")
	b := enrolled(f)
	set := map[string]bool{}
	for _, c := range b.codes {
		set[strings.ReplaceAll(c, "-", "")] = true
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, err := b.a.VerifyRecoveryCode(context.Background(), mfa.CodeParams{TenantID: "tenant-a", AccountID: "alice", Code: s})
		norm := strings.ToLower(strings.NewReplacer("-", "", " ", "").Replace(s))
		if err == nil && !set[norm] {
			t.Fatalf("VerifyRecoveryCode(%q) passed", s)
		}
	})
}
