package session

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Identity is the authenticated caller of a request, as the middleware
// puts it in the request context. Its accessors are what an application
// hands to an audit middleware. It is immutable.
type Identity struct {
	claims Claims
}

// UserID returns the user id (the token's sub).
func (id *Identity) UserID() string { return id.claims.Subject }

// Tenant returns the tenant (application) id.
func (id *Identity) Tenant() string { return id.claims.Tenant }

// SessionID returns the session id.
func (id *Identity) SessionID() string { return id.claims.SessionID }

// TokenID returns the access token's jti.
func (id *Identity) TokenID() string { return id.claims.ID }

// AMR returns a copy of the authentication methods the token carries.
func (id *Identity) AMR() []string { return slices.Clone(id.claims.AMR) }

// HasAMR reports whether the token carries every one of methods.
func (id *Identity) HasAMR(methods ...string) bool { return hasAll(id.claims.AMR, methods) }

// Require returns nil when the token carries every one of methods, and
// ErrInsufficientAuth otherwise: RequireAMR for callers that are not HTTP
// handlers (a WebSocket upgrade, a job).
func (id *Identity) Require(methods ...string) error {
	if !id.HasAMR(methods...) {
		return fmt.Errorf("%w: need %s", ErrInsufficientAuth, strings.Join(methods, ", "))
	}
	return nil
}

// Emergency reports whether the session is break-glass access.
func (id *Identity) Emergency() bool { return id.claims.EmergencyGrantID != "" }

// EmergencyGrantID returns the break-glass grant id, or "".
func (id *Identity) EmergencyGrantID() string { return id.claims.EmergencyGrantID }

// ExpiresAt returns the access token's expiry.
func (id *Identity) ExpiresAt() time.Time { return id.claims.ExpiresAt }

// Claims returns the verified access-token claims.
func (id *Identity) Claims() Claims {
	c := id.claims
	c.AMR = slices.Clone(c.AMR)
	c.Audience = slices.Clone(c.Audience)
	return c
}

type ctxKey struct{}

// NewContext returns ctx carrying id, for tests of handlers behind the
// middleware.
func NewContext(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the identity the middleware stored, if any.
func FromContext(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(*Identity)
	return id, ok && id != nil
}

// NewIdentity returns an identity with the given claims, for tests of
// handlers and of audit wiring; the middleware builds the real ones.
func NewIdentity(c Claims) *Identity {
	c.AMR = slices.Clone(c.AMR)
	c.Audience = slices.Clone(c.Audience)
	return &Identity{claims: c}
}

// Middleware authenticates the request's bearer token with
// [Manager.Authenticate] and serves next with the [Identity] in the request
// context. A missing or refused token gets 401 with a WWW-Authenticate
// challenge (RFC 6750); a store failure gets 503, never a pass.
func (m *Manager) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		passive := m.cfg.PassiveRequest != nil && m.cfg.PassiveRequest(r)

		id, err := m.authenticate(r.Context(), token, passive)
		if errors.Is(err, ErrInvalidToken) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			http.Error(w, "invalid or expired token", http.StatusUnauthorized)
			return
		}
		if err != nil {
			http.Error(w, "authentication unavailable", http.StatusServiceUnavailable)
			return
		}

		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), id)))
	})
}

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// RequireAMR returns middleware, to be placed behind [Manager.Middleware],
// that serves only identities whose token carries every one of methods.
// Without an identity it answers 401; with too weak an authentication 403
// with error="insufficient_user_authentication" (RFC 9470), so a client
// knows to step up rather than log in again.
func RequireAMR(methods ...string) func(http.Handler) http.Handler {
	want := slices.Clone(methods)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, ok := FromContext(r.Context())
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer`)
				http.Error(w, "authentication required", http.StatusUnauthorized)
				return
			}
			if id.Require(want...) != nil {
				w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_user_authentication"`)
				http.Error(w, "stronger authentication required", http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// RequireMFA is RequireAMR(AMRMultiFactor).
func RequireMFA() func(http.Handler) http.Handler { return RequireAMR(AMRMultiFactor) }
