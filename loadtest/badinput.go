package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// badCase is one malformed or hostile request and the answer it must get.
type badCase struct {
	name         string
	method, path string
	token        string
	body         any // JSON-encoded unless []byte
	header       http.Header
	// status and code are the answer wanted. A status below 300 means the
	// input is valid (a user name with quotes is a user name): then
	// echo, when set, must come back verbatim in the body.
	status int
	code   string
	echo   string
	// plain marks an answer net/http gives before any handler runs (431),
	// which is text, not the API's JSON.
	plain bool
}

// leaks are what an answer must never show: stack traces, panics, driver
// errors, SQL.
var leaks = []string{"goroutine ", "panic", ".go:", "runtime/", "SQLSTATE", "pgx", "pgconn", "syntax error", "ERROR:"}

// sqlMeta are SQL metacharacter payloads, put in every field.
var sqlMeta = []string{
	`' OR '1'='1`,
	`'; DROP TABLE chat_users; --`,
	`" OR ""="`,
	`\'; SELECT pg_sleep(20); --`,
	`%' AND 1=1 --`,
	`$1) OR (1=1`,
	`'||(SELECT version())||'`,
}

// badInput sends every bad case to a fresh server and checks each answer:
// the status and error code wanted, a JSON error body, nothing leaked; and
// afterwards the server is still up, logged no panic and still has its
// tables.
func badInput(ctx context.Context, e *env, res *result) {
	srv, err := e.start(ctx)
	if err != nil {
		res.failf("start: %v", err)
		return
	}
	defer srv.stop()
	cl := newAPI(newTargets(srv.base), nil, 1<<40)
	call := func(method, path, token string, body any) reply {
		r, err := cl.call(ctx, "setup", method, path, token, body)
		if err != nil {
			res.failf("setup %s %s: %v", method, path, err)
		}
		return r
	}

	// An owner, a member, a channel, tokens to forge from.
	const app = "bad"
	owner := map[string]string{"username": "owner", "password": "correct horse battery staple " + randHex(6)}
	call("POST", "/v1/apps/"+app+"/users", "", owner)
	login := call("POST", "/v1/apps/"+app+"/login", "", owner)
	tok, refresh := login.field("access_token"), login.field("refresh_token")
	member := call("POST", "/v1/apps/"+app+"/users", "", map[string]string{"username": "member", "password": "violet maple harbor lantern " + randHex(6)}).field("id")
	ch := call("POST", "/v1/channels", tok, map[string]string{"name": "ward"}).field("id")
	if tok == "" || ch == "" || member == "" {
		res.failf("setup failed: token %t, channel %q, member %q", tok != "", ch, member)
		return
	}
	var usersBefore int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM chat_users`).Scan(&usersBefore); err != nil {
		res.failf("count users: %v", err)
	}

	cases := badCases(app, tok, refresh, ch, member)
	res.notef("%d bad requests", len(cases))
	failed := 0
	for _, c := range cases {
		if msg := runBadCase(ctx, cl, srv.base, c); msg != "" {
			failed++
			res.failf("%s: %s", c.name, msg)
		}
	}

	// Still up, no panic, tables intact, the chain still verifies.
	if r, err := cl.call(ctx, "check", "GET", "/healthz", "", nil); err != nil || r.status != 200 {
		res.failf("healthz after the bad input: %v %d", err, r.status)
	}
	if !srv.alive() {
		res.failf("the server died")
	}
	var usersAfter int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM chat_users`).Scan(&usersAfter); err != nil || usersAfter < usersBefore {
		res.failf("chat_users after the bad input: %d rows (%v), before %d", usersAfter, err, usersBefore)
	}
	if err := srv.stop(); err != nil {
		res.failf("stop: %v", err)
	}
	verifyChains(ctx, e, false, res)
	checkLogs(e, []secret{{"a password", owner["password"]}, {"an access token", tok}, {"a refresh token", refresh}}, res)
	res.notef("%d of %d answered as wanted", len(cases)-failed, len(cases))
}

// runBadCase sends c and returns what was wrong with the answer, or "".
func runBadCase(ctx context.Context, cl *api, base string, c badCase) string {
	start := time.Now()
	r, err := cl.callAt(ctx, base, "bad", c.method, c.path, c.token, c.body, c.header)
	took := time.Since(start)
	if err != nil {
		return fmt.Sprintf("no answer: %v", err)
	}
	body := string(r.body)
	for k := range r.header {
		if strings.EqualFold(k, "Set-Cookie") {
			return fmt.Sprintf("the answer sets a cookie (a header injected?): %q", r.header.Values(k))
		}
	}
	for _, l := range leaks {
		if strings.Contains(body, l) {
			return fmt.Sprintf("the answer leaks %q: %.200s", l, body)
		}
	}
	if took > 10*time.Second {
		return fmt.Sprintf("took %s (an injected pg_sleep?)", took)
	}
	if r.status != c.status {
		return fmt.Sprintf("status %d, want %d: %.200s", r.status, c.status, body)
	}
	if c.status < 300 {
		if c.echo != "" && !strings.Contains(body, c.echo) && !strings.Contains(body, jsonString(c.echo)) {
			return fmt.Sprintf("the value did not come back verbatim: %.200s", body)
		}
		return ""
	}
	if c.plain {
		return ""
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Sprintf("Content-Type %q, want JSON: %.200s", ct, body)
	}
	var eb struct{ Error, Message string }
	if err := json.Unmarshal(r.body, &eb); err != nil || eb.Message == "" {
		return fmt.Sprintf("not the API's error body: %.200s", body)
	}
	if eb.Error != c.code {
		return fmt.Sprintf("error %q, want %q (%s)", eb.Error, c.code, eb.Message)
	}
	return ""
}

// jsonString is s as encoding/json writes it inside a string, without the
// quotes.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return strings.Trim(string(bytes.ReplaceAll(b, []byte(`\u0026`), []byte("&"))), `"`)
}

func badCases(app, tok, refresh, ch, member string) []badCase {
	users, loginP := "/v1/apps/"+app+"/users", "/v1/apps/"+app+"/login"
	msgs := "/v1/channels/" + ch + "/messages"
	pw := "a long enough passphrase " + randHex(4)
	cases := []badCase{
		// Malformed JSON.
		{name: "truncated JSON", method: "POST", path: users, body: []byte(`{"username":`), status: 400, code: "bad_request"},
		{name: "empty body", method: "POST", path: loginP, body: []byte(``), status: 400, code: "bad_request"},
		{name: "JSON array", method: "POST", path: "/v1/channels", token: tok, body: []byte(`[]`), status: 400, code: "bad_request"},
		{name: "JSON string", method: "POST", path: msgs, token: tok, body: []byte(`"hello"`), status: 400, code: "bad_request"},
		{name: "wrong type", method: "POST", path: users, body: []byte(`{"username":5,"password":"x"}`), status: 400, code: "bad_request"},
		{name: "unknown field", method: "POST", path: msgs, token: tok, body: []byte(`{"text":"a","admin":true}`), status: 400, code: "bad_request"},
		{name: "two JSON values", method: "POST", path: msgs, token: tok, body: []byte(`{"text":"a"}{"text":"b"}`), status: 400, code: "bad_request"},
		{name: "trailing garbage", method: "POST", path: msgs, token: tok, body: []byte(`{"text":"a"} ; DROP`), status: 400, code: "bad_request"},
		{name: "null body", method: "POST", path: users, body: []byte(`null`), status: 400, code: "bad_username"},
		{name: "form encoding", method: "POST", path: loginP, body: []byte(`username=owner&password=x`), status: 400, code: "bad_request"},
		{name: "deep nesting", method: "POST", path: msgs, token: tok, body: []byte(strings.Repeat("[", 20000) + strings.Repeat("]", 20000)), status: 400, code: "bad_request"},
		{name: "number overflow", method: "PUT", path: "/v1/admin/retention", token: tok, body: []byte(`{"days":1e400}`), status: 400, code: "bad_request"},
		{name: "huge integer", method: "PUT", path: "/v1/admin/retention", token: tok, body: []byte(`{"days":99999999999999999999999}`), status: 400, code: "bad_request"},
		{name: "negative days", method: "PUT", path: "/v1/admin/retention", token: tok, body: map[string]int{"days": -1}, status: 400, code: "bad_days"},

		{name: "fractional days", method: "PUT", path: "/v1/admin/retention", token: tok, body: []byte(`{"days":1.5}`), status: 400, code: "bad_request"},
		{name: "days past int64", method: "PUT", path: "/v1/admin/retention", token: tok, body: []byte(`{"days":1e300}`), status: 400, code: "bad_request"},
		{name: "deep nesting in an object", method: "POST", path: "/v1/channels", token: tok, body: []byte(`{"name":` + strings.Repeat(`{"a":`, 10000) + `1` + strings.Repeat(`}`, 10000) + `}`), status: 400, code: "bad_request"},
		{name: "a key twice", method: "POST", path: loginP, body: []byte(`{"username":"nobody","username":"owner","password":"x"}`), status: 400, code: "bad_request"},
		{name: "a key twice in a nested object", method: "PUT", path: "/v1/admin/retention", token: tok, body: []byte(`{"days":30,"channels":{"` + ch + `":5,"` + ch + `":40}}`), status: 400, code: "bad_request"},
		{name: "JSON sent as text/plain", method: "POST", path: loginP, body: []byte(`{"username":"owner","password":"x"}`), header: http.Header{"Content-Type": {"text/plain"}}, status: 415, code: "unsupported_media_type"},
		{name: "JSON sent as a form", method: "POST", path: users, body: []byte(`{"username":"form","password":"` + pw + `"}`), header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, status: 415, code: "unsupported_media_type"},

		// User names that look like another.
		{name: "a decomposed é in a user name", method: "POST", path: users, body: map[string]string{"username": "owne\u0301r", "password": pw}, status: 400, code: "bad_username"},
		{name: "a Cyrillic o in a Latin user name", method: "POST", path: users, body: map[string]string{"username": "\u043ewner", "password": pw}, status: 400, code: "bad_username"},
		{name: "a bidi override in a user name", method: "POST", path: users, body: map[string]string{"username": "owner\u202e", "password": pw}, status: 400, code: "bad_username"},
		{name: "a zero-width space in a user name", method: "POST", path: users, body: map[string]string{"username": "own\u200ber", "password": pw}, status: 400, code: "bad_username"},

		// CR LF where a value could reach a header: refused in names, kept
		// as text (JSON-escaped, never a header) in a channel name.
		{name: "CR LF in a user name", method: "POST", path: users, body: map[string]string{"username": "x\r\nSet-Cookie: injected=1", "password": pw}, status: 400, code: "bad_username"},
		{name: "CR LF in a channel name", method: "POST", path: "/v1/channels", token: tok, body: map[string]string{"name": "x\r\nSet-Cookie: injected=1"}, status: 201},
		{name: "CR LF in a path id", method: "GET", path: "/v1/channels/x%0d%0aSet-Cookie:%20injected=1/messages", token: tok, status: 400, code: "bad_path"},
		{name: "CR LF in a query", method: "GET", path: "/v1/admin/audit?actor=x%0d%0aSet-Cookie:%20injected=1", token: tok, status: 400, code: "bad_query"},

		// Oversized bodies (the limit is 64 KiB).
		{name: "body of 64 KiB + 1", method: "POST", path: msgs, token: tok, body: []byte(`{"text":"` + strings.Repeat("a", 64<<10) + `"}`), status: 413, code: "body_too_large"},
		{name: "body of 1 MiB", method: "POST", path: users, body: []byte(`{"username":"` + strings.Repeat("a", 1<<20) + `"}`), status: 413, code: "body_too_large"},
		{name: "message over 16 KiB", method: "POST", path: msgs, token: tok, body: map[string]string{"text": strings.Repeat("a", 16<<10+1)}, status: 400, code: "bad_text"},
		{name: "user name over 64 bytes", method: "POST", path: users, body: map[string]string{"username": strings.Repeat("a", 65), "password": pw}, status: 400, code: "bad_username"},

		// Invalid UTF-8 and NUL.
		{name: "invalid UTF-8 in a message", method: "POST", path: msgs, token: tok, body: []byte("{\"text\":\"\xc3\x28\"}"), status: 400, code: "bad_encoding"},
		{name: "invalid UTF-8 in a user name", method: "POST", path: users, body: []byte("{\"username\":\"\xff\",\"password\":\"" + pw + "\"}"), status: 400, code: "bad_encoding"},
		{name: "invalid UTF-8 in a password", method: "POST", path: loginP, body: []byte("{\"username\":\"owner\",\"password\":\"\xfe\xff\"}"), status: 400, code: "bad_encoding"},
		{name: "overlong UTF-8 in a channel name", method: "POST", path: "/v1/channels", token: tok, body: []byte("{\"name\":\"\xc0\xaf\"}"), status: 400, code: "bad_encoding"},
		{name: "lone surrogate escape", method: "POST", path: msgs, token: tok, body: []byte(`{"text":"\ud800"}`), status: 201},
		{name: "NUL in a user name", method: "POST", path: users, body: []byte(`{"username":"nul\u0000name","password":"` + pw + `"}`), status: 400, code: "bad_encoding"},
		{name: "NUL in a message", method: "POST", path: msgs, token: tok, body: []byte(`{"text":"a\u0000b"}`), status: 400, code: "bad_encoding"},
		{name: "NUL in a hold reason", method: "POST", path: "/v1/admin/holds", token: tok, body: []byte(`{"scope":"channel","id":"` + ch + `","reason":"\u0000"}`), status: 400, code: "bad_encoding"},
		{name: "invalid UTF-8 in a path id", method: "GET", path: "/v1/channels/%ff%fe/messages", token: tok, status: 400, code: "bad_path"},
		{name: "NUL in a path id", method: "DELETE", path: "/v1/admin/holds/%00", token: tok, status: 400, code: "bad_path"},
		{name: "invalid UTF-8 in an app", method: "POST", path: "/v1/apps/%c3%28/login", body: map[string]string{"username": "a", "password": "b"}, status: 400, code: "bad_path"},
		{name: "NUL in an app", method: "POST", path: "/v1/apps/a%00/users", body: map[string]string{"username": "a", "password": pw}, status: 400, code: "bad_path"},
		{name: "invalid UTF-8 in a query", method: "GET", path: "/v1/admin/audit?actor=%ff", token: tok, status: 400, code: "bad_query"},
		{name: "NUL in a query", method: "GET", path: "/v1/admin/audit?type=%00", token: tok, status: 400, code: "bad_query"},
		{name: "malformed query escape", method: "GET", path: "/v1/admin/audit?actor=%zz", token: tok, status: 400, code: "bad_query"},
		{name: "invalid UTF-8 User-Agent", method: "GET", path: msgs, token: tok, header: http.Header{"User-Agent": {"probe/\xff"}}, status: 200}, // the audit log keeps its valid prefix

		// Huge headers: past the server's 64 KiB limit net/http answers
		// 431 itself; below it the handlers see them.
		{name: "128 KiB header", method: "GET", path: msgs, token: tok, header: http.Header{"X-Pad": {strings.Repeat("a", 128<<10)}}, status: 431, plain: true},
		{name: "40 KiB bearer token", method: "GET", path: msgs, token: strings.Repeat("a", 40<<10), status: 401, code: "invalid_token"},
		{name: "many headers", method: "GET", path: msgs, token: tok, header: manyHeaders(1000), status: 200},

		// Tokens.
		{name: "no token", method: "GET", path: msgs, status: 401, code: "invalid_token"},
		{name: "empty bearer", method: "GET", path: msgs, header: http.Header{"Authorization": {"Bearer "}}, status: 401, code: "invalid_token"},
		{name: "basic auth", method: "GET", path: msgs, header: http.Header{"Authorization": {"Basic b3duZXI6eA=="}}, status: 401, code: "invalid_token"},
		{name: "garbage token", method: "GET", path: msgs, token: "not.a.token", status: 401, code: "invalid_token"},
		{name: "truncated token", method: "GET", path: msgs, token: tok[:len(tok)/2], status: 401, code: "invalid_token"},
		{name: "token without signature", method: "GET", path: msgs, token: tok[:strings.LastIndexByte(tok, '.')+1], status: 401, code: "invalid_token"},
		{name: "forged signature", method: "GET", path: msgs, token: flipLast(tok), status: 401, code: "invalid_token"},
		{name: "forged claims", method: "GET", path: msgs, token: forgeClaims(tok), status: 401, code: "invalid_token"},
		{name: "alg none", method: "GET", path: msgs, token: algNone(tok), status: 401, code: "invalid_token"},
		{name: "alg HS256 with a guessed key", method: "GET", path: msgs, token: algHS256(tok), status: 401, code: "invalid_token"},
		{name: "invalid UTF-8 in a token", method: "GET", path: msgs, token: tok + "\xff", status: 401, code: "invalid_token"},
		{name: "truncated refresh token", method: "POST", path: "/v1/auth/refresh", body: map[string]string{"refresh_token": refresh[:len(refresh)/2]}, status: 401, code: "invalid_token"},
		{name: "forged refresh token", method: "POST", path: "/v1/auth/refresh", body: map[string]string{"refresh_token": flipLast(refresh)}, status: 401, code: "invalid_token"},
		{name: "access token as refresh token", method: "POST", path: "/v1/auth/refresh", body: map[string]string{"refresh_token": tok}, status: 401, code: "invalid_token"},

		// Path traversal in ids.
		{name: "encoded traversal in a channel id", method: "GET", path: "/v1/channels/..%2F..%2Fetc%2Fpasswd/messages", token: tok, status: 404, code: "not_found"},
		{name: "encoded dot segment as a channel id", method: "GET", path: "/v1/channels/%2e%2e/messages", token: tok, status: 404, code: "not_found"},
		{name: "traversal in a hold id", method: "DELETE", path: "/v1/admin/holds/..%2F..%2Fretention_holds", token: tok, status: 404, code: "not_found"},
		{name: "traversal in a user id", method: "POST", path: "/v1/admin/users/..%2F" + member + "/unlock", token: tok, body: map[string]string{"reason": "x"}, status: 404, code: "not_found"},
		{name: "traversal in a member id", method: "POST", path: "/v1/channels/" + ch + "/members", token: tok, body: map[string]string{"user_id": "../../" + member}, status: 404, code: "not_found"},
		{name: "traversal in an app", method: "POST", path: "/v1/apps/..%2Fother/users", body: map[string]string{"username": "x", "password": pw}, status: 400, code: "bad_app"},
		{name: "backslash traversal in an id", method: "GET", path: "/v1/channels/..%5C..%5Cx/messages", token: tok, status: 404, code: "not_found"},
		{name: "an id of 4 KiB", method: "GET", path: "/v1/channels/" + strings.Repeat("a", 4096) + "/messages", token: tok, status: 404, code: "not_found"},
		{name: "a channel id of 10k characters", method: "POST", path: "/v1/channels/" + strings.Repeat("é", 5000) + "/messages", token: tok, body: map[string]string{"text": "x"}, status: 404, code: "not_found"},
		{name: "a hold id of 10k characters", method: "DELETE", path: "/v1/admin/holds/" + strings.Repeat("h", 10000), token: tok, status: 404, code: "not_found"},
		{name: "a user id of 10k characters", method: "POST", path: "/v1/admin/users/" + strings.Repeat("u", 10000) + "/unlock", token: tok, body: map[string]string{"reason": "x"}, status: 404, code: "not_found"},
		{name: "a member id of 10k characters", method: "POST", path: "/v1/channels/" + ch + "/members", token: tok, body: map[string]string{"user_id": strings.Repeat("m", 10000)}, status: 404, code: "not_found"},
		{name: "a held channel id of 10k characters", method: "POST", path: "/v1/admin/holds", token: tok, body: map[string]string{"scope": "channel", "id": strings.Repeat("c", 10000), "reason": "x"}, status: 400, code: "bad_id"},
		{name: "a retention channel of 10k characters", method: "PUT", path: "/v1/admin/retention", token: tok, body: map[string]any{"days": 30, "channels": map[string]int{strings.Repeat("c", 10000): 5}}, status: 404, code: "not_found"},
		{name: "an audit filter of 10k characters", method: "GET", path: "/v1/admin/audit?resource_id=" + strings.Repeat("r", 10000), token: tok, status: 200, echo: `"events":[]`},
	}

	// SQL metacharacters in every field: valid text is stored and comes
	// back verbatim; an id or an app that matches nothing is 404 or 400.
	for i, p := range sqlMeta {
		q := url.PathEscape(p)
		cases = append(cases,
			badCase{name: fmt.Sprintf("sql %d in a user name", i), method: "POST", path: users, body: map[string]string{"username": fmt.Sprint(p, i), "password": pw}, status: 201},
			badCase{name: fmt.Sprintf("sql %d in a password", i), method: "POST", path: users, body: map[string]string{"username": fmt.Sprint("pw-user-", i), "password": strings.ReplaceAll(p, "chat_", "tbl_") + " violet maple harbor"}, status: 201},
			badCase{name: fmt.Sprintf("sql %d in a login name", i), method: "POST", path: loginP, body: map[string]string{"username": p, "password": "x"}, status: 401, code: "invalid_credentials"},
			badCase{name: fmt.Sprintf("sql %d in a login password", i), method: "POST", path: loginP, body: map[string]string{"username": fmt.Sprint("nobody-", i), "password": p}, status: 401, code: "invalid_credentials"},
			badCase{name: fmt.Sprintf("sql %d in an otp", i), method: "POST", path: "/v1/mfa/totp/confirm", token: tok, body: map[string]string{"code": p}, status: 409, code: "not_enrolled"},
			badCase{name: fmt.Sprintf("sql %d in a channel name", i), method: "POST", path: "/v1/channels", token: tok, body: map[string]string{"name": p}, status: 201},
			badCase{name: fmt.Sprintf("sql %d in a message", i), method: "POST", path: msgs, token: tok, body: map[string]string{"text": p}, status: 201},
			badCase{name: fmt.Sprintf("sql %d in a member id", i), method: "POST", path: "/v1/channels/" + ch + "/members", token: tok, body: map[string]string{"user_id": p}, status: 404, code: "not_found"},
			badCase{name: fmt.Sprintf("sql %d in a channel id", i), method: "GET", path: "/v1/channels/" + q + "/messages", token: tok, status: 404, code: "not_found"},
			badCase{name: fmt.Sprintf("sql %d in an app", i), method: "POST", path: "/v1/apps/" + q + "/login", body: map[string]string{"username": "a", "password": "b"}, status: 400, code: "bad_app"},
			badCase{name: fmt.Sprintf("sql %d in a refresh token", i), method: "POST", path: "/v1/auth/refresh", body: map[string]string{"refresh_token": p}, status: 401, code: "invalid_token"},
			badCase{name: fmt.Sprintf("sql %d in a bearer token", i), method: "GET", path: msgs, token: p, status: 401, code: "invalid_token"},
			badCase{name: fmt.Sprintf("sql %d in audit filters", i), method: "GET", path: "/v1/admin/audit?" + url.Values{"actor": {p}, "type": {p}, "resource_type": {p}, "resource_id": {p}}.Encode(), token: tok, status: 200, echo: `"events":[]`},
			badCase{name: fmt.Sprintf("sql %d in an audit time", i), method: "GET", path: "/v1/admin/audit?" + url.Values{"since": {p}}.Encode(), token: tok, status: 400, code: "bad_time"},
			badCase{name: fmt.Sprintf("sql %d in an audit limit", i), method: "GET", path: "/v1/admin/audit?" + url.Values{"limit": {p}}.Encode(), token: tok, status: 400, code: "bad_limit"},
			badCase{name: fmt.Sprintf("sql %d in an audit cursor", i), method: "GET", path: "/v1/admin/audit?" + url.Values{"cursor": {p}}.Encode(), token: tok, status: 400, code: "bad_cursor"},
			badCase{name: fmt.Sprintf("sql %d in a retention channel", i), method: "PUT", path: "/v1/admin/retention", token: tok, body: map[string]any{"channels": map[string]int{p: 30}}, status: 404, code: "not_found"},
			badCase{name: fmt.Sprintf("sql %d in a hold scope", i), method: "POST", path: "/v1/admin/holds", token: tok, body: map[string]string{"scope": p, "id": ch, "reason": "x"}, status: 400, code: "bad_scope"},
			badCase{name: fmt.Sprintf("sql %d in a hold id", i), method: "DELETE", path: "/v1/admin/holds/" + q, token: tok, status: 404, code: "not_found"},
			badCase{name: fmt.Sprintf("sql %d in an unlock id", i), method: "POST", path: "/v1/admin/users/" + q + "/unlock", token: tok, body: map[string]string{"reason": p}, status: 404, code: "not_found"},
		)
	}
	// The message with metacharacters comes back verbatim.
	cases = append(cases, badCase{name: "sql text read back", method: "GET", path: msgs, token: tok, status: 200, echo: sqlMeta[1]})
	return cases
}

func manyHeaders(n int) http.Header {
	h := http.Header{}
	for i := range n {
		h.Set(fmt.Sprintf("X-Many-%d", i), "v")
	}
	return h
}

// flipLast changes the token's last character, which sits in its
// signature (or its secret part).
func flipLast(t string) string {
	if t == "" {
		return "x"
	}
	c := t[len(t)-1]
	r := byte('A')
	if c == 'A' {
		r = 'B'
	}
	return t[:len(t)-1] + string(r)
}

func jwtParts(t string) (header, claims map[string]any, ok bool) {
	p := strings.Split(t, ".")
	if len(p) != 3 {
		return nil, nil, false
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(p[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(p[1])
	if err1 != nil || err2 != nil || json.Unmarshal(hb, &header) != nil || json.Unmarshal(cb, &claims) != nil {
		return nil, nil, false
	}
	return header, claims, true
}

func seg(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// forgeClaims keeps the signature and changes the subject.
func forgeClaims(t string) string {
	h, c, ok := jwtParts(t)
	if !ok {
		return flipLast(t)
	}
	c["sub"] = "someone-else"
	return seg(h) + "." + seg(c) + "." + t[strings.LastIndexByte(t, '.')+1:]
}

// algNone re-sends the claims unsigned under "alg": "none".
func algNone(t string) string {
	h, c, ok := jwtParts(t)
	if !ok {
		return flipLast(t)
	}
	h["alg"] = "none"
	return seg(h) + "." + seg(c) + "."
}

// algHS256 signs the claims with HMAC under a guessed key, the algorithm
// confusion attack.
func algHS256(t string) string {
	h, c, ok := jwtParts(t)
	if !ok {
		return flipLast(t)
	}
	h["alg"] = "HS256"
	in := seg(h) + "." + seg(c)
	m := hmac.New(sha256.New, []byte("secret"))
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
