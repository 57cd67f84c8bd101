package password_test

import (
	"context"
	"fmt"

	"github.com/chatsdk/compliance/session/password"
)

// Example checks two candidate passwords against the NIST preset.
func Example() {
	ctx := context.Background()
	policy := password.NIST()
	for _, pw := range []string{"password", "correct horse battery staple"} {
		vs, _ := policy.Check(ctx, password.Candidate{Password: pw, ContextWords: []string{"alice"}})
		var codes []password.Code
		for _, v := range vs {
			codes = append(codes, v.Code)
		}
		fmt.Println(len(pw), codes)
	}
	// Output:
	// 8 [too_short blocklisted]
	// 28 []
}

// ExamplePolicy_DeviationReport prints how the reference policy departs
// from NIST SP 800-63B-4.
func ExamplePolicy_DeviationReport() {
	fmt.Print(password.ReferenceWithExpiry().DeviationReport())
	// Output:
	// policy reference-expiry: 3 deviations from NIST SP 800-63B-4 (August 2025) password rules
	// - min-length: SHALL require at least 15 characters for a password used as the only factor (§3.1.1.2); this policy requires 12
	// - composition: SHALL NOT impose composition rules such as mixtures of character types (§3.1.1.2); this policy requires lowercase, uppercase, digit, symbol characters
	// - periodic-change: SHALL NOT require periodic password changes; SHALL force a change on evidence of compromise (§3.1.1.2); this policy expires passwords after 90 days
}

// ExampleHasher shows a login that upgrades a hash made with older
// parameters.
func ExampleHasher() {
	old, _ := password.NewHasher(password.InsecureFastParams())
	stored, _ := old.Hash("correct horse battery staple")

	raised := password.InsecureFastParams()
	raised.Time = 2
	h, _ := password.NewHasher(raised)
	if err := h.Verify("correct horse battery staple", stored); err == nil && h.NeedsRehash(stored) {
		stored, _ = h.Hash("correct horse battery staple")
	}
	fmt.Println(h.NeedsRehash(stored), h.Verify("wrong", stored))
	// Output:
	// false password: mismatch
}
