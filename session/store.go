package session

import (
	"context"
	"time"
)

// Session is a server-side session: the family that all of its refresh
// tokens belong to.
type Session struct {
	// ID is the session id, random and unique across tenants.
	ID string
	// AppID is the tenant.
	AppID string
	// UserID is the authenticated user.
	UserID string
	// AMR are the authentication methods used so far, sorted (RFC 8176).
	AMR []string
	// CreatedAt is when the session was opened.
	CreatedAt time.Time
	// LastSeenAt is the last recorded user activity. Activity is recorded
	// at most once per activity interval, so it may lag the true last
	// request by that interval.
	LastSeenAt time.Time
	// ExpiresAt is the absolute end of the session and of every refresh
	// token in its family; it never slides.
	ExpiresAt time.Time
	// RevokedAt is when the session was revoked; zero while it is not.
	RevokedAt time.Time
	// RevokeReason says why it was revoked; empty while it is not.
	RevokeReason Reason
	// EmergencyGrantID is the break-glass grant the session was opened
	// under; empty for an ordinary session.
	EmergencyGrantID string
}

// check reports why s cannot be used at now, or nil when it is live:
// ErrRevoked, ErrExpired or ErrIdle, in that order.
func (s Session) check(now time.Time, idle time.Duration) error {
	switch {
	case !s.RevokedAt.IsZero():
		return ErrRevoked
	case !now.Before(s.ExpiresAt):
		return ErrExpired
	case now.Sub(s.LastSeenAt) >= idle:
		return ErrIdle
	}
	return nil
}

// Reason says why a session was revoked.
type Reason string

// The reasons the package uses. An application may use its own too.
const (
	// ReasonLogout is a user logging out.
	ReasonLogout Reason = "logout"
	// ReasonLogoutAll is a user logging out of every session.
	ReasonLogoutAll Reason = "logout_all"
	// ReasonPasswordChange is a password change or reset.
	ReasonPasswordChange Reason = "password_change"
	// ReasonAccountDisabled is an account disabled or deprovisioned.
	ReasonAccountDisabled Reason = "account_disabled"
	// ReasonRefreshReuse is a rotated refresh token presented again.
	ReasonRefreshReuse Reason = "refresh_reuse"
	// ReasonAdmin is an administrator ending a session.
	ReasonAdmin Reason = "admin"
)

// EmergencyGrant is a break-glass grant: time-boxed access with a stated
// reason, kept for after-the-fact review.
type EmergencyGrant struct {
	// ID is the grant id, carried in the access token's emg claim.
	ID string
	// AppID is the tenant.
	AppID string
	// UserID is the user who was given emergency access.
	UserID string
	// GrantedBy identifies who approved it (may equal UserID for a
	// self-declared emergency; empty when not recorded).
	GrantedBy string
	// Reason is the mandatory justification the user gave. It is free text
	// and may hold PHI: keep it in the audit trail, not in logs.
	Reason string
	// SessionID is the session opened under the grant.
	SessionID string
	// CreatedAt and ExpiresAt bound the grant.
	CreatedAt time.Time
	ExpiresAt time.Time
}

// NewSession is what [Store.CreateSession] stores in one step: a session,
// the hash of its first refresh token and, for break-glass access, its
// grant.
type NewSession struct {
	// Session is the session to store, live and never revoked.
	Session Session
	// RefreshHash is the hash of its first refresh token.
	RefreshHash []byte
	// Grant is nil for an ordinary session.
	Grant *EmergencyGrant
}

// RotateParams are the arguments of [Store.RotateRefresh].
type RotateParams struct {
	// OldHash is the hash of the presented refresh token.
	OldHash []byte
	// NewHash is the hash of its replacement.
	NewHash []byte
	// Now is the time of the rotation.
	Now time.Time
	// IdleCutoff: the session must have been seen after it.
	IdleCutoff time.Time
	// GraceCutoff: a token already used after it may be rotated again
	// (the concurrent-refresh grace window). The zero time means no grace
	// window: a used token is never rotated again, whatever the clocks of
	// concurrent callers say.
	GraceCutoff time.Time
}

// RotateResult is the outcome of [Store.RotateRefresh].
type RotateResult struct {
	// Rotated is true when the new token replaced the old one.
	Rotated bool
	// Known is true when the old hash names a refresh token at all.
	Known bool
	// Reused is true when the old token had already been rotated before
	// the grace cutoff: a replay. It is reported whether or not the session
	// is still live.
	Reused bool
	// Session is the token's session (after the rotation when Rotated);
	// set whenever Known.
	Session Session
}

// Store keeps sessions, refresh-token hashes and emergency grants. Every
// method is safe for concurrent use, also across processes sharing one
// database: the conditions stated below hold under concurrency. The
// conformance suite in sessiontest checks them.
type Store interface {
	// CreateSession stores a new session with its first refresh-token hash
	// and its grant, all or nothing.
	CreateSession(ctx context.Context, ns NewSession) error

	// Session returns a session by id, or ErrNotFound.
	Session(ctx context.Context, id string) (Session, error)

	// RotateRefresh replaces a refresh token by a new one in one atomic
	// step, and only when the session is not revoked, not expired, seen
	// after p.IdleCutoff, and the old token unused (or used after
	// p.GraceCutoff). Of concurrent calls with the same old hash and no
	// grace window exactly one rotates. It does not revoke anything: on
	// a reuse the caller revokes the session.
	RotateRefresh(ctx context.Context, p RotateParams) (RotateResult, error)

	// Touch records activity at now when the session is live (not revoked,
	// not expired, seen after idleCutoff) and now is later than its last
	// recorded activity; it never revives an idle session. It returns the
	// session as it stands afterwards, or ErrNotFound.
	Touch(ctx context.Context, id string, now, idleCutoff time.Time) (Session, error)

	// SetAMR replaces the authentication methods of a session that is not
	// revoked. It returns the session afterwards, or ErrNotFound.
	SetAMR(ctx context.Context, id string, amr []string) (Session, error)

	// Revoke revokes one session. It reports whether this call revoked it
	// (false when it already was); ErrNotFound when there is none.
	Revoke(ctx context.Context, id string, now time.Time, reason Reason) (bool, error)

	// RevokeUser revokes every live session of a user in a tenant and
	// returns the ids it revoked.
	RevokeUser(ctx context.Context, appID, userID string, now time.Time, reason Reason) ([]string, error)

	// UserSessions lists a user's sessions in a tenant that are neither
	// revoked nor expired at now, newest first. Idle ones are included: the
	// caller judges idleness.
	UserSessions(ctx context.Context, appID, userID string, now time.Time) ([]Session, error)

	// EmergencyGrants lists a tenant's grants created in [from, to), oldest
	// first.
	EmergencyGrants(ctx context.Context, appID string, from, to time.Time) ([]EmergencyGrant, error)

	// Purge deletes sessions (with their refresh tokens) that expired
	// before the given time, and returns how many. Grants are kept.
	Purge(ctx context.Context, before time.Time) (int64, error)
}
