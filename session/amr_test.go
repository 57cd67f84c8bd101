package session_test

import (
	"slices"
	"testing"

	"github.com/chatsdk/compliance/session"
)

// TestMultiFactorAcrossRFC8176Methods: "mfa" is added for every pair of
// RFC 8176 methods that prove two factors, as session/mfa's CombineAMR
// judges them, and not for two methods of one factor.
func TestMultiFactorAcrossRFC8176Methods(t *testing.T) {
	b := setup(t, nil)
	cases := []struct {
		methods []string
		mfa     bool
	}{
		{[]string{"pwd", "otp"}, true},
		{[]string{"pwd", "sc"}, true},   // smart card: possession
		{[]string{"pwd", "tel"}, true},  // telephone confirmation: possession
		{[]string{"kba", "otp"}, true},  // knowledge-based: knowledge
		{[]string{"pwd", "iris"}, true}, // inherence
		{[]string{"pwd", "retina"}, true},
		{[]string{"pin", "vbm"}, true}, // voice biometric: inherence
		{[]string{"pwd", "kba"}, false},
		{[]string{"sc", "hwk"}, false},
		{[]string{"pwd", "geo"}, false}, // location proves no factor
	}
	for _, c := range cases {
		tok := b.login(t, c.methods...)
		claims, err := b.m.Verify(tok.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.Contains(claims.AMR, session.AMRMultiFactor); got != c.mfa {
			t.Errorf("methods %v: amr %v, mfa = %t, want %t", c.methods, claims.AMR, got, c.mfa)
		}
	}
}
