package audit

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Recorder records one event durably. [*Log] satisfies it.
type Recorder interface {
	Record(ctx context.Context, e Event) (Entry, error)
}

var _ Recorder = (*Log)(nil)

// Actor is who made a request, as the application's session layer knows
// it. The zero Actor is an unauthenticated caller.
type Actor struct {
	UserID    string
	Tenant    string
	SessionID string
}

// Route is how the application classifies a request for the audit log.
type Route struct {
	// Type, Category and Action describe the event, e.g. TypeDataRead,
	// CategoryDataAccess, ActionRead. Required.
	Type     string
	Category Category
	Action   string
	// ResourceType, ResourceID and Subject name what was touched and whose
	// data it is.
	ResourceType string
	ResourceID   string
	Subject      string
	// Tenant is used when the actor has none (a failed login).
	Tenant string
	// NoPHI marks a response that carries no PHI: it is sent without
	// waiting for its audit entry, and a failed record is only reported
	// to OnError. By default (false) a response is treated as carrying PHI.
	NoPHI bool
}

// MiddlewareConfig configures [Middleware].
type MiddlewareConfig struct {
	// Recorder records the events; usually the application's *Log.
	// Required.
	Recorder Recorder
	// Actor extracts the actor from the request (its context, typically,
	// where the session middleware put it); false means unauthenticated.
	// Required. The audit package does not import the session package: the
	// application wires this to session's accessors.
	Actor func(r *http.Request) (Actor, bool)
	// Classify returns the request's route, or false for a request that is
	// not audited. Required.
	Classify func(r *http.Request) (Route, bool)
	// TrustedProxies are the addresses whose X-Forwarded-For is believed.
	// A request from any other address is attributed to its peer address.
	// Nil trusts no proxy.
	TrustedProxies []netip.Prefix
	// InsecureFailOpen sends a PHI response even when its audit entry could
	// not be recorded. Default false: such a response is replaced by 503.
	InsecureFailOpen bool
	// OnError, if not nil, is told of every failed record, with the request
	// (for its route, not its body) and the error.
	OnError func(r *http.Request, err error)
	// RecordTimeout bounds how long a request waits for its entry (a full
	// queue, a slow database) before failing as unaudited. Defaults to 5
	// seconds. The wait does not end when the client disconnects.
	RecordTimeout time.Duration
}

// Middleware returns HTTP middleware that records an event for every
// request Classify accepts: the actor, the client address, the user agent,
// the route's event and its outcome from the status code (a status of 400
// or more is a failure, so denied requests, 401 and 403, are recorded as
// failures too). It records no bodies, headers or query strings; metadata
// holds only the method, the route pattern and the status. Route fields an
// event would refuse (longer than [MaxFieldLen], invalid UTF-8, a NUL byte)
// are cut and cleaned, since they often come from the URL.
//
// By default a response is buffered until its entry is durable, and is
// replaced by 503 Service Unavailable when recording fails: a response
// carrying PHI is never sent unaudited. Buffered responses do not support
// http.Flusher or http.Hijacker.
//
// A handler that panics is recorded as a failed request (status 500,
// "handler panicked") before the panic goes on up unchanged, to net/http
// or the application's own recovery; http.ErrAbortHandler included, since
// an aborted handler may have read PHI too. A buffered response is then
// never sent.
func Middleware(cfg MiddlewareConfig) (func(http.Handler) http.Handler, error) {
	if cfg.Recorder == nil || cfg.Actor == nil || cfg.Classify == nil {
		return nil, fmt.Errorf("%w: MiddlewareConfig needs Recorder, Actor and Classify", ErrConfig)
	}
	if cfg.RecordTimeout <= 0 {
		cfg.RecordTimeout = 5 * time.Second
	}
	recordEvent := func(r *http.Request, e Event) error {
		// Not r.Context(): it ends when the client hangs up, and a client
		// must not be able to keep its request out of the log that way.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), cfg.RecordTimeout)
		defer cancel()
		_, err := cfg.Recorder.Record(ctx, e)
		return err
	}
	record := func(r *http.Request, route Route, status int) error {
		return recordEvent(r, cfg.event(r, route, status))
	}
	// serve runs next; when it panics, the request is recorded as failed
	// and the panic resumes with the same value.
	serve := func(next http.Handler, w http.ResponseWriter, r *http.Request, route Route) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			e := cfg.event(r, route, http.StatusInternalServerError)
			e.FailureReason = "handler panicked"
			if err := recordEvent(r, e); err != nil && cfg.OnError != nil {
				cfg.OnError(r, err)
			}
			panic(p)
		}()
		next.ServeHTTP(w, r)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			route, ok := cfg.Classify(r)
			if !ok {
				next.ServeHTTP(w, r)
				return
			}
			if route.NoPHI {
				sw := &statusWriter{ResponseWriter: w}
				serve(next, sw, r, route)
				if err := record(r, route, sw.status()); err != nil && cfg.OnError != nil {
					cfg.OnError(r, err)
				}
				return
			}

			before := w.Header().Clone() // what outer middleware set (HSTS, …)
			bw := &bufferedWriter{header: w.Header()}
			serve(next, bw, r, route)
			if err := record(r, route, bw.status()); err != nil {
				if cfg.OnError != nil {
					cfg.OnError(r, err)
				}
				if !cfg.InsecureFailOpen {
					// Drop everything the handler set: its headers may
					// describe or carry the PHI body too.
					clear(w.Header())
					maps.Copy(w.Header(), before)
					http.Error(w, "audit log unavailable", http.StatusServiceUnavailable)
					return
				}
			}
			bw.flushTo(w)
		})
	}, nil
}

func (cfg *MiddlewareConfig) event(r *http.Request, route Route, status int) Event {
	actor, _ := cfg.Actor(r)
	tenant := actor.Tenant
	if tenant == "" {
		tenant = route.Tenant
	}
	e := Event{
		Tenant:    tenant,
		Actor:     actor.UserID,
		SessionID: actor.SessionID,
		IP:        ClientIP(r, cfg.TrustedProxies),
		UserAgent: truncateUTF8(r.UserAgent(), MaxFieldLen),
		Type:      route.Type,
		Category:  route.Category,
		Action:    route.Action,
		// The route often comes from the URL, so from the client: cut it to
		// what an event accepts, or a prober could make its own requests
		// unrecordable (and a denied one would then leave no trace).
		ResourceType: truncateUTF8(route.ResourceType, MaxFieldLen),
		ResourceID:   truncateUTF8(route.ResourceID, MaxFieldLen),
		Subject:      truncateUTF8(route.Subject, MaxFieldLen),
		Success:      status < 400,
		Metadata:     map[string]string{"method": truncateUTF8(r.Method, 32), "status": strconv.Itoa(status)},
	}
	if r.Pattern != "" {
		e.Metadata["route"] = truncateUTF8(r.Pattern, 256)
	}
	switch {
	case status == http.StatusUnauthorized:
		e.FailureReason = "not authenticated"
	case status == http.StatusForbidden:
		e.FailureReason = "access denied"
	case status >= 400:
		e.FailureReason = "status " + strconv.Itoa(status)
	}
	return e
}

// ClientIP returns the request's client address: the peer address, or,
// when the peer is a trusted proxy, the rightmost X-Forwarded-For address
// that is not a trusted proxy. Addresses a client wrote itself (left of the
// first untrusted hop) are never believed.
func ClientIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return truncateUTF8(host, 64)
	}
	peer = peer.Unmap()
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed hop: stop at the last address we could trust
		}
		client = a.Unmap()
		if !isTrusted(client, trusted) {
			break
		}
	}
	return client.String()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// truncateUTF8 makes s valid UTF-8 without NUL bytes, as an event field
// must be, and cuts it to at most n bytes on a rune boundary.
func truncateUTF8(s string, n int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "?"), "\x00", "?")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// statusWriter notes the status of a response it passes through.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// bufferedWriter holds a response until its audit entry is durable.
type bufferedWriter struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }

func (b *bufferedWriter) WriteHeader(code int) {
	if b.code == 0 {
		b.code = code
	}
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.code == 0 {
		b.code = http.StatusOK
	}
	return b.body.Write(p)
}

func (b *bufferedWriter) status() int {
	if b.code == 0 {
		return http.StatusOK
	}
	return b.code
}

func (b *bufferedWriter) flushTo(w http.ResponseWriter) {
	w.WriteHeader(b.status())
	_, _ = w.Write(b.body.Bytes())
}
