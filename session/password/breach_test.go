package password_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/chatsdk/compliance/session/password"
)

// rangeFor builds a range response for the prefix of pw's hash holding
// pw's suffix with count, and some other suffixes.
func rangeFor(pw string, count int) (prefix, body string) {
	sum := sha1.Sum([]byte(pw))
	full := strings.ToUpper(hex.EncodeToString(sum[:]))
	lines := []string{
		strings.Repeat("0", 35) + ":12",
		full[5:] + fmt.Sprintf(":%d", count),
		strings.Repeat("F", 35) + ":0",
	}
	return full[:5], strings.Join(lines, "\r\n") + "\r\n"
}

func TestRangeChecker(t *testing.T) {
	ctx := context.Background()
	pw := "correct horse battery staple"
	cases := []struct {
		name     string
		count    int
		min      int
		breached bool
	}{
		{"listed once", 1, 0, true},
		{"padding entry", 0, 0, false},
		{"below MinCount", 3, 5, false},
		{"at MinCount", 5, 5, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			prefix, body := rangeFor(pw, c.count)
			var asked string
			r := password.RangeChecker{MinCount: c.min, Fetch: func(_ context.Context, p string) (io.ReadCloser, error) {
				asked = p
				return io.NopCloser(strings.NewReader(body)), nil
			}}
			got, err := r.Breached(ctx, pw)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.breached {
				t.Errorf("Breached = %v, want %v", got, c.breached)
			}
			if asked != prefix || len(asked) != 5 {
				t.Errorf("asked for %q, want the 5-character prefix %q", asked, prefix)
			}
		})
	}

	down := errors.New("unreachable")
	r := password.RangeChecker{Fetch: func(context.Context, string) (io.ReadCloser, error) { return nil, down }}
	if _, err := r.Breached(ctx, pw); !errors.Is(err, down) {
		t.Fatalf("fetch error: %v", err)
	}

	// Wired into a fail-closed policy, a malformed response refuses the
	// password.
	p := password.NIST()
	p.FailClosed = true
	p.BreachCheck = password.RangeChecker{Fetch: func(context.Context, string) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("<html>maintenance</html>")), nil
	}}
	vs, _ := p.Check(ctx, password.Candidate{Password: pw})
	if got := codes(vs); !slices.Equal(got, []password.Code{password.CodeBreachCheckUnavailable}) {
		t.Fatalf("malformed response, fail closed: %v", got)
	}
}

func TestParseRangeRejectsMalformed(t *testing.T) {
	good := strings.Repeat("a", 35)
	for name, body := range map[string]string{
		"no colon":      good + "12",
		"short suffix":  "ABC:1",
		"not hex":       strings.Repeat("g", 35) + ":1",
		"negative":      good + ":-1",
		"plus sign":     good + ":+1",
		"leading zero":  good + ":01",
		"huge line":     strings.Repeat("A", 1000),
		"count missing": good + ":",
	} {
		if err := password.ParseRange(strings.NewReader(body), func(string, int) {}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
