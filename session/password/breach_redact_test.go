package password_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/chatsdk/compliance/session/password"
)

// TestRangeCheckerErrorHidesPrefix: a failed fetch's error (which an HTTP
// client spells with the URL, prefix included) reaches OnBreachCheckError
// and so, typically, a log. It must not carry the hash prefix of the
// candidate password, in either case, yet still match the fetch's error.
func TestRangeCheckerErrorHidesPrefix(t *testing.T) {
	pw := "correct horse battery staple"
	sum := sha1.Sum([]byte(pw))
	prefix := strings.ToUpper(hex.EncodeToString(sum[:]))[:5]
	timeout := errors.New("i/o timeout")
	r := password.RangeChecker{Fetch: func(_ context.Context, p string) (io.ReadCloser, error) {
		return nil, fmt.Errorf("Get \"https://api.example/range/%s\" (%s): %w", p, strings.ToLower(p), timeout)
	}}
	var logged []error
	pol := password.NIST()
	pol.BreachCheck, pol.FailClosed = r, true
	pol.OnBreachCheckError = func(err error) { logged = append(logged, err) }
	vs, err := pol.Check(context.Background(), password.Candidate{Password: pw})
	if err != nil || len(vs) != 1 || vs[0].Code != password.CodeBreachCheckUnavailable {
		t.Fatalf("violations %+v, err %v; want breach_check_unavailable", vs, err)
	}
	if len(logged) != 1 {
		t.Fatalf("OnBreachCheckError called %d times", len(logged))
	}
	msg := logged[0].Error()
	if strings.Contains(strings.ToUpper(msg), prefix) {
		t.Errorf("the hash prefix %s appears in %q", prefix, msg)
	}
	if !errors.Is(logged[0], timeout) {
		t.Errorf("%v does not match the fetch's error", logged[0])
	}
}
