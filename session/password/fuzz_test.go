package password

import (
	"strings"
	"testing"
)

// FuzzParsePHC checks that the PHC parser never panics and that whatever
// it accepts is canonical: formatting the parsed value gives the input
// back.
func FuzzParsePHC(f *testing.F) {
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$xfC6LX/4Ehf+j6bL7lR7xvgRRhviMzd0mZp3enw6yBM")
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2i$v=19$m=64,t=1,p=1$c2FsdA$c2FsdA")
	f.Add("$2b$10$abcdefghijklmnopqrstuu")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePHC(s)
		if err != nil {
			return
		}
		if got := p.String(); got != s {
			t.Fatalf("accepted non-canonical %q (canonical %q)", s, got)
		}
	})
}

// FuzzParseRange checks that the range parser never panics and reports
// only well-formed entries.
func FuzzParseRange(f *testing.F) {
	f.Add("0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n00D4F6E8FA6EECAD2A3AA415EEC418D38EC:2\r\n")
	f.Add("\n\n")
	f.Add("ZZ:1")
	f.Fuzz(func(t *testing.T, s string) {
		_ = ParseRange(strings.NewReader(s), func(suffix string, count int) {
			if len(suffix) != 35 || count < 0 || strings.ToUpper(suffix) != suffix {
				t.Fatalf("bad entry %q:%d", suffix, count)
			}
		})
	})
}
