package mfa_test

import (
	"context"
	"errors"
	"testing"

	"github.com/chatsdk/compliance/session/mfa"
)

// failingPolicies is a PolicyStore that is down.
type failingPolicies struct{ err error }

func (f failingPolicies) SetPolicy(context.Context, string, mfa.Policy) error { return f.err }
func (f failingPolicies) Policy(context.Context, string) (mfa.Policy, error) {
	return mfa.Policy{}, f.err
}

// TestPolicyStoreFailureFailsClosed: when the tenant's policy cannot be
// read, Requirement returns the error rather than a decision made on the
// default policy, which may be weaker than the tenant's own (a 7-day grace
// where the tenant allows none).
func TestPolicyStoreFailureFailsClosed(t *testing.T) {
	down := errors.New("policy store down")
	b := newAuthenticator(t, func(c *mfa.Config) { c.Policies = failingPolicies{down} })
	d, err := b.a.Requirement(context.Background(), mfa.RequirementParams{
		TenantID: "tenant-a", AccountID: "alice", AccountCreatedAt: start,
	})
	if !errors.Is(err, down) {
		t.Fatalf("Requirement with the policy store down: decision %+v, err %v; want the store's error", d, err)
	}
}
