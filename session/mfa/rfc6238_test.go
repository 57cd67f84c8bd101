package mfa_test

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/chatsdk/compliance/session/mfa"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// rfc6238Seeds are the secrets of RFC 6238 Appendix B: the ASCII digits
// repeated to the hash's block-friendly key size.
var rfc6238Seeds = map[mfa.Algorithm]string{
	mfa.SHA1:   "12345678901234567890",
	mfa.SHA256: "12345678901234567890123456789012",
	mfa.SHA512: "1234567890123456789012345678901234567890123456789012345678901234",
}

// rfc6238Vectors are RFC 6238 Appendix B's test values (8 digits, 30 s).
var rfc6238Vectors = []struct {
	unix int64
	want map[mfa.Algorithm]string
}{
	{59, map[mfa.Algorithm]string{mfa.SHA1: "94287082", mfa.SHA256: "46119246", mfa.SHA512: "90693936"}},
	{1111111109, map[mfa.Algorithm]string{mfa.SHA1: "07081804", mfa.SHA256: "68084774", mfa.SHA512: "25091201"}},
	{1111111111, map[mfa.Algorithm]string{mfa.SHA1: "14050471", mfa.SHA256: "67062674", mfa.SHA512: "99943326"}},
	{1234567890, map[mfa.Algorithm]string{mfa.SHA1: "89005924", mfa.SHA256: "91819424", mfa.SHA512: "93441116"}},
	{2000000000, map[mfa.Algorithm]string{mfa.SHA1: "69279037", mfa.SHA256: "90698825", mfa.SHA512: "38618901"}},
	{20000000000, map[mfa.Algorithm]string{mfa.SHA1: "65353130", mfa.SHA256: "77737706", mfa.SHA512: "47863826"}},
}

var otpAlgorithms = map[mfa.Algorithm]otp.Algorithm{
	mfa.SHA1: otp.AlgorithmSHA1, mfa.SHA256: otp.AlgorithmSHA256, mfa.SHA512: otp.AlgorithmSHA512,
}

// TestRFC6238VectorsThroughLibrary checks the vectors against pquerna/otp's
// own validation at a fixed clock, with no skew, so a library upgrade that
// changed the algorithm would fail here first.
func TestRFC6238VectorsThroughLibrary(t *testing.T) {
	for _, v := range rfc6238Vectors {
		for alg, want := range v.want {
			secret := b32(rfc6238Seeds[alg])
			at := time.Unix(v.unix, 0).UTC()
			opts := totp.ValidateOpts{Period: 30, Digits: otp.DigitsEight, Algorithm: otpAlgorithms[alg]}
			got, err := totp.GenerateCodeCustom(secret, at, opts)
			if err != nil || got != want {
				t.Errorf("%s at %d: code %q, %v; want %q", alg, v.unix, got, err, want)
			}
			ok, err := totp.ValidateCustom(want, secret, at, opts)
			if err != nil || !ok {
				t.Errorf("%s at %d: ValidateCustom(%q) = %v, %v; want true", alg, v.unix, want, ok, err)
			}
		}
	}
}

// TestRFC6238VectorsThroughAuthenticator enrols once per algorithm with
// the RFC seed (fed through Config.Rand), confirms with the first vector's
// code at its time, then verifies every later vector's code at its time,
// so the Authenticator's own step matching is checked against the RFC.
func TestRFC6238VectorsThroughAuthenticator(t *testing.T) {
	ctx := context.Background()
	for alg, seed := range rfc6238Seeds {
		t.Run(string(alg), func(t *testing.T) {
			now := time.Unix(rfc6238Vectors[0].unix, 0).UTC()
			a, err := mfa.New(mfa.Config{
				Store: mfa.NewMemoryStore(), Sealer: testSealer(t), Issuer: "RFC",
				Algorithm: alg, Digits: 8, SecretSize: len(seed),
				Now:  func() time.Time { return now },
				Rand: io.MultiReader(strings.NewReader(seed), bytes.NewReader(make([]byte, 1024))),
			})
			if err != nil {
				t.Fatal(err)
			}
			setup, err := a.Enrol(ctx, mfa.EnrolParams{TenantID: "t", AccountID: "rfc"})
			if err != nil {
				t.Fatal(err)
			}
			if setup.Secret != b32(seed) {
				t.Fatalf("secret %q, want the RFC seed %q", setup.Secret, b32(seed))
			}

			for i, v := range rfc6238Vectors {
				now = time.Unix(v.unix, 0).UTC()
				p := mfa.CodeParams{TenantID: "t", AccountID: "rfc", Code: v.want[alg]}
				var r mfa.Result
				if i == 0 {
					var c mfa.Confirmation
					c, err = a.Confirm(ctx, p)
					r = c.Result
				} else {
					r, err = a.Verify(ctx, p)
				}
				if err != nil {
					t.Fatalf("at %d: code %s: %v", v.unix, v.want[alg], err)
				}
				if wantStep := v.unix / 30; r.Step != wantStep {
					t.Errorf("at %d: step %d, want %d", v.unix, r.Step, wantStep)
				}
			}
		})
	}
}
