package mfa_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/chatsdk/compliance/session/mfa"
)

// TestInvalidInputRefused: empty or over-long identifiers and a label
// with the otpauth separator (which would let a label pose as another
// issuer in the authenticator app) are refused with ErrInvalidInput by
// every entry point, before the store is asked.
func TestInvalidInputRefused(t *testing.T) {
	ctx := context.Background()
	b := enrolled(t)
	long := strings.Repeat("x", 257)
	ids := map[string][2]string{
		"empty tenant":    {"", "alice"},
		"empty account":   {"tenant-a", ""},
		"long tenant":     {long, "alice"},
		"long account":    {"tenant-a", long},
		"256-byte tenant": {strings.Repeat("x", 256), "alice"}, // control: allowed
	}
	for name, id := range ids {
		want := name != "256-byte tenant"
		calls := map[string]error{}
		_, calls["Enrol"] = b.a.Enrol(ctx, mfa.EnrolParams{TenantID: id[0], AccountID: id[1]})
		_, calls["Confirm"] = b.a.Confirm(ctx, mfa.CodeParams{TenantID: id[0], AccountID: id[1], Code: "123456"})
		_, calls["Verify"] = b.a.Verify(ctx, mfa.CodeParams{TenantID: id[0], AccountID: id[1], Code: "123456"})
		_, calls["VerifyRecoveryCode"] = b.a.VerifyRecoveryCode(ctx, mfa.CodeParams{TenantID: id[0], AccountID: id[1], Code: "aaaa-aaaa-aaaa-aaaa"})
		_, calls["RegenerateRecoveryCodes"] = b.a.RegenerateRecoveryCodes(ctx, id[0], id[1])
		_, calls["Status"] = b.a.Status(ctx, id[0], id[1])
		calls["Disable"] = b.a.Disable(ctx, id[0], id[1])
		_, calls["Requirement"] = b.a.Requirement(ctx, mfa.RequirementParams{TenantID: id[0], AccountID: id[1]})
		for call, err := range calls {
			if got := errors.Is(err, mfa.ErrInvalidInput); got != want {
				t.Errorf("%s, %s: err = %v, ErrInvalidInput %t, want %t", name, call, err, got, want)
			}
		}
	}

	_, err := b.a.Enrol(ctx, mfa.EnrolParams{TenantID: "tenant-a", AccountID: "bob", Label: "Other Bank:bob"})
	if !errors.Is(err, mfa.ErrInvalidInput) {
		t.Errorf("label with ':': err = %v, want ErrInvalidInput", err)
	}
}
