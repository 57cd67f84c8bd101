package mfapg_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/chatsdk/compliance/internal/pgtest"
	"github.com/chatsdk/compliance/session/mfa"
	"github.com/chatsdk/compliance/session/mfa/mfapg"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
)

func benchCode(b *testing.B, secret string, at time.Time) string {
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkVerifyPostgres measures one successful TOTP verification on
// Postgres: one SELECT, unsealing, three HMAC candidates, one conditional
// UPDATE. The clock moves one step per iteration, outside the timer.
func BenchmarkVerifyPostgres(b *testing.B) {
	ctx := context.Background()
	db := pgtest.New(b)
	if err := mfapg.Migrate(ctx, db.Pool, mfapg.Options{}); err != nil {
		b.Fatal(err)
	}
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		b.Fatal(err)
	}
	cipher, err := aead.New(h)
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	a, err := mfa.New(mfa.Config{
		Store: mfapg.New(db.Pool, mfapg.Options{}), Sealer: mfa.AEADSealer{AEAD: cipher}, Issuer: "Bench",
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
	})
	if err != nil {
		b.Fatal(err)
	}
	setup, err := a.Enrol(ctx, mfa.EnrolParams{TenantID: "t", AccountID: "a"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := a.Confirm(ctx, mfa.CodeParams{TenantID: "t", AccountID: "a", Code: benchCode(b, setup.Secret, now)}); err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		mu.Lock()
		now = now.Add(30 * time.Second)
		at := now
		mu.Unlock()
		c := benchCode(b, setup.Secret, at)
		b.StartTimer()
		if _, err := a.Verify(ctx, mfa.CodeParams{TenantID: "t", AccountID: "a", Code: c}); err != nil {
			b.Fatal(err)
		}
	}
}
