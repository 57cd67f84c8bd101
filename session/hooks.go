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
	AppID     string
	UserID    string
	SessionID string
	At        time.Time
}

// RevokeEvent describes a revoked session.
type RevokeEvent struct {
	AppID     string
	UserID    string
	SessionID string
	Reason    Reason
	At        time.Time
}

// EmergencyEvent describes the issue or a use of a break-glass grant.
type EmergencyEvent struct {
	GrantID   string
	AppID     string
	UserID    string
	SessionID string
	// GrantedBy and Reason are set on EmergencyIssued only. Reason is the
	// user's free text: record it in the audit trail, not in a log.
	GrantedBy string
	Reason    string
	ExpiresAt time.Time
	At        time.Time
}
