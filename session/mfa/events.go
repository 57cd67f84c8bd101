package mfa

import (
	"errors"
	"time"
)

// EventKind names what happened in an [Event].
type EventKind string

// The event kinds.
const (
	// EventEnrolmentStarted: Enrol stored a pending enrolment.
	EventEnrolmentStarted EventKind = "enrolment_started"
	// EventEnrolled: Confirm activated an enrolment.
	EventEnrolled EventKind = "enrolled"
	// EventVerified: a TOTP or recovery code passed (Event.Method says
	// which).
	EventVerified EventKind = "verified"
	// EventFailed: a wrong or malformed code was submitted.
	EventFailed EventKind = "failed"
	// EventReplayed: a right TOTP code was submitted again. Outside a
	// double-click, this means someone else has seen the code.
	EventReplayed EventKind = "replayed"
	// EventRecoveryCodesRegenerated: the recovery code set was replaced.
	EventRecoveryCodesRegenerated EventKind = "recovery_codes_regenerated"
	// EventDisabled: the enrolment was removed.
	EventDisabled EventKind = "disabled"
)

// Event describes something the Authenticator did, for an audit log or
// an alert. It carries identifiers only, never a secret or a code.
type Event struct {
	// Kind is what happened.
	Kind EventKind
	// TenantID and AccountID identify the account.
	TenantID  string
	AccountID string
	// Method is set for EventVerified, EventFailed and EventReplayed.
	Method Method
	// At is the Authenticator's clock.
	At time.Time
	// RecoveryCodesLeft is set after a recovery code passed.
	RecoveryCodesLeft int
}

func (a *Authenticator) emit(e Event) {
	if a.cfg.OnEvent != nil {
		a.cfg.OnEvent(e)
	}
}

// emitFailure reports a failed verification as EventReplayed or
// EventFailed; other errors (a store down) are not the user's and are not
// reported.
func (a *Authenticator) emitFailure(err error, tenantID, accountID string, m Method, at time.Time) {
	switch {
	case errors.Is(err, ErrReplayed):
		a.emit(Event{Kind: EventReplayed, TenantID: tenantID, AccountID: accountID, Method: m, At: at})
	case errors.Is(err, ErrInvalidCode):
		a.emit(Event{Kind: EventFailed, TenantID: tenantID, AccountID: accountID, Method: m, At: at})
	}
}
