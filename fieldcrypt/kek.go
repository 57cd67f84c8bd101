package fieldcrypt

import (
	"fmt"
	"os"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/core/registry"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// KEKFromURI returns the KMS key at uri as a KEK, through the KMS client
// registered for it with registry.RegisterKMSClient: "hcvault://…" once
// the fieldcrypt/kms/vaultkek package has registered a Vault client,
// "aws-kms://…" once fieldcrypt/kms/awskek has, or any other Tink KMS
// client. Each keyset load is one call to the KMS.
func KEKFromURI(uri string) (tink.AEAD, error) {
	c, err := registry.GetKMSClient(uri)
	if err != nil {
		return nil, fmt.Errorf("%w: no KMS client for the KEK URI: %w", ErrConfig, err)
	}
	a, err := c.GetAEAD(uri)
	if err != nil {
		return nil, fmt.Errorf("fieldcrypt: KEK from KMS: %w", err)
	}
	return a, nil
}

// InsecureKEKFromCleartextFile reads a KEK from a cleartext binary Tink
// keyset file, for development only: whoever reads the file can unwrap
// every keyset. Create one with [InsecureWriteCleartextKEK].
func InsecureKEKFromCleartextFile(path string) (tink.AEAD, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("fieldcrypt: open KEK file: %w", err)
	}
	defer f.Close()
	h, err := insecurecleartextkeyset.Read(keyset.NewBinaryReader(f))
	if err != nil {
		return nil, fmt.Errorf("fieldcrypt: read KEK file: %w", err)
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("fieldcrypt: KEK file: %w", err)
	}
	return a, nil
}

// InsecureWriteCleartextKEK writes a new AES-256-GCM KEK to path as a
// cleartext Tink keyset, readable by its owner only, for development. It
// refuses to overwrite an existing file.
func InsecureWriteCleartextKEK(path string) error {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return fmt.Errorf("fieldcrypt: new KEK: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("fieldcrypt: create KEK file: %w", err)
	}
	if err := insecurecleartextkeyset.Write(h, keyset.NewBinaryWriter(f)); err != nil {
		f.Close()
		return fmt.Errorf("fieldcrypt: write KEK file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("fieldcrypt: write KEK file: %w", err)
	}
	return nil
}
