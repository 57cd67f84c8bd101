package mfa_test

import (
	"encoding/hex"
	"testing"

	"github.com/chatsdk/compliance/session/mfa"
)

// TestStoredFormVectors pins the stored forms, computed by hand from the
// canonical encoding's definition (version 0x01, u32 length and domain,
// then each string as 0x02, u32 length, bytes), SHA-256 for the recovery
// code: a silent change would make every stored code or sealed secret
// unusable. The account is part of the recovery-code hash, so a hash
// copied to another account's rows matches nothing there.
func TestStoredFormVectors(t *testing.T) {
	hashes := []struct {
		tenant, account, code, want string
	}{
		{"tenant-a", "alice", "abcd2345efgh6723", "920cef98d689eceece345099ffc6676355c0907da1a7c7b6487db2f82198f4ff"},
		{"tenant-a", "alice", "ABCD-2345-EFGH-6723", "920cef98d689eceece345099ffc6676355c0907da1a7c7b6487db2f82198f4ff"},
		{"tenant-a", "bob", "abcd2345efgh6723", "80de4e651e2f2fb1fe159155ec8ec57e85866e2477f60ffc173ffa4adbeb116b"},
	}
	for _, v := range hashes {
		if got := hex.EncodeToString(mfa.HashRecoveryCode(v.tenant, v.account, v.code)); got != v.want {
			t.Errorf("HashRecoveryCode(%q, %q, %q) = %s, want %s", v.tenant, v.account, v.code, got, v.want)
		}
	}

	const ad = "01000000126d66612e746f74702d7365637265742e7631020000000874656e616e742d610200000005616c69636502000000026531"
	if got := hex.EncodeToString(mfa.Binding{TenantID: "tenant-a", AccountID: "alice", EnrolmentID: "e1"}.AssociatedData()); got != ad {
		t.Errorf("Binding.AssociatedData = %s, want %s", got, ad)
	}
}
