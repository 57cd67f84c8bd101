package session

import "errors"

// Errors returned by the package. Each is wrapped with %w, so test them with
// [errors.Is]. Token failures are deliberately coarse: a bad signature, an
// unknown key id, a pinned-out algorithm, a wrong audience or issuer and a
// malformed token all report [ErrInvalidToken] and nothing more, so an
// attacker learns nothing from the difference.
var (
	// ErrInvalidToken means an access or refresh token was not accepted.
	ErrInvalidToken = errors.New("session: invalid token")
	// ErrTokenExpired means an access token's exp has passed. It is always
	// reported together with ErrInvalidToken; a client may refresh.
	ErrTokenExpired = errors.New("session: token expired")
	// ErrTokenReused means a refresh token that had already been rotated
	// was presented again; its whole family (the session) is now revoked.
	ErrTokenReused = errors.New("session: refresh token reused")
	// ErrRevoked means the session was revoked (logout, password change,
	// account disable, refresh-token reuse or an administrator).
	ErrRevoked = errors.New("session: session revoked")
	// ErrExpired means the session reached its absolute lifetime.
	ErrExpired = errors.New("session: session expired")
	// ErrIdle means the session saw no activity for longer than the idle
	// timeout (automatic logoff).
	ErrIdle = errors.New("session: session idle too long")
	// ErrNotFound means the store holds no session with that id.
	ErrNotFound = errors.New("session: not found")
	// ErrInsufficientAuth means the identity's authentication methods do
	// not meet what a route requires (a step-up is needed).
	ErrInsufficientAuth = errors.New("session: insufficient authentication")
	// ErrInvalidConfig means a Config or a key was not usable; the message
	// names the field.
	ErrInvalidConfig = errors.New("session: invalid config")
	// ErrInvalidArgument means a call's argument was not usable (an empty
	// user id, a missing emergency reason); the message names it.
	ErrInvalidArgument = errors.New("session: invalid argument")
)
