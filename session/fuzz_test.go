package session_test

import (
	"context"
	"errors"
	"testing"

	"github.com/chatsdk/compliance/session"
)

// FuzzVerify feeds arbitrary strings to the access-token verifier: it must
// never panic, and never accept anything but a token the manager signed.
func FuzzVerify(f *testing.F) {
	b := setup(f, nil)
	valid := b.login(f).AccessToken
	f.Add(valid)
	f.Add(valid[:len(valid)-2])
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("..")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := b.m.Verify(s)
		if err == nil {
			if s != valid {
				t.Fatalf("accepted a token the manager did not issue: %q (%+v)", s, c)
			}
			return
		}
		if !errors.Is(err, session.ErrInvalidToken) {
			t.Fatalf("error %v is not ErrInvalidToken", err)
		}
	})
}

// FuzzRefresh feeds arbitrary strings to Refresh: no panic, and nothing
// but ErrInvalidToken for a value the store never issued.
func FuzzRefresh(f *testing.F) {
	b := setup(f, nil)
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := b.m.Refresh(context.Background(), s); !errors.Is(err, session.ErrInvalidToken) {
			t.Fatalf("Refresh(%q): %v", s, err)
		}
	})
}
