package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// maxBody bounds a request body: 64 KiB. A longer body is answered 413
// body_too_large.
const maxBody = 64 << 10

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
// when it cannot: 413 body_too_large past maxBody; 400 bad_encoding for a
// body that is not UTF-8 or has a NUL in a string (Postgres text cannot
// hold one); 400 bad_request for anything but exactly one JSON value of
// v's shape, with no unknown fields.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
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
	return true
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
