package session_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/chatsdk/compliance/session"
)

// cancelOnReuseStore cancels the request's context as soon as a rotation
// reports a replay (the thief's client hanging up), and, as a database
// store would, refuses work on a cancelled context.
type cancelOnReuseStore struct {
	session.Store
	cancel context.CancelFunc
}

func (s *cancelOnReuseStore) RotateRefresh(ctx context.Context, p session.RotateParams) (session.RotateResult, error) {
	res, err := s.Store.RotateRefresh(ctx, p)
	if res.Reused {
		s.cancel()
	}
	return res, err
}

func (s *cancelOnReuseStore) Revoke(ctx context.Context, id string, now time.Time, reason session.Reason) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	return s.Store.Revoke(ctx, id, now, reason)
}

// TestReuseRevokesEvenIfCallerGoesAway: the response to a replayed refresh
// token (revoking the family, reporting it) does not depend on the
// replaying client staying connected.
func TestReuseRevokesEvenIfCallerGoesAway(t *testing.T) {
	cs := &cancelOnReuseStore{}
	b := setup(t, func(c *session.Config) {
		cs.Store = c.Store
		c.Store = cs
	})
	tok := b.login(t)
	b.clock.Advance(time.Minute)
	if _, err := b.m.Refresh(context.Background(), tok.RefreshToken); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs.cancel = cancel
	if _, err := b.m.Refresh(ctx, tok.RefreshToken); !errors.Is(err, session.ErrTokenReused) {
		t.Errorf("replay: got %v, want ErrTokenReused", err)
	}

	s, err := cs.Store.Session(context.Background(), tok.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if s.RevokedAt.IsZero() {
		t.Error("the replaying client hung up and the family was not revoked")
	}
	b.events.mu.Lock()
	defer b.events.mu.Unlock()
	if len(b.events.reused) != 1 || len(b.events.revoked) != 1 {
		t.Errorf("hooks: %d reuse and %d revoke events, want 1 and 1", len(b.events.reused), len(b.events.revoked))
	}
}
