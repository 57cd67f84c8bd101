package mfa_test

import (
	"context"
	"testing"
	"time"

	"github.com/chatsdk/compliance/session/mfa"
)

// BenchmarkVerify measures one successful TOTP verification on the memory
// store: load, unseal (AES-256-GCM), three HMAC candidates, step advance.
// Generating the code for each new step is outside the timer.
func BenchmarkVerify(b *testing.B) {
	bn := enrolled(b)
	a, c, secret := bn.a, bn.clock, bn.secret
	ctx := context.Background()
	now := c.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		now = now.Add(30 * time.Second)
		c.Set(now)
		cd := code(b, secret, now)
		b.StartTimer()
		if _, err := a.Verify(ctx, mfa.CodeParams{TenantID: "tenant-a", AccountID: "alice", Code: cd}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyReplay measures the rejection of a replayed code.
func BenchmarkVerifyReplay(b *testing.B) {
	bn := enrolled(b)
	cd := code(b, bn.secret, start)
	for i := 0; i < b.N; i++ {
		if _, err := bn.verify(cd); err == nil {
			b.Fatal("replay passed")
		}
	}
}

// BenchmarkVerifyRecoveryCode measures a failed recovery code check (a
// successful one can happen only ten times per set).
func BenchmarkVerifyRecoveryCode(b *testing.B) {
	bn := enrolled(b)
	ctx := context.Background()
	p := mfa.CodeParams{TenantID: "tenant-a", AccountID: "alice", Code: "aaaa-bbbb-cccc-dddd"}
	for i := 0; i < b.N; i++ {
		if _, err := bn.a.VerifyRecoveryCode(ctx, p); err == nil {
			b.Fatal("unknown code passed")
		}
	}
}

// BenchmarkEnrol measures an enrolment: secret, sealing, otpauth URL and a
// 256×256 QR code PNG.
func BenchmarkEnrol(b *testing.B) {
	bn := newAuthenticator(b, nil)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		if _, err := bn.a.Enrol(ctx, mfa.EnrolParams{TenantID: "tenant-a", AccountID: "alice"}); err != nil {
			b.Fatal(err)
		}
	}
}
