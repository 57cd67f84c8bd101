package fieldcrypt

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/tink-crypto/tink-go/v2/keyset"
	tinkpb "github.com/tink-crypto/tink-go/v2/proto/tink_go_proto"
)

// KeyStatus is the state of one key of a keyset.
type KeyStatus string

// The states of a key.
const (
	// KeyEnabled keys decrypt; the primary one also encrypts.
	KeyEnabled KeyStatus = "enabled"
	// KeyDisabled keys are kept but decrypt nothing.
	KeyDisabled KeyStatus = "disabled"
	// KeyDestroyed keys have no material left.
	KeyDestroyed KeyStatus = "destroyed"
)

// KeyInfo describes one key of a scope's keyset. It holds no key material.
type KeyInfo struct {
	// ID is the key ID that prefixes its ciphertexts.
	ID uint32
	// Status is enabled, disabled or destroyed.
	Status KeyStatus
	// Primary reports whether the key encrypts new values.
	Primary bool
}

// casRetries bounds how often a keyset change is retried after losing a
// compare-and-swap to another writer.
const casRetries = 5

// Keys lists the keys of the scope's field keyset, in ID order.
func (k *Keyring) Keys(ctx context.Context, s Scope) ([]KeyInfo, error) {
	return k.keyInfo(ctx, s, PurposeAEAD)
}

func (k *Keyring) keyInfo(ctx context.Context, s Scope, p Purpose) ([]KeyInfo, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	st, err := k.store.Get(ctx, s, p)
	if err != nil {
		return nil, fmt.Errorf("fieldcrypt: keys of %s: %w", s, err)
	}
	h, err := k.unwrap(st)
	if err != nil {
		return nil, err
	}
	return keyInfos(h), nil
}

func keyInfos(h *keyset.Handle) []KeyInfo {
	info := h.KeysetInfo()
	var out []KeyInfo
	for _, ki := range info.GetKeyInfo() {
		st := KeyDisabled
		switch ki.GetStatus() {
		case tinkpb.KeyStatusType_ENABLED:
			st = KeyEnabled
		case tinkpb.KeyStatusType_DESTROYED:
			st = KeyDestroyed
		}
		out = append(out, KeyInfo{ID: ki.GetKeyId(), Status: st, Primary: ki.GetKeyId() == info.GetPrimaryKeyId()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Rotate adds a new key to the scope's field keyset and makes it primary,
// creating the keyset if the scope has none. Old keys keep decrypting; run
// a [Rewrap] to move existing rows to the new key. It returns the new key's
// ID. Two instances rotating at once both succeed, each adding a key.
func (k *Keyring) Rotate(ctx context.Context, s Scope) (uint32, error) {
	return k.rotate(ctx, s, PurposeAEAD)
}

// RotateBlindIndex adds a new primary key to the tenant's blind index
// keyset. Until every row is re-indexed, look values up with
// [Keyring.BlindIndexes].
//
// TODO: there is no re-index job yet: the application recomputes each
// row's index with [Keyring.BlindIndex] from the decrypted value, and no
// call retires an old index key.
func (k *Keyring) RotateBlindIndex(ctx context.Context, tenant string) (uint32, error) {
	return k.rotate(ctx, Scope{Tenant: tenant}, PurposeBlindIndex)
}

func (k *Keyring) rotate(ctx context.Context, s Scope, p Purpose) (uint32, error) {
	if err := s.validate(); err != nil {
		return 0, err
	}
	if _, err := k.keyset(ctx, s, p, true); err != nil {
		return 0, err
	}
	tmpl := k.template
	if p == PurposeBlindIndex {
		tmpl = indexTemplate()
	}
	var id uint32
	err := k.change(ctx, s, p, func(m *keyset.Manager, _ *keyset.Handle) (bool, error) {
		var err error
		if id, err = m.Add(tmpl); err != nil {
			return false, err
		}
		return true, m.SetPrimary(id)
	})
	return id, err
}

// DisableKey disables a key that no row uses any more: it stays in the
// keyset but decrypts nothing, and can be enabled again by an operator
// restoring an older keyset version. The primary key cannot be disabled.
//
// Proof that no row uses the key is one finished [RewrapReport] per
// encrypted column of the scope, each Done and Settled with a target key
// other than id that is still the primary (a report made before the
// latest rotation proves nothing about the keys used since); without them
// DisableKey returns [ErrKeyInUse]. The caller
// must pass a report for every column the scope encrypts: the Keyring does
// not know its tables.
func (k *Keyring) DisableKey(ctx context.Context, s Scope, id uint32, proof ...RewrapReport) error {
	return k.retire(ctx, s, id, proof, func(m *keyset.Manager) error { return m.Disable(id) })
}

// DestroyKey deletes a key's material from the scope's keyset, under the
// same proof as [Keyring.DisableKey]. Ciphertexts of the key, in the
// database or its backups, can never be decrypted again.
func (k *Keyring) DestroyKey(ctx context.Context, s Scope, id uint32, proof ...RewrapReport) error {
	return k.retire(ctx, s, id, proof, func(m *keyset.Manager) error { return m.Delete(id) })
}

func (k *Keyring) retire(ctx context.Context, s Scope, id uint32, proof []RewrapReport, op func(*keyset.Manager) error) error {
	if err := s.validate(); err != nil {
		return err
	}
	if len(proof) == 0 {
		return fmt.Errorf("%w: no rewrap report", ErrKeyInUse)
	}
	for _, r := range proof {
		switch {
		case r.Scope != s:
			return fmt.Errorf("%w: report is for scope %s", ErrKeyInUse, r.Scope)
		case !r.Done:
			return fmt.Errorf("%w: rewrap of %s.%s not done", ErrKeyInUse, r.Table, r.Column)
		case !r.Settled:
			return fmt.Errorf("%w: rewrap of %s.%s started within CacheTTL of the rotation", ErrKeyInUse, r.Table, r.Column)
		case r.KeyID == id:
			return fmt.Errorf("%w: rewrap of %s.%s targets key %d", ErrKeyInUse, r.Table, r.Column, id)
		}
	}

	return k.change(ctx, s, PurposeAEAD, func(m *keyset.Manager, h *keyset.Handle) (bool, error) {
		// A report says where rows were when its run ended, under a primary
		// that had been primary for CacheTTL (Settled). Only while that key
		// is still primary has no other key encrypted since; after a later
		// rotation, rows may be under a key the report never saw.
		primary := h.KeysetInfo().GetPrimaryKeyId()
		for _, r := range proof {
			if r.KeyID != primary {
				return false, fmt.Errorf("%w: rewrap of %s.%s targets key %d, not the current primary", ErrKeyInUse, r.Table, r.Column, r.KeyID)
			}
		}
		found := false
		for _, ki := range keyInfos(h) {
			if ki.ID != id {
				continue
			}
			if ki.Primary {
				return false, fmt.Errorf("%w: key %d is primary", ErrKeyInUse, id)
			}
			found = true
		}
		if !found {
			return false, fmt.Errorf("%w %d", ErrUnknownKey, id)
		}
		return true, op(m)
	})
}

// change applies fn to the stored keyset and writes the result with a
// compare-and-swap, retrying from a fresh read when another writer wins.
// fn reports whether the primary changed.
func (k *Keyring) change(ctx context.Context, s Scope, p Purpose, fn func(*keyset.Manager, *keyset.Handle) (bool, error)) error {
	for range casRetries {
		gen := k.cache.generation()
		st, err := k.store.Get(ctx, s, p)
		if err != nil {
			return fmt.Errorf("fieldcrypt: change keyset of %s: %w", s, err)
		}
		h, err := k.unwrap(st)
		if err != nil {
			return err
		}

		m := keyset.NewManagerFromHandle(h)
		primaryChanged, err := fn(m, h)
		if err != nil {
			return err
		}
		nh, err := m.Handle()
		if err != nil {
			return fmt.Errorf("fieldcrypt: change keyset of %s: %w", s, err)
		}
		since := st.PrimarySince
		if primaryChanged {
			since = k.now()
		}
		next, err := k.wrap(s, p, nh, st.Version+1, since)
		if err != nil {
			return err
		}

		err = k.store.Update(ctx, next)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("fieldcrypt: change keyset of %s: %w", s, err)
		}
		_, err = k.installHandle(next, nh, gen)
		return err
	}
	return fmt.Errorf("%w: %s after %d attempts", ErrConflict, s, casRetries)
}

// Shred destroys every keyset of the scope (field and, for a tenant scope,
// blind index keys), so that every ciphertext of the scope becomes
// unreadable for good, with [ErrShredded], while other scopes still
// decrypt. It is idempotent, calls Config.OnShred, and is meant to be
// called from a retention hook.
//
// Blind index keys belong to the tenant, so shredding a narrower scope
// leaves them: the scope's stored index values can still be matched by
// whoever holds the tenant's index key and guesses a value. Delete or
// overwrite those index values with the rows. Shredding a tenant does not
// shred its narrower scopes; shred each of them too.
//
// This instance stops decrypting the scope at once; other instances sharing
// the store stop when their cached keyset expires (Config.CacheTTL). The
// shred reaches database backups only if the wrapped keysets are not kept
// longer than the retention period in those backups, or the KEK is
// destroyed: an old backup of the keyset store can still be unwrapped with
// a live KEK.
//
// TODO: other instances learn of a shred only when their cached keyset
// expires; a change feed from the store (Postgres LISTEN/NOTIFY calling
// Forget) would make it immediate.
func (k *Keyring) Shred(ctx context.Context, s Scope) error {
	if err := s.validate(); err != nil {
		return err
	}
	at := k.now()
	if err := k.store.Shred(ctx, s, at); err != nil {
		return fmt.Errorf("fieldcrypt: shred %s: %w", s, err)
	}
	for _, p := range []Purpose{PurposeAEAD, PurposeBlindIndex} {
		k.cache.put(cacheKey{s, p}, &loaded{scope: s, purpose: p, shredded: true}, k.clock())
	}
	if k.onShred != nil {
		k.onShred(ShredEvent{Scope: s, At: at})
	}
	return nil
}

// Forget drops the scope's keysets from this Keyring's cache, so the next
// use loads them from the store: for an application told by another
// instance that a scope was shredded or rotated. A load already under way,
// which may have read the store before that change, is not cached.
func (k *Keyring) Forget(s Scope) {
	for _, p := range []Purpose{PurposeAEAD, PurposeBlindIndex} {
		k.cache.remove(cacheKey{s, p})
	}
}
