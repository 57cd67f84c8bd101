package mfa

import (
	"bytes"
	"context"
	"crypto/subtle"
	"fmt"
	"sync"
	"time"
)

// MemoryStore is a Store and PolicyStore in process memory, for tests,
// examples and single-process deployments. Its zero value is not ready;
// use [NewMemoryStore]. It is safe for concurrent use; several processes
// cannot share it.
type MemoryStore struct {
	mu       sync.Mutex
	enrols   map[accountKey]Enrolment
	codes    map[accountKey][]memCode
	policies map[string]Policy
}

type accountKey struct{ tenant, account string }

type memCode struct {
	hash   []byte
	usedAt time.Time
}

var (
	_ Store       = (*MemoryStore)(nil)
	_ PolicyStore = (*MemoryStore)(nil)
)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		enrols:   map[accountKey]Enrolment{},
		codes:    map[accountKey][]memCode{},
		policies: map[string]Policy{},
	}
}

// SavePending implements Store.
func (s *MemoryStore) SavePending(_ context.Context, e Enrolment) error {
	if e.State != StatePending {
		return fmt.Errorf("mfa: SavePending with state %q", e.State)
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	k := accountKey{e.TenantID, e.AccountID}
	if old, ok := s.enrols[k]; ok && old.State == StateActive {
		return ErrAlreadyEnrolled
	}
	e.SealedSecret = bytes.Clone(e.SealedSecret)
	s.enrols[k] = e
	return nil
}

// Enrolment implements Store.
func (s *MemoryStore) Enrolment(_ context.Context, tenantID, accountID string) (Enrolment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	e, ok := s.enrols[accountKey{tenantID, accountID}]
	if !ok {
		return Enrolment{}, ErrNotEnrolled
	}
	e.SealedSecret = bytes.Clone(e.SealedSecret)
	return e, nil
}

// Activate implements Store.
func (s *MemoryStore) Activate(_ context.Context, p ActivateParams) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	k := accountKey{p.TenantID, p.AccountID}
	e, ok := s.enrols[k]
	if !ok || e.State != StatePending || e.ID != p.EnrolmentID {
		return ErrNotEnrolled
	}
	e.State = StateActive
	e.ActivatedAt = p.At
	e.LastStep = p.Step
	s.enrols[k] = e
	s.codes[k] = newMemCodes(p.RecoveryHashes)
	return nil
}

// AdvanceStep implements Store.
func (s *MemoryStore) AdvanceStep(_ context.Context, p AdvanceParams) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	k := accountKey{p.TenantID, p.AccountID}
	e, ok := s.enrols[k]
	if !ok || e.State != StateActive || e.ID != p.EnrolmentID {
		return ErrNotEnrolled
	}
	if p.Step <= e.LastStep {
		return ErrReplayed
	}
	e.LastStep = p.Step
	s.enrols[k] = e
	return nil
}

// ReplaceRecoveryCodes implements Store.
func (s *MemoryStore) ReplaceRecoveryCodes(_ context.Context, p RecoveryCodesParams) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	k := accountKey{p.TenantID, p.AccountID}
	e, ok := s.enrols[k]
	if !ok || e.State != StateActive || e.ID != p.EnrolmentID {
		return ErrNotEnrolled
	}
	s.codes[k] = newMemCodes(p.Hashes)
	return nil
}

// UseRecoveryCode implements Store. It compares the hash with every
// stored one in constant time.
func (s *MemoryStore) UseRecoveryCode(_ context.Context, p UseRecoveryCodeParams) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	codes := s.codes[accountKey{p.TenantID, p.AccountID}]
	match := -1
	for i, c := range codes {
		if subtle.ConstantTimeCompare(c.hash, p.Hash) == 1 && c.usedAt.IsZero() {
			match = i
		}
	}
	if match < 0 {
		return 0, ErrInvalidCode
	}
	codes[match].usedAt = p.At
	return countUnused(codes), nil
}

// RecoveryCodesLeft implements Store.
func (s *MemoryStore) RecoveryCodesLeft(_ context.Context, tenantID, accountID string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return countUnused(s.codes[accountKey{tenantID, accountID}]), nil
}

// Delete implements Store.
func (s *MemoryStore) Delete(_ context.Context, tenantID, accountID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	k := accountKey{tenantID, accountID}
	delete(s.enrols, k)
	delete(s.codes, k)
	return nil
}

// SetPolicy implements PolicyStore.
func (s *MemoryStore) SetPolicy(_ context.Context, tenantID string, p Policy) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policies[tenantID] = p
	return nil
}

// Policy implements PolicyStore.
func (s *MemoryStore) Policy(_ context.Context, tenantID string) (Policy, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	p, ok := s.policies[tenantID]
	if !ok {
		return Policy{}, ErrNoPolicy
	}
	return p, nil
}

func newMemCodes(hashes [][]byte) []memCode {
	out := make([]memCode, len(hashes))
	for i, h := range hashes {
		out[i] = memCode{hash: bytes.Clone(h)}
	}
	return out
}

func countUnused(codes []memCode) int {
	n := 0
	for _, c := range codes {
		if c.usedAt.IsZero() {
			n++
		}
	}
	return n
}
