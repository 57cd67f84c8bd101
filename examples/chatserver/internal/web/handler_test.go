package web_test

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chatsdk/compliance/examples/chatserver/internal/web"
)

// FuzzHandler: whatever the path, the handler answers 200 with an
// embedded file's exact bytes only for / and /ui/<file>, 404 otherwise,
// and always sends the policy headers.
func FuzzHandler(f *testing.F) {
	for _, p := range []string{"/", "/ui/app.js", "/ui/", "/ui/../web.go", "/ui/%2e%2e/web.go", "/ui//app.js", "/ui/index.html", "/ui/static/app.js", "/x", "/ui/app.js/"} {
		f.Add(p)
	}
	h := web.Handler(web.Config{})
	files := web.Files()
	f.Fuzz(func(t *testing.T, path string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t#?") {
			return
		}
		req := httptest.NewRequest(http.MethodGet, "http://example.test/", nil)
		req.URL.Path = path
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if got := rec.Header().Get("Content-Security-Policy"); got != web.ContentSecurityPolicy {
			t.Fatalf("%q: Content-Security-Policy = %q", path, got)
		}
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("%q: no nosniff", path)
		}
		name := ""
		switch {
		case path == "/":
			name = "index.html"
		case strings.HasPrefix(path, "/ui/") && path != "/ui/index.html":
			name = strings.TrimPrefix(path, "/ui/")
		}
		want, err := fs.ReadFile(files, name)
		served := name != "" && err == nil && !strings.Contains(name, "/") && fs.ValidPath(name)
		switch {
		case served && rec.Code != http.StatusOK:
			t.Fatalf("%q: status %d, want 200", path, rec.Code)
		case served && rec.Body.String() != string(want):
			t.Fatalf("%q: body is not %s", path, name)
		case !served && rec.Code != http.StatusNotFound:
			t.Fatalf("%q: status %d, want 404", path, rec.Code)
		}
	})
}
