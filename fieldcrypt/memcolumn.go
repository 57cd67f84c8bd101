package fieldcrypt

import (
	"bytes"
	"context"
	"sort"
	"sync"
)

// MemoryColumn is one table column in memory, with its plaintext
// predecessor, implementing [Rows] and [PlainRows] for tests and examples.
// Row IDs are ordered as strings. It is safe for concurrent use.
type MemoryColumn struct {
	mu   sync.Mutex
	rows map[Scope]map[string]*memRow
}

type memRow struct {
	ciphertext []byte
	plaintext  []byte // nil is NULL
}

var (
	_ Rows      = (*MemoryColumn)(nil)
	_ PlainRows = (*MemoryColumn)(nil)
)

// NewMemoryColumn returns an empty MemoryColumn.
func NewMemoryColumn() *MemoryColumn {
	return &MemoryColumn{rows: map[Scope]map[string]*memRow{}}
}

func (c *MemoryColumn) row(s Scope, id string) *memRow {
	m := c.rows[s]
	if m == nil {
		m = map[string]*memRow{}
		c.rows[s] = m
	}
	r := m[id]
	if r == nil {
		r = &memRow{}
		m[id] = r
	}
	return r
}

// Put sets a row's ciphertext, as an application write would.
func (c *MemoryColumn) Put(s Scope, id string, ciphertext []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.row(s, id).ciphertext = bytes.Clone(ciphertext)
}

// PutPlain sets a row's plaintext column, as a legacy write would.
func (c *MemoryColumn) PutPlain(s Scope, id string, plaintext []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.row(s, id).plaintext = bytes.Clone(plaintext)
}

// Get returns a row's ciphertext and plaintext; nil for NULL or no row.
func (c *MemoryColumn) Get(s Scope, id string) (ciphertext, plaintext []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rows[s][id]
	if r == nil {
		return nil, nil
	}
	return bytes.Clone(r.ciphertext), bytes.Clone(r.plaintext)
}

// IDs returns the row IDs of a scope, in order.
func (c *MemoryColumn) IDs(s Scope) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sortedIDs(s)
}

func (c *MemoryColumn) sortedIDs(s Scope) []string {
	ids := make([]string, 0, len(c.rows[s]))
	for id := range c.rows[s] {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Stale implements Rows.
func (c *MemoryColumn) Stale(ctx context.Context, p StaleParams) ([]Row, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Row
	for _, id := range c.sortedIDs(p.Scope) {
		if len(out) == p.Limit {
			break
		}
		r := c.rows[p.Scope][id]
		if id <= p.After || r.ciphertext == nil || bytes.HasPrefix(r.ciphertext, p.Prefix) {
			continue
		}
		out = append(out, Row{ID: id, Ciphertext: bytes.Clone(r.ciphertext)})
	}
	return out, nil
}

// Swap implements Rows.
func (c *MemoryColumn) Swap(ctx context.Context, p SwapParams) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rows[p.Scope][p.ID]
	if r == nil || r.ciphertext == nil || !bytes.Equal(r.ciphertext, p.Old) {
		return false, nil
	}
	r.ciphertext = bytes.Clone(p.New)
	return true, nil
}

// Plain implements PlainRows.
func (c *MemoryColumn) Plain(ctx context.Context, p PlainParams) ([]PlainRow, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []PlainRow
	for _, id := range c.sortedIDs(p.Scope) {
		if len(out) == p.Limit {
			break
		}
		r := c.rows[p.Scope][id]
		if id <= p.After || r.plaintext == nil {
			continue
		}
		out = append(out, PlainRow{ID: id, Plaintext: bytes.Clone(r.plaintext)})
	}
	return out, nil
}

// Seal implements PlainRows.
func (c *MemoryColumn) Seal(ctx context.Context, p SealParams) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rows[p.Scope][p.ID]
	if r == nil || r.plaintext == nil || !bytes.Equal(r.plaintext, p.Plaintext) {
		return false, nil
	}
	r.ciphertext = bytes.Clone(p.Ciphertext)
	r.plaintext = nil
	return true, nil
}

// CountPlain implements PlainRows.
func (c *MemoryColumn) CountPlain(ctx context.Context, s Scope) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, r := range c.rows[s] {
		if r.plaintext != nil {
			n++
		}
	}
	return n, nil
}
