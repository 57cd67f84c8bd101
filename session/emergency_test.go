package session_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chatsdk/compliance/session"
)

// TestEmergencyRefreshIsReported: a refresh under a break-glass grant is a
// use of the grant, so it fires EmergencyUsed, and the refreshed access
// token is still marked.
func TestEmergencyRefreshIsReported(t *testing.T) {
	ctx := context.Background()
	b := setup(t, nil)
	tok, g, err := b.m.GrantEmergency(ctx, session.EmergencyRequest{
		AppID: "app1", UserID: "dr1", Methods: []string{session.AMRPassword}, Reason: "on-call",
	})
	if err != nil {
		t.Fatal(err)
	}

	b.clock.Advance(time.Minute)
	next, err := b.m.Refresh(ctx, tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	b.events.mu.Lock()
	used := append([]session.EmergencyEvent(nil), b.events.emergency...)
	b.events.mu.Unlock()
	if len(used) != 1 || used[0].GrantID != g.ID || used[0].SessionID != tok.SessionID || !used[0].At.Equal(t0.Add(time.Minute)) {
		t.Fatalf("EmergencyUsed after a refresh: %+v, want one event for grant %s", used, g.ID)
	}
	if c, err := b.m.Verify(next.AccessToken); err != nil || c.EmergencyGrantID != g.ID {
		t.Errorf("refreshed token: emg %q, err %v; want %q", c.EmergencyGrantID, err, g.ID)
	}
}

// TestEmergencyReasonBounded: the mandatory reason has an upper bound.
func TestEmergencyReasonBounded(t *testing.T) {
	b := setup(t, nil)
	req := session.EmergencyRequest{AppID: "app1", UserID: "dr1", Methods: []string{session.AMRPassword}}
	req.Reason = strings.Repeat("x", session.MaxReasonLen)
	if _, _, err := b.m.GrantEmergency(context.Background(), req); err != nil {
		t.Fatalf("reason of MaxReasonLen bytes: %v", err)
	}
	req.Reason += "x"
	if _, _, err := b.m.GrantEmergency(context.Background(), req); !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("reason over MaxReasonLen: got %v, want ErrInvalidArgument", err)
	}
}
