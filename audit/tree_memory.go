package audit

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/chatsdk/compliance/audit/tlog"
)

// growTreeLocked appends the tree hashes of entries, the next after a
// stream of size leaves. The caller holds m.mu.
func (m *MemoryStore) growTreeLocked(stream string, size uint64, entries []Entry) error {
	tree := m.trees[stream]
	hs, err := TreeHashes(size, entries, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		return readHashes(tree, idx)
	}))
	if err != nil {
		return fmt.Errorf("audit: tree hashes: %w", err)
	}
	m.trees[stream] = append(tree, hs...)
	return nil
}

func readHashes(tree []tlog.Hash, idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(tree)) {
			return nil, fmt.Errorf("%w: tree hash %d is not stored", ErrNoTree, x)
		}
		out[i] = tree[x]
	}
	return out, nil
}

// ReadTreeHashes implements [TreeStore].
func (m *MemoryStore) ReadTreeHashes(ctx context.Context, stream string, indexes []int64) ([]tlog.Hash, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return readHashes(m.trees[stream], indexes)
}

// SaveTreeHead implements [TreeStore].
func (m *MemoryStore) SaveTreeHead(ctx context.Context, h SignedTreeHead) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	heads := m.treeHeads[h.Stream]
	i := sort.Search(len(heads), func(i int) bool { return heads[i].Size >= h.Size })
	if i < len(heads) && heads[i].Size == h.Size {
		return nil
	}
	m.treeHeads[h.Stream] = slices.Insert(heads, i, h)
	return nil
}

// TreeHeads implements [TreeStore].
func (m *MemoryStore) TreeHeads(ctx context.Context, stream string) ([]SignedTreeHead, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Clone(m.treeHeads[stream]), nil
}
