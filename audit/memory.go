package audit

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"

	"github.com/chatsdk/compliance/audit/tlog"
)

// MemoryStore is a [Store] in process memory, for tests, examples and
// single-process use. Its head lock is a mutex, so it does not share a
// chain between processes. It is safe for concurrent use; the zero value
// is not usable, call [NewMemoryStore].
type MemoryStore struct {
	mu          sync.RWMutex
	streams     map[string][]Entry
	checkpoints map[string][]Checkpoint
	trees       map[string][]tlog.Hash // stored tree hashes, by storage index
	treeHeads   map[string][]SignedTreeHead
}

var (
	_ Store     = (*MemoryStore)(nil)
	_ TreeStore = (*MemoryStore)(nil)
)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{streams: map[string][]Entry{}, checkpoints: map[string][]Checkpoint{},
		trees: map[string][]tlog.Hash{}, treeHeads: map[string][]SignedTreeHead{}}
}

// Append implements [Store].
func (m *MemoryStore) Append(ctx context.Context, stream string, events []Event) ([]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()

	head := m.headLocked(stream)
	entries, err := Link(head, events)
	if err != nil {
		return nil, err
	}
	if err := m.growTreeLocked(stream, head.Seq, entries); err != nil {
		return nil, err
	}
	for i := range entries {
		m.streams[stream] = append(m.streams[stream], cloneEntry(&entries[i]))
	}
	return entries, nil
}

func (m *MemoryStore) headLocked(stream string) Head {
	s := m.streams[stream]
	if len(s) == 0 {
		return Head{Stream: stream, Hash: GenesisHash()}
	}
	last := s[len(s)-1]
	return Head{Stream: stream, Seq: last.Seq, Hash: slices.Clone(last.Hash)}
}

// Head implements [Store].
func (m *MemoryStore) Head(ctx context.Context, stream string) (Head, error) {
	if err := ctx.Err(); err != nil {
		return Head{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.headLocked(stream), nil
}

// Scan implements [Store]. It copies the entries first, so fn may call the
// store.
func (m *MemoryStore) Scan(ctx context.Context, stream string, from uint64, fn func(*Entry) error) error {
	m.mu.RLock()
	s := m.streams[stream]
	i := sort.Search(len(s), func(i int) bool { return s[i].Seq >= from })
	batch := make([]Entry, 0, len(s)-i)
	for ; i < len(s); i++ {
		batch = append(batch, cloneEntry(&s[i]))
	}
	m.mu.RUnlock()

	for i := range batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(&batch[i]); err != nil {
			return err
		}
	}
	return nil
}

// Query implements [Store].
func (m *MemoryStore) Query(ctx context.Context, q Query) (Page, error) {
	if err := ctx.Err(); err != nil {
		return Page{}, err
	}
	if q.Tenant == "" {
		return Page{}, fmt.Errorf("%w: query tenant is empty", ErrInvalidEvent)
	}
	var cur *Cursor
	if q.Cursor != "" {
		c, err := ParseCursor(q.Cursor)
		if err != nil {
			return Page{}, err
		}
		cur = &c
	}

	m.mu.RLock()
	var hits []Entry
	for _, s := range m.streams {
		for i := range s {
			if q.Matches(&s[i]) && (cur == nil || cur.After(&s[i])) {
				hits = append(hits, cloneEntry(&s[i]))
			}
		}
	}
	m.mu.RUnlock()

	sort.Slice(hits, func(i, j int) bool { return newerFirst(&hits[i], &hits[j]) })
	return pageOf(hits, q.PageSize()), nil
}

// pageOf cuts a newest-first result list to one page.
func pageOf(hits []Entry, size int) Page {
	if len(hits) <= size {
		return Page{Entries: hits}
	}
	hits = hits[:size]
	return Page{Entries: hits, Next: CursorAt(&hits[size-1]).String()}
}

// SaveCheckpoint implements [Store].
func (m *MemoryStore) SaveCheckpoint(ctx context.Context, c Checkpoint) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cps := m.checkpoints[c.Stream]
	for _, old := range cps {
		if old.Seq == c.Seq && old.Kind == c.Kind {
			return nil
		}
	}
	c.Head = slices.Clone(c.Head)
	c.Signature = slices.Clone(c.Signature)
	cps = append(cps, c)
	sort.SliceStable(cps, func(i, j int) bool { return cps[i].Seq < cps[j].Seq })
	m.checkpoints[c.Stream] = cps
	return nil
}

// Checkpoints implements [Store].
func (m *MemoryStore) Checkpoints(ctx context.Context, stream string) ([]Checkpoint, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Clone(m.checkpoints[stream]), nil
}

func cloneEntry(e *Entry) Entry {
	c := *e
	c.PrevHash = slices.Clone(e.PrevHash)
	c.Hash = slices.Clone(e.Hash)
	if e.Metadata != nil {
		c.Metadata = maps.Clone(e.Metadata)
	}
	return c
}
