package session_test

import (
	"testing"

	"github.com/chatsdk/compliance/session"
	"github.com/chatsdk/compliance/session/sessiontest"
)

func TestMemoryStoreConformance(t *testing.T) {
	sessiontest.Run(t, func(*testing.T) session.Store { return session.NewMemoryStore() })
}
