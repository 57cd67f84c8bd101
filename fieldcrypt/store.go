package fieldcrypt

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// StoredKeyset is a keyset as a Store holds it: encrypted under the KEK with
// its scope and purpose as associated data. It holds no key material in the
// clear.
type StoredKeyset struct {
	Scope   Scope
	Purpose Purpose
	// Version is 1 when the keyset is created and grows by one with every
	// update.
	Version int64
	// Wrapped is the Tink encrypted keyset.
	Wrapped []byte
	// PrimarySince is when the current primary key became primary.
	PrimarySince time.Time
	// UpdatedAt is when this version was written.
	UpdatedAt time.Time
}

// Store holds wrapped keysets, one per scope and purpose, with
// compare-and-swap updates so that two instances changing one keyset at
// once cannot lose a key. Implementations must be safe for concurrent use;
// [fieldcrypttest.Run] checks the contract.
type Store interface {
	// Get returns the current version of a keyset: [ErrNotFound] when there
	// is none, [ErrShredded] when the scope was shredded.
	Get(ctx context.Context, s Scope, p Purpose) (StoredKeyset, error)
	// Create stores a scope's first keyset, whose Version must be 1. It
	// returns [ErrConflict] when one exists and [ErrShredded] when the scope
	// was shredded.
	Create(ctx context.Context, ks StoredKeyset) error
	// Update replaces version ks.Version-1 with ks. It returns
	// [ErrConflict] when the stored version is another, [ErrNotFound] when
	// there is none and [ErrShredded] when the scope was shredded.
	Update(ctx context.Context, ks StoredKeyset) error
	// Shred deletes every keyset of the scope, of every purpose, and leaves
	// a tombstone so none is created for it again. Shredding a scope twice,
	// or one that never had a keyset, succeeds.
	Shred(ctx context.Context, s Scope, at time.Time) error
}

// MemoryStore is a Store in process memory, for tests, examples and
// single-process use. The zero value is ready; it is safe for concurrent
// use.
type MemoryStore struct {
	mu       sync.Mutex
	keysets  map[cacheKey]StoredKeyset
	shredded map[Scope]time.Time
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

func (m *MemoryStore) init() {
	if m.keysets == nil {
		m.keysets = map[cacheKey]StoredKeyset{}
		m.shredded = map[Scope]time.Time{}
	}
}

// Get implements Store.
func (m *MemoryStore) Get(ctx context.Context, s Scope, p Purpose) (StoredKeyset, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	if _, ok := m.shredded[s]; ok {
		return StoredKeyset{}, ErrShredded
	}
	ks, ok := m.keysets[cacheKey{s, p}]
	if !ok {
		return StoredKeyset{}, ErrNotFound
	}
	return cloneStored(ks), nil
}

// Create implements Store.
func (m *MemoryStore) Create(ctx context.Context, ks StoredKeyset) error {
	if ks.Version != 1 {
		return fmt.Errorf("fieldcrypt: create keyset with version %d, want 1", ks.Version)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	if _, ok := m.shredded[ks.Scope]; ok {
		return ErrShredded
	}
	key := cacheKey{ks.Scope, ks.Purpose}
	if _, ok := m.keysets[key]; ok {
		return ErrConflict
	}
	m.keysets[key] = cloneStored(ks)
	return nil
}

// Update implements Store.
func (m *MemoryStore) Update(ctx context.Context, ks StoredKeyset) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	if _, ok := m.shredded[ks.Scope]; ok {
		return ErrShredded
	}
	key := cacheKey{ks.Scope, ks.Purpose}
	cur, ok := m.keysets[key]
	if !ok {
		return ErrNotFound
	}
	if cur.Version != ks.Version-1 {
		return ErrConflict
	}
	m.keysets[key] = cloneStored(ks)
	return nil
}

// Shred implements Store.
func (m *MemoryStore) Shred(ctx context.Context, s Scope, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	for key := range m.keysets {
		if key.scope == s {
			delete(m.keysets, key)
		}
	}
	if _, ok := m.shredded[s]; !ok {
		m.shredded[s] = at
	}
	return nil
}

func cloneStored(ks StoredKeyset) StoredKeyset {
	ks.Wrapped = append([]byte(nil), ks.Wrapped...)
	return ks
}
