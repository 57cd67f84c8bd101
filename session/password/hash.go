package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Params are argon2id parameters (RFC 9106).
type Params struct {
	// Memory is the memory cost in KiB.
	Memory uint32
	// Time is the number of passes over the memory.
	Time uint32
	// Threads is the degree of parallelism (lanes).
	Threads uint8
	// SaltLen is the salt length in bytes.
	SaltLen uint32
	// KeyLen is the hash length in bytes.
	KeyLen uint32
}

// DefaultParams returns the default argon2id parameters: m=19456 KiB
// (19 MiB), t=2, p=1, a 16-byte salt and a 32-byte hash.
//
// These are the first of the equivalent minimum configurations of the
// OWASP Password Storage Cheat Sheet (argon2id with m=47104 KiB t=1,
// m=19456 t=2, m=12288 t=3, m=9216 t=4 or m=7168 t=5, each with p=1), the
// cheat sheet's headline recommendation. We chose the 19 MiB row over the
// 46 MiB one because memory per login is what limits a small server under
// a burst of sign-ins (50 at once cost about 1 GiB here, 2.3 GiB there)
// while the time-memory product, which is what an attacker pays, is about
// the same. p=1 keeps one login on one core so concurrent logins do not
// compete. Raise the parameters as hardware allows; [Hasher.NeedsRehash]
// then upgrades stored hashes at the next successful login. RFC 9106 §4's
// recommendations (2 GiB, or 64 MiB with t=3 and p=4) are stronger and
// cost more per login.
func DefaultParams() Params {
	return Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// InsecureFastParams returns parameters cheap enough for tests: 64 KiB,
// one pass. Never use them for real passwords.
func InsecureFastParams() Params {
	return Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// owaspMinimums are the OWASP cheat sheet's equivalent argon2id minimums
// (memory KiB, passes) at p=1.
var owaspMinimums = [][2]uint32{{47104, 1}, {19456, 2}, {12288, 3}, {9216, 4}, {7168, 5}}

// MeetsOWASPMinimum reports whether the parameters are at least one of
// the OWASP cheat sheet's minimum configurations (in memory and passes).
func (p Params) MeetsOWASPMinimum() bool {
	for _, m := range owaspMinimums {
		if p.Memory >= m[0] && p.Time >= m[1] {
			return true
		}
	}
	return false
}

// Bounds on the parameters a hash may carry, so a corrupted or hostile
// stored hash cannot make verification allocate gigabytes or spin.
const (
	maxMemory  = 4 << 20 // KiB: 4 GiB
	maxTime    = 100
	minSaltLen = 8
	maxSaltLen = 64
	minKeyLen  = 16
	maxKeyLen  = 128
)

func (p Params) validate() error {
	switch {
	case p.Threads < 1:
		return fmt.Errorf("%w: Threads must be at least 1", ErrInvalidParams)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory:
		return fmt.Errorf("%w: Memory must be between 8×Threads KiB and 4 GiB", ErrInvalidParams)
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("%w: Time must be between 1 and %d", ErrInvalidParams, maxTime)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("%w: SaltLen must be between %d and %d", ErrInvalidParams, minSaltLen, maxSaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("%w: KeyLen must be between %d and %d", ErrInvalidParams, minKeyLen, maxKeyLen)
	}
	return nil
}

// Hasher hashes passwords with argon2id into PHC strings and verifies
// argon2id and (for migrated accounts) bcrypt hashes. It is safe for
// concurrent use.
type Hasher struct {
	params Params
	rand   io.Reader
}

// NewHasher returns a Hasher that hashes with p. It rejects parameters
// out of range, not weak ones: check [Params.MeetsOWASPMinimum] in
// production code if the parameters come from configuration.
func NewHasher(p Params) (*Hasher, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	return &Hasher{params: p, rand: rand.Reader}, nil
}

// Params returns the parameters the Hasher hashes with.
func (h *Hasher) Params() Params { return h.params }

// Hash returns the PHC string of a fresh argon2id hash of the normalised
// password ([Normalize]):
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// with salt and hash in unpadded standard base64, as the PHC string
// format and the argon2 reference implementation write them.
func (h *Hasher) Hash(password string) (string, error) {
	pw := Normalize(password)
	if len(pw) > MaxBytes {
		return "", ErrTooLong
	}
	salt := make([]byte, h.params.SaltLen)
	if _, err := io.ReadFull(h.rand, salt); err != nil {
		return "", fmt.Errorf("password: make salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, h.params.Time, h.params.Memory, h.params.Threads, h.params.KeyLen)
	return phc{params: h.params, salt: salt, key: key}.String(), nil
}

// Verify checks the password against a stored hash: an argon2id PHC
// string, or a bcrypt hash ($2a$, $2b$, $2y$) from a system being
// migrated. It returns nil on a match, ErrMismatch for a wrong password,
// and ErrMalformedHash for a hash it cannot read. Comparison is in
// constant time. After a match, check [Hasher.NeedsRehash] and store a
// new Hash of the same password if it says so.
//
// bcrypt hashes are checked against the password as given and, if that
// fails and normalising changes it, as normalised; bcrypt reads at most
// 72 bytes of a password. A bcrypt cost above 16 is ErrMalformedHash.
func (h *Hasher) Verify(password, encoded string) error {
	if len(password) > MaxBytes {
		return ErrMismatch
	}
	if isBcrypt(encoded) {
		return verifyBcrypt(password, encoded)
	}

	p, err := parsePHC(encoded)
	if err != nil {
		return err
	}
	key := argon2.IDKey([]byte(Normalize(password)), p.salt, p.params.Time, p.params.Memory, p.params.Threads, p.params.KeyLen)
	if subtle.ConstantTimeCompare(key, p.key) != 1 {
		return ErrMismatch
	}
	return nil
}

// NeedsRehash reports whether a stored hash should be replaced by a new
// Hash: it is bcrypt, unreadable, or argon2id with parameters other than
// the Hasher's (lower or higher, so a rollback of the parameters takes
// effect too).
func (h *Hasher) NeedsRehash(encoded string) bool {
	if isBcrypt(encoded) {
		return true
	}
	p, err := parsePHC(encoded)
	if err != nil {
		return true
	}
	return p.params != h.params
}

// DummyVerify spends the time of a verification and discards the result,
// so a login for an unknown account takes as long as one for a known
// account with a wrong password.
func (h *Hasher) DummyVerify(password string) {
	pw := Normalize(password)
	if len(pw) > MaxBytes {
		return
	}
	var salt [16]byte
	_ = argon2.IDKey([]byte(pw), salt[:], h.params.Time, h.params.Memory, h.params.Threads, h.params.KeyLen)
}

func isBcrypt(encoded string) bool {
	return strings.HasPrefix(encoded, "$2a$") || strings.HasPrefix(encoded, "$2b$") || strings.HasPrefix(encoded, "$2y$")
}

// maxBcryptCost is the highest bcrypt cost Verify runs: 2^16 rounds, some
// seconds per check, above what deployed systems use (OWASP asks for at
// least 10). A stored hash claiming more (up to 31, hours of CPU) is
// refused as malformed, as argon2id parameters out of bounds are.
const maxBcryptCost = 16

func verifyBcrypt(password, encoded string) error {
	if cost, err := bcrypt.Cost([]byte(encoded)); err != nil || cost > maxBcryptCost {
		return fmt.Errorf("%w: bcrypt", ErrMalformedHash)
	}
	err := bcrypt.CompareHashAndPassword([]byte(encoded), []byte(password))
	if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
		if norm := Normalize(password); norm != password {
			err = bcrypt.CompareHashAndPassword([]byte(encoded), []byte(norm))
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return ErrMismatch
	}
	return fmt.Errorf("%w: bcrypt", ErrMalformedHash)
}

// phc is a parsed argon2id PHC string.
type phc struct {
	params    Params
	salt, key []byte
}

var b64 = base64.RawStdEncoding

func (p phc) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.params.Memory, p.params.Time, p.params.Threads, b64.EncodeToString(p.salt), b64.EncodeToString(p.key))
}

// parsePHC reads "$argon2id$v=19$m=…,t=…,p=…$salt$hash" strictly: the
// parameters in that order, decimal without leading zeros, unpadded
// base64, lengths and costs within bounds. Anything else is
// ErrMalformedHash, with no detail of the input in the message.
func parsePHC(s string) (phc, error) {
	bad := func(what string) (phc, error) { return phc{}, fmt.Errorf("%w: %s", ErrMalformedHash, what) }
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return bad("not a PHC string")
	}
	if parts[1] != "argon2id" {
		return bad("algorithm is not argon2id")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("unsupported argon2 version")
	}

	var p phc
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return bad("want parameters m, t and p")
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(kv[i], name+"=")
		if !ok {
			return bad("want parameters m, t and p in that order")
		}
		n, err := parseDecimal(v)
		if err != nil {
			return bad("parameter " + name + " is not a canonical decimal")
		}
		vals[i] = n
	}
	if vals[0] > maxMemory || vals[1] > maxTime || vals[2] > 255 {
		return bad("parameters out of range")
	}
	p.params.Memory, p.params.Time, p.params.Threads = uint32(vals[0]), uint32(vals[1]), uint8(vals[2])

	var err error
	if p.salt, err = decodeB64(parts[4]); err != nil {
		return bad("salt is not unpadded base64")
	}
	if p.key, err = decodeB64(parts[5]); err != nil {
		return bad("hash is not unpadded base64")
	}
	p.params.SaltLen, p.params.KeyLen = uint32(len(p.salt)), uint32(len(p.key))
	if err := p.params.validate(); err != nil {
		return bad("parameters out of range")
	}
	return p, nil
}

func parseDecimal(s string) (uint64, error) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') || strings.Trim(s, "0123456789") != "" {
		return 0, errors.New("not canonical")
	}
	return strconv.ParseUint(s, 10, 64)
}

// decodeB64 decodes unpadded standard base64 and rejects non-canonical
// spellings (stray bits in the last character), so one hash has one
// string.
func decodeB64(s string) ([]byte, error) {
	b, err := b64.Strict().DecodeString(s)
	if err != nil {
		return nil, err
	}
	return b, nil
}
