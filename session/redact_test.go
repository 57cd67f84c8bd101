package session_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/chatsdk/compliance/session"
)

// printed returns every way a value commonly reaches a log: the fmt verbs
// and slog's text and JSON handlers.
func printed(v any) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%v|%+v|%#v|%s|%x|", v, v, v, v, v)
	slog.New(slog.NewTextHandler(&b, nil)).Info("m", "v", v)
	slog.New(slog.NewJSONHandler(&b, nil)).Info("m", "v", v)
	fmt.Fprintf(&b, "%v|%+v", []any{v}, struct{ V any }{v})
	return b.String()
}

// leaks reports which encoding of secret appears in s.
func leaks(s string, secret []byte) string {
	for name, enc := range map[string]string{
		"raw":       string(secret),
		"hex":       hex.EncodeToString(secret),
		"base64":    base64.StdEncoding.EncodeToString(secret),
		"base64url": base64.RawURLEncoding.EncodeToString(secret),
		"bytes":     strings.Trim(fmt.Sprint(secret), "[]"),
		"go bytes":  strings.Trim(fmt.Sprintf("%#v", secret), "[]byte{}"),
	} {
		if len(enc) >= 8 && strings.Contains(s, enc) {
			return name
		}
	}
	return ""
}

// TestKeysDoNotPrintTheirSecrets: a Key or KeyRing handed to fmt or slog
// (a debug line, a logged Config) prints its id and algorithm, never the
// private key or the HMAC secret.
func TestKeysDoNotPrintTheirSecrets(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef-hmac")
	hk, err := session.NewHS256Key("h1", secret)
	if err != nil {
		t.Fatal(err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := session.NewEd25519Key("e1", priv)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := session.NewKeyRing(ek, hk)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]any{"HS256 key": hk, "Ed25519 key": ek, "ring": ring, "*key": &hk} {
		out := printed(v)
		if enc := leaks(out, secret); enc != "" {
			t.Errorf("%s: the HMAC secret appears (%s) in %s", name, enc, out)
		}
		if !strings.Contains(out, "h1") && !strings.Contains(out, "e1") {
			t.Errorf("%s: the key id is missing from %s", name, out)
		}
	}
	// The Ed25519 private key holds the public key as its second half, so
	// look for the seed (the first half) only.
	seed := priv.Seed()
	for name, v := range map[string]any{"Ed25519 key": ek, "ring": ring} {
		if enc := leaks(printed(v), seed); enc != "" {
			t.Errorf("%s: the Ed25519 seed appears (%s)", name, enc)
		}
	}
}
