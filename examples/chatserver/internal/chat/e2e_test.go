package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pquerna/otp/totp"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/integrity"
	"github.com/chatsdk/compliance/internal/pgtest"
	"github.com/chatsdk/compliance/session/mfa"
	"github.com/chatsdk/compliance/session/password"
)

// clock is the fake clock every package of a test server reads.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer collects the server's logs.
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

// fixture is a real server on a real listener (127.0.0.1, random port),
// on one backend.
type fixture struct {
	t       testing.TB
	srv     *Server
	ts      *httptest.Server
	clock   *clock
	logs    *syncBuffer
	backend *Backend
	db      *pgtest.DB // nil on memory
	keys    Keys
	setup   setup
}

type setup struct {
	mfa *mfa.Policy
	// wrapAudit, when not nil, wraps the backend's audit store.
	wrapAudit func(audit.Store) audit.Store
	// accessTTL, when not zero, is the access-token lifetime.
	accessTTL time.Duration
	// lockoutFailures and lockoutDuration, when not zero, are the
	// lockout policy.
	lockoutFailures int
	lockoutDuration time.Duration
	trustedProxies  []netip.Prefix
}

// backends are the two ways to run every end-to-end test.
var backends = []string{"memory", "postgres"}

func eachBackend(t *testing.T, fn func(t *testing.T, f *fixture)) {
	t.Helper()
	eachBackendWith(t, setup{}, fn)
}

func eachBackendWith(t *testing.T, s setup, fn func(t *testing.T, f *fixture)) {
	t.Helper()
	for _, name := range backends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, newFixture(t, name, s))
		})
	}
}

func newFixture(t testing.TB, backend string, s setup) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{t: t, clock: &clock{t: time.Now().UTC().Truncate(time.Second)}, logs: &syncBuffer{}, setup: s}
	switch backend {
	case "memory":
		f.backend = NewMemoryBackend(f.clock.Now)
	case "postgres":
		f.db = pgtest.New(t)
		b, err := NewPostgresBackend(ctx, f.db.Pool, f.db.Schema)
		if err != nil {
			t.Fatalf("postgres backend: %v", err)
		}
		f.backend = b
	}
	var err error
	if f.keys, err = GenerateDevelopmentKeys(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", f.logs.String())
		}
	})
	f.start()
	return f
}

// start builds and serves the fixture's server on its backend.
func (f *fixture) start() {
	t, s := f.t, f.setup
	if s.wrapAudit != nil {
		f.backend.Audit = s.wrapAudit(f.backend.Audit)
	}
	fast := password.InsecureFastParams()
	mp := mfa.Policy{Required: false}
	if s.mfa != nil {
		mp = *s.mfa
	}
	var err error
	f.srv, err = New(Config{
		Backend:         f.backend,
		Keys:            f.keys,
		Logger:          slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:             f.clock.Now,
		HashParams:      &fast,
		MFAPolicy:       &mp,
		RetentionGrace:  time.Hour,
		AccessTTL:       s.accessTTL,
		LockoutFailures: s.lockoutFailures,
		LockoutDuration: s.lockoutDuration,
		TrustedProxies:  s.trustedProxies,
		CheckpointFile:  filepath.Join(t.TempDir(), "checkpoints.jsonl"),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.ts = httptest.NewServer(f.srv.Handler())
	srv, ts := f.srv, f.ts
	t.Cleanup(func() {
		ts.Close()
		if err := srv.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

// instance returns a second server on the same Postgres schema, keys and
// clock, with a pool of its own: another app instance behind the load
// balancer.
func (f *fixture) instance() *fixture {
	f.t.Helper()
	g := &fixture{t: f.t, clock: f.clock, logs: f.logs, keys: f.keys, setup: f.setup, db: f.db}
	b, err := NewPostgresBackend(context.Background(), f.db.NewPool(f.t, nil), f.db.Schema)
	if err != nil {
		f.t.Fatalf("second instance: %v", err)
	}
	g.backend = b
	g.start()
	return g
}

// TestInstancesShareState: two instances on one database count one
// lockout, see each other's logouts, and append to one audit chain.
func TestInstancesShareState(t *testing.T) {
	a := newFixture(t, "postgres", setup{})
	b := a.instance()
	a.signup("alice")
	bobID, _ := b.signup("bob")

	for i, f := range []*fixture{a, b, a, b, a} {
		f.want(f.do("POST", "/v1/apps/"+app+"/login", "", map[string]string{"username": "bob", "password": fmt.Sprint("wrong password ", i)}), 401, "wrong password")
	}
	b.want(b.do("POST", "/v1/apps/"+app+"/login", "", map[string]string{"username": "bob", "password": pw("bob")}), 429, "locked on the other instance")

	tok := a.login("alice")
	ch := b.channel(tok.access, "shared")
	a.post(tok.access, ch, "written on a")
	if got := b.read(tok.access, ch); len(got) != 1 || got[0]["text"] != "written on a" {
		t.Fatalf("read on b: %v", got)
	}
	b.want(b.do("POST", "/v1/auth/logout", tok.access, nil), 204, "logout on b")
	a.want(a.do("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": tok.refresh}), 401, "refresh on a after logout on b")

	admin := b.login("alice")
	a.verifyOK(admin.access)
	if evs := a.events(admin.access, url.Values{"type": {"security.account_locked"}, "resource_id": {"bob"}}); len(evs) != 1 {
		t.Fatalf("one lock of bob, recorded once: %v (bob is %s)", evs, bobID)
	}
}

// response is a decoded reply.
type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (f *fixture) do(method, path, token string, body any) response {
	f.t.Helper()
	return f.doWith(method, path, token, body, nil)
}

func (f *fixture) doWith(method, path, token string, body any, header http.Header) response {
	f.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, f.ts.URL+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := f.ts.Client().Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := response{status: res.StatusCode, header: res.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			f.t.Fatalf("%s %s: body is not a JSON object: %q", method, path, raw)
		}
	}
	return out
}

func (f *fixture) want(r response, status int, what string) response {
	f.t.Helper()
	if r.status != status {
		f.t.Fatalf("%s: status %d, want %d; body %s", what, r.status, status, r.raw)
	}
	return r
}

func str(r response, k string) string {
	s, _ := r.body[k].(string)
	return s
}

const app = "clinic"

func pw(name string) string { return "correct horse battery staple no " + fmt.Sprint(len(name)) }

func (f *fixture) signup(name string) (id, role string) {
	f.t.Helper()
	r := f.want(f.do("POST", "/v1/apps/"+app+"/users", "", map[string]string{"username": name, "password": pw(name)}), 201, "sign up "+name)
	return str(r, "id"), str(r, "role")
}

type tokens struct{ access, refresh string }

func (f *fixture) login(name string) tokens {
	f.t.Helper()
	r := f.want(f.do("POST", "/v1/apps/"+app+"/login", "", map[string]string{"username": name, "password": pw(name)}), 200, "log in "+name)
	if str(r, "token_type") != "Bearer" || r.body["expires_in"].(float64) <= 0 {
		f.t.Fatalf("login body: %s", r.raw)
	}
	return tokens{str(r, "access_token"), str(r, "refresh_token")}
}

func (f *fixture) channel(tok, name string) string {
	f.t.Helper()
	return str(f.want(f.do("POST", "/v1/channels", tok, map[string]string{"name": name}), 201, "create channel"), "id")
}

func (f *fixture) post(tok, channel, text string) string {
	f.t.Helper()
	return str(f.want(f.do("POST", "/v1/channels/"+channel+"/messages", tok, map[string]string{"text": text}), 201, "post message"), "id")
}

func (f *fixture) read(tok, channel string) []map[string]any {
	f.t.Helper()
	r := f.want(f.do("GET", "/v1/channels/"+channel+"/messages", tok, nil), 200, "read channel")
	var out []map[string]any
	for _, m := range r.body["messages"].([]any) {
		out = append(out, m.(map[string]any))
	}
	return out
}

// events returns the audit events matching the query, newest first, all
// pages.
func (f *fixture) events(tok string, q url.Values) []map[string]any {
	f.t.Helper()
	var out []map[string]any
	for {
		r := f.want(f.do("GET", "/v1/admin/audit?"+q.Encode(), tok, nil), 200, "audit query")
		for _, e := range r.body["events"].([]any) {
			out = append(out, e.(map[string]any))
		}
		next := str(r, "next_cursor")
		if next == "" {
			return out
		}
		q.Set("cursor", next)
	}
}

func (f *fixture) verifyOK(tok string) {
	f.t.Helper()
	r := f.want(f.do("GET", "/v1/admin/audit/verify", tok, nil), 200, "audit verify")
	if r.body["ok"] != true || r.body["checked"].(float64) < 1 || r.body["checked"] != r.body["head_seq"] {
		f.t.Fatalf("verify: %s", r.raw)
	}
}

func hasEvent(evs []map[string]any, typ, resourceID string) bool {
	for _, e := range evs {
		if e["type"] == typ && (resourceID == "" || e["resource_id"] == resourceID) {
			return true
		}
	}
	return false
}

func TestHealthz(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		r := f.want(f.do("GET", "/healthz", "", nil), 200, "healthz")
		if str(r, "status") != "ok" {
			t.Fatalf("healthz: %s", r.raw)
		}
		r = f.want(f.do("GET", "/nope", "", nil), 404, "unknown route")
		if str(r, "error") != "not_found" || str(r, "message") == "" {
			t.Fatalf("error body: %s", r.raw)
		}
	})
}

// TestMessageLife is the whole life of a message: sign up, log in, send,
// read, the audit trail shows each step, and the chain verifies.
func TestMessageLife(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		const text = "Patient reports INR 2.3 after dose change"

		aliceID, role := f.signup("alice")
		if role != RoleOwner {
			t.Fatalf("first user's role %q, want owner", role)
		}
		if _, role := f.signup("bob"); role != RoleMember {
			t.Fatalf("second user's role %q, want member", role)
		}
		tok := f.login("alice")
		ch := f.channel(tok.access, "care team")
		msg := f.post(tok.access, ch, text)

		got := f.read(tok.access, ch)
		if len(got) != 1 || got[0]["id"] != msg || got[0]["text"] != text || got[0]["integrity"] != "ok" || got[0]["user_id"] != aliceID {
			t.Fatalf("read: %v", got)
		}

		// Two a page, so the cursor is followed.
		evs := f.events(tok.access, url.Values{"actor": {aliceID}, "limit": {"2"}})
		for _, step := range []struct{ typ, id string }{
			{"admin.user_created", aliceID},
			{"auth.login", ""},
			{"data.created", ch},
			{"data.created", msg},
			{"data.read", ch},
		} {
			if !hasEvent(evs, step.typ, step.id) {
				t.Errorf("audit trail lacks %s %s; have %v", step.typ, step.id, evs)
			}
		}
		f.verifyOK(tok.access)
		future := f.clock.Now().Add(time.Hour).Format(time.RFC3339)
		if later := f.events(tok.access, url.Values{"since": {future}}); len(later) != 0 {
			t.Fatalf("events since the future: %v", later)
		}
		f.want(f.do("GET", "/v1/admin/audit?cursor=forged", tok.access, nil), 400, "forged cursor")

		logs := f.logs.String()
		for what, secret := range map[string]string{"message text": text, "access token": tok.access, "refresh token": tok.refresh, "password": pw("alice")} {
			if strings.Contains(logs, secret) {
				t.Errorf("%s in the server log", what)
			}
		}
		for _, e := range evs {
			if b, _ := json.Marshal(e); strings.Contains(string(b), text) {
				t.Fatal("message text in the audit log")
			}
		}
	})
}

func TestSignupPolicy(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		r := f.want(f.do("POST", "/v1/apps/"+app+"/users", "", map[string]string{"username": "carol", "password": "password"}), 422, "weak password")
		if str(r, "error") != "weak_password" {
			t.Fatalf("body: %s", r.raw)
		}
		codes := fmt.Sprint(r.body["violations"])
		if !strings.Contains(codes, "too_short") || !strings.Contains(codes, "blocklisted") {
			t.Fatalf("violations: %s", codes)
		}
		f.signup("carol")
		r = f.want(f.do("POST", "/v1/apps/"+app+"/users", "", map[string]string{"username": "carol", "password": pw("carol")}), 409, "taken name")
		if str(r, "error") != "exists" {
			t.Fatalf("body: %s", r.raw)
		}
		if strings.Contains(f.logs.String(), pw("carol")) {
			t.Fatal("password in the server log")
		}
	})
}

// TestPasswordRehash: a hash made with other argon2id parameters is
// replaced at the next successful log-in.
func TestPasswordRehash(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		id, _ := f.signup("alice")
		ctx := context.Background()
		old, err := password.NewHasher(password.Params{Memory: 128, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
		if err != nil {
			t.Fatal(err)
		}
		h, _ := old.Hash(pw("alice"))
		if err := f.backend.Chat.SetPasswordHash(ctx, app, id, h); err != nil {
			t.Fatal(err)
		}
		f.login("alice")
		u, err := f.backend.Chat.UserByID(ctx, app, id)
		if err != nil || u.PasswordHash == h || f.srv.hasher.NeedsRehash(u.PasswordHash) {
			t.Fatalf("hash after log-in not upgraded: %v", err)
		}
		f.login("alice")
	})
}

// TestFiveWrongPasswordsLock: five wrong passwords lock the account, even
// against the right one, and an unknown name is throttled the same way.
func TestFiveWrongPasswordsLock(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.signup("alice")
		for _, name := range []string{"alice", "nobody"} {
			for i := range 5 {
				r := f.want(f.do("POST", "/v1/apps/"+app+"/login", "", map[string]string{"username": name, "password": "wrong password number " + fmt.Sprint(i)}), 401, "wrong password")
				if str(r, "error") != "invalid_credentials" {
					t.Fatalf("body: %s", r.raw)
				}
			}
			r := f.want(f.do("POST", "/v1/apps/"+app+"/login", "", map[string]string{"username": name, "password": pw(name)}), 429, "sixth attempt of "+name)
			if str(r, "error") != "locked" || r.header.Get("Retry-After") == "" {
				t.Fatalf("locked reply: %v %s", r.header, r.raw)
			}
		}
		if strings.Contains(f.logs.String(), "wrong password number") {
			t.Fatal("a password in the server log")
		}
	})
}

// TestLockoutPolicyFlags: the lockout knobs reach the guard: three
// failures lock, for two minutes by the store's clock.
func TestLockoutPolicyFlags(t *testing.T) {
	f := newFixture(t, "memory", setup{lockoutFailures: 3, lockoutDuration: 2 * time.Minute})
	f.signup("alice")
	for range 3 {
		f.want(f.do("POST", "/v1/apps/"+app+"/login", "", map[string]string{"username": "alice", "password": "not the password at all"}), 401, "wrong password")
	}
	r := f.want(f.do("POST", "/v1/apps/"+app+"/login", "", map[string]string{"username": "alice", "password": pw("alice")}), 429, "fourth attempt")
	if r.header.Get("Retry-After") != "120" {
		t.Fatalf("Retry-After %q, want 120", r.header.Get("Retry-After"))
	}
	f.clock.Advance(2*time.Minute + time.Second)
	f.login("alice")
}

// TestClientAddress: behind a trusted proxy the audit log names the
// client from X-Forwarded-For; from anyone else the header is ignored.
func TestClientAddress(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		want    string
	}{
		{"untrusted", nil, "127.0.0.1"},
		{"trusted", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, "203.0.113.7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "memory", setup{trustedProxies: tc.trusted})
			f.signup("alice")
			tok := f.login("alice")
			f.want(f.doWith("POST", "/v1/channels", tok.access, map[string]string{"name": "x"}, http.Header{"X-Forwarded-For": {"203.0.113.7"}}), 201, "create")
			evs := f.events(tok.access, url.Values{"type": {"data.created"}})
			if len(evs) != 2 {
				t.Fatalf("events: %v", evs)
			}
			for _, e := range evs {
				if e["ip"] != tc.want {
					t.Errorf("ip %v, want %s", e["ip"], tc.want)
				}
			}
		})
	}
}

func TestUnlockAndLockAudit(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.signup("alice")
		bobID, _ := f.signup("bob")
		tok := f.login("alice")
		for range 5 {
			f.want(f.do("POST", "/v1/apps/"+app+"/login", "", map[string]string{"username": "bob", "password": "not bob's password"}), 401, "wrong password")
		}
		f.want(f.do("POST", "/v1/apps/"+app+"/login", "", map[string]string{"username": "bob", "password": pw("bob")}), 429, "locked")
		if evs := f.events(tok.access, url.Values{"type": {"security.account_locked"}}); len(evs) == 0 {
			t.Fatal("no account_locked event")
		}
		failed := f.events(tok.access, url.Values{"type": {"auth.login_failed"}})
		if len(failed) != 6 || failed[0]["failure_reason"] != "locked" || failed[1]["failure_reason"] != "invalid_credentials" {
			t.Fatalf("login_failed events: %v", failed)
		}

		f.want(f.do("POST", "/v1/admin/users/"+bobID+"/unlock", tok.access, map[string]string{}), 400, "unlock without a reason")
		f.want(f.do("POST", "/v1/admin/users/"+bobID+"/unlock", tok.access, map[string]string{"reason": "called the help desk"}), 204, "unlock")
		bob := f.login("bob")

		// Bob is a member: admin routes are denied, and the denial audited.
		r := f.want(f.do("POST", "/v1/admin/users/"+bobID+"/unlock", bob.access, map[string]string{"reason": "x"}), 403, "member unlock")
		if str(r, "error") != "forbidden" {
			t.Fatalf("body: %s", r.raw)
		}
		if evs := f.events(tok.access, url.Values{"type": {"authz.denied"}, "actor": {bobID}}); len(evs) != 1 {
			t.Fatalf("denied events of bob: %v", evs)
		}
	})
}

// TestRefreshReuseRevokes: presenting a rotated refresh token again
// revokes the session: its newest tokens stop working too.
func TestRefreshReuseRevokes(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.signup("alice")
		first := f.login("alice")
		r := f.want(f.do("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": first.refresh}), 200, "refresh")
		second := tokens{str(r, "access_token"), str(r, "refresh_token")}
		if second.refresh == first.refresh || second.access == "" {
			t.Fatalf("refresh body: %s", r.raw)
		}
		f.channel(second.access, "works")

		r = f.want(f.do("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": first.refresh}), 401, "reused refresh token")
		if str(r, "error") != "invalid_token" {
			t.Fatalf("body: %s", r.raw)
		}
		f.want(f.do("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": second.refresh}), 401, "refresh after reuse")
		f.want(f.do("POST", "/v1/channels", second.access, map[string]string{"name": "x"}), 401, "access token after reuse")

		admin := f.login("alice")
		if evs := f.events(admin.access, url.Values{"type": {"security.refresh_reused"}}); len(evs) != 1 {
			t.Fatalf("refresh_reused events: %v", evs)
		}
	})
}

// TestIdleLogoff: a session with no activity for the idle timeout (15
// minutes) ends, although its access token has not expired; activity
// keeps it alive.
func TestIdleLogoff(t *testing.T) {
	eachBackendWith(t, setup{accessTTL: time.Hour}, func(t *testing.T, f *fixture) {
		f.signup("alice")
		tok := f.login("alice")
		for range 3 {
			f.clock.Advance(10 * time.Minute)
			f.channel(tok.access, "still here")
		}
		f.clock.Advance(16 * time.Minute)
		f.want(f.do("POST", "/v1/channels", tok.access, map[string]string{"name": "too late"}), 401, "idle session")
		f.want(f.do("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": tok.refresh}), 401, "refresh of an idle session")
	})
}

func TestLogout(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.signup("alice")
		tok := f.login("alice")
		f.want(f.do("POST", "/v1/auth/logout", tok.access, nil), 204, "logout")
		f.want(f.do("POST", "/v1/channels", tok.access, map[string]string{"name": "x"}), 401, "access after logout")
		f.want(f.do("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": tok.refresh}), 401, "refresh after logout")
	})
}

// TestNonMemberDenied: only a channel's members read it (minimum
// necessary), and a denial is audited.
func TestNonMemberDenied(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.signup("alice")
		bobID, _ := f.signup("bob")
		alice, bob := f.login("alice"), f.login("bob")
		ch := f.channel(alice.access, "oncology")
		f.post(alice.access, ch, "biopsy scheduled")

		r := f.want(f.do("GET", "/v1/channels/"+ch+"/messages", bob.access, nil), 403, "non-member read")
		if str(r, "error") != "not_member" {
			t.Fatalf("body: %s", r.raw)
		}
		f.want(f.do("POST", "/v1/channels/"+ch+"/messages", bob.access, map[string]string{"text": "hi"}), 403, "non-member post")
		f.want(f.do("POST", "/v1/channels/"+ch+"/members", bob.access, map[string]string{"user_id": bobID}), 403, "non-member adds self")

		denied := f.events(alice.access, url.Values{"type": {"authz.denied"}, "actor": {bobID}})
		if len(denied) != 3 || !hasEvent(denied, "authz.denied", ch) || denied[0]["success"] != false {
			t.Fatalf("denied events: %v", denied)
		}

		f.want(f.do("POST", "/v1/channels/"+ch+"/members", alice.access, map[string]string{"user_id": bobID}), 204, "add member")
		if got := f.read(bob.access, ch); len(got) != 1 || got[0]["text"] != "biopsy scheduled" {
			t.Fatalf("member read: %v", got)
		}

		// A plain member reads but does not add others.
		carolID, _ := f.signup("carol")
		f.want(f.do("POST", "/v1/channels/"+ch+"/members", bob.access, map[string]string{"user_id": carolID}), 403, "member adds member")
	})
}

// TestHeldChannelSurvivesSweep: after the retention period a sweep
// deletes a channel's messages, but not those of a channel under a legal
// hold.
func TestHeldChannelSurvivesSweep(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.signup("alice")
		tok := f.login("alice")
		held, free := f.channel(tok.access, "litigation"), f.channel(tok.access, "daily")
		var heldIDs, freeIDs []string
		for i := range 2 {
			heldIDs = append(heldIDs, f.post(tok.access, held, fmt.Sprint("held message ", i)))
			freeIDs = append(freeIDs, f.post(tok.access, free, fmt.Sprint("free message ", i)))
		}
		r := f.want(f.do("POST", "/v1/admin/holds", tok.access, map[string]string{"scope": "channel", "id": held, "reason": "case 2026-17"}), 201, "place hold")
		hold := str(r, "id")
		f.want(f.do("PUT", "/v1/admin/retention", tok.access, map[string]any{"days": 1}), 200, "set retention")

		// Past the grace period and the one-day period.
		f.clock.Advance(3 * day)
		rep, err := f.srv.Sweep(context.Background())
		if err != nil {
			t.Fatalf("sweep: %v", err)
		}
		if rep.Deleted != 2 {
			t.Fatalf("sweep deleted %d, want 2", rep.Deleted)
		}

		tok = f.login("alice")
		if got := f.read(tok.access, held); len(got) != 2 || got[0]["integrity"] != "ok" {
			t.Fatalf("held channel after sweep: %v", got)
		}
		if got := f.read(tok.access, free); len(got) != 0 {
			t.Fatalf("free channel after sweep: %v", got)
		}
		if evs := f.events(tok.access, url.Values{"type": {"system.retention_sweep"}}); len(evs) != 1 {
			t.Fatalf("sweep events: %v", evs)
		}
		f.verifyOK(tok.access)

		// The swept messages' integrity tags went with them; the held
		// ones keep theirs.
		for _, id := range append(heldIDs, freeIDs...) {
			_, err := f.backend.Integrity.Sealed(context.Background(), integrity.Key{Domain: MessagesTable, Tenant: app, ID: id})
			if swept := slices.Contains(freeIDs, id); swept != errors.Is(err, integrity.ErrNotSealed) {
				t.Errorf("message %s (swept %v): tag lookup %v", id, swept, err)
			}
		}

		// Released, the held channel goes at the next sweep.
		f.want(f.do("DELETE", "/v1/admin/holds/"+hold, tok.access, nil), 204, "release hold")
		if rep, err := f.srv.Sweep(context.Background()); err != nil || rep.Deleted != 2 {
			t.Fatalf("sweep after release: %+v %v", rep, err)
		}
	})
}

// TestPostsDuringSweeps: writers and sweeps running at once neither
// deadlock nor lose a message that is not due.
func TestPostsDuringSweeps(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.signup("alice")
		tok := f.login("alice")
		ch := f.channel(tok.access, "busy")
		f.want(f.do("PUT", "/v1/admin/retention", tok.access, map[string]any{"days": 1}), 200, "set retention")
		for i := range 30 {
			f.post(tok.access, ch, fmt.Sprint("old message ", i))
		}
		f.clock.Advance(3 * day) // the old messages are due
		tok = f.login("alice")

		done := make(chan struct{})
		defer func() { <-done }()
		go func() {
			defer close(done)
			for range 10 {
				if _, err := f.srv.Sweep(context.Background()); err != nil {
					t.Errorf("sweep: %v", err)
					return
				}
			}
		}()
		for i := range 20 {
			f.post(tok.access, ch, fmt.Sprint("busy message ", i))
		}
		<-done
		got := f.read(tok.access, ch)
		if len(got) != 20 {
			t.Fatalf("after sweeps: %d messages, want the 20 new ones", len(got))
		}
	})
}

// TestTamperedMessage: a message whose stored ciphertext was changed comes
// back without its text, marked, and the failure is audited.
func TestTamperedMessage(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.signup("alice")
		tok := f.login("alice")
		ch := f.channel(tok.access, "ward 3")
		good := f.post(tok.access, ch, "fine")
		bad := f.post(tok.access, ch, "to be altered")
		f.tamper(bad)

		got := f.read(tok.access, ch)
		if len(got) != 2 {
			t.Fatalf("read: %v", got)
		}
		for _, m := range got {
			switch m["id"] {
			case good:
				if m["text"] != "fine" || m["integrity"] != "ok" {
					t.Errorf("good message: %v", m)
				}
			case bad:
				if _, has := m["text"]; has || m["integrity"] != "failed" {
					t.Errorf("tampered message: %v", m)
				}
			}
		}
		if !hasEvent(f.events(tok.access, url.Values{"type": {"security.integrity_failed"}}), "security.integrity_failed", bad) {
			t.Fatal("integrity failure not audited")
		}
	})
}

// TestCheckpointsPublished: signed audit checkpoints reach the file kept
// outside the database, and the verify route checks the chain against them.
func TestCheckpointsPublished(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.signup("alice")
		tok := f.login("alice")
		f.clock.Advance(2 * time.Minute) // past the checkpoint interval
		f.channel(tok.access, "after a minute")

		var cps []audit.Checkpoint
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			cps, _ = audit.ReadCheckpointFile(f.srv.cfg.CheckpointFile)
			if len(cps) > 0 {
				break
			}
		}
		if len(cps) == 0 || cps[0].Stream != app {
			t.Fatalf("published checkpoints: %+v", cps)
		}
		f.verifyOK(tok.access)
		if evs := f.events(tok.access, url.Values{"type": {"system.audit_verified"}}); len(evs) != 1 || evs[0]["success"] != true {
			t.Fatalf("verify events: %v", evs)
		}
	})
}

// TestAuditVerifyFindsTampering: an audit entry edited in the database,
// past its insert-only triggers, makes the verify route report where.
func TestAuditVerifyFindsTampering(t *testing.T) {
	f := newFixture(t, "postgres", setup{})
	f.signup("alice")
	tok := f.login("alice")
	f.channel(tok.access, "c")
	f.verifyOK(tok.access)

	err := pgx.BeginFunc(context.Background(), f.db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(context.Background(), `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		_, err := tx.Exec(context.Background(), `UPDATE audit_entries SET actor = 'mallory' WHERE stream = $1 AND seq = 2`, app)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	r := f.want(f.do("GET", "/v1/admin/audit/verify", tok.access, nil), 200, "verify")
	failure, _ := r.body["failure"].(map[string]any)
	if r.body["ok"] != false || failure["seq"] != float64(2) || failure["kind"] != string(audit.FailAltered) {
		t.Fatalf("verify of a tampered chain: %s", r.raw)
	}
}

// TestIntegrityVerifier: the scheduled verification finds a message
// altered in storage and records the finding in the tenant's audit log.
func TestIntegrityVerifier(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.signup("alice")
		tok := f.login("alice")
		ch := f.channel(tok.access, "ward 4")
		f.post(tok.access, ch, "one")
		bad := f.post(tok.access, ch, "two")
		ctx := context.Background()
		if ok, err := f.srv.VerifyIntegrity(ctx); !ok || err != nil {
			t.Fatalf("clean verification: %v %v", ok, err)
		}

		f.tamper(bad)
		if ok, err := f.srv.VerifyIntegrity(ctx); ok || err != nil {
			t.Fatalf("verification of a tampered table: %v %v", ok, err)
		}
		evs := f.events(tok.access, url.Values{"type": {"security.integrity_failed"}, "resource_id": {bad}})
		if len(evs) != 1 || evs[0]["failure_reason"] == "" || evs[0]["actor"] != "integrity-verifier" {
			t.Fatalf("finding events: %v", evs)
		}
	})
}

// tamper flips one bit of a stored message's ciphertext, as someone with
// write access to the database could.
func (f *fixture) tamper(id string) {
	f.t.Helper()
	if f.db == nil {
		ms := f.backend.Chat.(*MemoryStore)
		ms.mu.Lock()
		m := ms.messages[key(app, id)]
		body := append([]byte(nil), m.Body...)
		ms.mu.Unlock()
		body[len(body)-1] ^= 1
		ms.InsecureSetBody(app, id, body)
		return
	}
	if _, err := f.db.Pool.Exec(context.Background(), `UPDATE chat_messages SET body = set_byte(body, length(body) - 1, get_byte(body, length(body) - 1) # 1) WHERE id = $1`, id); err != nil {
		f.t.Fatal(err)
	}
}

// TestMFA: an enrolled account must log in with its code; a used code
// does not pass twice.
func TestMFA(t *testing.T) {
	required := mfa.Policy{Required: true, GracePeriod: time.Hour}
	eachBackendWith(t, setup{mfa: &required}, func(t *testing.T, f *fixture) {
		f.signup("alice")
		tok := f.login("alice") // inside the grace period
		f.channel(tok.access, "before enrolment")

		r := f.want(f.do("POST", "/v1/mfa/totp", tok.access, nil), 200, "enrol")
		secret := str(r, "secret")
		if secret == "" || !strings.HasPrefix(str(r, "otpauth_url"), "otpauth://totp/") {
			t.Fatalf("enrol body: %s", r.raw)
		}
		code, err := totp.GenerateCode(secret, f.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		r = f.want(f.do("POST", "/v1/mfa/totp/confirm", tok.access, map[string]string{"code": code}), 200, "confirm")
		codes := r.body["recovery_codes"].([]any)
		if len(codes) == 0 {
			t.Fatalf("confirm body: %s", r.raw)
		}
		f.channel(str(r, "access_token"), "after enrolment")

		r = f.want(f.do("POST", "/v1/apps/"+app+"/login", "", map[string]string{"username": "alice", "password": pw("alice")}), 401, "login without code")
		if str(r, "error") != "mfa_required" {
			t.Fatalf("body: %s", r.raw)
		}
		f.want(f.do("POST", "/v1/apps/"+app+"/login", "", map[string]string{"username": "alice", "password": pw("alice"), "otp": code}), 401, "replayed code")

		f.clock.Advance(30 * time.Second)
		code, _ = totp.GenerateCode(secret, f.clock.Now())
		r = f.want(f.do("POST", "/v1/apps/"+app+"/login", "", map[string]string{"username": "alice", "password": pw("alice"), "otp": code}), 200, "login with code")
		f.channel(str(r, "access_token"), "with mfa")

		// A recovery code passes once.
		recovery := codes[0].(string)
		f.want(f.do("POST", "/v1/apps/"+app+"/login", "", map[string]string{"username": "alice", "password": pw("alice"), "otp": recovery}), 200, "login with a recovery code")
		f.want(f.do("POST", "/v1/apps/"+app+"/login", "", map[string]string{"username": "alice", "password": pw("alice"), "otp": recovery}), 401, "recovery code again")

		// A second account past its grace period may only enrol.
		f.signup("bob")
		bob := f.login("bob")
		f.clock.Advance(2 * time.Hour)
		f.want(f.do("POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": bob.refresh}), 401, "idle session")
		bob = f.login("bob")
		r = f.want(f.do("POST", "/v1/channels", bob.access, map[string]string{"name": "x"}), 403, "past grace")
		if str(r, "error") != "mfa_enrolment_required" {
			t.Fatalf("body: %s", r.raw)
		}
		f.want(f.do("POST", "/v1/mfa/totp", bob.access, nil), 200, "enrol past grace")
		logs := f.logs.String()
		if strings.Contains(logs, secret) {
			t.Fatal("TOTP secret in the server log")
		}
		for _, c := range codes {
			if strings.Contains(logs, c.(string)) {
				t.Fatal("a recovery code in the server log")
			}
		}
	})
}

// TestBreakGlass: an admin's emergency grant reads a channel it is not a
// member of, and the grant and its use are audited.
func TestBreakGlass(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.signup("alice")
		f.signup("bob")
		alice, bob := f.login("alice"), f.login("bob")
		ch := f.channel(bob.access, "bob's patients")
		f.post(bob.access, ch, "allergic to penicillin")

		f.want(f.do("GET", "/v1/channels/"+ch+"/messages", alice.access, nil), 403, "owner is no member")
		f.want(f.do("POST", "/v1/admin/break-glass", alice.access, map[string]string{}), 400, "no reason")
		f.want(f.do("POST", "/v1/admin/break-glass", bob.access, map[string]string{"reason": "x"}), 403, "member breaks glass")
		r := f.want(f.do("POST", "/v1/admin/break-glass", alice.access, map[string]string{"reason": "patient unconscious in ER"}), 200, "break glass")
		emg := str(r, "access_token")
		if got := f.read(emg, ch); len(got) != 1 || got[0]["text"] != "allergic to penicillin" {
			t.Fatalf("emergency read: %v", got)
		}
		evs := f.events(alice.access, url.Values{"type": {"security.emergency_access"}})
		var grant, use bool
		for _, e := range evs {
			grant = grant || e["action"] == "grant"
			use = use || e["action"] == "use"
		}
		if !grant || !use {
			t.Fatalf("emergency events: %v", evs)
		}
		if strings.Contains(f.logs.String(), "unconscious") {
			t.Fatal("break-glass reason in the server log")
		}
	})
}

// TestTextNeverStored: a message's text appears in no column of any table
// of the schema (every package's and the server's), nor in the logs.
func TestTextNeverStored(t *testing.T) {
	f := newFixture(t, "postgres", setup{})
	const text = "zq-unique-marker: hemoglobin A1c 9.1 percent"
	f.signup("alice")
	tok := f.login("alice")
	ch := f.channel(tok.access, "endocrinology")
	f.post(tok.access, ch, text)
	if got := f.read(tok.access, ch); len(got) != 1 || got[0]["text"] != text {
		t.Fatalf("read: %v", got)
	}
	if err := f.srv.Close(context.Background()); err != nil { // flush the audit queue
		t.Fatal(err)
	}
	scanned, hits := scanSchema(t, f.db.Pool, f.db.Schema, text)
	if scanned < 20 {
		t.Fatalf("scanned only %d columns; is the schema right?", scanned)
	}
	if len(hits) > 0 {
		t.Errorf("message text found in %v", hits)
	}
	// Channel names are encrypted too; the scan does find what is stored
	// in the clear, such as a user name.
	if _, hits := scanSchema(t, f.db.Pool, f.db.Schema, "endocrinology"); len(hits) > 0 {
		t.Errorf("channel name found in %v", hits)
	}
	if _, hits := scanSchema(t, f.db.Pool, f.db.Schema, "alice"); !slices.Contains(hits, "chat_users.username") {
		t.Errorf("the scan does not find the user name stored in the clear: %v", hits)
	}
	if strings.Contains(f.logs.String(), text) {
		t.Fatal("message text in the server log")
	}
}

// scanSchema searches every text-like and bytea column of every table of
// schema for needle, and returns how many columns it searched and the
// table.column of each that holds it.
func scanSchema(t *testing.T, pool *pgxpool.Pool, schema, needle string) (int, []string) {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `
		SELECT c.table_name, c.column_name, c.data_type
		FROM information_schema.columns c
		JOIN information_schema.tables t USING (table_schema, table_name)
		WHERE c.table_schema = $1 AND t.table_type = 'BASE TABLE'
		  AND c.data_type IN ('text', 'character varying', 'character', 'bytea', 'json', 'jsonb', 'ARRAY', 'USER-DEFINED')`, schema)
	if err != nil {
		t.Fatal(err)
	}
	type col struct{ table, column, typ string }
	var (
		cols []col
		hits []string
	)
	for rows.Next() {
		var c col
		if err := rows.Scan(&c.table, &c.column, &c.typ); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, c := range cols {
		ident := pgx.Identifier{schema, c.table}.Sanitize()
		expr := fmt.Sprintf("convert_to(%s::text, 'UTF8')", pgx.Identifier{c.column}.Sanitize())
		if c.typ == "bytea" {
			expr = pgx.Identifier{c.column}.Sanitize()
		}
		var n int
		q := fmt.Sprintf(`SELECT count(*) FROM %s WHERE position(convert_to($1, 'UTF8') IN %s) > 0`, ident, expr)
		if err := pool.QueryRow(ctx, q, needle).Scan(&n); err != nil {
			t.Fatalf("scan %s.%s: %v", c.table, c.column, err)
		}
		if n > 0 {
			hits = append(hits, c.table+"."+c.column)
		}
	}
	return len(cols), hits
}

// failingAudit is an audit store whose appends fail on demand.
type failingAudit struct {
	audit.Store
	fail atomic.Bool
}

func (a *failingAudit) Append(ctx context.Context, stream string, events []audit.Event) ([]audit.Entry, error) {
	if a.fail.Load() {
		return nil, errors.New("disk full")
	}
	return a.Store.Append(ctx, stream, events)
}

// TestAuditFailsClosed: a request whose audit entry cannot be made durable
// gets no answer but a 503: the client never sees data the log has not
// recorded the access to.
func TestAuditFailsClosed(t *testing.T) {
	eachBackendWith(t, setup{wrapAudit: func(s audit.Store) audit.Store { return &failingAudit{Store: s} }}, func(t *testing.T, f *fixture) {
		fa := f.backend.Audit.(*failingAudit)
		f.signup("alice")
		tok := f.login("alice")
		ch := f.channel(tok.access, "ward")
		f.post(tok.access, ch, "visible once audited")

		fa.fail.Store(true)
		r := f.want(f.do("GET", "/v1/channels/"+ch+"/messages", tok.access, nil), 503, "read without audit")
		if str(r, "error") != "audit_unavailable" || strings.Contains(r.raw, "visible once audited") {
			t.Fatalf("body: %s", r.raw)
		}
		fa.fail.Store(false)
		if got := f.read(tok.access, ch); len(got) != 1 {
			t.Fatalf("read after recovery: %v", got)
		}
	})
}

// TestAPIAnswersAreNotSniffed: every JSON answer, an error included, tells
// the browser not to guess its type and not to cache it.
func TestAPIAnswersAreNotSniffed(t *testing.T) {
	f := newFixture(t, "memory", setup{})
	for _, path := range []string{"/v1/channels/x/messages", "/v1/nope"} {
		res, err := http.Get(f.ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s (%d): X-Content-Type-Options = %q, want nosniff", path, res.StatusCode, got)
		}
	}
}
