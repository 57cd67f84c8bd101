package mfa_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chatsdk/compliance/session/mfa"
)

// FuzzCodes feeds arbitrary strings to Verify and VerifyRecoveryCode:
// neither may panic, every refusal matches ErrInvalidCode, and nothing but
// the current TOTP code or an issued recovery code passes.
func FuzzCodes(f *testing.F) {
	b := enrolled(f)
	now := start.Add(10 * time.Minute)
	b.clock.Set(now)
	right := code(f, b.secret, now)
	f.Add(right)
	f.Add(" 12 34 56 ")
	f.Add("１２３４５６") // full-width digits
	f.Add(b.codes[0])
	f.Add("AAAA-AAAA-AAAA-AAAA")
	f.Add("")
	f.Add("\x00\xff")
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, s string) {
		p := mfa.CodeParams{TenantID: "tenant-a", AccountID: "alice", Code: s}
		if _, err := b.a.Verify(ctx, p); err != nil && !errors.Is(err, mfa.ErrInvalidCode) {
			t.Fatalf("Verify(%q): %v, want ErrInvalidCode", s, err)
		} else if err == nil && s != right && stripSpaces(s) != right {
			t.Fatalf("Verify accepted %q, not the current code", s)
		}
		if _, err := b.a.VerifyRecoveryCode(ctx, p); err != nil && !errors.Is(err, mfa.ErrInvalidCode) {
			t.Fatalf("VerifyRecoveryCode(%q): %v, want ErrInvalidCode", s, err)
		} else if err == nil && !issued(b.codes, s) {
			t.Fatalf("VerifyRecoveryCode accepted %q, not an issued code", s)
		}
	})
}

func stripSpaces(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r != ' ' {
			out = append(out, r)
		}
	}
	return string(out)
}

// issued reports whether s is one of codes, ignoring case, spaces and
// hyphens, as the package normalises.
func issued(codes []string, s string) bool {
	norm := func(x string) string {
		out := make([]rune, 0, len(x))
		for _, r := range x {
			switch {
			case r == ' ' || r == '-':
			case r >= 'A' && r <= 'Z':
				out = append(out, r+('a'-'A'))
			default:
				out = append(out, r)
			}
		}
		return string(out)
	}
	for _, c := range codes {
		if norm(c) == norm(s) {
			return true
		}
	}
	return false
}
