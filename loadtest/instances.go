package main

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"
)

// instances runs two server processes on one database under load, and
// checks that they share one audit chain per tenant, one lockout count,
// and one sweeper at a time.
func instances(ctx context.Context, e *env, cfg config, res *result) {
	const failures = 5
	flags := []string{"-lockout-failures", strconv.Itoa(failures), "-sweep-interval", "1s", "-retention-grace", "1s"}
	a, err := e.start(ctx, flags...)
	if err != nil {
		res.failf("start instance a: %v", err)
		return
	}
	b, err := e.start(ctx, flags...)
	if err != nil {
		a.kill()
		res.failf("start instance b: %v", err)
		return
	}
	rec := newRecorder()
	to := newTargets(a.base, b.base)
	cl := newAPI(to, rec, cfg.budget)
	l := newLedger()
	apps := []string{"multi-a", "multi-b", "multi-c"}

	runCtx, cancel := context.WithTimeout(ctx, cfg.duration+5*time.Minute) // the clients' setup is not bounded by -duration
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { runClients(runCtx, cl, l, tolerated{}, apps, cfg.clients, phases{d: cfg.duration}) })
	wg.Go(func() { sharedLockout(runCtx, cl, a.base, b.base, failures, res) })
	wg.Go(func() { oneSweeper(runCtx, e, cl, a.base, res) })
	wg.Wait()

	all, _ := rec.figures()
	res.notef("%d clients on 2 instances, requests alternating, for %s: %d answered 2xx", cfg.clients, cfg.duration, all.OK)
	for _, s := range l.oddAnswers() {
		res.failf("unexpected answer: %s", s)
	}
	var heads int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM audit_heads WHERE stream = ANY($1)`, apps).Scan(&heads); err != nil || heads != len(apps) {
		res.failf("audit heads of %d tenants: %d (%v), want one each", len(apps), heads, err)
	}
	reps := checkAll(ctx, e, b, l, res)
	for _, app := range apps {
		if _, ok := reps[app]; !ok {
			res.failf("no verified audit chain for tenant %s", app)
		}
	}
	a.kill()
}

// sharedLockout sends wrong passwords for one account to both instances
// at once, more than the limit: exactly the limit may be checked (401),
// the rest must be refused as locked (429), and then the right password
// is refused on both.
func sharedLockout(ctx context.Context, cl *api, baseA, baseB string, limit int, res *result) {
	const app = "multi-lock"
	name, good := "victim-"+randHex(3), "the right passphrase "+randHex(6)
	r, err := cl.callAt(ctx, baseA, "lockout", "POST", "/v1/apps/"+app+"/users", "", map[string]string{"username": name, "password": good}, nil)
	if err != nil || r.status != http.StatusCreated {
		res.failf("lockout: sign up: %v %d %s", err, r.status, r.body)
		return
	}
	tries := 2*limit + 2
	statuses := make([]int, tries)
	var wg sync.WaitGroup
	for i := range tries {
		base := baseA
		if i%2 == 1 {
			base = baseB
		}
		wg.Go(func() {
			r, err := cl.callAt(ctx, base, "lockout", "POST", "/v1/apps/"+app+"/login", "", map[string]string{"username": name, "password": fmt.Sprint("wrong ", i)}, nil)
			if err == nil {
				statuses[i] = r.status
			}
		})
	}
	wg.Wait()
	count := map[int]int{}
	for _, st := range statuses {
		count[st]++
	}
	res.notef("lockout: %d wrong passwords at once, split between the instances (limit %d): %s", tries, limit, statusList(count))
	if count[401] != limit || count[429] != tries-limit {
		res.failf("lockout: %d checked and %d locked, want exactly %d and %d", count[401], count[429], limit, tries-limit)
	}
	for _, base := range []string{baseA, baseB} {
		r, err := cl.callAt(ctx, base, "lockout", "POST", "/v1/apps/"+app+"/login", "", map[string]string{"username": name, "password": good}, nil)
		if err != nil || r.status != http.StatusTooManyRequests {
			res.failf("lockout: the right password on %s: %v %d, want 429", base, err, r.status)
		}
	}
}

// oneSweeper gives a tenant rows past a one-day retention period (written
// straight into the table, three days old) and lets both instances sweep
// every second: the rows must go exactly once, in batches whose id ranges
// do not overlap, each audited in the tenant's chain.
func oneSweeper(ctx context.Context, e *env, cl *api, base string, res *result) {
	const app, rows = "multi-sweep", 20000
	name, pass := "owner-"+randHex(3), "sweep owner passphrase "+randHex(6)
	if r, err := cl.callAt(ctx, base, "sweep", "POST", "/v1/apps/"+app+"/users", "", map[string]string{"username": name, "password": pass}, nil); err != nil || r.status != 201 {
		res.failf("sweep: sign up: %v %d", err, r.status)
		return
	}
	r, err := cl.callAt(ctx, base, "sweep", "POST", "/v1/apps/"+app+"/login", "", map[string]string{"username": name, "password": pass}, nil)
	if err != nil || r.status != 200 {
		res.failf("sweep: log in: %v %d", err, r.status)
		return
	}
	tok := r.field("access_token")
	if _, err := e.pool.Exec(ctx, `
		INSERT INTO chat_messages (id, app_id, channel_id, user_id, body, created_at)
		SELECT 'old-' || lpad(i::text, 6, '0'), $1, 'old-channel', 'old-user', decode(md5(i::text), 'hex'), now() - interval '3 days' - i * interval '1 second'
		FROM generate_series(1, $2) i`, app, rows); err != nil {
		res.failf("sweep: insert old rows: %v", err)
		return
	}
	if r, err := cl.callAt(ctx, base, "sweep", "PUT", "/v1/admin/retention", tok, map[string]int{"days": 1}, nil); err != nil || r.status != 200 {
		res.failf("sweep: set retention: %v %d %s", err, r.status, r.body)
		return
	}

	deadline := time.Now().Add(45 * time.Second)
	left := rows
	for left > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM chat_messages WHERE app_id = $1 AND id LIKE 'old-%'`, app).Scan(&left); err != nil {
			res.failf("sweep: count: %v", err)
			return
		}
	}
	if left > 0 {
		res.failf("sweep: %d of %d expired rows still there after 45s", left, rows)
		return
	}

	type batch struct {
		owner        string
		deleted      int
		minID, maxID string
	}
	q, err := e.pool.Query(ctx, `SELECT actor, metadata->>'deleted', metadata->>'min_id', metadata->>'max_id' FROM audit_entries WHERE tenant = $1 AND type = 'system.retention_sweep' ORDER BY seq`, app)
	if err != nil {
		res.failf("sweep: audit: %v", err)
		return
	}
	var batches []batch
	for q.Next() {
		var bt batch
		var d string
		if err := q.Scan(&bt.owner, &d, &bt.minID, &bt.maxID); err != nil {
			res.failf("sweep: audit: %v", err)
			return
		}
		bt.deleted, _ = strconv.Atoi(d)
		if bt.deleted > 0 {
			batches = append(batches, bt)
		}
	}
	total := 0
	owners := map[string]int{}
	for _, bt := range batches {
		total += bt.deleted
		owners[bt.owner]++
	}
	sort.Slice(batches, func(i, j int) bool { return batches[i].minID < batches[j].minID })
	for i := 1; i < len(batches); i++ {
		if batches[i].minID <= batches[i-1].maxID {
			res.failf("sweep: batches [%s, %s] and [%s, %s] overlap", batches[i-1].minID, batches[i-1].maxID, batches[i].minID, batches[i].maxID)
		}
	}
	busy := len(logLines(e, `"msg":"retention sweep"`, 1000)) - len(logLines(e, `"busy":0`, 1000))
	res.notef("sweep: %d expired rows deleted in %d audited batches by %d instance(s) %v; sweeps that found the lease held by the other instance: %d", total, len(batches), len(owners), owners, busy)
	if total != rows {
		res.failf("sweep: the audited batches deleted %d rows, want exactly %d", total, rows)
	}
	if busy == 0 {
		res.failf("sweep: no sweep found the other instance holding the lease, so no two sweeps overlapped and one sweeper at a time was not shown")
	}
}
