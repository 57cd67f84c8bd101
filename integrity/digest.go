package integrity

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
	"time"

	"github.com/chatsdk/compliance/internal/canon"
)

// Sum is an order-independent accumulator of row elements: their sum
// modulo 2^256, big-endian. Adding and removing a row are one addition or
// subtraction each, so the digest of a scope is kept up to date without
// reading the scope, and partial sums from parallel workers merge by
// addition. Unlike XOR, a row counted twice does not cancel out.
type Sum [32]byte

// Add sets s to s + o modulo 2^256.
func (s *Sum) Add(o Sum) {
	var carry uint64
	for i := 24; i >= 0; i -= 8 {
		var r uint64
		r, carry = bits.Add64(binary.BigEndian.Uint64(s[i:]), binary.BigEndian.Uint64(o[i:]), carry)
		binary.BigEndian.PutUint64(s[i:], r)
	}
}

// Sub sets s to s - o modulo 2^256.
func (s *Sum) Sub(o Sum) {
	var borrow uint64
	for i := 24; i >= 0; i -= 8 {
		var r uint64
		r, borrow = bits.Sub64(binary.BigEndian.Uint64(s[i:]), binary.BigEndian.Uint64(o[i:]), borrow)
		binary.BigEndian.PutUint64(s[i:], r)
	}
}

// Element returns the digest element of a sealed row: SHA-256 over the
// canonical encoding of its scope and its tag. The tag already binds the
// domain, tenant, id and fields under a secret key, so only rows sealed by
// the package have elements that a stored digest accounts for.
func Element(scope string, tag []byte) Sum {
	return sha256.Sum256(appendElementInput(nil, scope, tag))
}

func appendElementInput(dst []byte, scope string, tag []byte) []byte {
	return canon.Append(dst, elementDomain, canon.String(scope), canon.Bytes(tag))
}

// ScopeKey names one digest: a scope of a tenant within a domain.
type ScopeKey struct {
	Domain string
	Tenant string
	Scope  string
}

// Digest is the signed summary of one scope: how many sealed rows it
// holds and the [Sum] of their elements. Tag is a MAC, under KeyID, of
// the canonical encoding of all the other fields, so an edit made outside
// the package shows as [ErrMismatch].
type Digest struct {
	ScopeKey
	Count uint64
	Sum   Sum
	KeyID uint32
	Tag   []byte
}

func (d Digest) message() []byte {
	return canon.Encode(digestDomain,
		canon.String(d.Domain), canon.String(d.Tenant), canon.String(d.Scope),
		canon.Uint(d.Count), canon.Bytes(d.Sum[:]))
}

// fresh reports whether d is the unsigned zero digest a store returns for
// a scope nothing has been sealed in yet.
func (d Digest) fresh() bool {
	return d.Count == 0 && d.Sum == (Sum{}) && len(d.Tag) == 0
}

// DayScope returns a scope for rows grouped by a prefix (such as a channel
// id) and the UTC day of t: "prefix/2006-01-02". Daily scopes keep each
// digest small and let a retention sweep retire whole days.
func DayScope(prefix string, t time.Time) string {
	return fmt.Sprintf("%s/%s", prefix, t.UTC().Format(time.DateOnly))
}
