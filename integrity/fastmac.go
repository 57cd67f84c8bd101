package integrity

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"hash"
	"sync"

	"github.com/tink-crypto/tink-go/v2/insecuresecretdataaccess"
	"github.com/tink-crypto/tink-go/v2/keyset"
	tinkhmac "github.com/tink-crypto/tink-go/v2/mac/hmac"
)

// hmacKey computes Tink's HMAC-SHA256 tags (TINK variant: the 5-byte
// prefix, then the HMAC truncated to the tag size) with crypto/hmac
// instances that are reset rather than rebuilt, so a tag costs no
// allocation beyond its own bytes. Tink's own HMAC builds a new instance,
// and so re-derives the padded key, on every call, which is most of the
// cost when a verifier checks millions of short rows. The output is the
// same bytes as Tink's, which the known-answer vectors and a cross-check
// test pin.
type hmacKey struct {
	prefix  []byte
	tagSize int
	pool    sync.Pool // of *hmacState
}

// hmacState is a reusable HMAC instance with room for its output, so that
// summing into it does not allocate.
type hmacState struct {
	h   hash.Hash
	out [sha256.Size]byte
}

// fastKeys returns the enabled HMAC-SHA256 TINK-variant keys of h by id,
// leaving out ids that more than one key has.
func fastKeys(h *keyset.Handle) map[uint32]*hmacKey {
	out := map[uint32]*hmacKey{}
	seen := map[uint32]int{}
	for i := range h.Len() {
		e, err := h.Entry(i)
		if err != nil || e.KeyStatus() != keyset.Enabled {
			continue
		}
		seen[e.KeyID()]++
		k, ok := e.Key().(*tinkhmac.Key)
		if !ok {
			continue
		}
		p, ok := k.Parameters().(*tinkhmac.Parameters)
		if !ok || p.HashType() != tinkhmac.SHA256 || p.Variant() != tinkhmac.VariantTink {
			continue
		}
		secret := k.KeyBytes().Data(insecuresecretdataaccess.Token{})
		out[e.KeyID()] = &hmacKey{
			prefix:  k.OutputPrefix(),
			tagSize: p.CryptographicTagSizeInBytes(),
			pool:    sync.Pool{New: func() any { return &hmacState{h: hmac.New(sha256.New, secret)} }},
		}
	}
	for id, n := range seen {
		if n > 1 {
			delete(out, id)
		}
	}
	return out
}

// sum computes msg's HMAC into st.out.
func (k *hmacKey) sum(st *hmacState, msg []byte) []byte {
	st.h.Reset()
	st.h.Write(msg)
	return st.h.Sum(st.out[:0])[:k.tagSize]
}

// tag appends the tag of msg to dst.
func (k *hmacKey) tag(dst, msg []byte) []byte {
	st := k.pool.Get().(*hmacState)
	dst = append(dst, k.prefix...)
	dst = append(dst, k.sum(st, msg)...)
	k.pool.Put(st)
	return dst
}

// check reports in constant time whether tag is msg's tag under k.
func (k *hmacKey) check(msg, tag []byte) bool {
	if len(tag) != len(k.prefix)+k.tagSize || subtle.ConstantTimeCompare(tag[:len(k.prefix)], k.prefix) != 1 {
		return false
	}
	st := k.pool.Get().(*hmacState)
	ok := subtle.ConstantTimeCompare(k.sum(st, msg), tag[len(k.prefix):]) == 1
	k.pool.Put(st)
	return ok
}
