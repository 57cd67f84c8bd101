package integrity

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/chatsdk/compliance/internal/canon"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/mac"
	tinkpb "github.com/tink-crypto/tink-go/v2/proto/tink_go_proto"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// Errors returned by this package. They are wrapped with %w where more
// context helps, so test them with errors.Is.
var (
	// ErrMismatch means a tag does not authenticate a record or a digest.
	// It is deliberately the only detail given.
	ErrMismatch = errors.New("integrity: tag mismatch")
	// ErrNotSealed means the store holds no tag for a record.
	ErrNotSealed = errors.New("integrity: record not sealed")
	// ErrDigestTampered means a scope's stored digest does not verify, so
	// the package refuses to update (and so launder) it.
	ErrDigestTampered = errors.New("integrity: scope digest does not verify")
	// ErrInvalidRecord means a record lacks a domain, tenant or id.
	ErrInvalidRecord = errors.New("integrity: invalid record")
	// ErrConfig means a constructor was given an unusable configuration.
	ErrConfig = errors.New("integrity: invalid configuration")
)

// Domain tags of the canonical encodings this package MACs and hashes.
// Changing what they cover means changing the version they end in.
const (
	rowDomain     = "integrity.row.v1"
	digestDomain  = "integrity.digest.v1"
	elementDomain = "integrity.element.v1"
)

// tagPrefixLen is the length of the Tink output prefix: a version byte
// and the 4-byte key id.
const tagPrefixLen = 5

// Record is one protected row: the domain (by convention the table name),
// the tenant, the row id and the protected fields in the order the
// application declares for the domain. Scope names the digest the row is
// counted in (see [DayScope]); it is not part of the tag, but a row moved
// to another scope behind the package's back shows in both digests.
//
// Times in Fields are kept at UTC microsecond precision (the precision of a
// Postgres timestamptz), so a row read back from the database tags the
// same whatever the session's time zone or date style.
type Record struct {
	Domain string
	Tenant string
	ID     string
	Scope  string
	Fields []canon.Value
}

func (r Record) valid() error {
	if r.Domain == "" || r.Tenant == "" || r.ID == "" {
		return fmt.Errorf("%w: domain, tenant and id are required", ErrInvalidRecord)
	}
	return nil
}

// AppendMessage appends the canonical encoding that a record's tag
// authenticates to dst: the row domain tag, then domain, tenant and id as
// strings, then the fields. The scope is not included.
func AppendMessage(dst []byte, domain, tenant, id string, fields []canon.Value) []byte {
	vals := make([]canon.Value, 0, 3+len(fields))
	vals = append(vals, canon.String(domain), canon.String(tenant), canon.String(id))
	vals = append(vals, fields...)
	if dst == nil {
		return canon.Encode(rowDomain, vals...)
	}
	return canon.Append(dst, rowDomain, vals...)
}

// Keys computes and checks tags with a Tink MAC keyset. Tags carry the id
// of the key that made them (Tink's output prefix), so a keyset with a new
// primary keeps verifying tags made under its older keys. Keys is safe for
// concurrent use.
//
// For HMAC-SHA256 keys with the TINK prefix, Keys computes the very bytes
// Tink would with reusable crypto/hmac instances (Tink's primitive
// rebuilds one per call, several times the cost of the MAC itself on
// short rows); the known-answer vectors and a cross-check against Tink pin
// the equivalence. Every other key type goes through Tink's primitive.
type Keys struct {
	mac     tink.MAC
	primary uint32
	ids     []uint32
	// fast holds the HMAC-SHA256 keys by id, for the allocation-free
	// path; keys of other types, and ids two keys share, go through Tink.
	fast map[uint32]*hmacKey
}

// NewKeys returns Keys for a MAC keyset handle, such as one made from
// mac.HMACSHA256Tag256KeyTemplate (the recommended default). Every key must
// have an output prefix that names it (Tink's TINK prefix), so the key id
// travels in the tag.
func NewKeys(h *keyset.Handle) (*Keys, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil keyset handle", ErrConfig)
	}
	info := h.KeysetInfo()
	k := &Keys{primary: info.GetPrimaryKeyId()}
	for _, ki := range info.GetKeyInfo() {
		if ki.GetOutputPrefixType() != tinkpb.OutputPrefixType_TINK {
			return nil, fmt.Errorf("%w: key %d has output prefix %s, want TINK", ErrConfig, ki.GetKeyId(), ki.GetOutputPrefixType())
		}
		if ki.GetStatus() == tinkpb.KeyStatusType_ENABLED {
			k.ids = append(k.ids, ki.GetKeyId())
		}
	}
	m, err := mac.New(h)
	if err != nil {
		return nil, fmt.Errorf("%w: keyset is not a MAC keyset: %v", ErrConfig, err)
	}
	k.mac = m
	k.fast = fastKeys(h)
	return k, nil
}

// Primary returns the id of the key that makes new tags.
func (k *Keys) Primary() uint32 { return k.primary }

// KeyIDs returns the ids of the enabled keys, which verify tags.
func (k *Keys) KeyIDs() []uint32 { return append([]uint32(nil), k.ids...) }

// Tag returns the tag of a record: Tink's 5-byte prefix (0x01 and the key
// id, big-endian) followed by the MAC of [AppendMessage]'s encoding.
func (k *Keys) Tag(r Record) ([]byte, error) {
	if err := r.valid(); err != nil {
		return nil, err
	}
	return k.tagMessage(AppendMessage(nil, r.Domain, r.Tenant, r.ID, r.Fields))
}

func (k *Keys) tagMessage(msg []byte) ([]byte, error) {
	if f := k.fast[k.primary]; f != nil {
		return f.tag(nil, msg), nil
	}
	return k.mac.ComputeMAC(msg)
}

// Check returns nil when tag authenticates r, and [ErrMismatch] otherwise.
// The comparison is constant-time (crypto/subtle on the fast path,
// Tink's otherwise).
func (k *Keys) Check(r Record, tag []byte) error {
	return k.checkMessage(AppendMessage(nil, r.Domain, r.Tenant, r.ID, r.Fields), tag)
}

func (k *Keys) checkMessage(msg, tag []byte) error {
	if id, ok := KeyID(tag); ok {
		if f := k.fast[id]; f != nil {
			if !f.check(msg, tag) {
				return ErrMismatch
			}
			return nil
		}
	}
	if err := k.mac.VerifyMAC(tag, msg); err != nil {
		return ErrMismatch
	}
	return nil
}

// KeyID returns the id of the key that made tag, read from its prefix, and
// false when tag is too short to carry one. It does not authenticate tag.
func KeyID(tag []byte) (uint32, bool) {
	if len(tag) <= tagPrefixLen || tag[0] != 0x01 {
		return 0, false
	}
	return binary.BigEndian.Uint32(tag[1:tagPrefixLen]), true
}

// sign and checkDigest MAC a digest's canonical encoding.
func (k *Keys) signDigest(d *Digest) error {
	tag, err := k.tagMessage(d.message())
	if err != nil {
		return err
	}
	d.Tag = tag
	d.KeyID = k.primary
	return nil
}

func (k *Keys) checkDigest(d Digest) error {
	if err := k.checkMessage(d.message(), d.Tag); err != nil {
		return err
	}
	if id, _ := KeyID(d.Tag); id != d.KeyID {
		return ErrMismatch
	}
	return nil
}

// equalTags compares two tags in constant time.
func equalTags(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
