package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// errBudget is returned once the scenario's request budget is spent.
var errBudget = errors.New("request budget spent")

// targets are the base URLs requests go to, round robin; a restart swaps
// one for the new process's address.
type targets struct {
	mu    sync.RWMutex
	bases []string
	next  atomic.Uint64
}

func newTargets(bases ...string) *targets { return &targets{bases: bases} }

func (t *targets) pick() string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.bases[t.next.Add(1)%uint64(len(t.bases))]
}

func (t *targets) set(i int, base string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.bases[i] = base
}

// api sends requests and records their latency per route.
type api struct {
	hc      *http.Client
	to      *targets
	rec     atomic.Pointer[recorder] // nil records nothing; swapped between phases
	budget  *atomic.Int64
	onReply func(route string, status int) // optional
}

func newAPI(to *targets, rec *recorder, budget int64) *api {
	b := &atomic.Int64{}
	b.Store(budget)
	a := &api{
		hc: &http.Client{
			Timeout:   30 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxIdleConns: 512, IdleConnTimeout: 30 * time.Second},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		to: to, budget: b,
	}
	a.rec.Store(rec)
	return a
}

// reply is a response: its status and body, and the tag of the request
// that got it.
type reply struct {
	status int
	body   []byte
	header http.Header
	tag    string
}

// userAgentPrefix starts the User-Agent of every request, followed by the
// request's own random tag. The audit log keeps the User-Agent in each
// entry of the request (its route entry and its detail entries), so the
// check can find the entries of each acknowledged request, not merely
// count entries of its kind.
const userAgentPrefix = "loadtest/"

func (r reply) field(name string) string {
	var m map[string]any
	_ = json.Unmarshal(r.body, &m)
	s, _ := m[name].(string)
	return s
}

// call sends one request to the next target and records it under route.
// body is JSON-encoded unless it is a []byte.
func (a *api) call(ctx context.Context, route, method, path, token string, body any) (reply, error) {
	return a.callAt(ctx, a.to.pick(), route, method, path, token, body, nil)
}

func (a *api) callAt(ctx context.Context, base, route, method, path, token string, body any, header http.Header) (reply, error) {
	if a.budget.Add(-1) < 0 {
		return reply{}, errBudget
	}
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return reply{}, err
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return reply{}, err
	}
	tag := randHex(8)
	req.Header.Set("User-Agent", userAgentPrefix+tag)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	rec := a.rec.Load()
	start := time.Now()
	res, err := a.hc.Do(req)
	if err != nil {
		if rec != nil && ctx.Err() == nil {
			rec.transportError(route)
		}
		return reply{}, err
	}
	raw, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		if rec != nil && ctx.Err() == nil {
			rec.transportError(route)
		}
		return reply{}, err
	}
	if rec != nil {
		rec.add(route, res.StatusCode, time.Since(start))
	}
	if a.onReply != nil {
		a.onReply(route, res.StatusCode)
	}
	return reply{status: res.StatusCode, body: raw, header: res.Header, tag: tag}, nil
}

// recorder keeps latencies and statuses per route.
type recorder struct {
	mu     sync.Mutex
	start  time.Time
	end    time.Time
	routes map[string]*routeStats
}

type routeStats struct {
	ok       []time.Duration // 2xx latencies
	statuses map[int]int
	errors   int // transport errors: no response
}

func newRecorder() *recorder { return &recorder{routes: map[string]*routeStats{}, start: time.Now()} }

func (r *recorder) route(name string) *routeStats {
	s := r.routes[name]
	if s == nil {
		s = &routeStats{statuses: map[int]int{}}
		r.routes[name] = s
	}
	return s
}

func (r *recorder) add(route string, status int, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.route(route)
	s.statuses[status]++
	if status < 300 {
		s.ok = append(s.ok, d)
	}
}

func (r *recorder) transportError(route string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.route(route).errors++
}

// restart forgets everything recorded and starts the measured period now.
func (r *recorder) restart() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.routes = map[string]*routeStats{}
	r.start, r.end = time.Now(), time.Time{}
}

// stop marks the end of the measured period.
func (r *recorder) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.end = time.Now()
}

// routeFigures are one route's results.
type routeFigures struct {
	Route    string
	OK       int
	PerSec   float64
	P50, P99 time.Duration
	Other    map[int]int // non-2xx statuses
	Errors   int
}

// figures summarises the recorder: per route, and "all" for every route
// together.
func (r *recorder) figures() (all routeFigures, per []routeFigures) {
	r.mu.Lock()
	defer r.mu.Unlock()
	secs := r.end.Sub(r.start).Seconds()
	if r.end.IsZero() {
		secs = time.Since(r.start).Seconds()
	}
	var every []time.Duration
	all = routeFigures{Route: "all", Other: map[int]int{}}
	for name, s := range r.routes {
		f := routeFigures{Route: name, OK: len(s.ok), Other: map[int]int{}, Errors: s.errors}
		f.PerSec = float64(f.OK) / secs
		f.P50, f.P99 = percentile(s.ok, 0.50), percentile(s.ok, 0.99)
		for st, n := range s.statuses {
			if st >= 300 {
				f.Other[st] += n
				all.Other[st] += n
			}
		}
		every = append(every, s.ok...)
		all.OK += f.OK
		all.Errors += f.Errors
		per = append(per, f)
	}
	sort.Slice(per, func(i, j int) bool { return per[i].Route < per[j].Route })
	all.PerSec = float64(all.OK) / secs
	all.P50, all.P99 = percentile(every, 0.50), percentile(every, 0.99)
	return all, per
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

func (f routeFigures) String() string {
	other := ""
	if len(f.Other) > 0 || f.Errors > 0 {
		var parts []string
		for st, n := range f.Other {
			parts = append(parts, fmt.Sprintf("%d×%d", n, st))
		}
		sort.Strings(parts)
		if f.Errors > 0 {
			parts = append(parts, fmt.Sprintf("%d×no reply", f.Errors))
		}
		other = strings.Join(parts, " ")
	}
	return fmt.Sprintf("| %s | %d | %.1f | %s | %s | %s |", f.Route, f.OK, f.PerSec, ms(f.P50), ms(f.P99), other)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
