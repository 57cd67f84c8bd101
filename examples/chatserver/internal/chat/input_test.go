package chat

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// raw sends body as it is, with the given headers, and returns the status
// and the decoded error body (empty when the body is not an error object).
func (f *fixture) raw(method, path, token string, body []byte, header map[string]string) (int, errorBody, string) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.ts.URL+path, bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := f.ts.Client().Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var eb errorBody
	_ = json.Unmarshal(b, &eb)
	return res.StatusCode, eb, string(b)
}

// TestBadInputIsTheClientsError: input that Postgres or the audit log
// cannot hold (NUL, invalid UTF-8), bodies past the limit and bodies with
// more than one JSON value are the client's 4xx with a code of their own,
// on both backends. Before the fixes these were 500 (a failed query), 503
// (an unrecordable audit entry) or silently accepted (the JSON decoder
// turns invalid UTF-8 into U+FFFD and stops after the first value).
func TestBadInputIsTheClientsError(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.signup("alice")
		tok := f.login("alice").access
		ch := f.channel(tok, "ward")
		msgs := "/v1/channels/" + ch + "/messages"
		cases := []struct {
			name         string
			method, path string
			token        string
			body         []byte
			header       map[string]string
			status       int
			code         string
		}{
			{"NUL in a user name", "POST", "/v1/apps/" + app + "/users", "", []byte(`{"username":"a\u0000b","password":"` + pw("x") + `"}`), nil, 400, "bad_encoding"},
			{"NUL in a login name", "POST", "/v1/apps/" + app + "/login", "", []byte(`{"username":"alice\u0000","password":"x"}`), nil, 400, "bad_encoding"},
			{"NUL in a member id", "POST", "/v1/channels/" + ch + "/members", tok, []byte(`{"user_id":"\u0000"}`), nil, 400, "bad_encoding"},
			{"invalid UTF-8 in a message", "POST", msgs, tok, []byte("{\"text\":\"caf\xe9\"}"), nil, 400, "bad_encoding"},
			{"invalid UTF-8 in a user name", "POST", "/v1/apps/" + app + "/users", "", []byte("{\"username\":\"\xff\xfe\",\"password\":\"" + pw("x") + "\"}"), nil, 400, "bad_encoding"},
			{"a second JSON value", "POST", msgs, tok, []byte(`{"text":"one"}{"text":"two"}`), nil, 400, "bad_request"},
			{"trailing garbage", "POST", msgs, tok, []byte(`{"text":"one"} garbage`), nil, 400, "bad_request"},
			{"a body past 64 KiB", "POST", msgs, tok, []byte(`{"text":"` + strings.Repeat("a", maxBody) + `"}`), nil, 413, "body_too_large"},
			{"NUL in a path id", "GET", "/v1/channels/%00/messages", tok, nil, nil, 400, "bad_path"},
			{"invalid UTF-8 in a path id", "GET", "/v1/channels/%FF%FE/messages", tok, nil, nil, 400, "bad_path"},
			{"a newline in a path id", "POST", "/v1/admin/users/%0a/unlock", tok, []byte(`{"reason":"x"}`), nil, 400, "bad_path"},
			{"invalid UTF-8 in a query", "GET", "/v1/admin/audit?actor=%FF", tok, nil, nil, 400, "bad_query"},
			{"NUL in a query", "GET", "/v1/admin/audit?resource_id=%00", tok, nil, nil, 400, "bad_query"},
			{"a malformed query", "GET", "/v1/admin/audit?actor=%zz", tok, nil, nil, 400, "bad_query"},
		}
		for _, c := range cases {
			status, eb, raw := f.raw(c.method, c.path, c.token, c.body, c.header)
			if status != c.status || eb.Error != c.code || eb.Message == "" {
				t.Errorf("%s: %d %s, want %d %q", c.name, status, raw, c.status, c.code)
			}
		}

		// Nothing of it was stored; the good request still works.
		if got := f.read(tok, ch); len(got) != 0 {
			t.Errorf("messages stored from bad input: %v", got)
		}
		f.post(tok, ch, "still fine")
		f.verifyOK(tok)
	})
}

// TestBodyLimitIsExact: a body of exactly maxBody bytes is read; one byte
// more is 413.
func TestBodyLimitIsExact(t *testing.T) {
	f := newFixture(t, "memory", setup{})
	f.signup("alice")
	tok := f.login("alice").access
	ch := f.channel(tok, "ward")
	pad := func(n int) []byte { // {"text":"aaa…"} of n bytes
		return []byte(`{"text":"` + strings.Repeat("a", n-len(`{"text":""}`)) + `"}`)
	}
	// The text is over the 16 KiB message limit either way: what differs
	// is whether the body was read.
	if status, eb, raw := f.raw("POST", "/v1/channels/"+ch+"/messages", tok, pad(maxBody), nil); status != 400 || eb.Error != "bad_text" {
		t.Errorf("body of exactly %d bytes: %d %s, want 400 bad_text", maxBody, status, raw)
	}
	if status, eb, raw := f.raw("POST", "/v1/channels/"+ch+"/messages", tok, pad(maxBody+1), nil); status != 413 || eb.Error != "body_too_large" {
		t.Errorf("body of %d bytes: %d %s, want 413 body_too_large", maxBody+1, status, raw)
	}
}

// FuzzDecode: whatever the body, decode either fills the struct with
// valid UTF-8 free of NUL or answers 400 or 413 with the API's error body;
// it never panics.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"text":"hi"}`, `{"text":"a\u0000"}`, "{\"text\":\"\xff\"}", `{"text":"a"} {}`, `[]`, ``, `{"text":1}`, `{"x":"y"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/v1/channels/x/messages", bytes.NewReader(body))
		var in struct {
			Text string `json:"text"`
		}
		if decode(w, r, &in) {
			if !utf8.ValidString(in.Text) || strings.IndexByte(in.Text, 0) >= 0 {
				t.Fatalf("decoded %q from %q", in.Text, body)
			}
			return
		}
		var eb errorBody
		if (w.Code != 400 && w.Code != 413) || json.Unmarshal(w.Body.Bytes(), &eb) != nil || eb.Error == "" {
			t.Fatalf("refused %q with %d %s", body, w.Code, w.Body.String())
		}
	})
}

// FuzzInputProblem: a request inputProblem lets through has a path and
// query parameters of valid UTF-8 without control characters.
func FuzzInputProblem(f *testing.F) {
	for _, s := range []string{"/v1/channels/abc/messages", "/v1/channels/%00", "/v1/admin/audit?actor=%ff", "/a?b=%zz", "/%e2%82%ac?x=%e2%82%ac"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return
		}
		r := &http.Request{Method: "GET", URL: u, Header: http.Header{}}
		if code, _ := inputProblem(r); code != "" {
			return
		}
		if !cleanText(u.Path) {
			t.Fatalf("path %q let through", u.Path)
		}
		for k, vs := range u.Query() {
			for _, v := range append(vs, k) {
				if !cleanText(v) {
					t.Fatalf("query value %q let through", v)
				}
			}
		}
	})
}

// TestAmbiguousInputRefused: input whose meaning depends on who reads it
// is refused: a key named twice in an object (encoding/json keeps the
// last, other parsers the first), a body declared as a form or as text
// (what a page on another site can make a browser send without asking),
// and user names that look like another name: not in NFC, mixing scripts,
// or holding control, invisible or non-ASCII space characters (a CR LF in
// a name is refused like any control character). Before the fix each of
// these was accepted.
func TestAmbiguousInputRefused(t *testing.T) {
	f := newFixture(t, "memory", setup{})
	f.signup("alice")
	tok := f.login("alice").access
	users, login := "/v1/apps/"+app+"/users", "/v1/apps/"+app+"/login"
	signup := func(name string) []byte {
		b, _ := json.Marshal(map[string]string{"username": name, "password": pw(name)})
		return b
	}
	alice := `{"username":"alice","password":"` + pw("alice") + `"}`
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	cases := []struct {
		name         string
		method, path string
		token        string
		body         []byte
		header       map[string]string
		status       int
		code         string
	}{
		{"a key twice", "POST", users, "", []byte(`{"username":"bob","username":"alice","password":"` + pw("bob") + `"}`), nil, 400, "bad_request"},
		{"a key twice, once escaped", "POST", login, "", []byte(`{"username":"alice","\u0075sername":"bob","password":"x"}`), nil, 400, "bad_request"},
		{"a key twice in a nested object", "PUT", "/v1/admin/retention", tok, []byte(`{"days":30,"channels":{"c":1,"c":2}}`), nil, 400, "bad_request"},
		{"one key in two objects", "PUT", "/v1/admin/retention", tok, []byte(`{"days":30,"channels":{"days":5}}`), nil, 404, "not_found"},
		{"a form", "POST", login, "", []byte(alice), form, 415, "unsupported_media_type"},
		{"text/plain", "POST", login, "", []byte(alice), map[string]string{"Content-Type": "text/plain;charset=UTF-8"}, 415, "unsupported_media_type"},
		{"multipart", "POST", users, "", signup("carol"), map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, 415, "unsupported_media_type"},
		{"a malformed content type", "POST", login, "", []byte(alice), map[string]string{"Content-Type": "application/json; ===="}, 415, "unsupported_media_type"},
		{"JSON with a charset", "POST", login, "", []byte(alice), map[string]string{"Content-Type": "application/json; charset=utf-8"}, 200, ""},
		{"a decomposed é", "POST", users, "", signup("jose\u0301"), nil, 400, "bad_username"},
		{"Latin with a Cyrillic а", "POST", users, "", signup("\u0430lice"), nil, 400, "bad_username"},
		{"Latin with a Greek ο", "POST", users, "", signup("b\u03bfb"), nil, 400, "bad_username"},
		{"a right-to-left override", "POST", users, "", signup("evil\u202egnp.exe"), nil, 400, "bad_username"},
		{"a zero-width space", "POST", users, "", signup("ali\u200bce"), nil, 400, "bad_username"},
		{"a zero-width joiner", "POST", users, "", signup("ali\u200dce"), nil, 400, "bad_username"},
		{"a no-break space", "POST", users, "", signup("al\u00a0ice"), nil, 400, "bad_username"},
		{"CR LF", "POST", users, "", signup("a\r\nSet-Cookie: x=y"), nil, 400, "bad_username"},
		{"a tab", "POST", users, "", signup("a\tb"), nil, 400, "bad_username"},
		{"private use", "POST", users, "", signup("a\ue000"), nil, 400, "bad_username"},
		{"an unassigned code point", "POST", users, "", signup("a\U000e0080"), nil, 400, "bad_username"},
		{"a composed é", "POST", users, "", signup("jos\u00e9"), nil, 201, ""},
		{"Japanese", "POST", users, "", signup("山田たろう"), nil, 201, ""},
		{"Korean with Latin", "POST", users, "", signup("김 kim"), nil, 201, ""},
		{"Greek", "POST", users, "", signup("αλφα"), nil, 201, ""},
		{"Cyrillic", "POST", users, "", signup("иван"), nil, 201, ""},
		{"punctuation", "POST", users, "", signup("o'brien-smith_2"), nil, 201, ""},
	}
	for _, c := range cases {
		status, eb, raw := f.raw(c.method, c.path, c.token, c.body, c.header)
		if status != c.status || eb.Error != c.code || (c.code != "" && eb.Message == "") {
			t.Errorf("%s: %d %s, want %d %q", c.name, status, raw, c.status, c.code)
		}
	}
}

// TestRepeatsKey: a key named twice in one object, at any depth, is
// found; the same key in different objects is not.
func TestRepeatsKey(t *testing.T) {
	for body, want := range map[string]bool{
		`{"a":1,"a":2}`:                 true,
		`{"a":1,"\u0061":2}`:            true,
		`{"a":{"b":1},"a":[]}`:          true,
		`[{"a":1},{"a":1,"a":2}]`:       true,
		`{"x":{"y":[{"z":1,"z":2}]}}`:   true,
		`{"a":{"a":{"a":1}}}`:           false,
		`[{"a":1},{"a":1}]`:             false,
		`{"a":"b","b":"a"}`:             false,
		`{"a":[1,"a",{"b":"a"}],"b":2}`: false,
		`"a"`:                           false,
		`{}`:                            false,
	} {
		if got := repeatsKey([]byte(body)); got != want {
			t.Errorf("repeatsKey(%s) = %t, want %t", body, got, want)
		}
	}
}

// TestLongIDsAreTheClientsError: an id of 10,000 characters in a body is
// the client's 4xx, and a refused request changes nothing. Before the fix
// a hold on such a channel id was stored and then answered 503
// audit_unavailable: its scope did not fit the audit entry's metadata, so
// a hold stood that no audit entry recorded.
func TestLongIDsAreTheClientsError(t *testing.T) {
	eachBackend(t, func(t *testing.T, f *fixture) {
		f.signup("alice")
		bob, _ := f.signup("bob")
		tok := f.login("alice").access
		ch := f.channel(tok, "ward")
		long := strings.Repeat("c", 10000)
		body := func(v any) []byte {
			b, _ := json.Marshal(v)
			return b
		}
		cases := []struct {
			name         string
			method, path string
			body         []byte
			status       int
			code         string
		}{
			{"a held channel id", "POST", "/v1/admin/holds", body(map[string]string{"scope": "channel", "id": long, "reason": "x"}), 400, "bad_id"},
			{"a held user id", "POST", "/v1/admin/holds", body(map[string]string{"scope": "user", "id": long, "reason": "x"}), 400, "bad_id"},
			{"a held message id", "POST", "/v1/admin/holds", body(map[string]string{"scope": "message", "id": long, "reason": "x"}), 400, "bad_id"},
			{"a member id", "POST", "/v1/channels/" + ch + "/members", body(map[string]string{"user_id": long}), 404, "not_found"},
			{"a retention channel", "PUT", "/v1/admin/retention", body(map[string]any{"days": 30, "channels": map[string]int{long: 5}}), 404, "not_found"},
			{"an unlock reason", "POST", "/v1/admin/users/" + bob + "/unlock", body(map[string]string{"reason": long}), 400, "reason_required"},
		}
		for _, c := range cases {
			status, eb, raw := f.raw(c.method, c.path, tok, c.body, nil)
			if status != c.status || eb.Error != c.code {
				t.Errorf("%s: %d %.200s, want %d %q", c.name, status, raw, c.status, c.code)
			}
		}
		status, _, raw := f.raw("GET", "/v1/admin/holds", tok, nil, nil)
		if status != 200 || strings.Contains(raw, long) {
			t.Errorf("holds after the refused requests: %d %.200s", status, raw)
		}
	})
}
