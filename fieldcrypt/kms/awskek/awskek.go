// Package awskek makes an AWS KMS key the key-encryption key (KEK) of
// fieldcrypt, through Tink's AWS KMS client (tink-go-awskms). It lives
// apart from fieldcrypt so that only applications that use AWS pull in the
// AWS SDK.
//
// The KEK is called once per keyset load, create or change, never per
// field. The associated data fieldcrypt binds to each wrapped keyset (its
// scope) travels as the KMS encryption context "associatedData", so AWS
// refuses to decrypt a wrapped keyset moved to another scope, and the
// context appears in CloudTrail: it names the tenant and scope, never key
// material.
//
// Wire it as
//
//	kek, err := awskek.New("aws-kms://arn:aws:kms:eu-west-1:111122223333:key/…")
//	kr, err := fieldcrypt.New(fieldcrypt.Config{Store: store, KEK: kek})
//
// or register it once with [Register] and use fieldcrypt.KEKFromURI.
// Credentials come from the AWS SDK's default chain unless an option says
// otherwise.
package awskek

import (
	"fmt"

	"github.com/tink-crypto/tink-go-awskms/v2/integration/awskms"
	"github.com/tink-crypto/tink-go/v2/core/registry"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// URIPrefix begins every AWS KMS key URI.
const URIPrefix = "aws-kms://"

// Option configures the AWS KMS client; see the awskms package, for example
// awskms.WithCredentialPath or awskms.WithKMS (a KMS API of your own, such
// as a fake in tests).
type Option = awskms.ClientOption

// New returns the KMS key at keyURI, "aws-kms://arn:aws:kms:<region>:…",
// as a KEK.
func New(keyURI string, opts ...Option) (tink.AEAD, error) {
	c, err := client(keyURI, opts)
	if err != nil {
		return nil, err
	}
	a, err := c.GetAEAD(keyURI)
	if err != nil {
		return nil, fmt.Errorf("awskek: %w", err)
	}
	return a, nil
}

// Register registers a Tink KMS client for the key URIs that start with
// uriPrefix (URIPrefix for every AWS key, or one key's URI), so that
// fieldcrypt.KEKFromURI resolves them. Call it once at start-up.
func Register(uriPrefix string, opts ...Option) error {
	c, err := client(uriPrefix, opts)
	if err != nil {
		return err
	}
	registry.RegisterKMSClient(c)
	return nil
}

func client(uriPrefix string, opts []Option) (registry.KMSClient, error) {
	// The encryption context key is "associatedData" (Tink's current
	// name), so that the scope is bound as fieldcrypt intends.
	all := append([]Option{awskms.WithEncryptionContextName(awskms.AssociatedData)}, opts...)
	c, err := awskms.NewClientWithOptions(uriPrefix, all...)
	if err != nil {
		return nil, fmt.Errorf("awskek: %w", err)
	}
	return c, nil
}
