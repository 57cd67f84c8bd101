package audit_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chatsdk/compliance/audit"
)

type actorKey struct{}

// downStore is a store whose database is unreachable.
type downStore struct{ *audit.MemoryStore }

func (downStore) Append(context.Context, string, []audit.Event) ([]audit.Entry, error) {
	return nil, errors.New("connection refused")
}

func newMiddleware(t *testing.T, store audit.Store, failOpen bool) (http.Handler, *[]error) {
	t.Helper()
	log, err := audit.New(audit.Config{Store: store})
	require.NoError(t, err)
	t.Cleanup(func() { log.Close(context.Background()) })
	var errs []error
	mw, err := audit.Middleware(audit.MiddlewareConfig{
		Recorder: log,
		Actor: func(r *http.Request) (audit.Actor, bool) {
			a, ok := r.Context().Value(actorKey{}).(audit.Actor)
			return a, ok
		},
		Classify: func(r *http.Request) (audit.Route, bool) {
			if !strings.HasPrefix(r.URL.Path, "/messages/") {
				return audit.Route{}, false
			}
			return audit.Route{Type: audit.TypeDataRead, Category: audit.CategoryDataAccess, Action: audit.ActionRead,
				ResourceType: "message", ResourceID: strings.TrimPrefix(r.URL.Path, "/messages/"), Tenant: "clinic-1"}, true
		},
		TrustedProxies:   []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		InsecureFailOpen: failOpen,
		OnError:          func(_ *http.Request, err error) { errs = append(errs, err) },
	})
	require.NoError(t, err)
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Context().Value(actorKey{}).(audit.Actor); !ok {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "PHI: the patient's message")
	})
	return mw(app), &errs
}

func request(path string, actor *audit.Actor, remote string, xff ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.RemoteAddr = remote
	r.Header.Set("User-Agent", "test-agent")
	for _, h := range xff {
		r.Header.Add("X-Forwarded-For", h)
	}
	if actor != nil {
		r = r.WithContext(context.WithValue(r.Context(), actorKey{}, *actor))
	}
	return r
}

func lastEntry(t *testing.T, s *audit.MemoryStore) audit.Entry {
	t.Helper()
	page, err := s.Query(context.Background(), audit.Query{Tenant: "clinic-1", Limit: 1})
	require.NoError(t, err)
	require.Len(t, page.Entries, 1)
	return page.Entries[0]
}

func TestMiddlewareRecordsAllowedRequest(t *testing.T) {
	store := audit.NewMemoryStore()
	h, _ := newMiddleware(t, store, false)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, request("/messages/m-9", &audit.Actor{UserID: "dr-lee", Tenant: "clinic-1", SessionID: "s-1"},
		"10.1.2.3:5555", "203.0.113.9, 10.9.9.9"))

	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), "PHI")
	e := lastEntry(t, store)
	require.Equal(t, "dr-lee", e.Actor)
	require.Equal(t, "s-1", e.SessionID)
	require.Equal(t, "m-9", e.ResourceID)
	require.Equal(t, "203.0.113.9", e.IP, "the first untrusted hop behind trusted proxies")
	require.Equal(t, "test-agent", e.UserAgent)
	require.True(t, e.Success)
	require.Equal(t, "200", e.Metadata["status"])
	for k, v := range e.Metadata {
		require.NotContains(t, v, "PHI", "metadata %s must not hold the body", k)
	}
}

func TestMiddlewareRecordsDeniedRequest(t *testing.T) {
	store := audit.NewMemoryStore()
	h, _ := newMiddleware(t, store, false)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, request("/messages/m-1", nil, "198.51.100.4:1234", "1.2.3.4"))

	require.Equal(t, http.StatusForbidden, rec.Code)
	e := lastEntry(t, store)
	require.False(t, e.Success)
	require.Equal(t, "access denied", e.FailureReason)
	require.Equal(t, "", e.Actor)
	require.Equal(t, "clinic-1", e.Tenant)
	require.Equal(t, "198.51.100.4", e.IP, "an untrusted peer's X-Forwarded-For is ignored")
}

func TestMiddlewareFailsClosedWhenStoreIsDown(t *testing.T) {
	h, errs := newMiddleware(t, downStore{audit.NewMemoryStore()}, false)
	outer := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=63072000")
		h.ServeHTTP(w, r)
	})
	rec := httptest.NewRecorder()
	outer.ServeHTTP(rec, request("/messages/m-1", &audit.Actor{UserID: "dr-lee", Tenant: "clinic-1"}, "192.0.2.1:1"))

	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Equal(t, "max-age=63072000", rec.Header().Get("Strict-Transport-Security"), "outer headers survive")
	require.NotContains(t, rec.Body.String(), "PHI", "an unaudited PHI response must not be sent")
	require.NotEqual(t, "text/plain", rec.Header().Get("Content-Type"))
	require.Len(t, *errs, 1)
	require.ErrorIs(t, (*errs)[0], audit.ErrNotDurable)
}

func TestMiddlewareInsecureFailOpen(t *testing.T) {
	h, errs := newMiddleware(t, downStore{audit.NewMemoryStore()}, true)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, request("/messages/m-1", &audit.Actor{UserID: "dr-lee", Tenant: "clinic-1"}, "192.0.2.1:1"))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Len(t, *errs, 1)
}

func TestMiddlewareSkipsUnclassified(t *testing.T) {
	store := audit.NewMemoryStore()
	h, _ := newMiddleware(t, store, false)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, request("/healthz", nil, "192.0.2.1:1"))
	page, err := store.Query(context.Background(), audit.Query{Tenant: "clinic-1"})
	require.NoError(t, err)
	require.Empty(t, page.Entries)
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	cases := []struct {
		remote string
		xff    []string
		want   string
	}{
		{"192.0.2.1:80", nil, "192.0.2.1"},
		{"192.0.2.1:80", []string{"6.6.6.6"}, "192.0.2.1"},
		{"10.0.0.1:80", []string{"6.6.6.6, 203.0.113.1"}, "203.0.113.1"},
		{"10.0.0.1:80", []string{"6.6.6.6", "203.0.113.1, 10.0.0.2"}, "203.0.113.1"},
		{"10.0.0.1:80", []string{"garbage, 10.0.0.2"}, "10.0.0.2"},
		{"10.0.0.1:80", nil, "10.0.0.1"},
		{"[::1]:80", []string{"2001:db8::1"}, "2001:db8::1"},
		{"[::ffff:192.0.2.5]:80", nil, "192.0.2.5"},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tc.remote
		for _, h := range tc.xff {
			r.Header.Add("X-Forwarded-For", h)
		}
		require.Equal(t, tc.want, audit.ClientIP(r, trusted), "%s %v", tc.remote, tc.xff)
	}
}

// deadlineRecorder fails at once, noting the deadline it was given.
type deadlineRecorder struct{ left time.Duration }

func (d *deadlineRecorder) Record(ctx context.Context, _ audit.Event) (audit.Entry, error) {
	if dl, ok := ctx.Deadline(); ok {
		d.left = time.Until(dl)
	}
	return audit.Entry{}, audit.ErrQueueFull
}

func TestMiddlewareBoundsTheWaitForItsEntry(t *testing.T) {
	rec := &deadlineRecorder{}
	mw, err := audit.Middleware(audit.MiddlewareConfig{
		Recorder: rec,
		Actor:    func(*http.Request) (audit.Actor, bool) { return audit.Actor{}, false },
		Classify: func(*http.Request) (audit.Route, bool) {
			return audit.Route{Type: "x", Category: audit.CategorySystem, Action: "a", Tenant: "t"}, true
		},
		RecordTimeout: time.Minute,
	})
	require.NoError(t, err)
	w := httptest.NewRecorder()
	mw(http.NotFoundHandler()).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Greater(t, rec.left, 50*time.Second, "the record waits under RecordTimeout")
	require.LessOrEqual(t, rec.left, time.Minute)
}

// A client that hangs up must not be able to keep its request out of the
// log: the denied requests of a prober that disconnects at once are
// recorded all the same.
func TestMiddlewareRecordsRequestsOfClientsThatHangUp(t *testing.T) {
	store := audit.NewMemoryStore()
	h, errs := newMiddleware(t, store, false)
	const n = 40
	for range n {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // the client is gone before the handler returns
		r := request("/messages/m-1", nil, "198.51.100.4:1234").WithContext(ctx)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	require.Empty(t, *errs)
	page, err := store.Query(context.Background(), audit.Query{Tenant: "clinic-1", Limit: 2 * n})
	require.NoError(t, err)
	require.Len(t, page.Entries, n, "every denied request is in the log")
}

// A prober cannot keep its denied requests out of the log by sending a
// resource id the event would refuse (too long, a NUL byte, bad UTF-8).
func TestMiddlewareRecordsRequestsWithUnrulyResourceIDs(t *testing.T) {
	store := audit.NewMemoryStore()
	h, errs := newMiddleware(t, store, false)
	paths := []string{
		"/messages/" + strings.Repeat("a", 3*audit.MaxFieldLen),
		"/messages/m%00-1",
		"/messages/m%ff-1",
	}
	for i, p := range paths {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, request(p, nil, "198.51.100.4:1234"))
		require.Equal(t, http.StatusForbidden, rec.Code, "path %d", i)
	}
	require.Empty(t, *errs)
	page, err := store.Query(context.Background(), audit.Query{Tenant: "clinic-1"})
	require.NoError(t, err)
	require.Len(t, page.Entries, len(paths))
	for _, e := range page.Entries {
		require.False(t, e.Success)
		require.LessOrEqual(t, len(e.ResourceID), audit.MaxFieldLen)
	}
}

// panicMiddleware is the middleware of newMiddleware around a handler that
// reads PHI, writes part of it and then panics with p.
func panicMiddleware(t *testing.T, store audit.Store, noPHI bool, p any) http.Handler {
	t.Helper()
	log, err := audit.New(audit.Config{Store: store})
	require.NoError(t, err)
	t.Cleanup(func() { log.Close(context.Background()) })
	mw, err := audit.Middleware(audit.MiddlewareConfig{
		Recorder: log,
		Actor: func(r *http.Request) (audit.Actor, bool) {
			a, ok := r.Context().Value(actorKey{}).(audit.Actor)
			return a, ok
		},
		Classify: func(r *http.Request) (audit.Route, bool) {
			return audit.Route{Type: audit.TypeDataRead, Category: audit.CategoryDataAccess, Action: audit.ActionRead,
				ResourceType: "message", ResourceID: "m-1", Tenant: "clinic-1", NoPHI: noPHI}, true
		},
	})
	require.NoError(t, err)
	return mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "PHI: half of the patient's message")
		panic(p)
	}))
}

func TestMiddlewareRecordsAPanickingHandler(t *testing.T) {
	for _, tc := range []struct {
		name  string
		noPHI bool
		p     any
	}{
		{"phi", false, "boom"},
		{"no phi", true, "boom"},
		{"abort", false, http.ErrAbortHandler},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := audit.NewMemoryStore()
			h := panicMiddleware(t, store, tc.noPHI, tc.p)
			rec := httptest.NewRecorder()
			var got any
			func() {
				defer func() { got = recover() }()
				h.ServeHTTP(rec, request("/messages/m-1", &audit.Actor{UserID: "dr-lee", Tenant: "clinic-1"}, "192.0.2.1:1"))
			}()
			require.Equal(t, tc.p, got, "the panic goes on up unchanged")
			e := lastEntry(t, store)
			require.Equal(t, "dr-lee", e.Actor)
			require.False(t, e.Success)
			require.Equal(t, "handler panicked", e.FailureReason)
			require.Equal(t, "500", e.Metadata["status"])
			if !tc.noPHI {
				require.Empty(t, rec.Body.String(), "a buffered PHI response is not sent when its handler panics")
			}
		})
	}
}
