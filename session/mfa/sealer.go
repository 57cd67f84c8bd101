package mfa

import (
	"context"

	"github.com/chatsdk/compliance/internal/canon"
)

// Binding is what a sealed TOTP secret is bound to: a ciphertext sealed
// for one enrolment does not open for another account, tenant or
// enrolment, so a secret copied between rows is useless.
type Binding struct {
	// TenantID and AccountID identify the account.
	TenantID  string
	AccountID string
	// EnrolmentID identifies the enrolment ([Enrolment.ID]).
	EnrolmentID string
}

// bindingDomain is the canonical encoding's domain for a Binding.
const bindingDomain = "mfa.totp-secret.v1"

// AssociatedData returns the Binding's canonical encoding, for a Sealer
// that passes it to an AEAD as associated data.
func (b Binding) AssociatedData() []byte {
	return canon.Encode(bindingDomain, canon.String(b.TenantID), canon.String(b.AccountID), canon.String(b.EnrolmentID))
}

// Sealer encrypts and decrypts TOTP secrets. The application wires it to
// its field encryption (fieldcrypt in the example server); the Store only
// ever sees what Seal returns. Implementations must authenticate the
// binding (an AEAD's associated data) and be safe for concurrent use.
type Sealer interface {
	// Seal encrypts a secret for b.
	Seal(ctx context.Context, b Binding, secret []byte) ([]byte, error)
	// Open decrypts what Seal returned for the same b, and fails for any
	// other b or an altered ciphertext.
	Open(ctx context.Context, b Binding, sealed []byte) ([]byte, error)
}

// AEAD is the method set of an authenticated cipher such as a Tink
// tink.AEAD primitive.
type AEAD interface {
	Encrypt(plaintext, associatedData []byte) ([]byte, error)
	Decrypt(ciphertext, associatedData []byte) ([]byte, error)
}

// AEADSealer is a Sealer over an AEAD, with the Binding's canonical
// encoding as associated data. It is safe for concurrent use when the AEAD
// is.
type AEADSealer struct {
	// AEAD encrypts and decrypts; required.
	AEAD AEAD
}

var _ Sealer = AEADSealer{}

// Seal implements Sealer.
func (s AEADSealer) Seal(_ context.Context, b Binding, secret []byte) ([]byte, error) {
	return s.AEAD.Encrypt(secret, b.AssociatedData())
}

// Open implements Sealer. Every failure is ErrUnseal.
func (s AEADSealer) Open(_ context.Context, b Binding, sealed []byte) ([]byte, error) {
	pt, err := s.AEAD.Decrypt(sealed, b.AssociatedData())
	if err != nil {
		return nil, ErrUnseal
	}
	return pt, nil
}
