package password_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/chatsdk/compliance/session/password"
)

// TestCandidateDoesNotPrintPassword: a Candidate handed to fmt or slog (a
// debug line around Check) does not show the password.
func TestCandidateDoesNotPrintPassword(t *testing.T) {
	c := password.Candidate{Password: "correct horse battery staple", ContextWords: []string{"alice"}}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%v|%+v|%#v|%s|%v|%+v", c, c, c, c, []any{c}, struct{ C any }{c})
	slog.New(slog.NewTextHandler(&b, nil)).Info("m", "c", c)
	slog.New(slog.NewJSONHandler(&b, nil)).Info("m", "c", c)
	if out := b.String(); strings.Contains(out, "horse") {
		t.Fatalf("the password appears in %s", out)
	}
}
