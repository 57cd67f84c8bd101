package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chatsdk/compliance/examples/chatserver/internal/chat"
	"github.com/chatsdk/compliance/internal/pgtest"
	"github.com/chatsdk/compliance/session/password"
)

// clock is the test server's clock: the real time plus an offset a test
// moves forward, so idle logoff and TOTP steps need no sleeping.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

// syncBuffer collects the server's log, shown when a test fails.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testServer is the chat server, pages included, on a loopback listener.
type testServer struct {
	URL   string
	clock *clock
	logs  *syncBuffer
}

type serverOptions struct {
	backend     string // "memory" (the default) or "postgres"
	accessTTL   time.Duration
	idleTimeout time.Duration // the server's automatic logoff (15m)
}

func newServer(t *testing.T, o serverOptions) *testServer {
	t.Helper()
	clk := &clock{}
	var (
		b   *chat.Backend
		err error
	)
	switch o.backend {
	case "", "memory":
		b = chat.NewMemoryBackend(clk.Now)
	case "postgres":
		db := pgtest.New(t)
		if b, err = chat.NewPostgresBackend(context.Background(), db.Pool, db.Schema); err != nil {
			t.Fatalf("postgres backend: %v", err)
		}
	default:
		t.Fatalf("unknown backend %q", o.backend)
	}
	keys, err := chat.GenerateDevelopmentKeys()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	fast := password.InsecureFastParams()
	srv, err := chat.New(chat.Config{
		Backend:        b,
		Keys:           keys,
		Logger:         slog.New(slog.NewJSONHandler(logs, nil)),
		Now:            clk.Now,
		HashParams:     &fast,
		AccessTTL:      o.accessTTL,
		IdleTimeout:    o.idleTimeout,
		CheckpointFile: filepath.Join(t.TempDir(), "checkpoints.jsonl"),
	})
	if err != nil {
		t.Fatalf("chat.New: %v", err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		if err := srv.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
		b.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return &testServer{URL: ts.URL, clock: clk, logs: logs}
}

// api calls the JSON API directly and decodes the answer into a map.
func (s *testServer) api(t *testing.T, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	out := map[string]any{}
	if res.StatusCode != http.StatusNoContent {
		_ = json.NewDecoder(res.Body).Decode(&out)
	}
	return res.StatusCode, out
}
