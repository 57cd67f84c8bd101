package mfapg_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatsdk/compliance/internal/pgtest"
	"github.com/chatsdk/compliance/session/mfa"
	"github.com/chatsdk/compliance/session/mfa/mfapg"
	"github.com/jackc/pgx/v5/pgxpool"
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

// BenchmarkVerifyPostgresParallel runs successful verifications from 32
// goroutines, each on an account of its own (with its own clock), over
// one pool of 32 connections, and reports the p99 latency.
func BenchmarkVerifyPostgresParallel(b *testing.B) {
	const callers = 32
	ctx := context.Background()
	db := pgtest.New(b)
	pool := db.NewPool(b, func(c *pgxpool.Config) { c.MaxConns = callers })
	if err := mfapg.Migrate(ctx, pool, mfapg.Options{}); err != nil {
		b.Fatal(err)
	}
	store := mfapg.New(pool, mfapg.Options{})
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		b.Fatal(err)
	}
	cipher, err := aead.New(h)
	if err != nil {
		b.Fatal(err)
	}

	type account struct {
		a      *mfa.Authenticator
		now    *time.Time
		id     string
		secret string
	}
	accounts := make([]account, callers)
	for i := range accounts {
		now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		acc := account{now: &now, id: fmt.Sprintf("acct-%d", i)}
		acc.a, err = mfa.New(mfa.Config{Store: store, Sealer: mfa.AEADSealer{AEAD: cipher}, Issuer: "Bench", Now: func() time.Time { return *acc.now }})
		if err != nil {
			b.Fatal(err)
		}
		setup, err := acc.a.Enrol(ctx, mfa.EnrolParams{TenantID: "t", AccountID: acc.id})
		if err != nil {
			b.Fatal(err)
		}
		acc.secret = setup.Secret
		if _, err := acc.a.Confirm(ctx, mfa.CodeParams{TenantID: "t", AccountID: acc.id, Code: benchCode(b, setup.Secret, now)}); err != nil {
			b.Fatal(err)
		}
		accounts[i] = acc
	}

	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism((callers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		acc := accounts[int(next.Add(1)-1)%callers]
		var mine []time.Duration
		for pb.Next() {
			*acc.now = acc.now.Add(30 * time.Second)
			c := benchCode(b, acc.secret, *acc.now)
			t0 := time.Now()
			if _, err := acc.a.Verify(ctx, mfa.CodeParams{TenantID: "t", AccountID: acc.id, Code: c}); err != nil {
				b.Error(err)
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	b.StopTimer()
	if len(lat) > 0 {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	}
}
