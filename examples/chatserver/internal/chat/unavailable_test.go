package chat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chatsdk/compliance/session/mfa"
	"github.com/chatsdk/compliance/session/password"
)

func TestStoreUnavailable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "57P01"}, true}, // admin_shutdown
		{fmt.Errorf("chat: create message: %w", &pgconn.PgError{Code: "57P03"}), true},
		{&pgconn.PgError{Code: "08006"}, true},
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, true},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{&pgconn.PgError{Code: "23505"}, false}, // unique violation: the request's own failure
		{&pgconn.PgError{Code: "22021"}, false}, // bad encoding
		{errors.New("something else"), false},
		{nil, false},
	} {
		if got := storeUnavailable(c.err); got != c.want {
			t.Errorf("storeUnavailable(%v) = %t, want %t", c.err, got, c.want)
		}
	}
}

// downStore is a chat store whose message writes fail as they do while
// Postgres shuts down, on demand.
type downStore struct {
	Store
	down atomic.Bool
}

func (d *downStore) CreateMessage(ctx context.Context, m Message, seal SealFunc) error {
	if d.down.Load() {
		return fmt.Errorf("chat: create message: %w", &pgconn.PgError{Severity: "FATAL", Code: "57P01", Message: "terminating connection due to administrator command"})
	}
	return d.Store.CreateMessage(ctx, m, seal)
}

// TestDatabaseDownIs503: a request that fails because the database went
// away is answered 503 unavailable (retry later), not 500; the loadtest's
// database-fault scenario found posts answered 500 while Postgres shut
// down.
func TestDatabaseDownIs503(t *testing.T) {
	b := NewMemoryBackend(nil)
	ds := &downStore{Store: b.Chat}
	b.Chat = ds
	keys, err := GenerateDevelopmentKeys()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	fast := password.InsecureFastParams()
	srv, err := New(Config{Backend: b, Keys: keys, HashParams: &fast, MFAPolicy: &mfa.Policy{}, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, srv: srv, ts: httptest.NewServer(srv.Handler()), clock: &clock{t: time.Now()}, logs: logs, backend: b, keys: keys}
	t.Cleanup(f.ts.Close)

	f.signup("alice")
	tok := f.login("alice").access
	ch := f.channel(tok, "ward")
	f.post(tok, ch, "before")
	ds.down.Store(true)
	r := f.do("POST", "/v1/channels/"+ch+"/messages", tok, map[string]string{"text": "during"})
	if r.status != 503 || str(r, "error") != "unavailable" {
		t.Fatalf("post while the database is down: %d %s, want 503 unavailable", r.status, r.raw)
	}
	ds.down.Store(false)
	f.post(tok, ch, "after")
	if got := f.read(tok, ch); len(got) != 2 {
		t.Fatalf("messages: %v", got)
	}
}
