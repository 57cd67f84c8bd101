package session

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// The signing algorithms a [Key] may use, as JOSE names them.
const (
	// AlgEdDSA is Ed25519 signatures (RFC 8037), the default.
	AlgEdDSA = "EdDSA"
	// AlgHS256 is HMAC-SHA-256 with a shared secret. Every verifier holds
	// the signing secret, so prefer EdDSA when several services verify.
	AlgHS256 = "HS256"
)

// minHMACSecret is the shortest HS256 secret accepted, in bytes (RFC 7518
// §3.2 asks for a key at least as long as the hash output).
const minHMACSecret = 32

// Key is one access-token key: an id (the JWT kid header), an algorithm and
// the key material. Build one with [NewEd25519Key], [NewEd25519PublicKey],
// [GenerateEd25519Key] or [NewHS256Key]. The zero Key is not usable.
type Key struct {
	id     string
	alg    string
	method jwt.SigningMethod
	sign   any // ed25519.PrivateKey, []byte, or nil for a verify-only key
	verify any // ed25519.PublicKey or []byte
}

// ID returns the key id.
func (k Key) ID() string { return k.id }

// Alg returns the key's algorithm, AlgEdDSA or AlgHS256.
func (k Key) Alg() string { return k.alg }

// CanSign reports whether the key holds private or secret material.
func (k Key) CanSign() bool { return k.sign != nil }

// NewEd25519Key returns a signing key from an Ed25519 private key.
func NewEd25519Key(id string, priv ed25519.PrivateKey) (Key, error) {
	if id == "" {
		return Key{}, fmt.Errorf("%w: key id is empty", ErrInvalidConfig)
	}
	if len(priv) != ed25519.PrivateKeySize {
		return Key{}, fmt.Errorf("%w: key %q: Ed25519 private key has the wrong size", ErrInvalidConfig, id)
	}
	pub, _ := priv.Public().(ed25519.PublicKey)
	return Key{id: id, alg: AlgEdDSA, method: jwt.SigningMethodEdDSA, sign: priv, verify: pub}, nil
}

// NewEd25519PublicKey returns a verify-only key, for a service that checks
// tokens another service signs, or for a retired key whose tokens have not
// all expired yet.
func NewEd25519PublicKey(id string, pub ed25519.PublicKey) (Key, error) {
	if id == "" {
		return Key{}, fmt.Errorf("%w: key id is empty", ErrInvalidConfig)
	}
	if len(pub) != ed25519.PublicKeySize {
		return Key{}, fmt.Errorf("%w: key %q: Ed25519 public key has the wrong size", ErrInvalidConfig, id)
	}
	return Key{id: id, alg: AlgEdDSA, method: jwt.SigningMethodEdDSA, verify: pub}, nil
}

// GenerateEd25519Key returns a fresh Ed25519 signing key.
func GenerateEd25519Key(id string) (Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, fmt.Errorf("session: generate key: %w", err)
	}
	return NewEd25519Key(id, priv)
}

// NewHS256Key returns an HMAC-SHA-256 key. The secret must be at least 32
// bytes of random data; it is copied.
func NewHS256Key(id string, secret []byte) (Key, error) {
	if id == "" {
		return Key{}, fmt.Errorf("%w: key id is empty", ErrInvalidConfig)
	}
	if len(secret) < minHMACSecret {
		return Key{}, fmt.Errorf("%w: key %q: HS256 secret shorter than %d bytes", ErrInvalidConfig, id, minHMACSecret)
	}
	s := append([]byte(nil), secret...)
	return Key{id: id, alg: AlgHS256, method: jwt.SigningMethodHS256, sign: s, verify: s}, nil
}

// PublicKey returns the Ed25519 public key of an EdDSA key, for publishing
// to other verifiers, or nil for an HS256 key.
func (k Key) PublicKey() ed25519.PublicKey {
	pub, _ := k.verify.(ed25519.PublicKey)
	return pub
}

// KeyRing is the set of keys a [Manager] signs and verifies access tokens
// with: one signing key and any number of verify-only keys, each found by
// its kid. To rotate, build a ring whose signing key is the new key and
// which still holds the old one, and hand it to [Manager.SetKeys]; drop the
// old key once the access-token lifetime has passed. A KeyRing is
// immutable and safe for concurrent use.
type KeyRing struct {
	signing Key
	byID    map[string]Key
	algs    []string
}

// NewKeyRing returns a ring that signs with signing and verifies tokens
// made with signing or any of others. Key ids must be unique.
func NewKeyRing(signing Key, others ...Key) (*KeyRing, error) {
	if !signing.CanSign() {
		return nil, fmt.Errorf("%w: Keys: signing key %q holds no private or secret material", ErrInvalidConfig, signing.id)
	}
	r := &KeyRing{signing: signing, byID: map[string]Key{}}
	algs := map[string]bool{}
	for _, k := range append([]Key{signing}, others...) {
		if k.id == "" || k.method == nil {
			return nil, fmt.Errorf("%w: Keys: a key is the zero Key", ErrInvalidConfig)
		}
		if _, dup := r.byID[k.id]; dup {
			return nil, fmt.Errorf("%w: Keys: duplicate key id %q", ErrInvalidConfig, k.id)
		}
		r.byID[k.id] = k
		algs[k.alg] = true
	}
	for a := range algs {
		r.algs = append(r.algs, a)
	}
	sort.Strings(r.algs)
	return r, nil
}

// SigningKey returns the key new tokens are signed with.
func (r *KeyRing) SigningKey() Key { return r.signing }

// SigningKeyID returns the id of the key new tokens are signed with.
func (r *KeyRing) SigningKeyID() string { return r.signing.id }

// Algorithms returns the algorithms the ring accepts, sorted: only these
// pass verification, whatever a token's header claims.
func (r *KeyRing) Algorithms() []string { return append([]string(nil), r.algs...) }

// String returns the key's id and algorithm, never its key material, so a
// Key that reaches a log or an error message gives nothing away.
func (k Key) String() string {
	return fmt.Sprintf("session.Key(%s, %s, can sign: %t)", k.id, k.alg, k.CanSign())
}

// GoString is String, for the %#v verb.
func (k Key) GoString() string { return k.String() }

// LogValue implements [slog.LogValuer]: the id and algorithm only.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", k.id), slog.String("alg", k.alg), slog.Bool("can_sign", k.CanSign()))
}

// ids returns the ring's key ids, sorted.
func (r *KeyRing) ids() []string {
	ids := make([]string, 0, len(r.byID))
	for id := range r.byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// String returns the ring's key ids, never key material.
func (r *KeyRing) String() string {
	if r == nil {
		return "session.KeyRing(nil)"
	}
	return fmt.Sprintf("session.KeyRing(signing %s, keys %s)", r.signing.id, strings.Join(r.ids(), ", "))
}

// GoString is String, for the %#v verb.
func (r *KeyRing) GoString() string { return r.String() }

// LogValue implements [slog.LogValuer]: the key ids only.
func (r *KeyRing) LogValue() slog.Value {
	if r == nil {
		return slog.StringValue("nil")
	}
	return slog.GroupValue(slog.String("signing", r.signing.id), slog.Any("keys", r.ids()))
}
