package password_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/chatsdk/compliance/session/password"
	"golang.org/x/crypto/bcrypt"
)

func fastHasher(t testing.TB) *password.Hasher {
	t.Helper()
	h, err := password.NewHasher(password.InsecureFastParams())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHashRoundTrip(t *testing.T) {
	h := fastHasher(t)
	for _, pw := range []string{"correct horse battery staple", "pässwörd", "密码密码密码密码", "x", strings.Repeat("long", 200)} {
		enc, err := h.Hash(pw)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(enc, "$argon2id$v=19$m=64,t=1,p=1$") {
			t.Errorf("hash %q is not an argon2id PHC string with the Hasher's parameters", enc)
		}
		if err := h.Verify(pw, enc); err != nil {
			t.Errorf("Verify(%q): %v", pw, err)
		}
		if h.NeedsRehash(enc) {
			t.Errorf("fresh hash needs rehash")
		}
	}
}

func TestHashSaltsDiffer(t *testing.T) {
	h := fastHasher(t)
	a, _ := h.Hash("same password")
	b, _ := h.Hash("same password")
	if a == b {
		t.Fatal("two hashes of one password are equal: salt is not random")
	}
}

func TestVerifyWrongPassword(t *testing.T) {
	h := fastHasher(t)
	enc, _ := h.Hash("correct horse battery staple")
	for _, pw := range []string{"correct horse battery stapl", "Correct horse battery staple", "", "correct horse battery staple "} {
		if err := h.Verify(pw, enc); !errors.Is(err, password.ErrMismatch) {
			t.Errorf("Verify(%q): err = %v, want ErrMismatch", pw, err)
		}
	}
}

// TestVerifyNormalises checks that a password typed with a combining
// accent verifies against one hashed with the composed character.
func TestVerifyNormalises(t *testing.T) {
	h := fastHasher(t)
	enc, _ := h.Hash("caf\u00e9 au lait")
	if err := h.Verify("cafe\u0301 au lait", enc); err != nil {
		t.Fatalf("decomposed spelling: %v", err)
	}
}

func TestRehashAfterParameterChange(t *testing.T) {
	old := fastHasher(t)
	enc, _ := old.Hash("correct horse battery staple")

	raised := password.InsecureFastParams()
	raised.Memory, raised.Time = 128, 2
	h, err := password.NewHasher(raised)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Verify("correct horse battery staple", enc); err != nil {
		t.Fatalf("the new Hasher must still verify old hashes: %v", err)
	}
	if !h.NeedsRehash(enc) {
		t.Fatal("NeedsRehash = false after raising the parameters")
	}
	fresh, _ := h.Hash("correct horse battery staple")
	if h.NeedsRehash(fresh) || !old.NeedsRehash(fresh) {
		t.Fatal("NeedsRehash must compare the hash's parameters with the Hasher's")
	}
}

func TestVerifyBcryptForMigration(t *testing.T) {
	h := fastHasher(t)
	legacy, err := bcrypt.GenerateFromPassword([]byte("Tr0ub4dor&3"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Verify("Tr0ub4dor&3", string(legacy)); err != nil {
		t.Fatalf("bcrypt hash: %v", err)
	}
	if err := h.Verify("Tr0ub4dor&4", string(legacy)); !errors.Is(err, password.ErrMismatch) {
		t.Fatalf("bcrypt, wrong password: err = %v, want ErrMismatch", err)
	}
	if !h.NeedsRehash(string(legacy)) {
		t.Fatal("a bcrypt hash must need a rehash")
	}
	for _, prefix := range []string{"$2a$", "$2y$"} {
		alt := prefix + string(legacy)[4:]
		if err := h.Verify("Tr0ub4dor&3", alt); err != nil {
			t.Errorf("bcrypt %s: %v", prefix, err)
		}
	}
}

func TestVerifyMalformedHashes(t *testing.T) {
	h := fastHasher(t)
	good, _ := h.Hash("pw")
	parts := strings.Split(good, "$")
	cases := map[string]string{
		"empty":          "",
		"argon2i":        strings.Replace(good, "argon2id", "argon2i", 1),
		"old version":    strings.Replace(good, "v=19", "v=16", 1),
		"params order":   strings.Replace(good, "m=64,t=1,p=1", "t=1,m=64,p=1", 1),
		"leading zero":   strings.Replace(good, "m=64", "m=064", 1),
		"huge memory":    strings.Replace(good, "m=64", "m=99999999", 1),
		"zero time":      strings.Replace(good, "t=1", "t=0", 1),
		"zero threads":   strings.Replace(good, "p=1", "p=0", 1),
		"padded salt":    strings.Join([]string{"", parts[1], parts[2], parts[3], parts[4] + "==", parts[5]}, "$"),
		"short key":      strings.Join([]string{"", parts[1], parts[2], parts[3], parts[4], "AAAA"}, "$"),
		"extra field":    good + "$x",
		"bcrypt garbage": "$2b$10$notahash",
	}
	for name, enc := range cases {
		if err := h.Verify("pw", enc); !errors.Is(err, password.ErrMalformedHash) {
			t.Errorf("%s: err = %v, want ErrMalformedHash", name, err)
		}
		if !h.NeedsRehash(enc) {
			t.Errorf("%s: NeedsRehash = false", name)
		}
	}
}

func TestHashTooLong(t *testing.T) {
	h := fastHasher(t)
	if _, err := h.Hash(strings.Repeat("a", password.MaxBytes+1)); !errors.Is(err, password.ErrTooLong) {
		t.Fatalf("err = %v, want ErrTooLong", err)
	}
}

func TestDefaultParams(t *testing.T) {
	p := password.DefaultParams()
	if p != (password.Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}) {
		t.Fatalf("DefaultParams = %+v", p)
	}
	if !p.MeetsOWASPMinimum() {
		t.Fatal("the defaults must meet the OWASP minimum")
	}
	if password.InsecureFastParams().MeetsOWASPMinimum() {
		t.Fatal("the fast test parameters must not pass as OWASP-strength")
	}
	h, err := password.NewHasher(p)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := h.Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("default hash %s", enc)
	}
	if err := h.Verify("correct horse battery staple", enc); err != nil {
		t.Fatal(err)
	}
}

func TestNewHasherRejectsBadParams(t *testing.T) {
	for name, mutate := range map[string]func(*password.Params){
		"threads": func(p *password.Params) { p.Threads = 0 },
		"memory":  func(p *password.Params) { p.Memory = 4 },
		"time":    func(p *password.Params) { p.Time = 0 },
		"salt":    func(p *password.Params) { p.SaltLen = 4 },
		"key":     func(p *password.Params) { p.KeyLen = 8 },
	} {
		p := password.InsecureFastParams()
		mutate(&p)
		if _, err := password.NewHasher(p); !errors.Is(err, password.ErrInvalidParams) {
			t.Errorf("%s: err = %v, want ErrInvalidParams", name, err)
		}
	}
}

// TestVerifyRefusesAbsurdBcryptCost: a stored bcrypt hash claiming cost 31
// (2^31 rounds, hours of CPU) is refused as malformed before any rounds
// run, as an argon2id hash with absurd parameters is.
func TestVerifyRefusesAbsurdBcryptCost(t *testing.T) {
	h := fastHasher(t)
	legacy, err := bcrypt.GenerateFromPassword([]byte("Tr0ub4dor&3"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	hostile := strings.Replace(string(legacy), "$04$", "$31$", 1)
	if err := h.Verify("Tr0ub4dor&3", hostile); !errors.Is(err, password.ErrMalformedHash) {
		t.Fatalf("cost 31: err = %v, want ErrMalformedHash", err)
	}
	if !h.NeedsRehash(hostile) {
		t.Error("cost 31: NeedsRehash = false")
	}
}
