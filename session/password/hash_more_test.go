package password_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/chatsdk/compliance/session/password"
	"golang.org/x/crypto/bcrypt"
)

// TestRehashOnEveryParameter: a change of any one parameter (lanes, salt
// or hash length, not only memory and passes) asks for a rehash.
func TestRehashOnEveryParameter(t *testing.T) {
	base := password.InsecureFastParams()
	enc, _ := fastHasher(t).Hash("correct horse battery staple")
	for name, mod := range map[string]func(*password.Params){
		"threads":  func(p *password.Params) { p.Threads = 2 },
		"salt len": func(p *password.Params) { p.SaltLen = 32 },
		"key len":  func(p *password.Params) { p.KeyLen = 64 },
		"memory":   func(p *password.Params) { p.Memory = 128 },
		"time":     func(p *password.Params) { p.Time = 2 },
	} {
		p := base
		mod(&p)
		h, err := password.NewHasher(p)
		if err != nil {
			t.Fatal(err)
		}
		if !h.NeedsRehash(enc) {
			t.Errorf("%s changed: NeedsRehash = false", name)
		}
	}
}

// TestParseRefusesWrappingCosts: a memory or time cost beyond 32 bits is
// refused, not wrapped into a small value that would verify.
func TestParseRefusesWrappingCosts(t *testing.T) {
	h := fastHasher(t)
	good, _ := h.Hash("pw")
	for name, enc := range map[string]string{
		"memory 2^32+64": strings.Replace(good, "m=64", "m=4294967360", 1),
		"time 2^32+1":    strings.Replace(good, "t=1", "t=4294967297", 1),
	} {
		if err := h.Verify("pw", enc); !errors.Is(err, password.ErrMalformedHash) {
			t.Errorf("%s: err = %v, want ErrMalformedHash", name, err)
		}
	}
}

// TestVerifyBcryptOfNormalisedPassword: a migrated bcrypt hash made from
// the NFKC form still verifies the password as typed in another form.
func TestVerifyBcryptOfNormalisedPassword(t *testing.T) {
	legacy, err := bcrypt.GenerateFromPassword([]byte(password.Normalize("cafe\u0301 au lait")), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := fastHasher(t).Verify("cafe\u0301 au lait", string(legacy)); err != nil {
		t.Fatalf("decomposed spelling against a bcrypt hash of the composed one: %v", err)
	}
}
