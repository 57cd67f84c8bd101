package integrity

import (
	"cmp"
	"context"
	"slices"
	"sync"
)

// Key identifies a protected row.
type Key struct {
	Domain string
	Tenant string
	ID     string
}

func compareKeys(a, b Key) int {
	return cmp.Or(cmp.Compare(a.Domain, b.Domain), cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.ID, b.ID))
}

// Sealed is what a store keeps for a row: its scope and its tag, and the
// id of the key that made the tag.
type Sealed struct {
	Key
	Scope string
	KeyID uint32
	Tag   []byte
}

// Tx is a store's view inside [Store.Update]. Its changes become visible
// together when the update's function returns nil, and not at all when it
// returns an error.
type Tx interface {
	// Lock locks the sealed rows among keys until the update ends, so no
	// other update can change or delete them meanwhile, and returns them.
	Lock(ctx context.Context, keys []Key) ([]Sealed, error)
	// Put stores rows' tags, replacing any earlier ones, and returns the
	// earlier ones. Afterwards the rows are locked as by Lock; two updates
	// that put the same new key are serialised, so exactly one of them
	// sees it as new.
	Put(ctx context.Context, rows []Sealed) ([]Sealed, error)
	// Delete removes rows' tags; unknown keys are ignored.
	Delete(ctx context.Context, keys []Key) error
	// Digest locks a scope's digest until the update ends and returns it,
	// or a zero Digest for the scope when it has none.
	Digest(ctx context.Context, k ScopeKey) (Digest, error)
	// PutDigest stores a digest, replacing any earlier one for its scope.
	PutDigest(ctx context.Context, d Digest) error
}

// ListParams selects a page of sealed rows of one domain, ordered by
// tenant and id.
type ListParams struct {
	// Domain is the domain to list. Required.
	Domain string
	// AfterTenant and AfterID are an exclusive cursor: only rows after
	// (AfterTenant, AfterID) are listed. Both empty start at the beginning.
	AfterTenant, AfterID string
	// ExceptKeyID, when not zero, leaves out rows tagged by that key, so a
	// reseal job lists only rows still under older keys.
	ExceptKeyID uint32
	// Limit is the page size. Defaults to 1000.
	Limit int
}

// Store keeps tags and scope digests. Implementations must be safe for
// concurrent use, and must make an update atomic and isolated even when
// several processes share the store. The in-memory [MemoryStore] and the
// Postgres adapter in integritypg both pass integritytest.Run.
type Store interface {
	// Update runs fn with a [Tx]; fn's changes are committed when it
	// returns nil and discarded otherwise.
	Update(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error
	// Sealed returns a row's tag, or [ErrNotSealed].
	Sealed(ctx context.Context, k Key) (Sealed, error)
	// List returns a page of a domain's sealed rows.
	List(ctx context.Context, p ListParams) ([]Sealed, error)
	// Digests returns every digest of a domain.
	Digests(ctx context.Context, domain string) ([]Digest, error)
	// KeyUsage counts, per key id, the tags and digests that key made, over
	// all domains. A key that is absent is no longer needed to verify.
	KeyUsage(ctx context.Context) (map[uint32]int64, error)
}

// BatchReader is an optional interface of a [Store]: it reads many rows'
// tags at once, for [Sealer.CheckAll]. The memory store and integritypg
// offer it.
type BatchReader interface {
	// SealedMany returns the tags the store holds for keys, by key. A key
	// the store holds no tag for is absent from the map; duplicate keys
	// are allowed.
	SealedMany(ctx context.Context, keys []Key) (map[Key]Sealed, error)
}

// MemoryStore is a [Store] in process memory, for tests, examples and
// single-process use. The zero MemoryStore is not usable; call
// [NewMemoryStore]. It is safe for concurrent use; updates are serialised.
type MemoryStore struct {
	mu      sync.Mutex
	rows    map[Key]Sealed
	digests map[ScopeKey]Digest
}

var (
	_ Store       = (*MemoryStore)(nil)
	_ BatchReader = (*MemoryStore)(nil)
)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{rows: map[Key]Sealed{}, digests: map[ScopeKey]Digest{}}
}

// Update runs fn holding the store's lock, on a staged copy of what fn
// touches, and applies the changes only when fn returns nil.
func (m *MemoryStore) Update(ctx context.Context, fn func(ctx context.Context, tx Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()

	tx := &memTx{m: m, rows: map[Key]*Sealed{}, digests: map[ScopeKey]Digest{}}
	if err := fn(ctx, tx); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for k, s := range tx.rows {
		if s == nil {
			delete(m.rows, k)
		} else {
			m.rows[k] = *s
		}
	}
	for k, d := range tx.digests {
		m.digests[k] = d
	}
	return nil
}

type memTx struct {
	m       *MemoryStore
	rows    map[Key]*Sealed // nil: deleted
	digests map[ScopeKey]Digest
}

func (t *memTx) get(k Key) (Sealed, bool) {
	if s, ok := t.rows[k]; ok {
		if s == nil {
			return Sealed{}, false
		}
		return *s, true
	}
	s, ok := t.m.rows[k]
	return s, ok
}

func (t *memTx) Lock(_ context.Context, keys []Key) ([]Sealed, error) {
	var out []Sealed
	for _, k := range keys {
		if s, ok := t.get(k); ok {
			out = append(out, cloneSealed(s))
		}
	}
	return out, nil
}

func (t *memTx) Put(_ context.Context, rows []Sealed) ([]Sealed, error) {
	var old []Sealed
	for _, r := range rows {
		if s, ok := t.get(r.Key); ok {
			old = append(old, cloneSealed(s))
		}
		c := cloneSealed(r)
		t.rows[r.Key] = &c
	}
	return old, nil
}

func (t *memTx) Delete(_ context.Context, keys []Key) error {
	for _, k := range keys {
		t.rows[k] = nil
	}
	return nil
}

func (t *memTx) Digest(_ context.Context, k ScopeKey) (Digest, error) {
	if d, ok := t.digests[k]; ok {
		return cloneDigest(d), nil
	}
	if d, ok := t.m.digests[k]; ok {
		return cloneDigest(d), nil
	}
	return Digest{ScopeKey: k}, nil
}

func (t *memTx) PutDigest(_ context.Context, d Digest) error {
	t.digests[d.ScopeKey] = cloneDigest(d)
	return nil
}

// Sealed returns a row's tag, or ErrNotSealed.
func (m *MemoryStore) Sealed(_ context.Context, k Key) (Sealed, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.rows[k]
	if !ok {
		return Sealed{}, ErrNotSealed
	}
	return cloneSealed(s), nil
}

// SealedMany returns the tags held for keys; see [BatchReader].
func (m *MemoryStore) SealedMany(_ context.Context, keys []Key) (map[Key]Sealed, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[Key]Sealed, len(keys))
	for _, k := range keys {
		if s, ok := m.rows[k]; ok {
			out[k] = cloneSealed(s)
		}
	}
	return out, nil
}

// List returns a page of a domain's sealed rows.
func (m *MemoryStore) List(_ context.Context, p ListParams) ([]Sealed, error) {
	if p.Limit <= 0 {
		p.Limit = 1000
	}
	after := Key{Domain: p.Domain, Tenant: p.AfterTenant, ID: p.AfterID}

	m.mu.Lock()
	var out []Sealed
	for k, s := range m.rows {
		if k.Domain != p.Domain || compareKeys(k, after) <= 0 || (p.ExceptKeyID != 0 && s.KeyID == p.ExceptKeyID) {
			continue
		}
		out = append(out, cloneSealed(s))
	}
	m.mu.Unlock()

	slices.SortFunc(out, func(a, b Sealed) int { return compareKeys(a.Key, b.Key) })
	if len(out) > p.Limit {
		out = out[:p.Limit]
	}
	return out, nil
}

// Digests returns every digest of a domain, ordered by tenant and scope.
func (m *MemoryStore) Digests(_ context.Context, domain string) ([]Digest, error) {
	m.mu.Lock()
	var out []Digest
	for k, d := range m.digests {
		if k.Domain == domain {
			out = append(out, cloneDigest(d))
		}
	}
	m.mu.Unlock()

	slices.SortFunc(out, func(a, b Digest) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Scope, b.Scope))
	})
	return out, nil
}

// KeyUsage counts tags and digests per key id.
func (m *MemoryStore) KeyUsage(context.Context) (map[uint32]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	use := map[uint32]int64{}
	for _, s := range m.rows {
		use[s.KeyID]++
	}
	for _, d := range m.digests {
		if !d.fresh() {
			use[d.KeyID]++
		}
	}
	return use, nil
}

// Insecure… helpers below let tests play the attacker with direct access
// to the storage, as someone with SQL access would.

// InsecureDeleteSealed removes a row's tag without updating its digest, as
// an attacker with write access to the storage could. For tests.
func (m *MemoryStore) InsecureDeleteSealed(_ context.Context, k Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.rows, k)
	return nil
}

// InsecurePutSealed stores a tag without updating any digest. For tests.
func (m *MemoryStore) InsecurePutSealed(_ context.Context, s Sealed) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rows[s.Key] = cloneSealed(s)
	return nil
}

// InsecurePutDigest overwrites a digest as stored. For tests.
func (m *MemoryStore) InsecurePutDigest(_ context.Context, d Digest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.digests[d.ScopeKey] = cloneDigest(d)
	return nil
}

func cloneSealed(s Sealed) Sealed {
	s.Tag = slices.Clone(s.Tag)
	return s
}

func cloneDigest(d Digest) Digest {
	d.Tag = slices.Clone(d.Tag)
	return d
}
