package audit_test

import (
	"testing"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/audittest"
)

func TestMemoryStoreConformance(t *testing.T) {
	audittest.Run(t, func(t *testing.T) audit.Store { return audit.NewMemoryStore() })
}
