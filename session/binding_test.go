package session_test

import (
	"context"
	"errors"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/chatsdk/compliance/session"
)

// TestTokenBoundToItsSession: a validly signed token whose sid names a
// live session is still refused unless its tenant, user and break-glass
// marker are that session's. A token naming someone else's session cannot
// borrow its liveness, and an emergency session's token stripped of its
// emg claim (which would skip the EmergencyUsed audit hook) is refused.
func TestTokenBoundToItsSession(t *testing.T) {
	ctx := context.Background()
	b := setup(t, nil)
	hdr := map[string]any{"typ": session.TokenType, "kid": "k1"}
	ordinary := b.login(t)
	emergency, grant, err := b.m.GrantEmergency(ctx, session.EmergencyRequest{
		AppID: "app1", UserID: "u1", Methods: []string{"pwd"}, Reason: "on-call",
	})
	if err != nil {
		t.Fatal(err)
	}

	claims := func(sid string) jwt.MapClaims { return with(goodClaims(t0), "sid", sid) }
	if _, err := b.m.Authenticate(ctx, forge(t, jwt.SigningMethodEdDSA, b.priv, hdr, claims(ordinary.SessionID))); err != nil {
		t.Fatalf("control: a token matching its session was refused: %v", err)
	}

	cases := map[string]jwt.MapClaims{
		"another user":                 with(claims(ordinary.SessionID), "sub", "u2"),
		"another tenant":               with(claims(ordinary.SessionID), "tid", "app2"),
		"emergency marker on ordinary": with(claims(ordinary.SessionID), "emg", grant.ID),
		"emergency session, no marker": claims(emergency.SessionID),
		"emergency session, wrong id":  with(claims(emergency.SessionID), "emg", "other-grant"),
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := b.m.Authenticate(ctx, forge(t, jwt.SigningMethodEdDSA, b.priv, hdr, c))
			if !errors.Is(err, session.ErrInvalidToken) {
				t.Errorf("got %v, want ErrInvalidToken", err)
			}
		})
	}
}
