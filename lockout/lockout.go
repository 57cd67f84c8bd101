package lockout

import (
	"errors"
	"fmt"
	"time"
)

// The package's sentinel errors. Errors returned by the package wrap one of
// them, so callers branch with errors.Is.
var (
	// ErrLocked means the attempt was refused before any credential was
	// checked: a counter it needs is locked or has no attempts left. The
	// error is a *LockedError, which says when to retry.
	ErrLocked = errors.New("lockout: too many failed attempts")

	// ErrInvalidCredential is what Guard.Check returns when the verify
	// function reported a wrong credential. The failure has been counted.
	ErrInvalidCredential = errors.New("lockout: invalid credential")

	// ErrInvalidAttempt means an Attempt could not be used: no tenant, an
	// empty or oversized account identifier, an unknown factor.
	ErrInvalidAttempt = errors.New("lockout: invalid attempt")

	// ErrInvalidPolicy means a Config or Policy field is out of range; the
	// message names the field.
	ErrInvalidPolicy = errors.New("lockout: invalid policy")

	// ErrSettled means a Reservation was settled twice.
	ErrSettled = errors.New("lockout: reservation already settled")

	// ErrReasonRequired means an administrative unlock had no actor or no
	// reason: both are recorded for the audit trail.
	ErrReasonRequired = errors.New("lockout: unlock needs an actor and a reason")
)

// LockedError is the error Guard.Reserve and Guard.Check return when they
// refuse an attempt. It wraps ErrLocked. Its fields are for the application
// (logs, the Retry-After header); they do not say whether the account
// exists, because unknown accounts are counted exactly like known ones.
type LockedError struct {
	// Kind is the counter that refused the attempt.
	Kind Kind
	// Until is when the lock ends, by the store's clock. It is zero for a
	// hard lock, which only an administrator can lift, and when the
	// attempt was refused because every allowed attempt is in flight.
	Until time.Time
	// RetryAfter is how long the caller should wait before trying again,
	// measured on the store's clock. It is zero for a hard lock.
	RetryAfter time.Duration
	// Hard reports a lock that needs an administrator (Policy.HardCap).
	Hard bool
}

// Error names the locked counter and when to retry, never the account.
func (e *LockedError) Error() string {
	if e.Hard {
		return fmt.Sprintf("%v: %s counter needs an administrator to unlock", ErrLocked, e.Kind)
	}
	return fmt.Sprintf("%v: %s counter, retry after %s", ErrLocked, e.Kind, e.RetryAfter)
}

// Unwrap returns ErrLocked.
func (e *LockedError) Unwrap() error { return ErrLocked }

// Factor names the authentication factor an attempt proves. Each factor has
// counters of its own, so failed TOTP codes do not use up password
// attempts and the other way round.
type Factor string

// The factors the package knows. Attempt.Factor defaults to FactorPassword.
const (
	FactorPassword Factor = "password"
	FactorTOTP     Factor = "totp"
	FactorRecovery Factor = "recovery"
)

func (f Factor) valid() bool {
	return f == FactorPassword || f == FactorTOTP || f == FactorRecovery
}

// Kind is the kind of a counter.
type Kind string

// The counter kinds. An attempt touches up to three counters: its account
// (per factor), its account and source address together when
// Policy.PerAccountAndIP is set, and its source address across every
// account and factor.
const (
	KindAccount   Kind = "account"
	KindAccountIP Kind = "account_ip"
	KindIP        Kind = "ip"
)

// CounterKey identifies one counter. Fields a kind does not use are empty:
// an IP counter has no Factor or Account, an account counter has no IP.
// CounterKey is comparable and can be a map key.
type CounterKey struct {
	AppID   string
	Kind    Kind
	Factor  Factor
	Account string
	IP      string
}

// Limit is the policy of one counter, as a Store applies it. The Guard
// derives it from its Policy; a Store keeps no policy of its own.
type Limit struct {
	// MaxFailures is how many failures (counting reservations not yet
	// settled) the counter admits within Window before it locks.
	MaxFailures int
	// Window is how long a run of failures counts, from the first one.
	Window time.Duration
	// LockDurations are the lengths of the counter's successive locks; the
	// n-th lock since the last success lasts LockDurations[n-1], and locks
	// beyond the last entry last as long as the last entry. Never empty.
	LockDurations []time.Duration
	// HardCap, when positive, is the number of consecutive failures after
	// which the counter stays locked until an administrator unlocks it.
	HardCap int
	// ResetOnSuccess makes a successful attempt clear the counter. When
	// false (IP counters), a success only gives back its own reservation.
	ResetOnSuccess bool
	// NotifyInterval, when positive, asks the store to allow a
	// notification when the counter locks, at most once per interval.
	NotifyInterval time.Duration
}

// lockDuration is the length of the counter's lock number n (0-based).
func (l Limit) lockDuration(n int) time.Duration {
	if n >= len(l.LockDurations) {
		n = len(l.LockDurations) - 1
	}
	return l.LockDurations[n]
}

// Outcome is how an attempt ended.
type Outcome string

// The outcomes. Success and Failure come from the verify function; Denied
// is an attempt refused before any check; Cancelled is a reservation given
// back because the check could not be made (an error, not a wrong
// credential). The history keeps success, failure and denied records.
const (
	OutcomeSuccess   Outcome = "success"
	OutcomeFailure   Outcome = "failure"
	OutcomeDenied    Outcome = "denied"
	OutcomeCancelled Outcome = "cancelled"
)

// kept reports whether the history keeps records of the outcome.
func (o Outcome) kept() bool {
	return o == OutcomeSuccess || o == OutcomeFailure || o == OutcomeDenied
}

// AttemptRecord is one entry of the attempt history (the reference's
// login_attempt table). It holds identifiers only, never a credential.
type AttemptRecord struct {
	AppID   string
	Account string
	Factor  Factor
	// IP is the source address as given to the guard, or empty.
	IP string
	// At is set by the store, on its clock, when the record is written.
	At      time.Time
	Outcome Outcome
}
