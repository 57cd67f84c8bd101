package mfa_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/chatsdk/compliance/session/mfa"
)

// printed returns every way a value commonly reaches a log: the fmt verbs
// and slog's text and JSON handlers.
func printed(v any) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%v|%+v|%#v|%s|", v, v, v, v)
	slog.New(slog.NewTextHandler(&b, nil)).Info("m", "v", v)
	slog.New(slog.NewJSONHandler(&b, nil)).Info("m", "v", v)
	fmt.Fprintf(&b, "%v|%+v", []any{v}, struct{ V any }{v})
	return b.String()
}

// TestSetupAndCodesDoNotPrint: a Setup or a Confirmation handed to fmt or
// slog shows neither the TOTP secret (nor the otpauth URL that holds it)
// nor a recovery code. The fields themselves are unchanged.
func TestSetupAndCodesDoNotPrint(t *testing.T) {
	ctx := context.Background()
	b := newAuthenticator(t, nil)
	setup, err := b.a.Enrol(ctx, mfa.EnrolParams{TenantID: "tenant-a", AccountID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	conf, err := b.a.Confirm(ctx, mfa.CodeParams{TenantID: "tenant-a", AccountID: "alice", Code: code(t, setup.Secret, start)})
	if err != nil {
		t.Fatal(err)
	}
	if setup.Secret == "" || len(conf.RecoveryCodes) == 0 {
		t.Fatal("fixture: nothing to hide")
	}

	out := printed(setup)
	if strings.Contains(out, setup.Secret) || strings.Contains(out, "otpauth") {
		t.Errorf("the TOTP secret appears in %s", out)
	}
	out = printed(conf)
	for _, rc := range conf.RecoveryCodes {
		if strings.Contains(out, rc) || strings.Contains(out, strings.ReplaceAll(rc, "-", "")) {
			t.Fatalf("a recovery code appears in %s", out)
		}
	}
	if !strings.Contains(out, "totp") {
		t.Errorf("the method is missing from %s", out)
	}
}
