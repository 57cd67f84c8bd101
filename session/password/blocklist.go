package password

import (
	"bufio"
	_ "embed"
	"fmt"
	"io"
	"strings"
	"sync"
)

// commonPasswords is the shipped blocklist: the 10,000 most common
// passwords of the zxcvbn 4.4.2 frequency list (MIT licence, Dan Wheeler
// and Dropbox, Inc.), drawn from Mark Burnett's 10-million-password
// breach corpus. data/README.md and data/LICENSE-zxcvbn.txt give the
// source and licence.
//
//go:embed data/common-passwords.txt
var commonPasswords string

// TODO: the shipped list dates from a 2015 corpus and favours English
// speakers; a deployment should add a breach check (RangeChecker) or a
// list of its own rather than rely on it alone.

// Blocklist is a set of forbidden passwords, compared after [Normalize]
// and lower-casing. It is safe for concurrent use.
type Blocklist struct {
	set map[string]struct{}
}

var defaultBlocklist = sync.OnceValue(func() *Blocklist {
	b, err := NewBlocklist(strings.NewReader(commonPasswords))
	if err != nil {
		panic("password: embedded blocklist: " + err.Error())
	}
	return b
})

// DefaultBlocklist returns the shipped blocklist of 10,000 common
// passwords. It is built once, on first use, and shared.
func DefaultBlocklist() *Blocklist { return defaultBlocklist() }

// NewBlocklist reads one password per line; empty lines and lines
// starting with "#" are skipped.
func NewBlocklist(r io.Reader) (*Blocklist, error) {
	b := &Blocklist{set: map[string]struct{}{}}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b.set[strings.ToLower(Normalize(line))] = struct{}{}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("password: read blocklist: %w", err)
	}
	return b, nil
}

// Len returns the number of entries.
func (b *Blocklist) Len() int { return len(b.set) }

// Contains reports whether the password is on the list, ignoring case.
func (b *Blocklist) Contains(pw string) bool {
	_, ok := b.set[strings.ToLower(Normalize(pw))]
	return ok
}
