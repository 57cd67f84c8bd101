package mfapg_test

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatsdk/compliance/internal/pgtest"
	"github.com/chatsdk/compliance/session/mfa"
	"github.com/chatsdk/compliance/session/mfa/mfapg"
	"github.com/chatsdk/compliance/session/mfa/mfatest"
	"github.com/jackc/pgx/v5"
	"github.com/pquerna/otp/totp"
	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
)

func newStore(t *testing.T) *mfapg.Store {
	t.Helper()
	db := pgtest.New(t)
	if err := mfapg.Migrate(context.Background(), db.Pool, mfapg.Options{}); err != nil {
		t.Fatal(err)
	}
	return mfapg.New(db.Pool, mfapg.Options{})
}

func TestConformance(t *testing.T) {
	mfatest.Run(t, func(t *testing.T) mfa.Store { return newStore(t) })
	mfatest.RunPolicyStore(t, func(t *testing.T) mfa.PolicyStore { return newStore(t) })
}

// TestConformanceExplicitSchema runs the suite with tables in a named
// schema reached through Options.Schema rather than the search_path.
func TestConformanceExplicitSchema(t *testing.T) {
	mfatest.Run(t, func(t *testing.T) mfa.Store {
		db := pgtest.New(t)
		ctx := context.Background()
		if _, err := db.Pool.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{db.Schema + "_mfa"}.Sanitize()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_, _ = db.Pool.Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{db.Schema + "_mfa"}.Sanitize()+" CASCADE")
		})
		opts := mfapg.Options{Schema: db.Schema + "_mfa"}
		if err := mfapg.Migrate(ctx, db.Pool, opts); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = $1", opts.Schema).Scan(&n); err != nil || n != 4 {
			t.Fatalf("tables in %s: %d, %v; want 4", opts.Schema, n, err)
		}
		return mfapg.New(db.Pool, opts)
	})
}

func TestMigrateIsIdempotentAndConcurrent(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = mfapg.Migrate(ctx, db.Pool, mfapg.Options{})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
	}
	if err := mfapg.Migrate(ctx, db.Pool, mfapg.Options{}); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM mfa_schema_migrations").Scan(&n); err != nil || n != 1 {
		t.Fatalf("migrations recorded: %d, %v; want 1", n, err)
	}
}

// TestJoinsCallerTransaction checks that a Store on a pgx.Tx writes inside
// the caller's transaction: a rollback leaves nothing behind.
func TestJoinsCallerTransaction(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	if err := mfapg.Migrate(ctx, db.Pool, mfapg.Options{}); err != nil {
		t.Fatal(err)
	}
	s := mfapg.New(db.Pool, mfapg.Options{})

	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e := mfa.Enrolment{TenantID: "t", AccountID: "a", ID: "e1", State: mfa.StatePending, SealedSecret: []byte{1},
		Algorithm: mfa.SHA1, Digits: 6, PeriodSeconds: 30}
	if err := s.WithDB(tx).SavePending(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := s.WithDB(tx).Activate(ctx, mfa.ActivateParams{TenantID: "t", AccountID: "a", EnrolmentID: "e1", Step: 1, RecoveryHashes: [][]byte{{2}}}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Enrolment(ctx, "t", "a"); err != mfa.ErrNotEnrolled {
		t.Fatalf("after rollback: err = %v, want ErrNotEnrolled", err)
	}
}

// TestReplayRaceAcrossInstances gives each of several "app instances" its
// own pool and Authenticator on one database, and submits one code from
// all of them at once: exactly one passes.
func TestReplayRaceAcrossInstances(t *testing.T) {
	mfatest.RunInstances(t, func(t *testing.T) func() mfa.Store {
		db := pgtest.New(t)
		if err := mfapg.Migrate(context.Background(), db.Pool, mfapg.Options{}); err != nil {
			t.Fatal(err)
		}
		return func() mfa.Store { return mfapg.New(db.NewPool(t, nil), mfapg.Options{}) }
	})
}

// TestDatabaseNeverHoldsPlaintext enrols through an Authenticator with a
// Tink sealer and reads the raw rows: neither the TOTP secret (raw or
// base32) nor any recovery code may appear in them.
func TestDatabaseNeverHoldsPlaintext(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	if err := mfapg.Migrate(ctx, db.Pool, mfapg.Options{}); err != nil {
		t.Fatal(err)
	}
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	cipher, err := aead.New(h)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	a, err := mfa.New(mfa.Config{Store: mfapg.New(db.Pool, mfapg.Options{}), Sealer: mfa.AEADSealer{AEAD: cipher}, Issuer: "T", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	setup, err := a.Enrol(ctx, mfa.EnrolParams{TenantID: "t", AccountID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := totp.GenerateCode(setup.Secret, now)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := a.Confirm(ctx, mfa.CodeParams{TenantID: "t", AccountID: "a", Code: c})
	if err != nil {
		t.Fatal(err)
	}

	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(setup.Secret)
	if err != nil {
		t.Fatal(err)
	}
	var dump []byte
	for _, q := range []string{
		"SELECT string_agg(sealed_secret::text || row_to_json(t)::text, '') FROM mfa_totp t",
		"SELECT string_agg(code_hash::text || row_to_json(c)::text, '') FROM mfa_recovery_codes c",
	} {
		var s string
		if err := db.Pool.QueryRow(ctx, q).Scan(&s); err != nil {
			t.Fatal(err)
		}
		dump = append(dump, s...)
	}
	var secretBytes []byte
	if err := db.Pool.QueryRow(ctx, "SELECT sealed_secret FROM mfa_totp").Scan(&secretBytes); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(secretBytes, raw) || bytes.Contains(dump, []byte(setup.Secret)) || bytes.Contains(dump, []byte(hex.EncodeToString(raw))) {
		t.Fatal("the database holds the plaintext TOTP secret")
	}
	for _, rc := range conf.RecoveryCodes {
		if bytes.Contains(dump, []byte(strings.ReplaceAll(rc, "-", ""))) || bytes.Contains(dump, []byte(rc)) {
			t.Fatal("the database holds a plaintext recovery code")
		}
	}
}
