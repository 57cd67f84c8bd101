package retention

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
)

// MemoryStore is a Store in memory, with tables of Rows for the targets to
// sweep: for tests, examples and single-process use. It is safe for
// concurrent use. Hooks run while the store is locked, so a batch hook must
// not call back into the store.
type MemoryStore struct {
	mu          sync.Mutex
	policies    map[string][]PolicyVersion
	holds       []Hold
	nextHold    int
	checkpoints map[checkpointKey]Cursor
	leases      map[leaseKey]lease
	tables      map[string][]Row
}

type checkpointKey struct{ target, appID, scope string }

type leaseKey struct{ target, appID string }

type lease struct {
	owner string
	until time.Time
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		policies:    map[string][]PolicyVersion{},
		checkpoints: map[checkpointKey]Cursor{},
		leases:      map[leaseKey]lease{},
		tables:      map[string][]Row{},
	}
}

// Insert adds rows to a table (a Target's Table).
func (m *MemoryStore) Insert(table string, rows ...Row) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tables[table] = append(m.tables[table], rows...)
}

// Rows returns a copy of a table's rows in keyset order (time, then id).
func (m *MemoryStore) Rows(table string) []Row {
	m.mu.Lock()
	defer m.mu.Unlock()
	rows := slices.Clone(m.tables[table])
	slices.SortFunc(rows, compareRows)
	return rows
}

func compareRows(a, b Row) int {
	return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.ID, b.ID))
}

// UpdatePolicy implements Store.
func (m *MemoryStore) UpdatePolicy(ctx context.Context, appID string, change func([]PolicyVersion) (PolicyVersion, error)) (PolicyVersion, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return PolicyVersion{}, err
	}

	history := slices.Clone(m.policies[appID])
	v, err := change(history)
	if err != nil {
		return PolicyVersion{}, err
	}
	v.AppID = appID
	v.Version = int64(len(history)) + 1
	m.policies[appID] = append(m.policies[appID], v)
	return v, nil
}

// Policies implements Store.
func (m *MemoryStore) Policies(ctx context.Context, appID string) ([]PolicyVersion, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.policies[appID]), ctx.Err()
}

// PolicyTenants implements Store.
func (m *MemoryStore) PolicyTenants(ctx context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for app := range m.policies {
		out = append(out, app)
	}
	slices.Sort(out)
	return out, ctx.Err()
}

// PlaceHold implements Store.
func (m *MemoryStore) PlaceHold(ctx context.Context, h Hold) (Hold, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return Hold{}, err
	}

	m.nextHold++
	h.ID = strconv.Itoa(m.nextHold)
	h.ReleasedAt, h.ReleasedBy = time.Time{}, ""
	m.holds = append(m.holds, h)
	return h, nil
}

// ReleaseHold implements Store.
func (m *MemoryStore) ReleaseHold(ctx context.Context, appID, id, by string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}

	for i, h := range m.holds {
		if h.ID == id && h.AppID == appID && h.Active() {
			m.holds[i].ReleasedAt, m.holds[i].ReleasedBy = at, by
			return nil
		}
	}
	return fmt.Errorf("%w: no active hold %s", ErrNotFound, id)
}

// Holds implements Store.
func (m *MemoryStore) Holds(ctx context.Context, appID string) ([]Hold, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Hold
	for _, h := range m.holds {
		if h.AppID == appID {
			out = append(out, h)
		}
	}
	return out, ctx.Err()
}

// due returns the rows of p's scope older than cutoff and after cursor, in
// keyset order, with whether an active hold covers each.
func (m *MemoryStore) due(t Target, appID string, scope Scope, exclude []string, cutoff time.Time, after *Cursor) ([]Row, []bool) {
	var rows []Row
	for _, r := range m.tables[t.Table] {
		switch {
		case r.AppID != appID || !r.Time.Before(cutoff):
			continue
		case scope.Kind == ScopeChannel && r.Channel != scope.ID:
			continue
		case scope.Kind == ScopeTenant && slices.Contains(exclude, r.Channel):
			continue
		case after != nil && compareRows(r, Row{Time: after.Time, ID: after.ID}) <= 0:
			continue
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, compareRows)

	held := make([]bool, len(rows))
	for i, r := range rows {
		for _, h := range m.holds {
			if h.AppID == appID && h.Active() && holdCovers(h.Scope, r, t.Channel != "", t.User != "") {
				held[i] = true
				break
			}
		}
	}
	return rows, held
}

// SweepBatch implements Store.
func (m *MemoryStore) SweepBatch(ctx context.Context, p BatchParams) (BatchResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return BatchResult{}, err
	}
	if p.Limit <= 0 {
		return BatchResult{}, fmt.Errorf("%w: batch limit %d", ErrInvalid, p.Limit)
	}

	lk := leaseKey{p.Target.Name, p.AppID}
	if l, ok := m.leases[lk]; ok && l.owner != p.Owner && l.until.After(p.Now) {
		return BatchResult{}, ErrBusy
	}
	if vs := m.policies[p.AppID]; p.CheckPolicy && int64(len(vs)) != p.PolicyVersion {
		return BatchResult{}, fmt.Errorf("%w: version %d, batch planned on %d", ErrPolicyChanged, len(vs), p.PolicyVersion)
	}
	key := checkpointKey{p.Target.Name, p.AppID, p.Scope.String()}
	var after *Cursor
	if c, ok := m.checkpoints[key]; ok {
		after = &c
	}

	rows, held := m.due(p.Target, p.AppID, p.Scope, p.Exclude, p.Cutoff, after)
	if len(rows) > p.Limit {
		rows, held = rows[:p.Limit], held[:p.Limit]
	}
	res := BatchResult{Scanned: len(rows), Done: len(rows) < p.Limit}
	gone := map[string]bool{}
	for i, r := range rows {
		if held[i] {
			continue
		}
		if res.Deleted == 0 {
			res.MinTime, res.MinID, res.MaxID = r.Time, r.ID, r.ID
		}
		res.MaxTime = r.Time
		res.MinID, res.MaxID = min(res.MinID, r.ID), max(res.MaxID, r.ID)
		res.Deleted++
		if p.IDs {
			res.IDs = append(res.IDs, r.ID)
		}
		gone[r.ID] = true
	}
	if len(rows) > 0 {
		last := rows[len(rows)-1]
		res.Cursor = Cursor{Time: last.Time, ID: last.ID}
	} else if after != nil {
		res.Cursor = *after
	}

	if p.OnBatch != nil {
		if err := p.OnBatch(ctx, res); err != nil {
			return BatchResult{}, err
		}
	}
	if err := ctx.Err(); err != nil {
		return BatchResult{}, err // killed before commit: nothing happened
	}

	m.tables[p.Target.Table] = slices.DeleteFunc(m.tables[p.Target.Table], func(r Row) bool {
		return r.AppID == p.AppID && gone[r.ID]
	})
	m.leases[lk] = lease{owner: p.Owner, until: p.LeaseUntil}
	if res.Done {
		delete(m.checkpoints, key)
	} else {
		m.checkpoints[key] = res.Cursor
	}
	return res, nil
}

// ReleaseLease implements Store.
func (m *MemoryStore) ReleaseLease(ctx context.Context, target, owner string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, l := range m.leases {
		if k.target == target && l.owner == owner {
			delete(m.leases, k)
		}
	}
	return ctx.Err()
}

// Count implements Store.
func (m *MemoryStore) Count(ctx context.Context, p CountParams) (Counts, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rows, held := m.due(p.Target, p.AppID, p.Scope, p.Exclude, p.Cutoff, nil)
	c := Counts{Due: int64(len(rows))}
	for _, h := range held {
		if h {
			c.Held++
		}
	}
	return c, ctx.Err()
}
