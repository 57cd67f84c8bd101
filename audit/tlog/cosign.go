package tlog

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// cosignatureAlg is the C2SP signed-note algorithm byte of a
// tlog-cosignature/v1 Ed25519 key.
const cosignatureAlg = 0x04

// cosignatureSize is a cosignature's length after the key hash: an 8-byte
// big-endian timestamp and an Ed25519 signature.
const cosignatureSize = 8 + ed25519.SignatureSize

// cosignedMessage is what a C2SP tlog-cosignature/v1 signature covers:
// a header line, the timestamp line and the checkpoint text.
func cosignedMessage(ts uint64, text []byte) []byte {
	return append(fmt.Appendf(nil, "cosignature/v1\ntime %d\n", ts), text...)
}

func cosignatureKeyHash(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', cosignatureAlg})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

func validKeyName(name string) bool {
	return validLine(name) && !strings.ContainsAny(name, " +\t")
}

// Cosigner makes C2SP tlog-cosignature/v1 signatures: a witness's
// statement that, at the time it signed, the checkpoint was the latest it
// had seen of the log and consistent with everything before. It
// implements note.Signer and is safe for concurrent use.
type Cosigner struct {
	name string
	key  ed25519.PrivateKey
	hash uint32
	now  func() time.Time
}

var _ note.Signer = (*Cosigner)(nil)

// NewCosigner returns a Cosigner named name (a note key name: no spaces
// or '+') with key. now is the clock of the cosignature timestamps; nil
// means time.Now.
func NewCosigner(name string, key ed25519.PrivateKey, now func() time.Time) (*Cosigner, error) {
	if !validKeyName(name) || len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: witness name or key", ErrKey)
	}
	if now == nil {
		now = time.Now
	}
	pub := key.Public().(ed25519.PublicKey)
	return &Cosigner{name: name, key: key, hash: cosignatureKeyHash(name, pub), now: now}, nil
}

// Name implements note.Signer.
func (c *Cosigner) Name() string { return c.name }

// KeyHash implements note.Signer.
func (c *Cosigner) KeyHash() uint32 { return c.hash }

// Sign implements note.Signer: the timestamp and the signature over the
// cosigned message.
func (c *Cosigner) Sign(msg []byte) ([]byte, error) {
	ts := uint64(c.now().Unix())
	sig := make([]byte, 8, cosignatureSize)
	binary.BigEndian.PutUint64(sig, ts)
	return append(sig, ed25519.Sign(c.key, cosignedMessage(ts, msg))...), nil
}

// Verifier returns the note.Verifier of c's cosignatures.
func (c *Cosigner) Verifier() note.Verifier {
	v, _ := NewCosignatureVerifier(c.name, c.key.Public().(ed25519.PublicKey))
	return v
}

// CosignatureVerifier checks a witness's tlog-cosignature/v1 signatures.
// It implements note.Verifier.
type CosignatureVerifier struct {
	name string
	pub  ed25519.PublicKey
	hash uint32
}

var _ note.Verifier = (*CosignatureVerifier)(nil)

// NewCosignatureVerifier returns the verifier of the witness name's
// cosignatures with public key pub.
func NewCosignatureVerifier(name string, pub ed25519.PublicKey) (*CosignatureVerifier, error) {
	if !validKeyName(name) || len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: witness name or key", ErrKey)
	}
	return &CosignatureVerifier{name: name, pub: pub, hash: cosignatureKeyHash(name, pub)}, nil
}

// Name implements note.Verifier.
func (v *CosignatureVerifier) Name() string { return v.name }

// KeyHash implements note.Verifier.
func (v *CosignatureVerifier) KeyHash() uint32 { return v.hash }

// Verify implements note.Verifier.
func (v *CosignatureVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != cosignatureSize {
		return false
	}
	ts := binary.BigEndian.Uint64(sig)
	return ed25519.Verify(v.pub, cosignedMessage(ts, msg), sig[8:])
}

// Timestamp returns the time a cosignature of v in the opened note n was
// made, and false if n has none.
func (v *CosignatureVerifier) Timestamp(n *note.Note) (time.Time, bool) {
	for _, s := range n.Sigs {
		if s.Name == v.name && s.Hash == v.hash {
			raw, err := decodeSig(s.Base64)
			if err != nil || len(raw) != 4+cosignatureSize {
				return time.Time{}, false
			}
			return time.Unix(int64(binary.BigEndian.Uint64(raw[4:])), 0).UTC(), true
		}
	}
	return time.Time{}, false
}

// ParseCosignatureKey parses a witness verifier key of the form
// "name+hash+base64(0x04 || public key)", the C2SP vkey encoding of a
// cosignature key, as [CosignatureVerifier.VerifierKey] writes it.
func ParseCosignatureKey(vkey string) (*CosignatureVerifier, error) {
	name, rest, ok1 := strings.Cut(vkey, "+")
	hashHex, keyB64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 || len(hashHex) != 8 {
		return nil, fmt.Errorf("%w: witness key", ErrMalformed)
	}
	hash, err := strconv.ParseUint(hashHex, 16, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: witness key hash", ErrMalformed)
	}
	raw, err := decodeSig(keyB64)
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != cosignatureAlg {
		return nil, fmt.Errorf("%w: witness key", ErrMalformed)
	}
	v, err := NewCosignatureVerifier(name, ed25519.PublicKey(raw[1:]))
	if err != nil {
		return nil, err
	}
	if uint32(hash) != v.hash {
		return nil, fmt.Errorf("%w: witness key hash does not match its key", ErrMalformed)
	}
	return v, nil
}

// VerifierKey returns v's key in the encoding [ParseCosignatureKey] reads.
func (v *CosignatureVerifier) VerifierKey() string {
	return fmt.Sprintf("%s+%08x+%s", v.name, v.hash, encodeSig(append([]byte{cosignatureAlg}, v.pub...)))
}
