package lockout

import (
	"context"
	"sort"
	"sync"
	"time"
)

// MemoryStore is a Store in process memory, for tests, examples and
// single-process services. It is safe for concurrent use. Its clock is the
// function given to NewMemoryStore, so tests can move time without
// sleeping. Its state is lost when the process exits, and it is not shared
// between processes: services with several instances need a database store
// such as lockoutpg.
//
// TODO: the history and the counters grow until Guard.Prune runs; a
// long-running process should prune on a timer (a size cap would be a
// second retention rule to explain, so there is none yet).
type MemoryStore struct {
	now func() time.Time

	mu       sync.Mutex
	counters map[CounterKey]*memCounter
	history  []AttemptRecord
}

type memCounter struct {
	Counter
	notifiedAt time.Time
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store whose clock is now; nil means
// time.Now.
func NewMemoryStore(now func() time.Time) *MemoryStore {
	if now == nil {
		now = time.Now
	}
	return &MemoryStore{now: now, counters: make(map[CounterKey]*memCounter)}
}

// Reserve implements Store.
func (s *MemoryStore) Reserve(ctx context.Context, reqs []ReserveRequest) (ReserveResult, error) {
	if err := ctx.Err(); err != nil {
		return ReserveResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()

	blocked := false
	for _, r := range reqs {
		if c, ok := s.counters[r.Key]; ok && blocks(&c.Counter, r.Limit, now) {
			blocked = true
		}
	}
	res := ReserveResult{Now: now, Decisions: make([]Decision, 0, len(reqs))}
	for _, r := range reqs {
		c, ok := s.counters[r.Key]
		if !ok {
			c = &memCounter{Counter: Counter{Key: r.Key}}
			s.counters[r.Key] = c
		}
		res.Decisions = append(res.Decisions, reserveCounter(&c.Counter, r.Limit, now, blocked))
	}
	return res, nil
}

// blocks reports whether a counter refuses every attempt now, whatever is
// in flight: it is locked (hard, or until later) or at its hard cap. Then
// no counter of the request counts the attempt.
func blocks(c *Counter, l Limit, now time.Time) bool {
	return c.Hard || now.Before(c.LockedUntil) || (l.HardCap > 0 && c.Consecutive >= l.HardCap)
}

// reserveCounter is the Reserve rule for one counter; lockoutpg states the
// same rule in SQL and the conformance suite holds both to it. blocked
// means a counter of the request blocks it (see blocks).
func reserveCounter(c *Counter, l Limit, now time.Time, blocked bool) Decision {
	expired := !c.LockedUntil.IsZero() && !now.Before(c.LockedUntil)
	if expired {
		c.LockedUntil = time.Time{}
	}
	locked := c.Hard || now.Before(c.LockedUntil)

	// A run of failures starts afresh after a lock, after its window, or
	// when there is nothing to count.
	if !locked && (expired || c.Failures == 0 || !now.Before(c.WindowStart.Add(l.Window))) {
		c.Failures = 0
		c.Epoch++
		c.WindowStart = now
	}

	granted := !blocked && !locked && c.Failures < l.MaxFailures && (l.HardCap <= 0 || c.Consecutive < l.HardCap)
	if granted {
		c.Failures++
		c.Consecutive++
	}
	c.UpdatedAt = now
	return Decision{
		Key:         c.Key,
		Granted:     granted,
		Epoch:       c.Epoch,
		Failures:    c.Failures,
		Consecutive: c.Consecutive,
		LockedUntil: c.LockedUntil,
		Hard:        c.Hard,
	}
}

// Settle implements Store.
func (s *MemoryStore) Settle(ctx context.Context, p SettleParams) (SettleResult, error) {
	if err := ctx.Err(); err != nil {
		return SettleResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()

	res := SettleResult{Now: now}
	for _, t := range p.Tickets {
		c, ok := s.counters[t.Key]
		if !ok {
			continue // pruned meanwhile: nothing left to settle
		}
		if lt, locked := settleCounter(c, t, p.Outcome, now); locked {
			res.Locks = append(res.Locks, lt)
		}
	}
	if p.Record != nil && p.Record.Outcome.kept() {
		rec := *p.Record
		rec.At = now
		s.history = append(s.history, rec)
	}
	return res, nil
}

// settleCounter is the Settle rule for one counter.
func settleCounter(c *memCounter, t Ticket, o Outcome, now time.Time) (LockTransition, bool) {
	giveBack := func() {
		if c.Epoch == t.Epoch && c.Failures > 0 {
			c.Failures--
		}
		if c.Consecutive > 0 {
			c.Consecutive--
		}
	}
	c.UpdatedAt = now

	switch {
	case o == OutcomeSuccess && t.Limit.ResetOnSuccess:
		c.Failures = 0
		c.Consecutive = 0
		c.LockCount = 0
		c.LockedUntil = time.Time{}
		c.Epoch++
		c.WindowStart = now
		return LockTransition{}, false
	case o == OutcomeSuccess, o == OutcomeCancelled:
		giveBack()
		return LockTransition{}, false
	case o != OutcomeFailure:
		return LockTransition{}, false
	}

	var lt LockTransition
	locked := c.Hard || now.Before(c.LockedUntil)
	if c.Epoch == t.Epoch && !locked && c.Failures >= t.Limit.MaxFailures {
		c.LockedUntil = now.Add(t.Limit.lockDuration(c.LockCount))
		c.LockCount++
		c.Failures = 0
		c.Epoch++
		c.WindowStart = now
		lt = LockTransition{Key: c.Key, Until: c.LockedUntil}
	}
	if t.Limit.HardCap > 0 && !c.Hard && c.Consecutive >= t.Limit.HardCap {
		c.Hard = true
		lt = LockTransition{Key: c.Key, Hard: true}
	}
	if lt.Key == (CounterKey{}) {
		return lt, false
	}
	lt.Consecutive = c.Consecutive
	if t.Limit.NotifyInterval > 0 && (c.notifiedAt.IsZero() || !now.Before(c.notifiedAt.Add(t.Limit.NotifyInterval))) {
		lt.Notify = true
		c.notifiedAt = now
	}
	return lt, true
}

// Status implements Store.
func (s *MemoryStore) Status(ctx context.Context, keys []CounterKey) (StatusResult, error) {
	if err := ctx.Err(); err != nil {
		return StatusResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	res := StatusResult{Now: s.now()}
	for _, k := range keys {
		if c, ok := s.counters[k]; ok {
			res.Counters = append(res.Counters, c.Counter)
		}
	}
	return res, nil
}

// Unlock implements Store.
func (s *MemoryStore) Unlock(ctx context.Context, p UnlockParams) (UnlockResult, error) {
	if err := ctx.Err(); err != nil {
		return UnlockResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()

	res := UnlockResult{Now: now}
	for k, c := range s.counters {
		if !unlockMatches(k, p) {
			continue
		}
		if c.Hard || now.Before(c.LockedUntil) {
			res.Unlocked = append(res.Unlocked, k)
		}
		c.Failures, c.Consecutive, c.LockCount = 0, 0, 0
		c.LockedUntil, c.Hard = time.Time{}, false
		c.Epoch++
		c.WindowStart, c.UpdatedAt = now, now
	}
	SortKeys(res.Unlocked)
	return res, nil
}

func unlockMatches(k CounterKey, p UnlockParams) bool {
	if k.AppID != p.AppID {
		return false
	}
	if p.Account != "" {
		return k.Account == p.Account && (k.Kind == KindAccount || k.Kind == KindAccountIP) &&
			(p.Factor == "" || k.Factor == p.Factor) && (p.IP == "" || k.Kind == KindAccount || k.IP == p.IP)
	}
	return p.IP != "" && k.Kind == KindIP && k.IP == p.IP
}

// SortKeys sorts keys by kind, factor, account and IP: the order in which
// stores report keys, so results compare equal across stores.
func SortKeys(keys []CounterKey) {
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		switch {
		case a.AppID != b.AppID:
			return a.AppID < b.AppID
		case a.Kind != b.Kind:
			return a.Kind < b.Kind
		case a.Factor != b.Factor:
			return a.Factor < b.Factor
		case a.Account != b.Account:
			return a.Account < b.Account
		}
		return a.IP < b.IP
	})
}

// History implements Store.
func (s *MemoryStore) History(ctx context.Context, q HistoryQuery) ([]AttemptRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	var out []AttemptRecord
	for i := len(s.history) - 1; i >= 0 && len(out) < limit; i-- {
		r := s.history[i]
		if r.AppID == q.AppID && (q.Account == "" || r.Account == q.Account) && (q.IP == "" || r.IP == q.IP) {
			out = append(out, r)
		}
	}
	return out, nil
}

// Prune implements Store.
func (s *MemoryStore) Prune(ctx context.Context, p PruneParams) (PruneResult, error) {
	if err := ctx.Err(); err != nil {
		return PruneResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()

	var res PruneResult
	if p.HistoryAge > 0 {
		cut := now.Add(-p.HistoryAge)
		kept := s.history[:0]
		for _, r := range s.history {
			if r.At.Before(cut) {
				res.Records++
				continue
			}
			kept = append(kept, r)
		}
		s.history = kept
	}
	if p.CounterIdle > 0 {
		cut := now.Add(-p.CounterIdle)
		for k, c := range s.counters {
			if !c.Hard && c.UpdatedAt.Before(cut) && !now.Before(c.LockedUntil) {
				delete(s.counters, k)
				res.Counters++
			}
		}
	}
	return res, nil
}
