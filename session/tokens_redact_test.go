package session_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestTokensDoNotPrint: Tokens handed to fmt or slog do not show the access
// or the refresh token; their JSON form, sent to the client, still does.
func TestTokensDoNotPrint(t *testing.T) {
	b := setup(t, nil)
	tok := b.login(t)
	out := printed(tok)
	for _, s := range []string{tok.RefreshToken, tok.AccessToken, strings.Split(tok.AccessToken, ".")[2]} {
		if strings.Contains(out, s) {
			t.Fatalf("a token appears in %s", out)
		}
	}
	if !strings.Contains(out, tok.SessionID) {
		t.Errorf("the session id is missing from %s", out)
	}
	raw, err := json.Marshal(tok)
	if err != nil {
		t.Fatal(err)
	}
	js := string(raw)
	if !strings.Contains(js, tok.RefreshToken) || !strings.Contains(js, tok.AccessToken) {
		t.Errorf("JSON form lost the tokens: %s", js)
	}
}
