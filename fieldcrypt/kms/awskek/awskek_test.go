package awskek_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go/aws"
	"github.com/aws/aws-sdk-go/service/kms"
	"github.com/aws/aws-sdk-go/service/kms/kmsiface"
	"github.com/tink-crypto/tink-go-awskms/v2/integration/awskms"
	"github.com/tink-crypto/tink-go/v2/core/registry"

	"github.com/chatsdk/compliance/fieldcrypt"
	"github.com/chatsdk/compliance/fieldcrypt/kms/awskek"
)

const keyURI = "aws-kms://arn:aws:kms:eu-west-1:111122223333:key/test"

// fakeKMS is a local AWS KMS: AES-GCM under a key of its own, binding the
// encryption context as AWS does. It implements only Encrypt and Decrypt.
type fakeKMS struct {
	kmsiface.KMSAPI
	gcm   cipher.AEAD
	calls int
}

func newFakeKMS(t *testing.T) *fakeKMS {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeKMS{gcm: gcm}
}

func encryptionContext(ec map[string]*string) []byte {
	v, ok := ec["associatedData"]
	if !ok {
		return nil
	}
	return []byte(aws.StringValue(v))
}

func (f *fakeKMS) Encrypt(in *kms.EncryptInput) (*kms.EncryptOutput, error) {
	f.calls++
	nonce := make([]byte, f.gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return &kms.EncryptOutput{CiphertextBlob: f.gcm.Seal(nonce, nonce, in.Plaintext, encryptionContext(in.EncryptionContext))}, nil
}

func (f *fakeKMS) Decrypt(in *kms.DecryptInput) (*kms.DecryptOutput, error) {
	f.calls++
	n := f.gcm.NonceSize()
	if len(in.CiphertextBlob) < n {
		return nil, errors.New("InvalidCiphertextException")
	}
	pt, err := f.gcm.Open(nil, in.CiphertextBlob[:n], in.CiphertextBlob[n:], encryptionContext(in.EncryptionContext))
	if err != nil {
		return nil, errors.New("InvalidCiphertextException")
	}
	return &kms.DecryptOutput{Plaintext: pt}, nil
}

func TestKEKWrapsKeysets(t *testing.T) {
	ctx := context.Background()
	fake := newFakeKMS(t)
	kek, err := awskek.New(keyURI, awskms.WithKMS(fake))
	if err != nil {
		t.Fatal(err)
	}
	st := fieldcrypt.NewMemoryStore()
	kr, err := fieldcrypt.New(fieldcrypt.Config{Store: st, KEK: kek})
	if err != nil {
		t.Fatal(err)
	}
	loc := fieldcrypt.Location{Tenant: "a", Table: "t", Column: "c", Row: "1"}
	ct, err := kr.Encrypt(ctx, loc, []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}

	// A second instance unwraps the keyset through the KMS.
	other, err := fieldcrypt.New(fieldcrypt.Config{Store: st, KEK: kek})
	if err != nil {
		t.Fatal(err)
	}
	before := fake.calls
	got, err := other.Decrypt(ctx, loc, ct)
	if err != nil || !bytes.Equal(got, []byte("secret")) {
		t.Fatalf("got %q, %v", got, err)
	}
	if fake.calls != before+1 {
		t.Fatalf("loading a keyset made %d KMS calls, want 1", fake.calls-before)
	}
	if _, err := other.Decrypt(ctx, loc, ct); err != nil || fake.calls != before+1 {
		t.Fatalf("a cached keyset called the KMS again (%d calls), %v", fake.calls-before, err)
	}

	// The scope is bound as encryption context.
	ks, err := st.Get(ctx, fieldcrypt.Scope{Tenant: "a"}, fieldcrypt.PurposeAEAD)
	if err != nil {
		t.Fatal(err)
	}
	ks.Scope = fieldcrypt.Scope{Tenant: "b"}
	if err := st.Create(ctx, ks); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Encrypt(ctx, fieldcrypt.Location{Tenant: "b", Table: "t", Column: "c", Row: "1"}, []byte("x")); !errors.Is(err, fieldcrypt.ErrUnwrap) {
		t.Fatalf("keyset moved to another scope: got %v, want ErrUnwrap", err)
	}
}

func TestRegister(t *testing.T) {
	t.Cleanup(registry.ClearKMSClients)
	if err := awskek.Register(awskek.URIPrefix, awskms.WithKMS(newFakeKMS(t))); err != nil {
		t.Fatal(err)
	}
	kek, err := fieldcrypt.KEKFromURI(keyURI)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := kek.Encrypt([]byte("k"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kek.Decrypt(ct, []byte("other")); err == nil {
		t.Fatal("decrypted under other associated data")
	}
	if err := awskek.Register("gcp-kms://x"); err == nil {
		t.Fatal("Register accepted a non-AWS prefix")
	}
}
