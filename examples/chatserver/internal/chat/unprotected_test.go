package chat

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatsdk/compliance/internal/pgtest"
	"github.com/chatsdk/compliance/session/mfa"
	"github.com/chatsdk/compliance/session/password"
)

// TestInsecureUnprotected: the benchmark switch does what its name warns
// of, and only then: the text is stored in the clear and the requests
// leave no audit entry, while the same steps on a protected server store
// ciphertext and audit every request (TestTextNeverStored covers the scan
// of a protected server).
func TestInsecureUnprotected(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	b, err := NewPostgresBackend(ctx, db.Pool, db.Schema)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := GenerateDevelopmentKeys()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	fast := password.InsecureFastParams()
	srv, err := New(Config{
		Backend: b, Keys: keys, HashParams: &fast, MFAPolicy: &mfa.Policy{},
		Logger:              slog.New(slog.NewJSONHandler(logs, nil)),
		InsecureUnprotected: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, srv: srv, ts: httptest.NewServer(srv.Handler()), clock: &clock{t: time.Now()}, logs: logs, backend: b, db: db, keys: keys}
	t.Cleanup(f.ts.Close)

	const text = "zq-unprotected-marker: potassium 5.9"
	f.signup("alice")
	tok := f.login("alice").access
	ch := f.channel(tok, "ward")
	f.post(tok, ch, text)
	if got := f.read(tok, ch); len(got) != 1 || got[0]["text"] != text || got[0]["integrity"] != "ok" {
		t.Fatalf("read: %v", got)
	}
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}

	if _, hits := scanSchema(t, db.Pool, db.Schema, text); !slices.Contains(hits, MessagesTable+".body") {
		t.Errorf("unprotected: text not stored in the clear in %s.body: %v", MessagesTable, hits)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_entries WHERE type = 'data.created'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("unprotected: %d data.created entries, want none (no audit middleware)", n)
	}
	if !strings.Contains(logs.String(), "INSECURE UNPROTECTED MODE") {
		t.Errorf("no warning logged:\n%s", logs.String())
	}
}
