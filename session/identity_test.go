package session_test

import (
	"testing"

	"github.com/chatsdk/compliance/session"
)

// TestNewIdentityCopies: an Identity is immutable, so editing the claims'
// slices after NewIdentity does not change it.
func TestNewIdentityCopies(t *testing.T) {
	c := session.Claims{Subject: "u1", AMR: []string{"pwd"}, Audience: []string{"chat-api"}}
	id := session.NewIdentity(c)
	c.AMR[0], c.Audience[0] = "mfa", "other-api"
	got := id.Claims()
	if got.AMR[0] != "pwd" || got.Audience[0] != "chat-api" || id.HasAMR("mfa") {
		t.Errorf("identity changed through the caller's slices: %+v", got)
	}
}
