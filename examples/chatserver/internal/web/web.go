// Package web is the chat server's pages: a chat client (sign-up, sign-in
// with a TOTP step, TOTP enrolment with a QR code, channels and messages,
// logout, an idle-logoff notice) and an admin console (the audit log, its
// verification status and latest checkpoint, retention policy and legal
// holds, locked accounts, emergency grants).
//
// The pages are plain HTML, CSS and JavaScript modules embedded in the
// binary: no build step, no CDN, no external font. They call the same
// JSON API as any other client.
//
// What they defend against:
//
//   - Script injection. Every string from the API (message text, user
//     names, audit fields, hold reasons) reaches the page through
//     textContent or an attribute set by name, never through innerHTML.
//     Behind that, a Content-Security-Policy (ContentSecurityPolicy) admits
//     scripts and styles from the server's own origin only, so an injected
//     inline script or event handler would not run either, and requires
//     Trusted Types, so Chromium refuses a string passed to innerHTML.
//   - Token theft from storage. The access and refresh tokens live in a
//     module-scoped variable of one script, never in localStorage,
//     sessionStorage or a cookie. A reload therefore signs the user out
//     (the page revokes its session as it unloads): the price of keeping
//     tokens where other scripts and extensions that read storage cannot
//     reach them, and of needing no CSRF defence.
//   - An unattended or abandoned screen. That long after its last request
//     (Config.IdleTimeout), the page logs itself off; logout, idle logoff
//     and leaving the page clear what it showed, so neither the screen nor
//     the back button shows a finished session's messages.
//   - Framing and leaks through the Referer header (frame-ancestors 'none',
//     Referrer-Policy: no-referrer), and content sniffing (nosniff).
//
// What they do not: the pages trust the server that serves them, and a
// compromised server can serve any script it likes.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
)

// ContentSecurityPolicy is sent with every page and asset. Images may be
// data: URLs for the enrolment's QR code, which the API sends as one.
// Trusted Types are required and no policy may be made, so a browser that
// enforces them (Chromium) refuses any string passed to innerHTML and the
// other HTML sinks, whoever's script passes it.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; " +
	"require-trusted-types-for 'script'; trusted-types 'none'"

// idleMeta is the element of index.html that tells the pages the server's
// idle timeout, in seconds; Handler writes the configured value into it.
const idleMeta = `<meta name="idle-timeout" content="0">`

// Config is what the pages need to know of the server. The zero Config is
// valid.
type Config struct {
	// IdleTimeout is the server's automatic logoff. A page clears what it
	// shows and says why once this long has passed since its last request,
	// without waiting for the user's next click to find the session over.
	// Zero means the page keeps no timer and learns of the logoff from the
	// API's session_idle answer only.
	IdleTimeout time.Duration
}

//go:embed static
var static embed.FS

// Files returns the embedded files, rooted at the directory that holds
// index.html. Tests read it to check the pages' source.
func Files() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the directory is embedded above
	}
	return sub
}

// contentTypes are the types of the files the pages are made of; a file
// of any other type is not served.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".png":  "image/png",
	".svg":  "image/svg+xml",
}

// asset is one file as served. An asset without an ETag is sent with
// Cache-Control: no-store.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the pages: index.html at / and every other file under
// /ui/. Mount it for GET / and GET /ui/. Unknown paths get a plain 404.
// Every answer carries the policy headers; index.html is not stored by
// caches (nor, in most browsers, kept for the back button), the other
// files are revalidated by ETag. It is safe for concurrent use.
func Handler(cfg Config) http.Handler {
	assets := load(cfg)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")

		name := "index.html"
		if r.URL.Path != "/" {
			rest, ok := strings.CutPrefix(r.URL.Path, "/ui/")
			if !ok || rest == "index.html" {
				http.NotFound(w, r)
				return
			}
			name = rest
		}
		a, ok := assets[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h.Set("Content-Type", a.contentType)
		if a.etag == "" {
			h.Set("Cache-Control", "no-store")
		} else {
			h.Set("Cache-Control", "no-cache")
			h.Set("ETag", a.etag)
			if r.Header.Get("If-None-Match") == a.etag {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(a.body)
	})
}

// load reads the embedded files of the known types into assets, keyed by
// their path under static/.
func load(cfg Config) map[string]asset {
	assets := map[string]asset{}
	err := fs.WalkDir(Files(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return nil
		}
		b, err := fs.ReadFile(Files(), p)
		if err != nil {
			return err
		}
		if p == "index.html" {
			assets[p] = asset{body: withIdleTimeout(b, cfg.IdleTimeout), contentType: ct} // no ETag: never stored
			return nil
		}
		sum := sha256.Sum256(b)
		assets[p] = asset{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic(err) // an embedded file that does not read is a build defect
	}
	return assets
}

// withIdleTimeout writes the idle timeout, in whole seconds, into the
// page's idleMeta element.
func withIdleTimeout(page []byte, d time.Duration) []byte {
	if !strings.Contains(string(page), idleMeta) {
		panic("web: index.html lost its idle-timeout element") // a build defect
	}
	secs := strconv.FormatInt(int64(d/time.Second), 10)
	return []byte(strings.Replace(string(page), idleMeta, `<meta name="idle-timeout" content="`+secs+`">`, 1))
}
