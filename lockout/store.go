package lockout

import (
	"context"
	"time"
)

// Store keeps the counters and the attempt history. Every method is atomic
// per counter and uses the store's own clock (the database's, for a
// database store), so several app instances sharing a store see one state
// whatever their own clocks say. Implementations must be safe for
// concurrent use. The conformance suite in lockouttest states the contract
// clause by clause; run it against any new implementation.
type Store interface {
	// Reserve applies each request in order, each atomically: a counter
	// that is not locked, is under its limit and under its hard cap
	// counts one more failure and reports Granted; any other counter
	// reports why not and is left as it was (apart from forgetting an
	// expired window or lock). A counter that is locked (hard, or until
	// later) or at its hard cap blocks the whole request: no counter of it
	// counts the attempt. A missing counter starts empty.
	Reserve(ctx context.Context, reqs []ReserveRequest) (ReserveResult, error)

	// Settle ends granted reservations with an outcome and, when Record
	// is not nil, appends it to the history in the same operation.
	Settle(ctx context.Context, p SettleParams) (SettleResult, error)

	// Status returns the counters that exist among keys, as they are now.
	Status(ctx context.Context, keys []CounterKey) (StatusResult, error)

	// Unlock clears every counter that matches p: its failures, its
	// consecutive failures, its lock count and any lock, hard or not.
	Unlock(ctx context.Context, p UnlockParams) (UnlockResult, error)

	// History returns attempt records, newest first.
	History(ctx context.Context, q HistoryQuery) ([]AttemptRecord, error)

	// Prune deletes history older than p.HistoryAge and counters that have
	// been idle for p.CounterIdle and are not hard-locked.
	Prune(ctx context.Context, p PruneParams) (PruneResult, error)
}

// ReserveRequest asks for one attempt on one counter.
type ReserveRequest struct {
	Key   CounterKey
	Limit Limit
}

// ReserveResult is the outcome of Reserve: one Decision per request, in
// order, and the store's clock when it decided.
type ReserveResult struct {
	Now       time.Time
	Decisions []Decision
}

// Decision is what Reserve decided for one counter.
type Decision struct {
	Key     CounterKey
	Granted bool
	// Epoch identifies the counter's current run of failures; it changes
	// whenever the count is cleared (a new window, a lock, a success, an
	// unlock). Settle uses it to leave a newer run alone.
	Epoch int64
	// Failures and Consecutive are the counts after the decision.
	Failures    int
	Consecutive int
	// LockedUntil is the end of the counter's lock, or zero.
	LockedUntil time.Time
	// Hard reports a lock that only Unlock lifts.
	Hard bool
}

// Ticket is a granted reservation, to be settled.
type Ticket struct {
	Key   CounterKey
	Limit Limit
	Epoch int64
}

// SettleParams ends reservations. Outcome is what happened to the
// tickets: OutcomeSuccess, OutcomeFailure or OutcomeCancelled (any other
// value leaves them as they are). Tickets may be empty.
type SettleParams struct {
	Outcome Outcome
	Tickets []Ticket
	// Record, when not nil, is appended to the history in the same
	// operation, with its own Outcome (a refused attempt gives back its
	// tickets with OutcomeCancelled and records OutcomeDenied); the store
	// sets At. Only success, failure and denied records are kept.
	Record *AttemptRecord
}

// SettleResult reports the locks a settlement started.
type SettleResult struct {
	Now   time.Time
	Locks []LockTransition
}

// LockTransition is a counter that the settlement locked.
type LockTransition struct {
	Key CounterKey
	// Until is the end of the lock; zero for a hard lock.
	Until time.Time
	// Hard reports that the hard cap was reached.
	Hard bool
	// Notify reports that the counter's notification interval allows a
	// notification, and that the store has recorded it as sent.
	Notify      bool
	Consecutive int
}

// StatusResult holds counters as they are at Now.
type StatusResult struct {
	Now      time.Time
	Counters []Counter
}

// Counter is the stored state of one counter.
type Counter struct {
	Key         CounterKey
	Failures    int
	Consecutive int
	Epoch       int64
	WindowStart time.Time
	LockedUntil time.Time
	LockCount   int
	Hard        bool
	UpdatedAt   time.Time
}

// UnlockParams selects the counters an unlock clears. AppID is required.
// With Account set, it selects that account's account and account-and-IP
// counters (of Factor only, when Factor is set); with only IP set, it
// selects the IP counter of that address.
type UnlockParams struct {
	AppID   string
	Account string
	Factor  Factor
	IP      string
}

// UnlockResult lists the counters that were locked and are now clear.
type UnlockResult struct {
	Now      time.Time
	Unlocked []CounterKey
}

// HistoryQuery selects attempt records. AppID is required; Account and IP,
// when set, must match. Limit caps the number of records (default 100).
type HistoryQuery struct {
	AppID   string
	Account string
	IP      string
	Limit   int
}

// PruneParams says what Prune may delete. A zero age deletes nothing of
// that kind.
type PruneParams struct {
	HistoryAge  time.Duration
	CounterIdle time.Duration
}

// PruneResult counts what Prune deleted.
type PruneResult struct {
	Records  int64
	Counters int64
}
