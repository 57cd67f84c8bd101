package fieldcrypt_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"strconv"
	"testing"

	"github.com/chatsdk/compliance/fieldcrypt"
)

// The benchmarks below compare a 200-byte field's encrypt and decrypt
// through a Keyring with the same work done with crypto/aes GCM directly
// (random nonce prepended, no associated data beyond the location's), so
// the ratio of the two is the cost of the keyset, cache and binding.
const benchFieldSize = 200

// benchKeyring is a Keyring configured as in production: the system clock,
// not the tests' settable one.
func benchKeyring(b *testing.B) *fieldcrypt.Keyring {
	b.Helper()
	kr, err := fieldcrypt.New(fieldcrypt.Config{Store: fieldcrypt.NewMemoryStore(), KEK: newKEK(b)})
	if err != nil {
		b.Fatal(err)
	}
	return kr
}

func BenchmarkEncryptDecrypt200(b *testing.B) {
	ctx := context.Background()
	kr := benchKeyring(b)
	pt := make([]byte, benchFieldSize)
	l := loc("app-a", "123456")
	if _, err := kr.Encrypt(ctx, l, pt); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchFieldSize)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ct, err := kr.Encrypt(ctx, l, pt)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := kr.Decrypt(ctx, l, ct); err != nil {
			b.Fatal(err)
		}
	}
}

// newGCM returns AES-256-GCM under a fresh random key, the baseline the
// Raw benchmarks measure a Keyring against.
func newGCM(b *testing.B) cipher.AEAD {
	b.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		b.Fatal(err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		b.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	return gcm
}

func BenchmarkRawAESGCM200(b *testing.B) {
	gcm := newGCM(b)
	pt := make([]byte, benchFieldSize)
	ad := loc("app-a", "123456").AssociatedData()
	b.SetBytes(benchFieldSize)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		nonce := make([]byte, gcm.NonceSize(), gcm.NonceSize()+benchFieldSize+gcm.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			b.Fatal(err)
		}
		ct := gcm.Seal(nonce, nonce, pt, ad)
		if _, err := gcm.Open(nil, ct[:gcm.NonceSize()], ct[gcm.NonceSize():], ad); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawAESGCMWithAD200 also encodes the location's associated data
// for every encrypt and decrypt, as a Keyring must.
func BenchmarkRawAESGCMWithAD200(b *testing.B) {
	gcm := newGCM(b)
	pt := make([]byte, benchFieldSize)
	l := loc("app-a", "123456")
	b.SetBytes(benchFieldSize)
	b.ReportAllocs()
	for b.Loop() {
		nonce := make([]byte, gcm.NonceSize(), gcm.NonceSize()+benchFieldSize+gcm.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			b.Fatal(err)
		}
		ct := gcm.Seal(nonce, nonce, pt, l.AssociatedData())
		if _, err := gcm.Open(nil, ct[:gcm.NonceSize()], ct[gcm.NonceSize():], l.AssociatedData()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncrypt200(b *testing.B) {
	ctx := context.Background()
	kr := benchKeyring(b)
	pt := make([]byte, benchFieldSize)
	l := loc("app-a", "123456")
	b.SetBytes(benchFieldSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.Encrypt(ctx, l, pt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecrypt200(b *testing.B) {
	ctx := context.Background()
	kr := benchKeyring(b)
	l := loc("app-a", "123456")
	ct, err := kr.Encrypt(ctx, l, make([]byte, benchFieldSize))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchFieldSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.Decrypt(ctx, l, ct); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBlindIndex(b *testing.B) {
	ctx := context.Background()
	kr := benchKeyring(b)
	ix := fieldcrypt.Index{Tenant: "app-a", Table: "patient", Column: "email"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.BlindIndex(ctx, ix, "jane.doe@example.com"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRewrapMemory(b *testing.B) {
	ctx := context.Background()
	bd := newBundle(b, nil)
	s := fieldcrypt.Scope{Tenant: "app-a"}
	col := fieldcrypt.NewMemoryColumn()
	const rows = 1000
	pt := make([]byte, benchFieldSize)
	for i := range rows {
		id := strconv.Itoa(100000 + i)
		ct, err := bd.kr.Encrypt(ctx, loc("app-a", id), pt)
		if err != nil {
			b.Fatal(err)
		}
		col.Put(s, id, ct)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := bd.kr.Rotate(ctx, s); err != nil {
			b.Fatal(err)
		}
		rep, err := (&fieldcrypt.Rewrap{Keyring: bd.kr, Rows: col, Scope: s, Table: "message", Column: "text"}).Run(ctx)
		if err != nil || rep.Rewrapped != rows {
			b.Fatalf("%+v, %v", rep, err)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}
