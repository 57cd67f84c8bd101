package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/chatsdk/compliance/audit"
)

// config is what every scenario runs with.
type config struct {
	clients  int
	duration time.Duration
	budget   int64 // requests, per scenario
	kills    int
	repeat   int // load: measured pairs
	// pgRestart, when set, is the command pair that stops and starts the
	// database server for the database-fault scenario.
	pgStop, pgStart []string
	outage          time.Duration
}

// loadRun is one load measurement: the loaded phase, and the sign-ups and
// log-ins before it.
type loadRun struct {
	all    routeFigures
	routes []routeFigures
	setup  []routeFigures
}

// runLoad measures the server, protected or not, under cfg.clients clients
// for cfg.duration.
func runLoad(ctx context.Context, e *env, cfg config, unprotected bool, res *result) loadRun {
	var extra []string
	if unprotected {
		extra = []string{"-benchmark-unprotected", "-benchmark-unprotected-ack", "no-audit-no-encryption"}
	}
	srv, err := e.start(ctx, extra...)
	if err != nil {
		res.failf("start: %v", err)
		return loadRun{}
	}
	defer srv.stop()

	rec, setupRec := newRecorder(), newRecorder()
	a := newAPI(newTargets(srv.base), rec, cfg.budget)
	l := newLedger()
	runClients(ctx, a, l, tolerated{}, []string{"load"}, cfg.clients, phases{setupRec: setupRec, d: cfg.duration})
	for _, s := range l.oddAnswers() {
		res.failf("unexpected answer: %s", s)
	}
	all, per := rec.figures()
	_, setup := setupRec.figures()
	return loadRun{all: all, routes: per, setup: setup}
}

// crash kills the server with SIGKILL at random moments under load and
// restarts it, cfg.kills times, then checks what was acknowledged.
func crash(ctx context.Context, e *env, cfg config, res *result) {
	srv, err := e.start(ctx)
	if err != nil {
		res.failf("start: %v", err)
		return
	}
	to := newTargets(srv.base)
	rec := newRecorder()
	a := newAPI(to, rec, cfg.budget)
	l := newLedger()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	var wg sync.WaitGroup
	started := make(chan struct{})
	wg.Go(func() {
		runClients(runCtx, a, l, tolerated{unavailable: true}, []string{"crash-a", "crash-b"}, cfg.clients, phases{d: cfg.duration, started: started})
	})

	// The kills fall at random moments in the first 80% of the loaded
	// phase, one in each slot, so the last restart still sees load.
	select {
	case <-started:
	case <-ctx.Done():
		return
	}
	slot := cfg.duration * 8 / 10 / time.Duration(cfg.kills)
	var downtime time.Duration
	for i := range cfg.kills {
		select {
		case <-time.After(slot/4 + rand.N(slot*3/4)):
		case <-ctx.Done():
			res.failf("stopped before kill %d: %v", i+1, ctx.Err())
			cancel()
			wg.Wait()
			return
		}
		srv.kill()
		down := time.Now()
		if srv, err = e.start(ctx); err != nil {
			res.failf("restart %d: %v", i+1, err)
			cancel()
			wg.Wait()
			return
		}
		downtime += time.Since(down)
		to.set(0, srv.base)
	}
	wg.Wait()

	all, _ := rec.figures()
	res.notef("%d clients for %s, %d SIGKILLs, each restarted (down %s in total); %d requests answered 2xx, %d without a reply", cfg.clients, cfg.duration, cfg.kills, downtime.Round(time.Millisecond), all.OK, all.Errors)
	for _, s := range l.oddAnswers() {
		res.failf("unexpected answer: %s", s)
	}
	checkAll(ctx, e, srv, l, res)
}

// checkAll runs the checks of what the server acknowledged: messages read
// back through the API (with srv, which is then killed, not stopped, so
// that nothing a clean shutdown would flush helps), audit entries, chain
// verification, the plaintext scan and the logs.
func checkAll(ctx context.Context, e *env, srv *server, l *ledger, res *result) map[string]audit.Report {
	checker := newAPI(newTargets(srv.base), nil, 1<<40)
	checkMessages(ctx, checker, srv.base, l, res)
	srv.kill()
	checkAudit(ctx, e, l, res)
	reps := verifyChains(ctx, e, true, res)
	scanPlaintext(ctx, e, l.marker, res)
	checkLogs(e, secretsOf(l), res)
	return reps
}

// dbFault stops the database under load for cfg.outage and starts it
// again: the server must answer 503 (never 500, never hang up) while it is
// down, recover by itself, and lose nothing it acknowledged.
func dbFault(ctx context.Context, e *env, cfg config, res *result) {
	if len(cfg.pgStop) == 0 {
		res.failf("no database stop/start commands configured")
		return
	}
	srv, err := e.start(ctx)
	if err != nil {
		res.failf("start: %v", err)
		return
	}
	rec := newRecorder()
	a := newAPI(newTargets(srv.base), rec, cfg.budget)

	// Count answers by phase: before, during and after the outage.
	var mu sync.Mutex
	phase := "before"
	byPhase := map[string]map[int]int{}
	var firstOKAfter time.Time
	var upAt time.Time
	a.onReply = func(route string, status int) {
		mu.Lock()
		defer mu.Unlock()
		m := byPhase[phase]
		if m == nil {
			m = map[int]int{}
			byPhase[phase] = m
		}
		m[status]++
		if phase == "after" && status < 300 && firstOKAfter.IsZero() {
			firstOKAfter = time.Now()
		}
	}
	setPhase := func(p string) {
		mu.Lock()
		defer mu.Unlock()
		phase = p
		if p == "after" {
			upAt = time.Now()
		}
	}

	l := newLedger()
	var wg sync.WaitGroup
	started := make(chan struct{})
	wg.Go(func() {
		runClients(ctx, a, l, tolerated{unavailable: true}, []string{"dbfault"}, cfg.clients, phases{d: cfg.duration, started: started})
	})
	select {
	case <-started:
	case <-ctx.Done():
		return
	}

	time.Sleep(cfg.duration / 4)
	setPhase("during")
	down := time.Now()
	if out, err := exec.CommandContext(ctx, cfg.pgStop[0], cfg.pgStop[1:]...).CombinedOutput(); err != nil {
		res.failf("stop the database: %v %s", err, out)
	}
	time.Sleep(cfg.outage)
	out, err := exec.CommandContext(ctx, cfg.pgStart[0], cfg.pgStart[1:]...).CombinedOutput()
	outage := time.Since(down)
	if err != nil {
		res.failf("start the database: %v %s (START IT BY HAND)", err, out)
	}
	setPhase("after")
	wg.Wait()

	mu.Lock()
	for _, p := range []string{"before", "during", "after"} {
		res.notef("answers %s the outage: %s", p, statusList(byPhase[p]))
	}
	during := byPhase["during"]
	if during[503] == 0 {
		res.failf("no 503 while the database was down")
	}
	for st, n := range during {
		if st >= 500 && st != 503 {
			res.failf("%d answers %d while the database was down (want 503); the server logged: %s", n, st, strings.Join(logLines(e, `"msg":"request failed"`, 3), " | "))
		}
	}
	recovered := firstOKAfter.Sub(upAt)
	mu.Unlock()
	all, _ := rec.figures()
	res.notef("database down for %s (stop, %s, start); first 2xx %s after it was back; %d requests without a reply", outage.Round(time.Millisecond), cfg.outage, recovered.Round(time.Millisecond), all.Errors)
	if firstOKAfter.IsZero() {
		res.failf("the server did not recover: no 2xx after the database came back")
	}
	if !srv.alive() {
		res.failf("the server process died")
		return
	}
	if all.Errors > 0 {
		res.failf("%d requests got no reply: the server should answer while the database is down", all.Errors)
	}
	for _, s := range l.oddAnswers() {
		if !strings.Contains(s, "→ 503") {
			res.failf("unexpected answer: %s", s)
		}
	}
	checkAll(ctx, e, srv, l, res)
}

func statusList(m map[int]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, st := range []int{200, 201, 204, 400, 401, 404, 409, 429, 500, 502, 503, 504} {
		if n := m[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d×%d", n, st))
		}
	}
	for st, n := range m {
		switch st {
		case 200, 201, 204, 400, 401, 404, 409, 429, 500, 502, 503, 504:
		default:
			parts = append(parts, fmt.Sprintf("%d×%d", n, st))
		}
	}
	return strings.Join(parts, ", ")
}

// logLines returns up to n lines of the servers' logs that hold needle
// (the logs carry identifiers only, never message text).
func logLines(e *env, needle string, n int) []string {
	paths, _ := filepath.Glob(filepath.Join(e.dir, "server-*.log"))
	var out []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, needle) && len(out) < n {
				out = append(out, line)
			}
		}
	}
	return out
}
