package session

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// MemoryStore is a [Store] in process memory, for tests, examples and a
// single-process service. It is safe for concurrent use. The zero value is
// not usable; call [NewMemoryStore].
type MemoryStore struct {
	mu       sync.Mutex
	sessions map[string]*Session
	refresh  map[string]*memRefresh // by string(hash)
	grants   []EmergencyGrant
}

type memRefresh struct {
	sessionID string
	usedAt    time.Time // zero while unused
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{sessions: map[string]*Session{}, refresh: map[string]*memRefresh{}}
}

func cloneSession(s *Session) Session {
	c := *s
	c.AMR = slices.Clone(s.AMR)
	return c
}

// CreateSession implements [Store].
func (m *MemoryStore) CreateSession(_ context.Context, ns NewSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()

	if _, dup := m.sessions[ns.Session.ID]; dup {
		return fmt.Errorf("session: memory store: duplicate session id")
	}
	if _, dup := m.refresh[string(ns.RefreshHash)]; dup {
		return fmt.Errorf("session: memory store: duplicate refresh token hash")
	}
	s := ns.Session
	s.AMR = slices.Clone(s.AMR)
	m.sessions[s.ID] = &s
	m.refresh[string(ns.RefreshHash)] = &memRefresh{sessionID: s.ID}
	if ns.Grant != nil {
		m.grants = append(m.grants, *ns.Grant)
	}
	return nil
}

// Session implements [Store].
func (m *MemoryStore) Session(_ context.Context, id string) (Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	s, ok := m.sessions[id]
	if !ok {
		return Session{}, ErrNotFound
	}
	return cloneSession(s), nil
}

// RotateRefresh implements [Store].
func (m *MemoryStore) RotateRefresh(_ context.Context, p RotateParams) (RotateResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	r, ok := m.refresh[string(p.OldHash)]
	if !ok {
		return RotateResult{}, nil
	}
	s := m.sessions[r.sessionID]
	res := RotateResult{Known: true, Session: cloneSession(s)}
	if !r.usedAt.IsZero() && (p.GraceCutoff.IsZero() || !r.usedAt.After(p.GraceCutoff)) {
		res.Reused = true
		return res, nil
	}
	if !s.RevokedAt.IsZero() || !p.Now.Before(s.ExpiresAt) || !s.LastSeenAt.After(p.IdleCutoff) {
		return res, nil
	}
	if _, dup := m.refresh[string(p.NewHash)]; dup {
		return RotateResult{}, fmt.Errorf("session: memory store: duplicate refresh token hash")
	}

	if r.usedAt.IsZero() {
		r.usedAt = p.Now
	}
	m.refresh[string(p.NewHash)] = &memRefresh{sessionID: s.ID}
	res.Rotated = true
	return res, nil
}

// Touch implements [Store].
func (m *MemoryStore) Touch(_ context.Context, id string, now, idleCutoff time.Time) (Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	s, ok := m.sessions[id]
	if !ok {
		return Session{}, ErrNotFound
	}
	if s.RevokedAt.IsZero() && now.Before(s.ExpiresAt) && s.LastSeenAt.After(idleCutoff) && now.After(s.LastSeenAt) {
		s.LastSeenAt = now
	}
	return cloneSession(s), nil
}

// SetAMR implements [Store].
func (m *MemoryStore) SetAMR(_ context.Context, id string, amr []string) (Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	s, ok := m.sessions[id]
	if !ok {
		return Session{}, ErrNotFound
	}
	if s.RevokedAt.IsZero() {
		s.AMR = slices.Clone(amr)
	}
	return cloneSession(s), nil
}

// Revoke implements [Store].
func (m *MemoryStore) Revoke(_ context.Context, id string, now time.Time, reason Reason) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	s, ok := m.sessions[id]
	if !ok {
		return false, ErrNotFound
	}
	if !s.RevokedAt.IsZero() {
		return false, nil
	}
	s.RevokedAt, s.RevokeReason = now, reason
	return true, nil
}

// RevokeUser implements [Store].
func (m *MemoryStore) RevokeUser(_ context.Context, appID, userID string, now time.Time, reason Reason) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	var ids []string
	for _, s := range m.sessions {
		if s.AppID == appID && s.UserID == userID && s.RevokedAt.IsZero() {
			s.RevokedAt, s.RevokeReason = now, reason
			ids = append(ids, s.ID)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// UserSessions implements [Store].
func (m *MemoryStore) UserSessions(_ context.Context, appID, userID string, now time.Time) ([]Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	var out []Session
	for _, s := range m.sessions {
		if s.AppID == appID && s.UserID == userID && s.RevokedAt.IsZero() && now.Before(s.ExpiresAt) {
			out = append(out, cloneSession(s))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// EmergencyGrants implements [Store].
func (m *MemoryStore) EmergencyGrants(_ context.Context, appID string, from, to time.Time) ([]EmergencyGrant, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	var out []EmergencyGrant
	for _, g := range m.grants {
		if g.AppID == appID && !g.CreatedAt.Before(from) && g.CreatedAt.Before(to) {
			out = append(out, g)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// Purge implements [Store].
func (m *MemoryStore) Purge(_ context.Context, before time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	var n int64
	for id, s := range m.sessions {
		if s.ExpiresAt.Before(before) {
			delete(m.sessions, id)
			n++
		}
	}
	for h, r := range m.refresh {
		if _, ok := m.sessions[r.sessionID]; !ok {
			delete(m.refresh, h)
		}
	}
	return n, nil
}
