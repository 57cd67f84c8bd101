package fieldcrypt_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/chatsdk/compliance/fieldcrypt"
)

func TestBlindIndex(t *testing.T) {
	ctx := context.Background()
	b := newBundle(t, nil)
	email := fieldcrypt.Index{Tenant: "app-a", Table: "patient", Column: "email"}
	index := func(ix fieldcrypt.Index, v string) []byte {
		t.Helper()
		got, err := b.kr.BlindIndex(ctx, ix, v)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	jane := index(email, "jane@example.com")
	if len(jane) != 8 {
		t.Fatalf("default index is %d bytes, want 8 (64 bits)", len(jane))
	}
	if !bytes.Equal(jane, index(email, "  JANE@example.com ")) {
		t.Fatal("normalised equal values index differently")
	}
	if bytes.Equal(jane, index(email, "john@example.com")) {
		t.Fatal("different values index alike")
	}
	other := email
	other.Column = "backup_email"
	if bytes.Equal(jane, index(other, "jane@example.com")) {
		t.Fatal("the same value in two columns indexes alike")
	}
	tenantB := email
	tenantB.Tenant = "app-b"
	if bytes.Equal(jane, index(tenantB, "jane@example.com")) {
		t.Fatal("the same value in two tenants indexes alike")
	}

	short := email
	short.Bits = 12
	s := index(short, "jane@example.com")
	if len(s) != 2 || s[1]&0x0f != 0 {
		t.Fatalf("12-bit index %x: want 2 bytes with the low 4 bits clear", s)
	}
	if !bytes.Equal(s[:1], jane[:1]) || s[1] != jane[1]&0xf0 {
		t.Fatalf("12-bit index %x is not a prefix of the 64-bit one %x", s, jane)
	}
	short.Bits = 4
	if _, err := b.kr.BlindIndex(ctx, short, "x"); !errors.Is(err, fieldcrypt.ErrConfig) {
		t.Fatalf("4-bit index: got %v, want ErrConfig", err)
	}
}

func TestBlindIndexRotation(t *testing.T) {
	ctx := context.Background()
	b := newBundle(t, nil)
	ix := fieldcrypt.Index{Tenant: "app-a", Table: "patient", Column: "mrn"}
	old, err := b.kr.BlindIndex(ctx, ix, "MRN-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.kr.RotateBlindIndex(ctx, "app-a"); err != nil {
		t.Fatal(err)
	}
	fresh, err := b.kr.BlindIndex(ctx, ix, "MRN-1")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(old, fresh) {
		t.Fatal("rotation kept the index key")
	}
	all, err := b.kr.BlindIndexes(ctx, ix, "MRN-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || !bytes.Equal(all[0], fresh) || !bytes.Equal(all[1], old) {
		t.Fatalf("BlindIndexes = %x, want the new index then the old", all)
	}

	// Another instance computes the same indexes from the store.
	other := b.another(t)
	again, err := other.BlindIndexes(ctx, ix, "MRN-1")
	if err != nil || len(again) != 2 || !bytes.Equal(again[0], fresh) {
		t.Fatalf("other instance: %x, %v", again, err)
	}

	if err := b.kr.Shred(ctx, fieldcrypt.Scope{Tenant: "app-a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.kr.BlindIndex(ctx, ix, "MRN-1"); !errors.Is(err, fieldcrypt.ErrShredded) {
		t.Fatalf("blind index of a shredded tenant: got %v, want ErrShredded", err)
	}
}

// A keyset that mixes algorithms (the Algorithm changed between
// rotations) decrypts under every key.
func TestMixedAlgorithmKeyset(t *testing.T) {
	ctx := context.Background()
	b := newBundle(t, nil)
	xb := b.cfg
	xb.Algorithm = fieldcrypt.XChaCha20Poly1305
	x, err := fieldcrypt.New(xb)
	if err != nil {
		t.Fatal(err)
	}
	l := loc("app-a", "1")
	gcmCT, err := b.kr.Encrypt(ctx, l, []byte("gcm"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x.Rotate(ctx, tenantA); err != nil {
		t.Fatal(err)
	}
	xCT, err := x.Encrypt(ctx, l, []byte("xchacha"))
	if err != nil {
		t.Fatal(err)
	}
	if len(xCT) != len(gcmCT)+12+4 {
		t.Fatalf("XChaCha20 ciphertext is %d bytes, GCM's %d: want 12 more nonce bytes and 4 more plaintext bytes", len(xCT), len(gcmCT))
	}
	for _, kr := range []*fieldcrypt.Keyring{b.kr, x, b.another(t)} {
		for ct, want := range map[string]string{string(gcmCT): "gcm", string(xCT): "xchacha"} {
			got, err := kr.Decrypt(ctx, l, []byte(ct))
			if err != nil || string(got) != want {
				t.Fatalf("got %q, %v; want %q", got, err, want)
			}
		}
	}
	bad := bytes.Clone(xCT)
	bad[len(bad)-1] ^= 1
	if _, err := x.Decrypt(ctx, l, bad); !errors.Is(err, fieldcrypt.ErrDecrypt) {
		t.Fatalf("tampered XChaCha20 ciphertext: got %v, want ErrDecrypt", err)
	}
}

func TestField(t *testing.T) {
	ctx := context.Background()
	b := newBundle(t, nil)
	totp := b.kr.Field("mfa_totp", "secret")
	ct, err := totp.Encrypt(ctx, "app-a", "user-7", []byte("JBSWY3DPEHPK3PXP"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := totp.Decrypt(ctx, "app-a", "user-7", ct); err != nil || string(got) != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err := totp.Decrypt(ctx, "app-a", "user-8", ct); !errors.Is(err, fieldcrypt.ErrDecrypt) {
		t.Fatalf("another user's row: got %v, want ErrDecrypt", err)
	}
	l := fieldcrypt.Location{Tenant: "app-a", Table: "mfa_totp", Column: "secret", Row: "user-7"}
	if _, err := b.kr.Decrypt(ctx, l, ct); err != nil {
		t.Fatalf("a Field's ciphertext is a Location's: %v", err)
	}
}
