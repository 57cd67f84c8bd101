package session

import (
	"context"
	"time"
)

// Hooks are the events a [Manager] reports, typically to the audit log. Each
// is called synchronously on the goroutine of the call that caused it, so
// it must not block for long; a nil hook is skipped. Events carry
// identifiers only, never a token.
type Hooks struct {
	// RefreshReused is called when a rotated refresh token is presented
	// again, after its session has been revoked.
	RefreshReused func(context.Context, ReuseEvent)
	// SessionRevoked is called once for every session a call revoked,
	// whatever the reason (including refresh-token reuse).
	SessionRevoked func(context.Context, RevokeEvent)
	// EmergencyIssued is called when a break-glass grant is issued.
	EmergencyIssued func(context.Context, EmergencyEvent)
	// EmergencyUsed is called on every authenticated use of an access
	// token issued under a break-glass grant, and on every refresh of one.
	EmergencyUsed func(context.Context, EmergencyEvent)
}

// ReuseEvent describes a detected refresh-token replay.
type ReuseEvent struct {
	// AppID is the tenant.
	AppID string
	// UserID is the session's user.
	UserID string
	// SessionID is the revoked session (refresh-token family).
	SessionID string
	// At is when the replay was seen (the Manager's clock).
	At time.Time
}

// RevokeEvent describes a revoked session.
type RevokeEvent struct {
	// AppID is the tenant.
	AppID string
	// UserID is the session's user.
	UserID string
	// SessionID is the revoked session.
	SessionID string
	// Reason says why (ReasonLogout, ReasonRefreshReuse, …).
	Reason Reason
	// At is when it was revoked (the Manager's clock).
	At time.Time
}

// EmergencyEvent describes the issue or a use of a break-glass grant.
type EmergencyEvent struct {
	// GrantID is the break-glass grant, the access token's emg claim.
	GrantID string
	// AppID is the tenant.
	AppID string
	// UserID is the user given emergency access.
	UserID string
	// SessionID is the session opened under the grant.
	SessionID string
	// GrantedBy and Reason are set on EmergencyIssued only. Reason is the
	// user's free text: record it in the audit trail, not in a log.
	GrantedBy string
	Reason    string
	// ExpiresAt is when the grant (and its session) ends.
	ExpiresAt time.Time
	// At is when the grant was issued or used (the Manager's clock).
	At time.Time
}
