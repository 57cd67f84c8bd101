package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/session"
	"github.com/chatsdk/compliance/session/mfa"
)

// maxBody bounds a request body.
const maxBody = 64 << 10

// class is a route's default audit classification; a handler refines it
// in its note (a denial becomes authz.denied, a failed login
// auth.login_failed).
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

// note is what a handler tells the audit middleware about its request.
// Handlers run on one goroutine, so it needs no lock.
type note struct {
	Tenant, Actor, SessionID string
	Type                     string
	Category                 audit.Category
	Action                   string
	ResourceType, ResourceID string
	Subject                  string
	Reason                   string
	Metadata                 map[string]string
}

type noteKey struct{}

func noteOf(r *http.Request) *note {
	n, _ := r.Context().Value(noteKey{}).(*note)
	if n == nil {
		return &note{} // a handler called outside the middleware (tests)
	}
	return n
}

func (n *note) meta(k, v string) {
	if n.Metadata == nil {
		n.Metadata = map[string]string{}
	}
	n.Metadata[k] = v
}

// deny marks the request an access denial.
func (n *note) deny() {
	n.Type = audit.TypeAccessDenied
	n.Category = audit.CategoryAuthorization
	n.Action = audit.ActionDeny
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, a access, c class, fn http.HandlerFunc) {
		mux.Handle(pattern, s.audited(c, s.authorized(a, fn)))
	}
	mux.HandleFunc("GET /healthz", s.healthz)

	auth := audit.CategoryAuthentication
	handle("POST /v1/apps/{app}/users", public, class{audit.TypeUserCreated, audit.CategoryAdministrative, audit.ActionCreate, "user"}, s.signup)
	handle("POST /v1/apps/{app}/login", public, class{audit.TypeLogin, auth, audit.ActionLogin, "user"}, s.login)
	handle("POST /v1/auth/refresh", public, class{typeRefresh, auth, "refresh", "session"}, s.refresh)
	handle("POST /v1/auth/logout", enrol, class{audit.TypeLogout, auth, "logout", "session"}, s.logout)
	handle("POST /v1/mfa/totp", enrol, class{typeMFA, auth, "enrol", "user"}, s.mfaEnrol)
	handle("POST /v1/mfa/totp/confirm", enrol, class{typeMFA, auth, "confirm", "user"}, s.mfaConfirm)

	mod := audit.CategoryDataModification
	handle("POST /v1/channels", user, class{audit.TypeDataCreated, mod, audit.ActionCreate, "channel"}, s.createChannel)
	handle("POST /v1/channels/{id}/members", user, class{audit.TypeDataUpdated, mod, audit.ActionUpdate, "channel"}, s.addMember)
	handle("POST /v1/channels/{id}/messages", user, class{audit.TypeDataCreated, mod, audit.ActionCreate, "message"}, s.postMessage)
	handle("GET /v1/channels/{id}/messages", user, class{audit.TypeDataRead, audit.CategoryDataAccess, audit.ActionRead, "channel"}, s.readMessages)

	adm := audit.CategoryAdministrative
	handle("GET /v1/admin/audit", admin, class{typeAuditQueried, adm, audit.ActionRead, "audit_log"}, s.auditQuery)
	handle("GET /v1/admin/audit/verify", admin, class{audit.TypeAuditVerified, audit.CategorySystem, "verify", "audit_log"}, s.auditVerify)
	handle("PUT /v1/admin/retention", admin, class{typeRetentionPolicy, adm, audit.ActionUpdate, "retention_policy"}, s.setRetention)
	handle("POST /v1/admin/holds", admin, class{typeHoldPlaced, adm, audit.ActionCreate, "legal_hold"}, s.placeHold)
	handle("DELETE /v1/admin/holds/{id}", admin, class{typeHoldReleased, adm, audit.ActionDelete, "legal_hold"}, s.releaseHold)
	handle("POST /v1/admin/users/{id}/unlock", admin, class{typeAccountUnlocked, adm, "unlock", "user"}, s.unlockUser)
	handle("POST /v1/admin/break-glass", admin, class{audit.TypeEmergencyAccess, audit.CategorySecurity, "grant", "emergency_grant"}, s.breakGlass)

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

// audited records one audit event per request and holds the response back
// until the event is durable: a request that cannot be audited is answered
// 503 instead.
//
// TODO: use the audit package's HTTP middleware once it lands (its doc
// promises one); until then this is the same contract, built on Log.Record.
func (s *Server) audited(c class, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := &note{Type: c.Type, Category: c.Category, Action: c.Action, ResourceType: c.ResourceType}
		buf := &bufferedWriter{header: http.Header{}, status: http.StatusOK}
		next.ServeHTTP(buf, r.WithContext(context.WithValue(r.Context(), noteKey{}, n)))

		e := audit.Event{
			Tenant:        n.Tenant,
			Actor:         n.Actor,
			SessionID:     n.SessionID,
			IP:            clientAddr(r).String(),
			UserAgent:     clip(r.UserAgent(), 512),
			Type:          n.Type,
			Category:      n.Category,
			Action:        n.Action,
			ResourceType:  n.ResourceType,
			ResourceID:    n.ResourceID,
			Subject:       n.Subject,
			Success:       buf.status < 400,
			FailureReason: n.Reason,
			Metadata:      n.Metadata,
		}
		if !clientAddr(r).IsValid() {
			e.IP = ""
		}
		e.Metadata = withStatus(e.Metadata, buf.status)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
		defer cancel()
		if err := s.record(ctx, e); err != nil {
			writeError(w, r, http.StatusServiceUnavailable, "audit_unavailable", "the request could not be audited")
			return
		}
		buf.flush(w)
	})
}

func withStatus(m map[string]string, status int) map[string]string {
	out := make(map[string]string, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	out["status"] = fmt.Sprint(status)
	return out
}

type bufferedWriter struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }

func (b *bufferedWriter) WriteHeader(code int) {
	if !b.wrote {
		b.status, b.wrote = code, true
	}
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	b.wrote = true
	return b.body.Write(p)
}

func (b *bufferedWriter) flush(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body.Bytes())
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

// clientAddr is the connection's peer address. The example trusts no
// forwarding header; behind a proxy, read the proxy's header here.
func clientAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
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
// packages' errors name fields and identifiers only.
func (s *Server) internal(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("request failed", "route", r.Pattern, "err", err)
	writeError(w, r, http.StatusInternalServerError, "internal", "the request failed; see the server log")
}

// decode reads a JSON body into v, answering 400 itself when it cannot.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, r, http.StatusBadRequest, "bad_request", "the body is not the expected JSON")
		return false
	}
	return true
}
