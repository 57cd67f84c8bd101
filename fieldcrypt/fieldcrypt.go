package fieldcrypt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/aead/aesgcm"
	"github.com/tink-crypto/tink-go/v2/keyset"
	tinkpb "github.com/tink-crypto/tink-go/v2/proto/tink_go_proto"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/chatsdk/compliance/internal/canon"
)

// Errors of the package. Decryption failures of every kind (a wrong row, a
// flipped bit, an unknown or disabled key) are the one opaque [ErrDecrypt];
// only a shredded scope is told apart, by [ErrShredded].
var (
	// ErrDecrypt means a ciphertext did not decrypt at the location given.
	// It deliberately says nothing more.
	ErrDecrypt = errors.New("fieldcrypt: decryption failed")
	// ErrShredded means the scope's keys were destroyed by [Keyring.Shred]:
	// its ciphertexts can never be decrypted again and no new keyset is
	// created for it.
	ErrShredded = errors.New("fieldcrypt: scope shredded")
	// ErrNotFound means a store holds no keyset for the scope and purpose.
	ErrNotFound = errors.New("fieldcrypt: keyset not found")
	// ErrConflict means a compare-and-swap on a stored keyset lost: another
	// writer created or updated it first.
	ErrConflict = errors.New("fieldcrypt: keyset changed concurrently")
	// ErrInvalidLocation means a Location or Scope misses a required part.
	ErrInvalidLocation = errors.New("fieldcrypt: invalid location")
	// ErrUnwrap means a stored keyset could not be decrypted with the KEK:
	// the wrong KEK, or a wrapped keyset moved to another scope or altered.
	ErrUnwrap = errors.New("fieldcrypt: cannot unwrap keyset")
	// ErrUnknownKey means a key ID is not in the scope's keyset.
	ErrUnknownKey = errors.New("fieldcrypt: unknown key id")
	// ErrKeyInUse means a key cannot be disabled or destroyed: it is the
	// primary, or no finished rewrap report shows that rows no longer use it.
	ErrKeyInUse = errors.New("fieldcrypt: key may still be in use")
	// ErrConfig means a Config field is invalid; the message names it.
	ErrConfig = errors.New("fieldcrypt: invalid config")
)

// Domain tags of the canonical encodings bound as associated data.
const (
	fieldDomain  = "fieldcrypt.field.v1"
	keysetDomain = "fieldcrypt.keyset.v1"
	indexDomain  = "fieldcrypt.blindindex.v1"
)

// Location is where an encrypted field lives. Its Tenant, Table, Column and
// Row are bound to the ciphertext as associated data, so a ciphertext moved
// to another row, column, table or tenant does not decrypt.
type Location struct {
	// Tenant is the tenant (app_id) that owns the row. Required.
	Tenant string
	// Table and Column name the field; required. They need not be the SQL
	// names, but must never change once data is written.
	Table  string
	Column string
	// Row is the row's primary key in a stable text form (decimal for
	// integers, the canonical form for UUIDs). Required.
	Row string
	// Scope names a keyset narrower than the tenant's, for example
	// "patient:42", so that shredding it destroys only that patient's data.
	// Empty means the tenant's own keyset. It selects the key and is not
	// part of the associated data.
	Scope string
}

func (l Location) validate() error {
	switch {
	case l.Tenant == "":
		return fmt.Errorf("%w: empty tenant", ErrInvalidLocation)
	case l.Table == "":
		return fmt.Errorf("%w: empty table", ErrInvalidLocation)
	case l.Column == "":
		return fmt.Errorf("%w: empty column", ErrInvalidLocation)
	case l.Row == "":
		return fmt.Errorf("%w: empty row id", ErrInvalidLocation)
	}
	return nil
}

// ScopeOf returns the scope whose keyset encrypts the location.
func (l Location) ScopeOf() Scope { return Scope{Tenant: l.Tenant, Name: l.Scope} }

// AssociatedData returns the bytes bound to a ciphertext at l: the canonical
// encoding of tenant, table, column and row in that order.
func (l Location) AssociatedData() []byte {
	return l.appendAD(make([]byte, 0, l.adLen()))
}

// fieldADHeader is the part of every field's associated data that does not
// depend on the location: canon's version byte and the domain tag.
var fieldADHeader = canon.AppendHeader(nil, fieldDomain)

// adLen is the length of l's associated data: the header and four STRING
// fields of a kind byte, a four-byte length and the bytes.
func (l Location) adLen() int {
	return len(fieldADHeader) + 4*5 + len(l.Tenant) + len(l.Table) + len(l.Column) + len(l.Row)
}

// appendAD appends l's associated data to dst. It is the per-field hot
// path, so it uses canon's stateless appenders, which neither build a
// canon.Value per field nor store through a pointer.
func (l Location) appendAD(dst []byte) []byte {
	dst = append(dst, fieldADHeader...)
	dst = canon.AppendString(dst, l.Tenant)
	dst = canon.AppendString(dst, l.Table)
	dst = canon.AppendString(dst, l.Column)
	return canon.AppendString(dst, l.Row)
}

// adBuffers keeps buffers for the associated data of the hot path, which
// encodes one Location per field.
var adBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// Scope identifies one keyset owner: a tenant, or a narrower name within it.
type Scope struct {
	// Tenant is the tenant (app_id). Required.
	Tenant string
	// Name is empty for the tenant-wide scope, or a name of the
	// application's choosing such as "patient:42".
	Name string
}

func (s Scope) validate() error {
	if s.Tenant == "" {
		return fmt.Errorf("%w: empty tenant", ErrInvalidLocation)
	}
	return nil
}

// String returns the scope as tenant or tenant/name, for messages and logs.
func (s Scope) String() string {
	if s.Name == "" {
		return s.Tenant
	}
	return s.Tenant + "/" + s.Name
}

// Purpose tells apart the keysets of one scope.
type Purpose string

// The purposes a keyset serves.
const (
	// PurposeAEAD is the keyset that encrypts fields.
	PurposeAEAD Purpose = "aead"
	// PurposeBlindIndex is the PRF keyset of blind indexes.
	PurposeBlindIndex Purpose = "blindindex"
)

// wrapAD is the associated data a keyset is wrapped with under the KEK, so
// a wrapped keyset copied to another scope or purpose does not unwrap.
func wrapAD(s Scope, p Purpose) []byte {
	return canon.Encode(keysetDomain, canon.String(s.Tenant), canon.String(s.Name), canon.String(string(p)))
}

// Algorithm is the AEAD of new field keys.
type Algorithm int

// The algorithms a scope's field keys may use. Existing keys keep their
// algorithm; a change applies to keys created or rotated in afterwards.
const (
	// AES256GCM is AES-256-GCM with a random 96-bit nonce, the default and
	// the fastest on CPUs with AES instructions. Random nonces limit one key
	// to about 2^32 encryptions; rotate before that, or use a long-nonce
	// algorithm for a scope that will write more.
	AES256GCM Algorithm = iota
	// XAES256GCM is XAES-256-GCM with a 192-bit nonce: a key may encrypt far
	// more than 2^32 values, for a small cost per message.
	XAES256GCM
	// XChaCha20Poly1305 has a 192-bit nonce and needs no AES instructions.
	XChaCha20Poly1305
)

func (a Algorithm) template() (*tinkpb.KeyTemplate, error) {
	switch a {
	case AES256GCM:
		return aead.AES256GCMKeyTemplate(), nil
	case XAES256GCM:
		return aead.XAES256GCM192BitNonceKeyTemplate(), nil
	case XChaCha20Poly1305:
		return aead.XChaCha20Poly1305KeyTemplate(), nil
	}
	return nil, fmt.Errorf("%w: Algorithm %d unknown", ErrConfig, int(a))
}

// prefixLen is the length of Tink's ciphertext prefix: a 0x01 byte and the
// key ID, big-endian.
const prefixLen = 5

// KeyID returns the ID of the key that produced ciphertext, read from its
// prefix without decrypting. ok is false when ciphertext has no key prefix.
//
// Every ciphertext starts with the byte 0x01 and the four-byte big-endian
// key ID, so a database can select the rows of one key with, for example,
// substring(col from 1 for 5).
func KeyID(ciphertext []byte) (id uint32, ok bool) {
	if len(ciphertext) < prefixLen || ciphertext[0] != 0x01 {
		return 0, false
	}
	return binary.BigEndian.Uint32(ciphertext[1:prefixLen]), true
}

// KeyPrefix returns the five bytes that begin every ciphertext of key id.
func KeyPrefix(id uint32) []byte {
	return binary.BigEndian.AppendUint32([]byte{0x01}, id)
}

// ShredEvent reports a scope whose keys were destroyed.
type ShredEvent struct {
	// Scope is the shredded scope.
	Scope Scope
	// At is when the keysets were destroyed, by the Keyring's clock.
	At time.Time
}

// Config configures a [Keyring].
type Config struct {
	// Store holds the wrapped keysets. Required.
	Store Store
	// KEK is the key-encryption key that wraps every keyset, typically a
	// KMS key from [KEKFromURI]. It is called when a keyset is created,
	// loaded or changed, never per field. Required.
	KEK tink.AEAD
	// Algorithm is the AEAD of new field keys. Defaults to AES256GCM.
	Algorithm Algorithm
	// CacheSize bounds how many unwrapped keysets are kept in memory.
	// Defaults to 1024.
	CacheSize int
	// CacheTTL bounds how long an unwrapped keyset is used before it is
	// loaded again, and so how long another instance's rotation or shred
	// takes to reach this one. Every instance sharing a store should use
	// the same value. Defaults to 5 minutes.
	CacheTTL time.Duration
	// BlindIndexBits is the default length of a blind index, in bits, from
	// 8 to 256. Defaults to 64; see [Keyring.BlindIndex] for the trade-off.
	BlindIndexBits int
	// Normalize prepares a value for a blind index. Defaults to
	// [NormalizeDefault].
	Normalize func(string) string
	// OnShred, when not nil, is called after a scope is shredded.
	OnShred func(ShredEvent)
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// Keyring encrypts and decrypts fields with one keyset per scope, creating
// a scope's keyset on first use and keeping unwrapped keysets in a bounded
// cache. A Keyring is safe for concurrent use; several Keyrings, in one
// process or many, may share a Store.
type Keyring struct {
	store     Store
	kek       tink.AEAD
	template  *tinkpb.KeyTemplate
	ttl       time.Duration
	indexBits int
	normalize func(string) string
	onShred   func(ShredEvent)
	now       func() time.Time
	clock     func() int64 // the cache's clock, in nanoseconds
	cache     *cache
	flight    flight
}

// New returns a Keyring, or an error wrapping [ErrConfig] that names the
// invalid field.
func New(cfg Config) (*Keyring, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: Store is nil", ErrConfig)
	}
	if cfg.KEK == nil {
		return nil, fmt.Errorf("%w: KEK is nil", ErrConfig)
	}
	tmpl, err := cfg.Algorithm.template()
	if err != nil {
		return nil, err
	}
	if cfg.CacheSize < 0 {
		return nil, fmt.Errorf("%w: CacheSize is negative", ErrConfig)
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = 1024
	}
	if cfg.CacheTTL < 0 {
		return nil, fmt.Errorf("%w: CacheTTL is negative", ErrConfig)
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = 5 * time.Minute
	}
	if cfg.BlindIndexBits == 0 {
		cfg.BlindIndexBits = 64
	}
	if cfg.BlindIndexBits < 8 || cfg.BlindIndexBits > 256 {
		return nil, fmt.Errorf("%w: BlindIndexBits %d outside 8..256", ErrConfig, cfg.BlindIndexBits)
	}
	if cfg.Normalize == nil {
		cfg.Normalize = NormalizeDefault
	}
	// On the system clock the cache reads no clock per field (its entries
	// expire by timer) and the monotonic clock on a load; a test clock is
	// read on every field instead.
	var clock func() int64
	c := newCache(cfg.CacheSize, cfg.CacheTTL)
	if cfg.Now == nil {
		cfg.Now = time.Now
		base := time.Now()
		clock = func() int64 { return int64(time.Since(base)) + 1 }
		c.after = time.AfterFunc
	} else {
		now := cfg.Now
		clock = func() int64 { return now().UnixNano() }
	}
	return &Keyring{
		clock:     clock,
		store:     cfg.Store,
		kek:       cfg.KEK,
		template:  tmpl,
		ttl:       cfg.CacheTTL,
		indexBits: cfg.BlindIndexBits,
		normalize: cfg.Normalize,
		onShred:   cfg.OnShred,
		now:       cfg.Now,
		cache:     c,
	}, nil
}

// Encrypt encrypts plaintext for loc with the primary key of loc's scope,
// creating the scope's keyset if it has none. It returns [ErrShredded] for
// a shredded scope.
func (k *Keyring) Encrypt(ctx context.Context, loc Location, plaintext []byte) ([]byte, error) {
	if err := loc.validate(); err != nil {
		return nil, err
	}
	ks, err := k.keyset(ctx, loc.ScopeOf(), PurposeAEAD, true)
	if err != nil {
		return nil, err
	}

	buf := adBuffers.Get().(*[]byte)
	ad := loc.appendAD((*buf)[:0])
	ct, err := ks.encrypt(plaintext, ad)
	putAD(buf, ad)
	if err != nil {
		return nil, fmt.Errorf("fieldcrypt: encrypt: %w", err)
	}
	return ct, nil
}

// Decrypt decrypts a ciphertext that [Keyring.Encrypt] made for loc. Any
// failure is [ErrDecrypt], except a shredded scope, which is [ErrShredded].
// A ciphertext under a key this instance has not seen yet (another instance
// rotated) makes it reload the scope's keyset, at most once a second.
func (k *Keyring) Decrypt(ctx context.Context, loc Location, ciphertext []byte) ([]byte, error) {
	if err := loc.validate(); err != nil {
		return nil, err
	}
	// TODO: a scope without a keyset is not cached, so each decrypt in it
	// reads the store; negative caching would need its own invalidation.
	ks, err := k.keyset(ctx, loc.ScopeOf(), PurposeAEAD, false)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrDecrypt
	}
	if err != nil {
		return nil, err
	}
	if id, ok := KeyID(ciphertext); ok && !ks.has(id) {
		if fresh, ok := k.reloadOnMiss(ctx, ks, loc.ScopeOf(), PurposeAEAD); ok {
			if fresh.shredded {
				return nil, ErrShredded
			}
			ks = fresh
		}
	}

	buf := adBuffers.Get().(*[]byte)
	ad := loc.appendAD((*buf)[:0])
	pt, err := ks.decrypt(ciphertext, ad)
	putAD(buf, ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// putAD returns an associated-data buffer to the pool, keeping it if it
// grew and dropping outsized ones.
func putAD(buf *[]byte, ad []byte) {
	if cap(ad) > 4096 {
		return
	}
	if cap(ad) != cap(*buf) {
		*buf = ad
	}
	adBuffers.Put(buf)
}

// loaded is an unwrapped keyset and its primitive.
type loaded struct {
	scope        Scope
	purpose      Purpose
	version      int64
	handle       *keyset.Handle
	aead         tink.AEAD   // Tink's primitive over the whole keyset
	direct       []keyedAEAD // per-key primitives, primary first; nil unless every key is AES-GCM
	prfs         prfSet      // PurposeBlindIndex
	enabled      []uint32    // IDs of the enabled keys
	primary      uint32
	primarySince time.Time
	shredded     bool
}

// keyedAEAD is one key's own Tink primitive.
type keyedAEAD struct {
	id   uint32
	aead tink.AEAD
}

func (l *loaded) has(id uint32) bool { return slices.Contains(l.enabled, id) }

// encrypt encrypts with the primary key. When every key is AES-GCM the
// per-key primitive is called directly: the same Tink code and output as
// the keyset's primitive, without its dispatch.
func (l *loaded) encrypt(pt, ad []byte) ([]byte, error) {
	if l.direct != nil {
		return l.direct[0].aead.Encrypt(pt, ad)
	}
	return l.aead.Encrypt(pt, ad)
}

// decrypt decrypts with the key the ciphertext's prefix names.
func (l *loaded) decrypt(ct, ad []byte) ([]byte, error) {
	if l.direct == nil {
		return l.aead.Decrypt(ct, ad)
	}
	id, ok := KeyID(ct)
	if !ok {
		return nil, ErrDecrypt
	}
	for _, k := range l.direct {
		if k.id == id {
			return k.aead.Decrypt(ct, ad)
		}
	}
	return nil, ErrDecrypt
}

// directAEADs returns the per-key primitives of h's enabled keys, primary
// first, or nil when a key is not AES-GCM with Tink's prefix.
func directAEADs(h *keyset.Handle) []keyedAEAD {
	var out []keyedAEAD
	for i := range h.Len() {
		e, err := h.Entry(i)
		if err != nil {
			return nil
		}
		if e.KeyStatus() != keyset.Enabled {
			continue
		}
		k, ok := e.Key().(*aesgcm.Key)
		if !ok || !bytes.Equal(k.OutputPrefix(), KeyPrefix(e.KeyID())) {
			return nil
		}
		a, err := aesgcm.NewAEAD(k)
		if err != nil {
			return nil
		}
		ka := keyedAEAD{id: e.KeyID(), aead: a}
		if e.IsPrimary() {
			out = append([]keyedAEAD{ka}, out...)
		} else {
			out = append(out, ka)
		}
	}
	if len(out) == 0 || out[0].id != h.KeysetInfo().GetPrimaryKeyId() {
		return nil
	}
	return out
}

// keyset returns the scope's keyset for purpose, from the cache or the
// store. With create, a missing keyset is created.
func (k *Keyring) keyset(ctx context.Context, s Scope, p Purpose, create bool) (*loaded, error) {
	key := cacheKey{s, p}
	if l := k.cache.hit(key, k.clock); l != nil {
		if l.shredded {
			return nil, ErrShredded
		}
		return l, nil
	}
	l, err := k.flight.do(key, func() (*loaded, error) { return k.load(ctx, s, p, create) })
	if create && errors.Is(err, ErrNotFound) {
		// The shared load was a decrypt's, which does not create.
		l, err = k.load(ctx, s, p, true)
	}
	if err != nil {
		return nil, err
	}
	if l.shredded {
		return nil, ErrShredded
	}
	return l, nil
}

// reloadOnMiss loads the keyset again because a ciphertext named a key it
// lacks, unless that happened for this keyset less than a second ago. The
// keyset it returns may be a shredded scope's tombstone.
func (k *Keyring) reloadOnMiss(ctx context.Context, l *loaded, s Scope, p Purpose) (*loaded, bool) {
	key := cacheKey{s, p}
	if !k.cache.allowReload(key, k.clock(), time.Second) {
		return nil, false
	}
	fresh, err := k.flight.do(key, func() (*loaded, error) { return k.load(ctx, s, p, false) })
	if err != nil {
		return nil, false
	}
	return fresh, true
}

// load reads, unwraps and caches a keyset; with create it makes one when the
// store has none.
func (k *Keyring) load(ctx context.Context, s Scope, p Purpose, create bool) (*loaded, error) {
	gen := k.cache.generation()
	st, err := k.store.Get(ctx, s, p)
	if errors.Is(err, ErrShredded) {
		l := &loaded{scope: s, purpose: p, shredded: true}
		k.cache.put(cacheKey{s, p}, l, k.clock())
		return l, nil
	}
	if errors.Is(err, ErrNotFound) && create {
		return k.create(ctx, s, p, gen)
	}
	if err != nil {
		return nil, err
	}
	h, err := k.unwrap(st)
	if err != nil {
		return nil, err
	}
	return k.installHandle(st, h, gen)
}

// create makes a scope's first keyset; when another writer wins the race it
// uses theirs. gen is as for installHandle.
func (k *Keyring) create(ctx context.Context, s Scope, p Purpose, gen int64) (*loaded, error) {
	tmpl := k.template
	if p == PurposeBlindIndex {
		tmpl = indexTemplate()
	}
	h, err := keyset.NewHandle(tmpl)
	if err != nil {
		return nil, fmt.Errorf("fieldcrypt: new keyset: %w", err)
	}
	now := k.now()
	st, err := k.wrap(s, p, h, 1, now)
	if err != nil {
		return nil, err
	}

	err = k.store.Create(ctx, st)
	if errors.Is(err, ErrConflict) {
		return k.load(ctx, s, p, false)
	}
	if errors.Is(err, ErrShredded) {
		return k.load(ctx, s, p, false)
	}
	if err != nil {
		return nil, fmt.Errorf("fieldcrypt: store keyset for %s: %w", s, err)
	}
	return k.installHandle(st, h, gen)
}

// wrap encrypts h under the KEK into a stored keyset of the given version.
func (k *Keyring) wrap(s Scope, p Purpose, h *keyset.Handle, version int64, primarySince time.Time) (StoredKeyset, error) {
	var buf bytes.Buffer
	if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&buf), k.kek, wrapAD(s, p)); err != nil {
		return StoredKeyset{}, fmt.Errorf("fieldcrypt: wrap keyset for %s: %w", s, err)
	}
	return StoredKeyset{
		Scope:        s,
		Purpose:      p,
		Version:      version,
		Wrapped:      buf.Bytes(),
		PrimarySince: primarySince,
		UpdatedAt:    k.now(),
	}, nil
}

// unwrap decrypts a stored keyset with the KEK.
func (k *Keyring) unwrap(st StoredKeyset) (*keyset.Handle, error) {
	h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(st.Wrapped)), k.kek, wrapAD(st.Scope, st.Purpose))
	if err != nil {
		return nil, fmt.Errorf("%w for %s", ErrUnwrap, st.Scope)
	}
	return h, nil
}

// installHandle builds the primitive for h and caches it, unless the cache
// forgot a key since generation returned gen (see cache.putLoaded).
func (k *Keyring) installHandle(st StoredKeyset, h *keyset.Handle, gen int64) (*loaded, error) {
	l := &loaded{
		scope:        st.Scope,
		purpose:      st.Purpose,
		version:      st.Version,
		handle:       h,
		primarySince: st.PrimarySince,
	}
	info := h.KeysetInfo()
	l.primary = info.GetPrimaryKeyId()
	for _, ki := range info.GetKeyInfo() {
		if ki.GetStatus() == tinkpb.KeyStatusType_ENABLED {
			l.enabled = append(l.enabled, ki.GetKeyId())
		}
	}

	var err error
	switch st.Purpose {
	case PurposeAEAD:
		l.aead, err = aead.New(h)
		l.direct = directAEADs(h)
	case PurposeBlindIndex:
		l.prfs, err = newPRFSet(h)
	default:
		err = fmt.Errorf("unknown purpose %q", st.Purpose)
	}
	if err != nil {
		return nil, fmt.Errorf("fieldcrypt: keyset for %s: %w", st.Scope, err)
	}
	k.cache.putLoaded(cacheKey{st.Scope, st.Purpose}, l, k.clock(), gen)
	return l, nil
}

// Field is one column of one table, for callers that encrypt a single
// kind of value (session/mfa's TOTP secrets, say) and would rather not
// build a Location each time. The zero Field is not usable; get one from
// [Keyring.Field]. It is safe for concurrent use.
type Field struct {
	kr     *Keyring
	table  string
	column string
}

// Field returns the Field of table and column, in every tenant's scope.
func (k *Keyring) Field(table, column string) Field {
	return Field{kr: k, table: table, column: column}
}

// Encrypt encrypts plaintext for the row of tenant; see [Keyring.Encrypt].
func (f Field) Encrypt(ctx context.Context, tenant, row string, plaintext []byte) ([]byte, error) {
	return f.kr.Encrypt(ctx, Location{Tenant: tenant, Table: f.table, Column: f.column, Row: row}, plaintext)
}

// Decrypt decrypts a ciphertext of the row of tenant; see
// [Keyring.Decrypt].
func (f Field) Decrypt(ctx context.Context, tenant, row string, ciphertext []byte) ([]byte, error) {
	return f.kr.Decrypt(ctx, Location{Tenant: tenant, Table: f.table, Column: f.column, Row: row}, ciphertext)
}
