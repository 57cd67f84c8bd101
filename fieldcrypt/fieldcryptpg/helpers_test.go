package fieldcryptpg_test

import (
	"testing"

	"github.com/tink-crypto/tink-go/v2/testing/fakekms"
	"github.com/tink-crypto/tink-go/v2/tink"
)

func newKEK(t testing.TB) tink.AEAD {
	t.Helper()
	uri, err := fakekms.NewKeyURI()
	if err != nil {
		t.Fatal(err)
	}
	kek, err := fakekms.NewAEAD(uri)
	if err != nil {
		t.Fatal(err)
	}
	return kek
}
