package web_test

import (
	"bytes"
	"encoding/base64"
	"image/png"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/chatsdk/compliance/examples/chatserver/internal/web"
)

const wantCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; require-trusted-types-for 'script'; trusted-types 'none'"

// TestHeaders: every page and asset carries the Content-Security-Policy,
// nosniff, no-referrer and its own content type; the page itself is not
// stored by caches, the assets are revalidated; paths outside the
// embedded files are 404 with the same policy, and the API keeps its JSON
// 404.
func TestHeaders(t *testing.T) {
	s := newServer(t, serverOptions{})
	if web.ContentSecurityPolicy != wantCSP {
		t.Fatalf("ContentSecurityPolicy = %q, want %q", web.ContentSecurityPolicy, wantCSP)
	}
	for path, want := range map[string]struct{ ctype, cache string }{
		"/":             {"text/html; charset=utf-8", "no-store"},
		"/ui/app.js":    {"text/javascript; charset=utf-8", "no-cache"},
		"/ui/api.js":    {"text/javascript; charset=utf-8", "no-cache"},
		"/ui/style.css": {"text/css; charset=utf-8", "no-cache"},
	} {
		res, err := http.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d, want 200", path, res.StatusCode)
		}
		for h, want := range map[string]string{
			"Content-Type":            want.ctype,
			"Cache-Control":           want.cache,
			"Content-Security-Policy": wantCSP,
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
			"X-Frame-Options":         "DENY",
		} {
			if got := res.Header.Get(h); got != want {
				t.Errorf("GET %s: %s = %q, want %q", path, h, got, want)
			}
		}
	}
	for _, path := range []string{"/ui/", "/ui/index.html", "/ui/../web.go", "/ui/nope.js", "/web.go", "/index.html"} {
		res, err := http.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, res.StatusCode)
		}
		if final := res.Request.URL.Path; strings.HasPrefix(final, "/ui/") && res.Header.Get("Content-Security-Policy") != wantCSP {
			t.Errorf("GET %s: the 404 has Content-Security-Policy %q", final, res.Header.Get("Content-Security-Policy"))
		}
	}
	res, err := http.Get(s.URL + "/v1/nope")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound || !strings.Contains(string(body), `"not_found"`) {
		t.Errorf("GET /v1/nope: %d %s, want the API's JSON 404", res.StatusCode, body)
	}
}

// TestIdleTimeoutInPage: the page learns the server's idle timeout, in
// seconds, from its idle-timeout meta element.
func TestIdleTimeoutInPage(t *testing.T) {
	for _, tc := range []struct {
		idle time.Duration
		want string
	}{
		{0, `<meta name="idle-timeout" content="0">`},
		{90 * time.Second, `<meta name="idle-timeout" content="90">`},
		{15 * time.Minute, `<meta name="idle-timeout" content="900">`},
	} {
		rec := httptest.NewRecorder()
		web.Handler(web.Config{IdleTimeout: tc.idle}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if body := rec.Body.String(); strings.Count(body, `name="idle-timeout"`) != 1 || !strings.Contains(body, tc.want) {
			t.Errorf("IdleTimeout %v: the page does not carry %s", tc.idle, tc.want)
		}
	}
	s := newServer(t, serverOptions{})
	res, err := http.Get(s.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), `<meta name="idle-timeout" content="900">`) {
		t.Error("the chat server's page does not carry its default idle timeout of 900s")
	}
}

// TestNoInlineCode: the HTML has no inline script, style attribute,
// style element or event-handler attribute, every script is a module from
// /ui/, and no script writes HTML or touches web storage or cookies.
func TestNoInlineCode(t *testing.T) {
	files := web.Files()
	pages, err := fs.Glob(files, "*.html")
	if err != nil || len(pages) == 0 {
		t.Fatalf("no HTML files embedded (%v)", err)
	}
	for _, name := range pages {
		src, err := fs.ReadFile(files, name)
		if err != nil {
			t.Fatal(err)
		}
		z := html.NewTokenizer(strings.NewReader(string(src)))
		inScript := false
		for {
			tt := z.Next()
			if tt == html.ErrorToken {
				break
			}
			tok := z.Token()
			switch tt {
			case html.StartTagToken, html.SelfClosingTagToken:
				attrs := map[string]string{}
				for _, a := range tok.Attr {
					attrs[a.Key] = a.Val
					if strings.HasPrefix(a.Key, "on") || a.Key == "style" {
						t.Errorf("%s: <%s %s=…>: inline code or style", name, tok.Data, a.Key)
					}
					if (a.Key == "href" || a.Key == "src") && strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.Val)), "javascript:") {
						t.Errorf("%s: <%s %s=javascript:…>", name, tok.Data, a.Key)
					}
				}
				switch tok.Data {
				case "style":
					t.Errorf("%s: <style> element", name)
				case "script":
					inScript = true
					if !strings.HasPrefix(attrs["src"], "/ui/") || attrs["type"] != "module" {
						t.Errorf("%s: <script %v>: want type=module src=/ui/…", name, tok.Attr)
					}
				case "link":
					if attrs["rel"] == "stylesheet" && !strings.HasPrefix(attrs["href"], "/ui/") {
						t.Errorf("%s: stylesheet %q is not one of ours", name, attrs["href"])
					}
				}
			case html.TextToken:
				if inScript && strings.TrimSpace(tok.Data) != "" {
					t.Errorf("%s: inline script text %q", name, tok.Data)
				}
			case html.EndTagToken:
				if tok.Data == "script" {
					inScript = false
				}
			}
		}
	}

	banned := regexp.MustCompile(`\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|localStorage|sessionStorage|document\.cookie|\.setAttribute\(\s*["']style|https?://`)
	scripts, _ := fs.Glob(files, "*.js")
	if len(scripts) == 0 {
		t.Fatal("no scripts embedded")
	}
	for _, name := range scripts {
		src, err := fs.ReadFile(files, name)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			if trimmed := strings.TrimSpace(line); strings.HasPrefix(trimmed, "//") || strings.HasPrefix(trimmed, "*") {
				continue
			}
			if m := banned.FindString(line); m != "" {
				t.Errorf("%s:%d uses %q: %s", name, i+1, m, strings.TrimSpace(line))
			}
		}
	}
	css, err := fs.ReadFile(files, "style.css")
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`@import|url\(\s*["']?https?:|@font-face`).Match(css) {
		t.Error("style.css loads something from elsewhere")
	}
}

// TestIdleErrorCode: the API tells an idle session apart from a bad
// token, on an authenticated route and on refresh, so the pages can show
// the idle-logoff notice.
func TestIdleErrorCode(t *testing.T) {
	s := newServer(t, serverOptions{accessTTL: time.Hour})
	if st, _ := s.api(t, "POST", "/v1/apps/idle/users", "", map[string]string{"username": "ida", "password": "plum orchard lantern river"}); st != http.StatusCreated {
		t.Fatalf("signup: %d", st)
	}
	st, tok := s.api(t, "POST", "/v1/apps/idle/login", "", map[string]string{"username": "ida", "password": "plum orchard lantern river"})
	if st != http.StatusOK {
		t.Fatalf("login: %d", st)
	}
	access, refresh := tok["access_token"].(string), tok["refresh_token"].(string)
	s.clock.Advance(16 * time.Minute)
	if st, body := s.api(t, "POST", "/v1/channels", access, map[string]string{"name": "late"}); st != http.StatusUnauthorized || body["error"] != "session_idle" {
		t.Errorf("request after 16 idle minutes: %d %v, want 401 session_idle", st, body)
	}
	if st, body := s.api(t, "POST", "/v1/auth/refresh", "", map[string]string{"refresh_token": refresh}); st != http.StatusUnauthorized || body["error"] != "session_idle" {
		t.Errorf("refresh after 16 idle minutes: %d %v, want 401 session_idle", st, body)
	}
	if st, body := s.api(t, "POST", "/v1/channels", "not-a-token", map[string]string{"name": "x"}); st != http.StatusUnauthorized || body["error"] != "invalid_token" {
		t.Errorf("a bad token: %d %v, want 401 invalid_token", st, body)
	}
}

// TestConsoleRoutes: the read routes of the admin console answer the
// owner with what the write routes did, and refuse a member.
func TestConsoleRoutes(t *testing.T) {
	s := newServer(t, serverOptions{})
	login := func(user, pw string) string {
		t.Helper()
		if st, _ := s.api(t, "POST", "/v1/apps/ops/users", "", map[string]string{"username": user, "password": pw}); st != http.StatusCreated {
			t.Fatalf("sign-up of %s: %d", user, st)
		}
		st, tok := s.api(t, "POST", "/v1/apps/ops/login", "", map[string]string{"username": user, "password": pw})
		if st != http.StatusOK {
			t.Fatalf("login of %s: %d", user, st)
		}
		return tok["access_token"].(string)
	}
	owner := login("olga", "granite willow candle ferry")
	member := login("mike", "saffron tunnel pebble orbit")

	routes := []string{"/v1/admin/audit/checkpoint", "/v1/admin/retention", "/v1/admin/holds", "/v1/admin/locked", "/v1/admin/break-glass"}
	for _, r := range routes {
		if st, body := s.api(t, "GET", r, member, nil); st != http.StatusForbidden {
			t.Errorf("member GET %s: %d %v, want 403", r, st, body)
		}
		if st, body := s.api(t, "GET", r, "", nil); st != http.StatusUnauthorized {
			t.Errorf("anonymous GET %s: %d %v, want 401", r, st, body)
		}
	}

	// Retention and holds.
	if st, body := s.api(t, "PUT", "/v1/admin/retention", owner, map[string]int{"days": 4000}); st != http.StatusOK {
		t.Fatalf("set retention: %d %v", st, body)
	}
	if _, body := s.api(t, "GET", "/v1/admin/retention", owner, nil); body["days"] != float64(4000) {
		t.Errorf("retention = %v, want 4000 days", body)
	}
	st, hold := s.api(t, "POST", "/v1/admin/holds", owner, map[string]string{"scope": "tenant", "reason": "litigation 2026-17"})
	if st != http.StatusCreated {
		t.Fatalf("place hold: %d %v", st, hold)
	}
	_, holds := s.api(t, "GET", "/v1/admin/holds", owner, nil)
	if list, _ := holds["holds"].([]any); len(list) != 1 || list[0].(map[string]any)["reason"] != "litigation 2026-17" || list[0].(map[string]any)["id"] != hold["id"] {
		t.Errorf("holds = %v", holds)
	}
	if st, _ := s.api(t, "DELETE", "/v1/admin/holds/"+hold["id"].(string), owner, nil); st != http.StatusNoContent {
		t.Fatalf("release hold: %d", st)
	}
	if _, holds := s.api(t, "GET", "/v1/admin/holds", owner, nil); len(holds["holds"].([]any)) != 0 {
		t.Errorf("holds after release = %v", holds)
	}

	// Locked accounts: the member locks, is listed, is unlocked.
	for range 5 {
		s.api(t, "POST", "/v1/apps/ops/login", "", map[string]string{"username": "mike", "password": "not the password at all"})
	}
	_, locked := s.api(t, "GET", "/v1/admin/locked", owner, nil)
	list, _ := locked["locked"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["username"] != "mike" || list[0].(map[string]any)["user_id"] == "" {
		t.Fatalf("locked = %v", locked)
	}
	uid := list[0].(map[string]any)["user_id"].(string)
	if st, _ := s.api(t, "POST", "/v1/admin/users/"+uid+"/unlock", owner, map[string]string{"reason": "called the help desk"}); st != http.StatusNoContent {
		t.Fatalf("unlock: %d", st)
	}
	if _, locked := s.api(t, "GET", "/v1/admin/locked", owner, nil); len(locked["locked"].([]any)) != 0 {
		t.Errorf("locked after unlock = %v", locked)
	}

	// Emergency grants.
	st, grant := s.api(t, "POST", "/v1/admin/break-glass", owner, map[string]string{"reason": "patient in ED, record needed"})
	if st != http.StatusOK {
		t.Fatalf("break-glass: %d %v", st, grant)
	}
	_, grants := s.api(t, "GET", "/v1/admin/break-glass", owner, nil)
	if gl, _ := grants["grants"].([]any); len(gl) != 1 || gl[0].(map[string]any)["id"] != grant["grant_id"] || gl[0].(map[string]any)["reason"] != "patient in ED, record needed" {
		t.Errorf("grants = %v", grants)
	}
	s.clock.Advance(5 * time.Hour) // past any grant's end (at most 4h)
	owner = func() string {
		_, tok := s.api(t, "POST", "/v1/apps/ops/login", "", map[string]string{"username": "olga", "password": "granite willow candle ferry"})
		return tok["access_token"].(string)
	}()
	if _, grants := s.api(t, "GET", "/v1/admin/break-glass", owner, nil); len(grants["grants"].([]any)) != 0 {
		t.Errorf("grants after expiry = %v", grants)
	}

	// The checkpoint route answers null or a checkpoint with a hex head.
	_, cp := s.api(t, "GET", "/v1/admin/audit/checkpoint", owner, nil)
	if c, ok := cp["checkpoint"].(map[string]any); ok {
		if h, _ := c["head"].(string); len(h) != 64 {
			t.Errorf("checkpoint head = %q", h)
		}
	} else if _, present := cp["checkpoint"]; !present {
		t.Errorf("checkpoint answer = %v", cp)
	}
}

// TestEnrolmentQRCode: the enrolment answer carries the QR code as a PNG
// data: URL, the only kind of URL the pages show as the code.
func TestEnrolmentQRCode(t *testing.T) {
	s := newServer(t, serverOptions{})
	s.api(t, "POST", "/v1/apps/qr/users", "", map[string]string{"username": "quinn", "password": "marble kettle sparrow dune"})
	_, tok := s.api(t, "POST", "/v1/apps/qr/login", "", map[string]string{"username": "quinn", "password": "marble kettle sparrow dune"})
	st, body := s.api(t, "POST", "/v1/mfa/totp", tok["access_token"].(string), nil)
	if st != http.StatusOK {
		t.Fatalf("enrol: %d %v", st, body)
	}
	url, _ := body["qr_png"].(string)
	b64, ok := strings.CutPrefix(url, "data:image/png;base64,")
	if !ok {
		t.Fatalf("qr_png = %.40q…, want a PNG data: URL", url)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("qr_png is not base64: %v", err)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(raw))
	if err != nil || cfg.Width < 100 {
		t.Errorf("qr_png is not a usable PNG: %v, %dx%d", err, cfg.Width, cfg.Height)
	}
}
