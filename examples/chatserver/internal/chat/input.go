package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// maxBody bounds a request body: 64 KiB. A longer body is answered 413
// body_too_large.
const maxBody = 64 << 10

// maxIDLen bounds an id a client names in a body (the server's own are 32
// bytes), so that what the request touched fits its audit entry.
const maxIDLen = 128

// checkInput refuses, before any route runs, a request whose path or query
// string is not valid UTF-8 or holds a control character.
// Postgres text holds neither NUL nor invalid UTF-8, and the audit log
// refuses both, so such input used to surface as 500 (a failed query) or
// 503 (an unrecordable request) instead of the client's error. A refused
// request touches no data and, like an unknown path, is not audited.
func (s *Server) checkInput(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, msg := inputProblem(r)
		if code == "" {
			next.ServeHTTP(w, r)
			return
		}
		if s.cfg.TLS {
			w.Header().Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		s.log.Info("request refused before routing", "method", clip(r.Method, 16), "error", code)
		writeError(w, r, http.StatusBadRequest, code, msg)
	})
}

// inputProblem returns the error code and message checkInput answers r
// with, or "" when r may go on.
func inputProblem(r *http.Request) (code, msg string) {
	if !cleanText(r.URL.Path) {
		return "bad_path", "the path must be UTF-8 without control characters"
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return "bad_query", "the query string is not well formed"
	}
	for k, vs := range q {
		if !cleanText(k) || !cleanText(strings.Join(vs, "")) {
			return "bad_query", "query parameters must be UTF-8 without control characters"
		}
	}
	return "", ""
}

// cleanText reports whether s is valid UTF-8 without C0 controls or DEL.
func cleanText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// decode reads a JSON body into v, answering the client's error itself
// when it cannot: 415 unsupported_media_type when the request declares a
// Content-Type other than application/json (a form or text/plain, which a
// page on another site can make a browser send without asking); 413
// body_too_large past maxBody; 400 bad_encoding for a body that is not
// UTF-8 or has a NUL in a string (Postgres text cannot hold one); 400
// bad_request for anything but exactly one JSON value of v's shape, with
// no unknown fields and no key twice in an object (which value counts
// would depend on the parser). A request without a Content-Type is read
// as JSON.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeError(w, r, http.StatusUnsupportedMediaType, "unsupported_media_type", "a request body is JSON, sent as application/json")
			return false
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, r, http.StatusRequestEntityTooLarge, "body_too_large", "a request body is at most 64 KiB")
		return false
	case err != nil:
		writeError(w, r, http.StatusBadRequest, "bad_request", "the body could not be read")
		return false
	case !utf8.Valid(body):
		writeError(w, r, http.StatusBadRequest, "bad_encoding", "the body must be UTF-8")
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, r, http.StatusBadRequest, "bad_request", "the body is not the expected JSON")
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeError(w, r, http.StatusBadRequest, "bad_request", "the body holds more than one JSON value")
		return false
	}
	if holdsNUL(body) {
		writeError(w, r, http.StatusBadRequest, "bad_encoding", "strings in the body must not hold NUL characters")
		return false
	}
	if repeatsKey(body) {
		writeError(w, r, http.StatusBadRequest, "bad_request", "an object of the body names a key twice")
		return false
	}
	return true
}

// repeatsKey reports whether an object of the JSON document body, at any
// depth, names a key twice. body has been decoded once already, so it is
// one well-formed value.
func repeatsKey(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		keys   map[string]bool
		object bool
		key    bool // the next token of an object is a key
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if top != nil && top.object {
					top.key = true // the object or array is a value
				}
				stack = append(stack, frame{object: d == '{', key: d == '{', keys: map[string]bool{}})
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if top == nil || !top.object {
			continue
		}
		if top.key {
			k, _ := tok.(string)
			if top.keys[k] {
				return true
			}
			top.keys[k] = true
		}
		top.key = !top.key
	}
}

// usernameOK reports whether u is a user name that shows as itself:
// valid UTF-8 in Unicode normal form C, no control, format (bidi
// overrides, zero-width joiners), private-use or unassigned characters,
// no space but U+0020, and letters from one script, or from Latin and the
// scripts Chinese, Japanese and Korean writing mixes with Han (after
// Unicode TR 39's "highly restrictive" level). So "jose" written with a
// decomposed é, or "admin" with a Cyrillic а, is not a second account
// that looks like the first.
//
// TODO: names of one script that look like another's ("аре" all Cyrillic
// against Latin "ape") pass; refusing those needs the confusables data of
// TR 39, which the module does not carry.
func usernameOK(u string) bool {
	if !utf8.ValidString(u) || !norm.NFC.IsNormalString(u) {
		return false
	}
	scripts := map[string]bool{}
	for _, r := range u {
		if !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S) && r != ' ' {
			return false
		}
		for name, table := range unicode.Scripts {
			if name != "Common" && name != "Inherited" && unicode.Is(table, r) {
				scripts[name] = true
				break
			}
		}
	}
	if len(scripts) <= 1 {
		return true
	}
	for _, allowed := range [][]string{{"Latin", "Han", "Hiragana", "Katakana"}, {"Latin", "Han", "Bopomofo"}, {"Latin", "Han", "Hangul"}} {
		all := true
		for s := range scripts {
			all = all && slices.Contains(allowed, s)
		}
		if all {
			return true
		}
	}
	return false
}

// holdsNUL reports whether a string of the JSON document body, a key or a
// value, holds a NUL character (written \u0000).
func holdsNUL(body []byte) bool {
	if !bytes.Contains(body, []byte(`\u0000`)) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if s, ok := tok.(string); ok && strings.IndexByte(s, 0) >= 0 {
			return true
		}
	}
}
