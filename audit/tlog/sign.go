package tlog

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/signature"
	tinked "github.com/tink-crypto/tink-go/v2/signature/ed25519"
	"github.com/tink-crypto/tink-go/v2/tink"
	"golang.org/x/mod/sumdb/note"
)

// DefaultKeyName is the note key name of the log's signatures when none is
// given. A note key name may not hold spaces or '+'.
const DefaultKeyName = "chatsdk-compliance/audit"

// Signer signs tree heads with the primary key of a Tink Ed25519 keyset,
// the keyset that signs the audit checkpoints. It implements note.Signer.
// Tink prefixes a signature with the key's 5-byte id; a note signature is
// the bare Ed25519 signature, so Signer strips the prefix, which makes the
// note checkable by any standard verifier. Keys of Tink's LEGACY variant
// sign a modified message and are refused. It is safe for concurrent use.
type Signer struct {
	name   string
	hash   uint32
	vkey   string
	prefix []byte
	tink   tink.Signer
}

var _ note.Signer = (*Signer)(nil)

// NewSigner returns a Signer named name (empty means [DefaultKeyName]) on
// the primary key of the private keyset h. Rotating the keyset's primary
// means making a new Signer; verifiers built from the public keyset accept
// both keys while both are in it.
func NewSigner(name string, h *keyset.Handle) (*Signer, error) {
	if name == "" {
		name = DefaultKeyName
	}
	if h == nil {
		return nil, fmt.Errorf("%w: nil keyset", ErrKey)
	}
	primary, err := h.Primary()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	priv, ok := primary.Key().(*tinked.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: the primary key is not an Ed25519 private key", ErrKey)
	}
	pk, err := priv.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	pub := pk.(*tinked.PublicKey)
	if pub.Parameters().(*tinked.Parameters).Variant() == tinked.VariantLegacy {
		return nil, fmt.Errorf("%w: Tink LEGACY Ed25519 keys do not make standard signatures", ErrKey)
	}
	vkey, err := note.NewEd25519VerifierKey(name, pub.KeyBytes())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	ts, err := signature.NewSigner(h)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	return &Signer{name: name, hash: v.KeyHash(), vkey: vkey, prefix: pub.OutputPrefix(), tink: ts}, nil
}

// Name implements note.Signer.
func (s *Signer) Name() string { return s.name }

// KeyHash implements note.Signer.
func (s *Signer) KeyHash() uint32 { return s.hash }

// VerifierKey returns the standard note verifier key of the signing key
// ("name+hash+base64 key"), which golang.org/x/mod/sumdb/note.NewVerifier
// and other C2SP signed-note verifiers accept.
func (s *Signer) VerifierKey() string { return s.vkey }

// Sign implements note.Signer: the bare Ed25519 signature of msg.
func (s *Signer) Sign(msg []byte) ([]byte, error) {
	sig, err := s.tink.Sign(msg)
	if err != nil {
		return nil, fmt.Errorf("tlog: sign: %w", err)
	}
	if !bytes.HasPrefix(sig, s.prefix) || len(sig) != len(s.prefix)+64 {
		return nil, errors.New("tlog: sign: the keyset's primary key changed under the signer")
	}
	return sig[len(s.prefix):], nil
}

// Verifiers returns a note verifier for every enabled Ed25519 key of the
// keyset h (public or private), named name (empty means
// [DefaultKeyName]), and their standard verifier keys. Keeping the
// previous key in the public keyset after a rotation keeps heads it signed
// verifying: that is the overlap.
func Verifiers(name string, h *keyset.Handle) ([]note.Verifier, []string, error) {
	if name == "" {
		name = DefaultKeyName
	}
	if h == nil {
		return nil, nil, fmt.Errorf("%w: nil keyset", ErrKey)
	}
	var (
		vs    []note.Verifier
		vkeys []string
	)
	for i := range h.Len() {
		e, err := h.Entry(i)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrKey, err)
		}
		if e.KeyStatus() != keyset.Enabled {
			continue
		}
		var pub *tinked.PublicKey
		switch k := e.Key().(type) {
		case *tinked.PublicKey:
			pub = k
		case *tinked.PrivateKey:
			pk, err := k.PublicKey()
			if err != nil {
				return nil, nil, fmt.Errorf("%w: %w", ErrKey, err)
			}
			pub = pk.(*tinked.PublicKey)
		default:
			continue
		}
		if pub.Parameters().(*tinked.Parameters).Variant() == tinked.VariantLegacy {
			continue
		}
		vkey, err := note.NewEd25519VerifierKey(name, pub.KeyBytes())
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrKey, err)
		}
		v, err := note.NewVerifier(vkey)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrKey, err)
		}
		vs = append(vs, v)
		vkeys = append(vkeys, vkey)
	}
	if len(vs) == 0 {
		return nil, nil, fmt.Errorf("%w: the keyset holds no enabled Ed25519 key", ErrKey)
	}
	return vs, vkeys, nil
}

// SignHead formats h as a checkpoint and signs it with s, returning the
// signed note.
func SignHead(s note.Signer, h TreeHead) ([]byte, error) {
	text, err := h.Format()
	if err != nil {
		return nil, err
	}
	msg, err := note.Sign(&note.Note{Text: string(text)}, s)
	if err != nil {
		return nil, fmt.Errorf("tlog: sign head: %w", err)
	}
	return msg, nil
}

// OpenHead checks that signed, a signed note, carries a valid signature
// by one of the log's keys and that no signature of a key in log or extra
// fails, and returns the tree head it states and the opened note.
// Signatures of unknown keys are left in the note's UnverifiedSigs.
func OpenHead(signed []byte, log []note.Verifier, extra ...note.Verifier) (TreeHead, *note.Note, error) {
	if len(signed) > MaxCheckpointSize {
		return TreeHead{}, nil, fmt.Errorf("%w: note too large", ErrMalformed)
	}
	n, err := note.Open(signed, note.VerifierList(append(append([]note.Verifier(nil), log...), extra...)...))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified), errors.As(err, &invalid):
			return TreeHead{}, nil, ErrBadSignature
		}
		return TreeHead{}, nil, fmt.Errorf("%w: note", ErrMalformed)
	}
	// Go's base64 decoder ignores the unused low bits of a final
	// character, so two spellings of one signature would both verify:
	// refuse any but the canonical one, so that no byte of a head can
	// change unnoticed.
	for _, sigs := range [][]note.Signature{n.Sigs, n.UnverifiedSigs} {
		for _, s := range sigs {
			if _, err := base64.StdEncoding.Strict().DecodeString(s.Base64); err != nil {
				return TreeHead{}, nil, fmt.Errorf("%w: signature encoding", ErrMalformed)
			}
		}
	}
	if !signedBy(n, log) {
		return TreeHead{}, nil, ErrBadSignature
	}
	h, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return TreeHead{}, nil, err
	}
	return h, n, nil
}

// signedBy reports whether one of n's verified signatures is by a key in vs.
func signedBy(n *note.Note, vs []note.Verifier) bool {
	for _, s := range n.Sigs {
		for _, v := range vs {
			if s.Name == v.Name() && s.Hash == v.KeyHash() {
				return true
			}
		}
	}
	return false
}
