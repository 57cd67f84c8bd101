package integrity

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Config configures a [Sealer].
type Config struct {
	// Keys makes and checks tags. Required.
	Keys *Keys
	// Store keeps tags and digests. Required; [NewMemoryStore] for tests.
	Store Store
}

// Sealer seals records (stores their tags and counts them in their scope's
// digest), forgets records a legitimate deletion removed, and verifies
// records and whole domains. It is safe for concurrent use.
type Sealer struct {
	keys  *Keys
	store Store
}

// New returns a Sealer, or an error wrapping [ErrConfig] naming the
// missing field.
func New(cfg Config) (*Sealer, error) {
	if cfg.Keys == nil {
		return nil, fmt.Errorf("%w: Keys is required", ErrConfig)
	}
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: Store is required", ErrConfig)
	}
	return &Sealer{keys: cfg.Keys, store: cfg.Store}, nil
}

// Keys returns the Sealer's keys.
func (s *Sealer) Keys() *Keys { return s.keys }

// WithStore returns a Sealer with the same keys on another store, such as
// a Postgres store bound to the caller's transaction, so that a tag, a
// digest update or a forget commits with the business write it describes.
func (s *Sealer) WithStore(st Store) *Sealer { return &Sealer{keys: s.keys, store: st} }

// Seal tags records, stores the tags (replacing earlier ones of the same
// rows) and updates their scopes' digests, in one store update. Records
// must have distinct keys. It returns [ErrDigestTampered] if a digest it
// would update does not verify.
func (s *Sealer) Seal(ctx context.Context, recs ...Record) error {
	rows := make([]Sealed, 0, len(recs))
	seen := make(map[Key]struct{}, len(recs))
	for _, r := range recs {
		tag, err := s.keys.Tag(r)
		if err != nil {
			return err
		}
		k := Key{Domain: r.Domain, Tenant: r.Tenant, ID: r.ID}
		if _, dup := seen[k]; dup {
			return fmt.Errorf("%w: record sealed twice in one call", ErrInvalidRecord)
		}
		seen[k] = struct{}{}
		rows = append(rows, Sealed{Key: k, Scope: r.Scope, KeyID: s.keys.primary, Tag: tag})
	}
	slices.SortFunc(rows, func(a, b Sealed) int { return compareKeys(a.Key, b.Key) })

	return s.store.Update(ctx, func(ctx context.Context, tx Tx) error {
		old, err := tx.Put(ctx, rows)
		if err != nil {
			return err
		}
		return s.adjust(ctx, tx, old, rows)
	})
}

// Forget removes the tags of rows a legitimate deletion (a retention sweep,
// an erasure request) removed, and takes them out of their scopes'
// digests, so the verifier does not report them missing. Ids that are not
// sealed are ignored. It returns how many sealed rows it forgot.
//
// Forget is the hook a retention sweep calls with the tenant, the table
// (the domain) and the ids it deletes. On Postgres, bind the store to the
// sweep's transaction with [Sealer.WithStore] so the forget commits or
// rolls back with the delete.
func (s *Sealer) Forget(ctx context.Context, domain, tenant string, ids []string) (int, error) {
	keys := make([]Key, 0, len(ids))
	for _, id := range ids {
		keys = append(keys, Key{Domain: domain, Tenant: tenant, ID: id})
	}
	slices.SortFunc(keys, compareKeys)
	keys = slices.Compact(keys)

	var n int
	err := s.store.Update(ctx, func(ctx context.Context, tx Tx) error {
		old, err := tx.Lock(ctx, keys)
		if err != nil {
			return err
		}
		if err := s.adjust(ctx, tx, old, nil); err != nil {
			return err
		}
		n = len(old)
		// Delete only what was locked and taken out of the digests: a key
		// another update sealed since the lock (in a scope this update
		// does not hold) must keep its tag, or its digest stays off.
		locked := make([]Key, len(old))
		for i, o := range old {
			locked[i] = o.Key
		}
		return tx.Delete(ctx, locked)
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Check verifies a record as read (verify on read): it returns nil when
// the store holds a tag for the row that authenticates the record,
// [ErrNotSealed] when it holds none, and [ErrMismatch] otherwise. An
// application that must not show an altered record as genuine calls it
// before returning the record.
func (s *Sealer) Check(ctx context.Context, r Record) error {
	sealed, err := s.store.Sealed(ctx, Key{Domain: r.Domain, Tenant: r.Tenant, ID: r.ID})
	if err != nil {
		return err
	}
	return s.keys.Check(r, sealed.Tag)
}

// CheckAll verifies many records as read, as [Sealer.Check] does each, in
// one store read when the store is a [BatchReader] (one round trip on
// Postgres for a page of messages) and one read per record otherwise. It
// returns one result per record, in the order of recs: nil, [ErrNotSealed]
// or [ErrMismatch]. err is non-nil only when the store could not be read,
// and results is then nil, so a caller can tell "this row was altered"
// from "the tags could not be read".
func (s *Sealer) CheckAll(ctx context.Context, recs []Record) (results []error, err error) {
	if len(recs) == 0 {
		return []error{}, nil
	}
	keys := make([]Key, len(recs))
	for i, r := range recs {
		keys[i] = Key{Domain: r.Domain, Tenant: r.Tenant, ID: r.ID}
	}
	tags, err := s.sealedMany(ctx, keys)
	if err != nil {
		return nil, err
	}

	results = make([]error, len(recs))
	for i, r := range recs {
		sealed, ok := tags[keys[i]]
		if !ok {
			results[i] = ErrNotSealed
			continue
		}
		results[i] = s.keys.Check(r, sealed.Tag)
	}
	return results, nil
}

// sealedMany reads the tags held for keys, by key, in one read when the
// store is a [BatchReader] and one read per key otherwise.
func (s *Sealer) sealedMany(ctx context.Context, keys []Key) (map[Key]Sealed, error) {
	if br, ok := s.store.(BatchReader); ok {
		return br.SealedMany(ctx, keys)
	}
	tags := make(map[Key]Sealed, len(keys))
	for _, k := range keys {
		sealed, err := s.store.Sealed(ctx, k)
		if errors.Is(err, ErrNotSealed) {
			continue
		}
		if err != nil {
			return nil, err
		}
		tags[k] = sealed
	}
	return tags, nil
}

type scopeDelta struct {
	add, sub Sum
	n        int64
}

// adjust updates the digests of the scopes that removed and added rows
// belong to: each removed row's element is subtracted, each added row's
// added. Digests are locked in scope order, so concurrent updates cannot
// deadlock on them.
func (s *Sealer) adjust(ctx context.Context, tx Tx, removed, added []Sealed) error {
	deltas := map[ScopeKey]*scopeDelta{}
	get := func(r Sealed) *scopeDelta {
		k := ScopeKey{Domain: r.Domain, Tenant: r.Tenant, Scope: r.Scope}
		d := deltas[k]
		if d == nil {
			d = &scopeDelta{}
			deltas[k] = d
		}
		return d
	}
	for _, r := range removed {
		d := get(r)
		d.sub.Add(Element(r.Scope, r.Tag))
		d.n--
	}
	for _, r := range added {
		d := get(r)
		d.add.Add(Element(r.Scope, r.Tag))
		d.n++
	}

	scopes := slices.SortedFunc(maps.Keys(deltas), func(a, b ScopeKey) int {
		return cmp.Or(cmp.Compare(a.Domain, b.Domain), cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Scope, b.Scope))
	})
	for _, k := range scopes {
		delta := deltas[k]
		dg, err := tx.Digest(ctx, k)
		if err != nil {
			return err
		}
		dg.ScopeKey = k
		if !dg.fresh() {
			if err := s.keys.checkDigest(dg); err != nil {
				return ErrDigestTampered
			}
		}
		if delta.n < 0 && uint64(-delta.n) > dg.Count {
			return ErrDigestTampered
		}
		dg.Count = uint64(int64(dg.Count) + delta.n)
		dg.Sum.Add(delta.add)
		dg.Sum.Sub(delta.sub)
		if err := s.keys.signDigest(&dg); err != nil {
			return err
		}
		if err := tx.PutDigest(ctx, dg); err != nil {
			return err
		}
	}
	return nil
}
