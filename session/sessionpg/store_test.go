package sessionpg_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatsdk/compliance/internal/pgtest"
	"github.com/chatsdk/compliance/session"
	"github.com/chatsdk/compliance/session/sessionpg"
	"github.com/chatsdk/compliance/session/sessiontest"
)

func newStore(t *testing.T) *sessionpg.Store {
	t.Helper()
	db := pgtest.New(t)
	ctx := context.Background()
	if err := sessionpg.Migrate(ctx, db.Pool, sessionpg.Config{Schema: db.Schema}); err != nil {
		t.Fatal(err)
	}
	st, err := sessionpg.New(db.Pool, sessionpg.Config{Schema: db.Schema})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestConformance(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T) session.Store { return newStore(t) })
}

func TestMigrateIsIdempotentAndConcurrent(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	cfg := sessionpg.Config{Schema: db.Schema}

	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = sessionpg.Migrate(ctx, db.Pool, cfg)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate %d: %v", i, err)
		}
	}
	if err := sessionpg.Migrate(ctx, db.Pool, cfg); err != nil {
		t.Errorf("Migrate again: %v", err)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM session_migrations").Scan(&n); err != nil || n != 1 {
		t.Errorf("session_migrations has %d rows (%v), want 1", n, err)
	}
}

// TestSchemaIsConfigurable runs on a pool whose search_path does not
// include the schema: every name must be qualified by Config.Schema.
func TestSchemaIsConfigurable(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	pool := db.NewPool(t, func(c *pgxpool.Config) { c.ConnConfig.RuntimeParams["search_path"] = "pg_catalog" })
	cfg := sessionpg.Config{Schema: db.Schema}
	if err := sessionpg.Migrate(ctx, pool, cfg); err != nil {
		t.Fatal(err)
	}
	st, err := sessionpg.New(pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := newManager(t, st)
	tok, err := m.Create(ctx, session.CreateParams{AppID: "app1", UserID: "u1", Methods: []string{session.AMRPassword}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Refresh(ctx, tok.RefreshToken); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM session_refresh_tokens").Scan(&n); err != nil || n != 2 {
		t.Errorf("refresh tokens in %s: %d (%v), want 2", db.Schema, n, err)
	}
}

func TestJoinsCallerTransaction(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	// No schema: names resolve through the pool's search_path.
	if err := sessionpg.Migrate(ctx, db.Pool, sessionpg.Config{}); err != nil {
		t.Fatal(err)
	}
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inTx, err := sessionpg.New(tx, sessionpg.Config{})
	if err != nil {
		t.Fatal(err)
	}
	m := newManager(t, inTx)
	tok, err := m.Create(ctx, session.CreateParams{AppID: "app1", UserID: "u1", Methods: []string{session.AMRPassword}})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	outside, _ := sessionpg.New(db.Pool, sessionpg.Config{})
	if _, err := outside.Session(ctx, tok.SessionID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("session of a rolled-back transaction: %v", err)
	}
}

func newManager(t *testing.T, st session.Store) *session.Manager {
	t.Helper()
	key, err := session.GenerateEd25519Key("k1")
	if err != nil {
		t.Fatal(err)
	}
	ring, _ := session.NewKeyRing(key)
	m, err := session.New(session.Config{Store: st, Keys: ring, Issuer: "iss", Audience: "aud"})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestManagerOnPostgres runs the reuse and race clauses end to end: ten
// concurrent refreshes of one token, on a pool, through the Manager.
func TestManagerOnPostgres(t *testing.T) {
	ctx := context.Background()
	m := newManager(t, newStore(t))
	tok, err := m.Create(ctx, session.CreateParams{AppID: "app1", UserID: "u1", Methods: []string{session.AMRPassword}})
	if err != nil {
		t.Fatal(err)
	}

	const n = 10
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = m.Refresh(ctx, tok.RefreshToken)
		}()
	}
	close(start)
	wg.Wait()

	ok, reused := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, session.ErrTokenReused), errors.Is(err, session.ErrRevoked):
			reused++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 || reused != n-1 {
		t.Errorf("%d succeeded and %d refused, want 1 and %d", ok, reused, n-1)
	}
	// The losers were replays: the family is revoked.
	if _, err := m.Authenticate(ctx, tok.AccessToken); !errors.Is(err, session.ErrRevoked) {
		t.Errorf("after the replays: %v, want ErrRevoked", err)
	}
}

// TestOnlyHashesStored: neither the refresh token nor its raw bytes appear
// anywhere in the tables; a database dump yields no usable token.
func TestOnlyHashesStored(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	cfg := sessionpg.Config{Schema: db.Schema}
	if err := sessionpg.Migrate(ctx, db.Pool, cfg); err != nil {
		t.Fatal(err)
	}
	st, _ := sessionpg.New(db.Pool, cfg)
	m := newManager(t, st)
	tok, err := m.Create(ctx, session.CreateParams{AppID: "app1", UserID: "u1", Methods: []string{session.AMRPassword}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}

	var dump string
	err = db.Pool.QueryRow(ctx, `SELECT concat_ws(' ',
		(SELECT string_agg(t::text, ' ') FROM session_sessions t),
		(SELECT string_agg(t::text, ' ') FROM session_refresh_tokens t),
		(SELECT string_agg(encode(token_hash, 'hex'), ' ') FROM session_refresh_tokens))`).Scan(&dump)
	if err != nil {
		t.Fatal(err)
	}
	for _, needle := range []string{tok.RefreshToken, hex.EncodeToString(raw)} {
		if strings.Contains(dump, needle) {
			t.Errorf("the tables hold the refresh token in the clear")
		}
	}
	if !strings.Contains(dump, tok.SessionID) {
		t.Errorf("dump does not hold the session: the check read nothing")
	}
}

// TestPurgeInBatches purges more sessions than one batch holds.
func TestPurgeInBatches(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	if err := sessionpg.Migrate(ctx, db.Pool, sessionpg.Config{}); err != nil {
		t.Fatal(err)
	}
	_, err := db.Pool.Exec(ctx, `INSERT INTO session_sessions (id, app_id, user_id, amr, created_at, last_seen_at, expires_at)
		SELECT 's' || g, 'app1', 'u1', '{pwd}', now() - interval '2 days', now() - interval '2 days', now() - interval '1 day'
		FROM generate_series(1, 2500) g`)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := sessionpg.New(db.Pool, sessionpg.Config{})
	n, err := st.Purge(ctx, time.Now())
	if err != nil || n != 2500 {
		t.Errorf("Purge: %d, %v; want 2500", n, err)
	}
}
