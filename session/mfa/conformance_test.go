package mfa_test

import (
	"testing"

	"github.com/chatsdk/compliance/session/mfa"
	"github.com/chatsdk/compliance/session/mfa/mfatest"
)

func mfatestRun(t *testing.T) {
	mfatest.Run(t, func(*testing.T) mfa.Store { return mfa.NewMemoryStore() })
	mfatest.RunPolicyStore(t, func(*testing.T) mfa.PolicyStore { return mfa.NewMemoryStore() })
}

func TestMemoryStoreInstances(t *testing.T) {
	mfatest.RunInstances(t, func(*testing.T) func() mfa.Store {
		s := mfa.NewMemoryStore()
		return func() mfa.Store { return s }
	})
}
