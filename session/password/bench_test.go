package password_test

import (
	"context"
	"testing"

	"github.com/chatsdk/compliance/session/password"
	"golang.org/x/crypto/bcrypt"
)

// BenchmarkHashDefault measures one argon2id hash at DefaultParams
// (19 MiB, t=2, p=1): the cost of a sign-up, a password change or a
// rehash.
func BenchmarkHashDefault(b *testing.B) {
	h, err := password.NewHasher(password.DefaultParams())
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		if _, err := h.Hash("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyDefault measures one sign-in verification at
// DefaultParams.
func BenchmarkVerifyDefault(b *testing.B) {
	h, err := password.NewHasher(password.DefaultParams())
	if err != nil {
		b.Fatal(err)
	}
	enc, err := h.Hash("correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := h.Verify("correct horse battery staple", enc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyBcrypt10 measures a legacy bcrypt verification at cost
// 10 (OWASP's minimum work factor for bcrypt), for comparison.
func BenchmarkVerifyBcrypt10(b *testing.B) {
	h, _ := password.NewHasher(password.InsecureFastParams())
	enc, err := bcrypt.GenerateFromPassword([]byte("correct horse battery staple"), 10)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := h.Verify("correct horse battery staple", string(enc)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckNIST measures a policy check with the shipped blocklist
// and context words.
func BenchmarkCheckNIST(b *testing.B) {
	p := password.NIST()
	c := password.Candidate{Password: "correct horse battery staple", ContextWords: []string{"alice", "chathealth"}}
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		if vs, _ := p.Check(ctx, c); len(vs) != 0 {
			b.Fatal(vs)
		}
	}
}
