package password

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Limits on a range response, so a broken or hostile service cannot make
// a check read without end.
const (
	maxRangeLines = 100_000
	maxRangeBytes = 4 << 20
)

// RangeChecker is a [BreachChecker] over a k-anonymity range API, the
// protocol of the Pwned Passwords service: it sends the first five hex
// characters of the password's SHA-1 and reads back every breached hash
// suffix under that prefix, one "SUFFIX:COUNT" line each, so the service
// learns neither the password nor its hash. SHA-1 here is the protocol's
// identifier, not a protection. A RangeChecker is safe for concurrent use
// when Fetch is.
type RangeChecker struct {
	// Fetch returns the range for a prefix of five upper-case hex
	// characters, for example the body of an HTTPS GET. The application
	// implements it (client, timeout, padding header). Required.
	Fetch func(ctx context.Context, prefix string) (io.ReadCloser, error)
	// MinCount is how many breaches make a password count as breached.
	// Zero means 1. Entries with a count of zero (padding) never match.
	MinCount int
}

var _ BreachChecker = RangeChecker{}

// Breached implements BreachChecker. It returns an error when Fetch fails
// or the response is malformed; the Policy then fails open or closed.
func (r RangeChecker) Breached(ctx context.Context, password string) (bool, error) {
	if r.Fetch == nil {
		return false, fmt.Errorf("password: RangeChecker.Fetch is nil")
	}
	sum := sha1.Sum([]byte(password))
	full := strings.ToUpper(hex.EncodeToString(sum[:]))
	prefix, suffix := full[:5], full[5:]

	body, err := r.Fetch(ctx, prefix)
	if err != nil {
		return false, fmt.Errorf("password: breach range fetch: %w", prefixHidden{err, prefix})
	}
	defer body.Close()

	min := r.MinCount
	if min < 1 {
		min = 1
	}
	found := false
	err = ParseRange(body, func(s string, count int) {
		if s == suffix && count >= min {
			found = true
		}
	})
	if err != nil {
		return false, err
	}
	return found, nil
}

// ParseRange reads a range response and calls fn for each entry: a hash
// suffix of 35 hex characters (returned in upper case) and its count.
// Lines end in LF or CRLF; blank lines are skipped. Anything else, more
// than 100,000 lines or more than 4 MiB is an error.
func ParseRange(r io.Reader, fn func(suffix string, count int)) error {
	sc := bufio.NewScanner(io.LimitReader(r, maxRangeBytes+1))
	sc.Buffer(make([]byte, 0, 128), 128)
	n, total := 0, 0
	for sc.Scan() {
		line := sc.Bytes()
		total += len(line) + 1
		if total > maxRangeBytes {
			return fmt.Errorf("password: breach range response over %d bytes", maxRangeBytes)
		}
		s := strings.TrimSuffix(string(line), "\r")
		if s == "" {
			continue
		}
		n++
		if n > maxRangeLines {
			return fmt.Errorf("password: breach range response over %d lines", maxRangeLines)
		}
		suffix, count, ok := strings.Cut(s, ":")
		if !ok || len(suffix) != 35 || !isHex(suffix) {
			return fmt.Errorf("password: breach range line %d: want SUFFIX:COUNT", n)
		}
		c, err := strconv.Atoi(count)
		if err != nil || c < 0 || count != strconv.Itoa(c) {
			return fmt.Errorf("password: breach range line %d: bad count", n)
		}
		fn(strings.ToUpper(suffix), c)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("password: read breach range: %w", err)
	}
	return nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// prefixHidden is a fetch error whose message has the hash prefix masked:
// an HTTP client spells the URL, prefix included, into its errors, and
// these reach OnBreachCheckError and so a log, where 20 bits of the
// candidate password's SHA-1 have no business. It unwraps to the
// original, so errors.Is and errors.As still see it.
type prefixHidden struct {
	err    error
	prefix string
}

func (e prefixHidden) Error() string {
	return regexp.MustCompile("(?i)"+regexp.QuoteMeta(e.prefix)).ReplaceAllLiteralString(e.err.Error(), "*****")
}

func (e prefixHidden) Unwrap() error { return e.err }
