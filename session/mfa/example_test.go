package mfa_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/chatsdk/compliance/session/mfa"
	"github.com/pquerna/otp/totp"
	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
)

// Example enrols an account, confirms it with a first code, signs in with
// the next code, and shows that the same code does not pass twice.
func Example() {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

	h, _ := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	cipher, _ := aead.New(h)
	auth, err := mfa.New(mfa.Config{
		Store:  mfa.NewMemoryStore(),
		Sealer: mfa.AEADSealer{AEAD: cipher},
		Issuer: "Chat Health",
		Now:    func() time.Time { return now },
	})
	if err != nil {
		panic(err)
	}

	setup, _ := auth.Enrol(ctx, mfa.EnrolParams{TenantID: "clinic-1", AccountID: "u-42", Label: "alice@example.com"})
	first, _ := totp.GenerateCode(setup.Secret, now) // what the user's app shows
	conf, err := auth.Confirm(ctx, mfa.CodeParams{TenantID: "clinic-1", AccountID: "u-42", Code: first})
	fmt.Println("confirmed:", err == nil, "recovery codes:", len(conf.RecoveryCodes))

	now = now.Add(30 * time.Second)
	next, _ := totp.GenerateCode(setup.Secret, now)
	res, err := auth.Verify(ctx, mfa.CodeParams{TenantID: "clinic-1", AccountID: "u-42", Code: next})
	fmt.Println("verified:", err == nil, "amr:", mfa.CombineAMR([]string{mfa.AMRPassword}, res.AMR()))

	_, err = auth.Verify(ctx, mfa.CodeParams{TenantID: "clinic-1", AccountID: "u-42", Code: next})
	fmt.Println("replayed:", errors.Is(err, mfa.ErrReplayed))
	// Output:
	// confirmed: true recovery codes: 10
	// verified: true amr: [pwd otp mfa]
	// replayed: true
}

// ExampleAuthenticator_Requirement shows the enrolment grace period of the
// default policy.
func ExampleAuthenticator_Requirement() {
	ctx := context.Background()
	created := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	now := created.Add(3 * 24 * time.Hour)

	h, _ := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	cipher, _ := aead.New(h)
	auth, _ := mfa.New(mfa.Config{
		Store:  mfa.NewMemoryStore(),
		Sealer: mfa.AEADSealer{AEAD: cipher},
		Issuer: "Chat Health",
		Now:    func() time.Time { return now },
	})

	p := mfa.RequirementParams{TenantID: "clinic-1", AccountID: "u-42", AccountCreatedAt: created}
	d, _ := auth.Requirement(ctx, p)
	fmt.Println(d.Action, d.InGrace(), d.GraceEnds.Format(time.DateOnly))

	now = created.Add(8 * 24 * time.Hour)
	d, _ = auth.Requirement(ctx, p)
	fmt.Println(d.Action, d.InGrace())
	// Output:
	// enrol_soon true 2026-03-08
	// enrol_now false
}
