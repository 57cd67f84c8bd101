package chat

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/internal/pgtest"
	"github.com/chatsdk/compliance/session/mfa"
	"github.com/chatsdk/compliance/session/password"
)

// consoleFixture is a fixture whose audit log makes a checkpoint every
// eight entries, so that the checkpoint route has something to show.
func consoleFixture(t *testing.T, backend string) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: &clock{t: time.Now().UTC().Truncate(time.Second)}, logs: &syncBuffer{}}
	switch backend {
	case "memory":
		f.backend = NewMemoryBackend(f.clock.Now)
	case "postgres":
		f.db = pgtest.New(t)
		b, err := NewPostgresBackend(t.Context(), f.db.Pool, f.db.Schema)
		if err != nil {
			t.Fatalf("postgres backend: %v", err)
		}
		f.backend = b
	}
	keys, err := GenerateDevelopmentKeys()
	if err != nil {
		t.Fatal(err)
	}
	fast := password.InsecureFastParams()
	f.srv, err = New(Config{
		Backend:         f.backend,
		Keys:            keys,
		Logger:          slog.New(slog.NewJSONHandler(f.logs, nil)),
		Now:             f.clock.Now,
		HashParams:      &fast,
		MFAPolicy:       &mfa.Policy{Required: false},
		CheckpointEvery: 8,
		CheckpointFile:  filepath.Join(t.TempDir(), "checkpoints.jsonl"),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.ts = httptest.NewServer(f.srv.Handler())
	t.Cleanup(func() {
		f.ts.Close()
		if err := f.srv.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", f.logs.String())
		}
	})
	return f
}

// in signs a user up in an app and logs them in.
func (f *fixture) in(app, name string) (id, access string) {
	f.t.Helper()
	r := f.want(f.do("POST", "/v1/apps/"+app+"/users", "", map[string]string{"username": name, "password": pw(name)}), 201, "sign up "+name)
	l := f.want(f.do("POST", "/v1/apps/"+app+"/login", "", map[string]string{"username": name, "password": pw(name)}), 200, "log in "+name)
	return str(r, "id"), str(l, "access_token")
}

// consoleReads are the admin console's read routes and the resource type
// each audits its access under.
var consoleReads = map[string]string{
	"/v1/admin/audit/checkpoint": "audit_checkpoint",
	"/v1/admin/retention":        "retention_policy",
	"/v1/admin/holds":            "legal_hold",
	"/v1/admin/locked":           "account",
	"/v1/admin/break-glass":      "emergency_grant",
}

// TestConsoleTenantIsolation: the owner of one app reads none of another
// app's holds, grants, locked accounts, retention policy, checkpoint or
// audit entries, not even with the other app's paging cursor, and cannot
// release its holds or unlock its users; a member is refused; every read
// and every refusal is audited in the reader's app.
func TestConsoleTenantIsolation(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testConsoleTenantIsolation(t, consoleFixture(t, backend))
		})
	}
}

func testConsoleTenantIsolation(t *testing.T, f *fixture) {
	// App "clinic": an owner who uses every admin write route, and a
	// member who gets locked out.
	_, alice := f.in("clinic", "alice")
	bobID, bob := f.in("clinic", "bob")
	f.want(f.do("PUT", "/v1/admin/retention", alice, map[string]int{"days": 4000}), 200, "set retention")
	holdID := str(f.want(f.do("POST", "/v1/admin/holds", alice, map[string]string{"scope": "tenant", "reason": "clinic hold"}), 201, "place hold"), "id")
	f.want(f.do("POST", "/v1/admin/break-glass", alice, map[string]string{"reason": "clinic emergency"}), 200, "break glass")
	for path := range consoleReads {
		f.want(f.do("GET", path, bob, nil), 403, "member GET "+path)
	}
	for range 5 {
		f.do("POST", "/v1/apps/clinic/login", "", map[string]string{"username": "bob", "password": "not bob's password at all"})
	}
	page := f.want(f.do("GET", "/v1/admin/audit?limit=2", alice, nil), 200, "clinic audit")
	clinicCursor := str(page, "next_cursor")
	if clinicCursor == "" {
		t.Fatal("clinic's audit log has a single page")
	}
	if l := f.want(f.do("GET", "/v1/admin/locked", alice, nil), 200, "clinic locked").body["locked"].([]any); len(l) != 1 {
		t.Fatalf("clinic's locked accounts = %v, want bob", l)
	}
	cp := f.want(f.do("GET", "/v1/admin/audit/checkpoint", alice, nil), 200, "clinic checkpoint")
	if cp.body["checkpoint"] == nil {
		t.Fatalf("clinic has no checkpoint after %d entries: %s", 8, cp.raw)
	}

	// App "dental": its owner sees its own empty state only.
	zedID, zed := f.in("dental", "zed")
	if r := f.want(f.do("GET", "/v1/admin/audit/checkpoint", zed, nil), 200, "dental checkpoint"); r.body["checkpoint"] != nil {
		t.Errorf("dental, with fewer than 8 entries, has the checkpoint %s", r.raw)
	}
	for path, want := range map[string]string{
		"/v1/admin/holds":       `"holds":[]`,
		"/v1/admin/break-glass": `"grants":[]`,
		"/v1/admin/locked":      `"locked":[]`,
	} {
		if r := f.want(f.do("GET", path, zed, nil), 200, "dental GET "+path); !strings.Contains(r.raw, want) {
			t.Errorf("dental GET %s = %s, want %s", path, r.raw, want)
		}
	}
	if r := f.want(f.do("GET", "/v1/admin/retention", zed, nil), 200, "dental retention"); r.body["days"] == float64(4000) || r.body["version"] != float64(0) {
		t.Errorf("dental's retention = %s, clinic's policy leaked", r.raw)
	}
	r := f.want(f.do("GET", "/v1/admin/audit?cursor="+url.QueryEscape(clinicCursor), zed, nil), 200, "dental audit with clinic's cursor")
	for _, e := range r.body["events"].([]any) {
		if s := e.(map[string]any)["stream"]; s != "dental" {
			t.Fatalf("clinic's cursor showed dental's owner an entry of %v: %v", s, e)
		}
	}
	for _, bad := range []string{"x", "AAAA", strings.Repeat("A", 5000)} {
		f.want(f.do("GET", "/v1/admin/audit?cursor="+bad, zed, nil), 400, "a forged cursor")
	}

	// Nor can it release the other app's hold or unlock its member.
	if r := f.do("DELETE", "/v1/admin/holds/"+holdID, zed, nil); r.status < 400 {
		t.Errorf("dental's owner released clinic's hold: %d %s", r.status, r.raw)
	}
	if r := f.do("POST", "/v1/admin/users/"+bobID+"/unlock", zed, map[string]string{"reason": "not my app"}); r.status < 400 {
		t.Errorf("dental's owner unlocked clinic's member: %d %s", r.status, r.raw)
	}
	if h := f.want(f.do("GET", "/v1/admin/holds", alice, nil), 200, "clinic holds").body["holds"].([]any); len(h) != 1 {
		t.Errorf("clinic's holds after dental's attempt = %v", h)
	}
	if l := f.want(f.do("GET", "/v1/admin/locked", alice, nil), 200, "clinic locked").body["locked"].([]any); len(l) != 1 {
		t.Errorf("clinic's locked accounts after dental's attempt = %v", l)
	}

	// Every read is audited in the reader's app, none in the other's.
	for _, e := range f.events(zed, url.Values{"type": {typeAdminViewed}}) {
		if e["actor"] != zedID {
			t.Errorf("dental's log has an admin.viewed by %v", e["actor"])
		}
	}
	viewed := map[string]bool{}
	for _, e := range f.events(zed, url.Values{"type": {typeAdminViewed}, "actor": {zedID}}) {
		viewed[e["resource_type"].(string)] = e["success"] == true
	}
	for path, rt := range consoleReads {
		if !viewed[rt] {
			t.Errorf("GET %s by dental's owner is not audited as %s %s", path, typeAdminViewed, rt)
		}
	}
	for _, e := range f.events(alice, url.Values{"actor": {zedID}}) {
		t.Errorf("clinic's log has an entry of dental's owner: %v", e)
	}
	denied := map[string]bool{}
	for _, e := range f.events(alice, url.Values{"type": {audit.TypeAccessDenied}, "actor": {bobID}}) {
		denied[e["resource_type"].(string)] = true
	}
	for path, rt := range consoleReads {
		if !denied[rt] {
			t.Errorf("the member's refused GET %s is not audited as %s %s", path, audit.TypeAccessDenied, rt)
		}
	}
}

// TestConsoleLockedNamesOnlyTheLockedUser: a password lock is keyed by the
// name typed, so typing another user's id as the name locks that string,
// not the user; the console must not list the user as locked.
func TestConsoleLockedNamesOnlyTheLockedUser(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		_, owner := f.in(app, "olga")
		carolID, _ := f.in(app, "carol")
		for range 5 {
			f.do("POST", "/v1/apps/"+app+"/login", "", map[string]string{"username": carolID, "password": "a guess at nobody's password"})
		}
		f.want(f.do("POST", "/v1/apps/"+app+"/login", "", map[string]string{"username": "carol", "password": pw("carol")}), 200, "carol, who is not locked, logs in")
		list := f.want(f.do("GET", "/v1/admin/locked", owner, nil), 200, "locked").body["locked"].([]any)
		if len(list) != 1 {
			t.Fatalf("locked = %v, want the one name typed", list)
		}
		l := list[0].(map[string]any)
		if l["account"] != carolID || l["factor"] != "password" || l["user_id"] != nil || l["username"] != nil {
			t.Errorf("locked = %v, want account %s with no user: carol is not locked", l, carolID)
		}
	})
}
