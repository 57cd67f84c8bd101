package chat

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/session"
	"github.com/chatsdk/compliance/session/mfa"
)

// class is a route's audit classification: the request's own entry has
// this type, and the route's {id} as its resource. What a handler learns
// while it runs (a denial, the id it created) goes into detail events.
type class struct {
	Type         string
	Category     audit.Category
	Action       string
	ResourceType string
}

// access says who may call a route.
type access int

const (
	public access = iota // no token
	user                 // any live session that passed the MFA gate
	enrol                // any live session, MFA gate or not (MFA enrolment, logout)
	admin                // owner or admin of the tenant
)

// note is what the handlers of one request tell the audit layer: who the
// caller turned out to be (the audit middleware asks after the handler),
// what the request touched, and the detail events to record beside the
// request's own entry (a denial, the id of what was created, an admin
// action's parameters). Handlers run on one goroutine, so it needs no lock.
type note struct {
	Tenant, Actor, SessionID string
	// ResourceType and ResourceID are what the request touched, for a
	// denial's detail event.
	ResourceType, ResourceID string
	// Reason is the error code of the answer, if it failed.
	Reason   string
	Metadata map[string]string
	details  []audit.Event
	// auditFailed is set when the audit middleware could not record the
	// request, so the outer writer answers in JSON.
	auditFailed bool
}

type noteKey struct{}

func noteFrom(ctx context.Context) *note {
	n, _ := ctx.Value(noteKey{}).(*note)
	if n == nil {
		return &note{} // a handler called outside the middleware (tests)
	}
	return n
}

func noteOf(r *http.Request) *note { return noteFrom(r.Context()) }

func (n *note) meta(k, v string) {
	if n.Metadata == nil {
		n.Metadata = map[string]string{}
	}
	n.Metadata[k] = v
}

// detail queues an event to record, before the response is sent, beside
// the request's own entry. The caller's identity and address are filled
// in from the request; the note's metadata so far goes with it.
func (n *note) detail(e audit.Event) {
	if e.Metadata == nil && len(n.Metadata) > 0 {
		e.Metadata = maps.Clone(n.Metadata)
	}
	n.details = append(n.details, e)
}

// deny queues the detail event of an access denial of what the request
// touched.
func (n *note) deny() {
	n.detail(audit.Event{
		Type:         audit.TypeAccessDenied,
		Category:     audit.CategoryAuthorization,
		Action:       audit.ActionDeny,
		ResourceType: n.ResourceType,
		ResourceID:   n.ResourceID,
		Success:      false,
	})
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, a access, c class, fn http.HandlerFunc) {
		mux.Handle(pattern, s.audited(c, s.authorized(a, fn)))
	}
	mux.HandleFunc("GET /healthz", s.healthz)

	auth := audit.CategoryAuthentication
	handle("POST /v1/apps/{app}/users", public, class{typeSignup, audit.CategoryAdministrative, audit.ActionCreate, "user"}, s.signup)
	handle("POST /v1/apps/{app}/login", public, class{audit.TypeLogin, auth, audit.ActionLogin, "user"}, s.login)
	handle("POST /v1/auth/refresh", public, class{typeRefresh, auth, "refresh", "session"}, s.refresh)
	handle("POST /v1/auth/logout", enrol, class{audit.TypeLogout, auth, "logout", "session"}, s.logout)
	handle("POST /v1/mfa/totp", enrol, class{typeMFA, auth, "enrol", "user"}, s.mfaEnrol)
	handle("POST /v1/mfa/totp/confirm", enrol, class{typeMFA, auth, "confirm", "user"}, s.mfaConfirm)

	mod := audit.CategoryDataModification
	handle("POST /v1/channels", user, class{audit.TypeDataCreated, mod, audit.ActionCreate, "channel"}, s.createChannel)
	handle("POST /v1/channels/{id}/members", user, class{audit.TypeDataUpdated, mod, audit.ActionUpdate, "channel"}, s.addMember)
	handle("POST /v1/channels/{id}/messages", user, class{audit.TypeDataCreated, mod, audit.ActionCreate, "channel"}, s.postMessage)
	handle("GET /v1/channels/{id}/messages", user, class{audit.TypeDataRead, audit.CategoryDataAccess, audit.ActionRead, "channel"}, s.readMessages)

	adm := audit.CategoryAdministrative
	handle("GET /v1/admin/audit", admin, class{typeAuditQueried, adm, audit.ActionRead, "audit_log"}, s.auditQuery)
	handle("GET /v1/admin/audit/verify", admin, class{audit.TypeAuditVerified, audit.CategorySystem, "verify", "audit_log"}, s.auditVerify)
	handle("PUT /v1/admin/retention", admin, class{typeRetentionPolicy, adm, audit.ActionUpdate, "retention_policy"}, s.setRetention)
	handle("POST /v1/admin/holds", admin, class{typeHoldPlaced, adm, audit.ActionCreate, "legal_hold"}, s.placeHold)
	handle("DELETE /v1/admin/holds/{id}", admin, class{typeHoldReleased, adm, audit.ActionDelete, "legal_hold"}, s.releaseHold)
	handle("POST /v1/admin/users/{id}/unlock", admin, class{typeAccountUnlocked, adm, "unlock", "user"}, s.unlockUser)
	handle("POST /v1/admin/break-glass", admin, class{audit.TypeEmergencyAccess, audit.CategorySecurity, "grant", "emergency_grant"}, s.breakGlass)

	s.consoleRoutes(mux, handle)

	// Anything else is a JSON 404, unaudited: it touches nothing.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, http.StatusNotFound, "not_found", "no such route")
	})
	return s.logged(mux)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.Ping(ctx); err != nil {
		s.log.Error("health check failed", "err", err)
		writeError(w, r, http.StatusServiceUnavailable, "unavailable", "a store does not answer")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// logged logs one line per request: method, route pattern, status and
// duration. Never the body, the query string or a header.
func (s *Server) logged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.TLS {
			w.Header().Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		s.log.Info("request", "method", r.Method, "route", r.Pattern, "status", sw.status, "duration_ms", time.Since(start).Milliseconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// newAuditMiddleware builds the audit package's middleware for every
// audited route: the route's class and path id classify the request before
// it runs; the caller, known only after authentication or log-in, is read
// from the note afterwards; and the recorder writes the note's detail
// events before the request's entry, so that all of them are durable
// before the response leaves (or the client gets 503).
func (s *Server) newAuditMiddleware() (func(http.Handler) http.Handler, error) {
	return audit.Middleware(audit.MiddlewareConfig{
		Recorder: auditRecorder{s},
		Actor: func(r *http.Request) (audit.Actor, bool) {
			n := noteOf(r)
			return audit.Actor{UserID: n.Actor, Tenant: n.Tenant, SessionID: n.SessionID}, n.Actor != ""
		},
		TrustedProxies: s.cfg.TrustedProxies,
		Classify: func(r *http.Request) (audit.Route, bool) {
			c, ok := r.Context().Value(classKey{}).(class)
			if !ok {
				return audit.Route{}, false
			}
			tenant := systemTenant
			if app := r.PathValue("app"); appPattern.MatchString(app) {
				tenant = app
			}
			return audit.Route{
				Type: c.Type, Category: c.Category, Action: c.Action,
				ResourceType: c.ResourceType, ResourceID: clip(r.PathValue("id"), 128),
				Tenant: tenant,
			}, true
		},
		OnError: func(r *http.Request, err error) {
			noteOf(r).auditFailed = true
			s.log.Error("audit record failed; request answered 503", "route", r.Pattern, "err", err)
		},
	})
}

type classKey struct{}

// auditRecorder records a request's detail events, then its entry.
type auditRecorder struct{ s *Server }

func (a auditRecorder) Record(ctx context.Context, e audit.Event) (audit.Entry, error) {
	n := noteFrom(ctx)
	for _, d := range n.details {
		if d.Tenant == "" {
			d.Tenant = e.Tenant
		}
		if d.Actor == "" {
			d.Actor = e.Actor
		}
		if d.SessionID == "" {
			d.SessionID = e.SessionID
		}
		d.IP, d.UserAgent = e.IP, e.UserAgent
		if !d.Success && d.FailureReason == "" {
			d.FailureReason = n.Reason
		}
		if err := a.s.record(ctx, d); err != nil {
			return audit.Entry{}, err
		}
	}
	n.details = nil
	if e.Tenant == "" {
		e.Tenant = systemTenant
	}
	return a.s.audit.Record(ctx, e)
}

// audited runs a route through the audit middleware, with a note for the
// handlers and a writer that turns the middleware's plain-text 503 into
// the API's JSON error.
//
// TODO: drop the note's detail events for created ids and denials once
// audit.Middleware lets a handler refine its request's route (it
// classifies before the handler runs), and the JSON rewrite once it takes
// an error writer.
func (s *Server) audited(c class, next http.Handler) http.Handler {
	inner := s.auditMW(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := &note{ResourceType: c.ResourceType, ResourceID: r.PathValue("id")}
		ctx := context.WithValue(context.WithValue(r.Context(), noteKey{}, n), classKey{}, c)
		inner.ServeHTTP(&auditErrorWriter{ResponseWriter: w, n: n}, r.WithContext(ctx))
	})
}

// auditErrorWriter replaces the body of the audit middleware's 503 (sent
// when a request could not be audited) with the API's JSON error.
type auditErrorWriter struct {
	http.ResponseWriter
	n       *note
	replace bool
}

func (w *auditErrorWriter) WriteHeader(code int) {
	if w.n.auditFailed && code == http.StatusServiceUnavailable {
		w.replace = true
		w.Header().Set("Content-Type", "application/json")
		w.Header().Del("Content-Length")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.ResponseWriter.WriteHeader(code)
		_ = json.NewEncoder(w.ResponseWriter).Encode(errorBody{Error: "audit_unavailable", Message: "the request could not be audited"})
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *auditErrorWriter) Write(p []byte) (int, error) {
	if w.replace {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// authorized checks the bearer token for every route but the public ones,
// the MFA requirement for user routes and the role for admin routes.
func (s *Server) authorized(a access, next http.HandlerFunc) http.HandlerFunc {
	if a == public {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		n := noteOf(r)
		tok, ok := bearer(r)
		if !ok {
			n.Reason = "missing_token"
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeError(w, r, http.StatusUnauthorized, "invalid_token", "a bearer token is required")
			return
		}
		id, err := s.sessions.Authenticate(r.Context(), tok)
		if errors.Is(err, session.ErrIdle) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			writeError(w, r, http.StatusUnauthorized, "session_idle", "the session ended after a period without activity; log in again")
			return
		}
		if errors.Is(err, session.ErrInvalidToken) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			writeError(w, r, http.StatusUnauthorized, "invalid_token", "the token is expired, revoked or not valid")
			return
		}
		if err != nil {
			s.log.Error("session check failed", "err", err)
			writeError(w, r, http.StatusServiceUnavailable, "unavailable", "sessions cannot be checked")
			return
		}
		n.Tenant, n.Actor, n.SessionID = id.Tenant(), id.UserID(), id.SessionID()
		if id.Emergency() {
			n.meta("emergency_grant", id.EmergencyGrantID())
		}
		r = r.WithContext(session.NewContext(r.Context(), id))

		if a == user || a == admin {
			if !s.mfaSatisfied(w, r, id) {
				return
			}
		}
		if a == admin {
			u, err := s.chat.UserByID(r.Context(), id.Tenant(), id.UserID())
			if err != nil && !errors.Is(err, ErrNotFound) {
				s.internal(w, r, err)
				return
			}
			if err != nil || (u.Role != RoleOwner && u.Role != RoleAdmin) {
				n.deny()
				writeError(w, r, http.StatusForbidden, "forbidden", "this route needs the owner or an admin")
				return
			}
		}
		next(w, r)
	}
}

// mfaSatisfied enforces the tenant's MFA policy on a session that has not
// proved a second factor: an enrolled account must log in with its code,
// and an account past its grace period may do nothing but enrol.
func (s *Server) mfaSatisfied(w http.ResponseWriter, r *http.Request, id *session.Identity) bool {
	if id.HasAMR(session.AMRMultiFactor) {
		return true
	}
	u, err := s.chat.UserByID(r.Context(), id.Tenant(), id.UserID())
	if err != nil {
		s.internal(w, r, err)
		return false
	}
	d, err := s.mfa.Requirement(r.Context(), mfa.RequirementParams{TenantID: u.AppID, AccountID: u.ID, AccountCreatedAt: u.CreatedAt})
	if err != nil {
		s.internal(w, r, err)
		return false
	}
	switch d.Action {
	case mfa.ActionVerify:
		noteOf(r).deny()
		writeError(w, r, http.StatusUnauthorized, "mfa_required", "log in again with your one-time code")
		return false
	case mfa.ActionEnrolNow:
		noteOf(r).deny()
		writeError(w, r, http.StatusForbidden, "mfa_enrolment_required", "enrol in MFA (POST /v1/mfa/totp) before anything else")
		return false
	}
	return true
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// clientAddr is the client's address: the peer's, or, from a trusted
// proxy (Config.TrustedProxies), the last untrusted hop of its
// X-Forwarded-For, as the audit middleware reads it. The zero Addr means
// unknown.
func (s *Server) clientAddr(r *http.Request) netip.Addr {
	a, err := netip.ParseAddr(audit.ClientIP(r, s.cfg.TrustedProxies))
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// errorBody is every error response.
type errorBody struct {
	Error      string   `json:"error"`
	Message    string   `json:"message"`
	Violations []string `json:"violations,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers with the error body and notes the code as the audit
// event's failure reason.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	if n := noteOf(r); n.Reason == "" {
		n.Reason = code
	}
	writeJSON(w, status, errorBody{Error: code, Message: msg})
}

// internal answers 500 and logs the error, which never carries PHI: the
// packages' errors name fields and identifiers only. When the error says
// the database is unreachable it answers 503 unavailable instead.
func (s *Server) internal(w http.ResponseWriter, r *http.Request, err error) {
	if storeUnavailable(err) {
		s.log.Error("request failed: the database is unavailable", "route", r.Pattern, "err", err)
		writeError(w, r, http.StatusServiceUnavailable, "unavailable", "the database does not answer; try again later")
		return
	}
	s.log.Error("request failed", "route", r.Pattern, "err", err)
	writeError(w, r, http.StatusInternalServerError, "internal", "the request failed; see the server log")
}
