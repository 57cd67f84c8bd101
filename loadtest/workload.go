package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// The routes the workload drives, named as the server's mux names them.
const (
	rSignup  = "POST /v1/apps/{app}/users"
	rLogin   = "POST /v1/apps/{app}/login"
	rChannel = "POST /v1/channels"
	rPost    = "POST /v1/channels/{id}/messages"
	rRead    = "GET /v1/channels/{id}/messages"
)

// perChannel is how many messages a client posts to a channel before it
// opens another, so that every message stays within the 200 the read route
// returns and the check can read each one back.
const perChannel = 120

// ack is an acknowledged request as its own audit entry should show it:
// tenant, type, the caller (by user name, resolved to an id at check
// time), the route's resource, and the request's tag (see
// userAgentPrefix).
type ack struct {
	app, typ, username, resourceType, resourceID, tag string
}

// sentMessage is a message the server acknowledged with 201, and the tag
// of the request that posted it.
type sentMessage struct {
	app, channel, username, text, tag string
}

// account is one load client's user.
type account struct {
	app, name, password string

	mu       sync.Mutex
	access   string
	channels []string
}

func (u *account) token() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.access
}

func (u *account) setToken(t string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.access = t
}

// ledger is what the server acknowledged: the checks afterwards compare
// the database and the API with it.
type ledger struct {
	// marker starts every message text, so one search finds any of them
	// stored in the clear.
	marker string

	mu         sync.Mutex
	acks       []ack
	msgs       map[string]sentMessage
	accounts   []*account
	unexpected map[string]int // "route status" of answers no scenario expects
}

func newLedger() *ledger {
	return &ledger{marker: "ltplain" + randHex(5), msgs: map[string]sentMessage{}, unexpected: map[string]int{}}
}

func (l *ledger) ack(a ack) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acks = append(l.acks, a)
}

func (l *ledger) sent(id string, m sentMessage) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs[id] = m
}

func (l *ledger) odd(route string, status int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unexpected[fmt.Sprintf("%s → %d", route, status)]++
}

func (l *ledger) addAccount(u *account) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.accounts = append(l.accounts, u)
}

// oddAnswers lists the unexpected answers, most frequent first.
func (l *ledger) oddAnswers() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for k, n := range l.unexpected {
		out = append(out, fmt.Sprintf("%d× %s", n, k))
	}
	sort.Strings(out)
	return out
}

// tolerated says which failures a scenario expects: a crash or a database
// outage makes 503s and lost connections normal.
type tolerated struct {
	unavailable bool // 503, and no reply at all
}

var words = strings.Fields("patient reports mild headache since morning blood pressure one twenty over eighty follow up in two weeks labs pending potassium normal glucose elevated please review chart before rounds")

// text is a message of about 200 bytes that starts and ends with the
// marker, so that a stored prefix or suffix of it is found too.
func (l *ledger) text(u *account, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s n%d:", l.marker, u.name, n)
	for b.Len() < 200-len(l.marker) {
		b.WriteByte(' ')
		b.WriteString(words[rand.IntN(len(words))])
	}
	b.WriteString(" " + l.marker)
	return b.String()
}

// client is one load client: its account and how it reaches the server.
type client struct {
	a   *api
	l   *ledger
	tol tolerated
	u   *account
}

// pause notes a failure the scenario does not tolerate and backs off; it
// reports false once the run is over.
func (c *client) pause(ctx context.Context, route string, r reply, err error) bool {
	if errors.Is(err, errBudget) || ctx.Err() != nil {
		return false
	}
	unavailable := err != nil || r.status == http.StatusServiceUnavailable
	if !unavailable || !c.tol.unavailable {
		c.l.odd(route, r.status) // 0: no reply
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(50 * time.Millisecond):
		return true
	}
}

// signUp creates the client's account and logs it in.
func (c *client) signUp(ctx context.Context) error {
	u := c.u
	for {
		r, err := c.a.call(ctx, rSignup, "POST", "/v1/apps/"+u.app+"/users", "", map[string]string{"username": u.name, "password": u.password})
		if err == nil && r.status == http.StatusCreated {
			c.l.ack(ack{u.app, "auth.signup", u.name, "user", "", r.tag})
			break
		}
		if err == nil && r.status == http.StatusConflict {
			break // an earlier attempt got through but its reply was lost
		}
		if !c.pause(ctx, rSignup, r, err) {
			return errors.Join(err, ctx.Err(), errors.New("sign-up did not complete"))
		}
	}
	return c.login(ctx)
}

func (c *client) login(ctx context.Context) error {
	u := c.u
	for {
		r, err := c.a.call(ctx, rLogin, "POST", "/v1/apps/"+u.app+"/login", "", map[string]string{"username": u.name, "password": u.password})
		if err == nil && r.status == http.StatusOK {
			c.l.ack(ack{u.app, "auth.login", u.name, "user", "", r.tag})
			u.setToken(r.field("access_token"))
			return nil
		}
		if !c.pause(ctx, rLogin, r, err) {
			return errors.Join(err, ctx.Err(), errors.New("log-in did not complete"))
		}
	}
}

// run posts and reads messages in channels of the client's own until ctx
// ends or the budget is spent, logging in again when a token stops
// working.
func (c *client) run(ctx context.Context) {
	u, l := c.u, c.l
	var channel string
	inChannel := 0
	for n := 0; ctx.Err() == nil; {
		if channel == "" || inChannel >= perChannel {
			r, err := c.a.call(ctx, rChannel, "POST", "/v1/channels", u.token(), map[string]string{"name": "ward " + randHex(3)})
			switch {
			case err == nil && r.status == http.StatusCreated:
				l.ack(ack{u.app, "data.created", u.name, "channel", "", r.tag})
				channel, inChannel = r.field("id"), 0
				u.mu.Lock()
				u.channels = append(u.channels, channel)
				u.mu.Unlock()
			case err == nil && r.status == http.StatusUnauthorized:
				if c.login(ctx) != nil {
					return
				}
			default:
				if !c.pause(ctx, rChannel, r, err) {
					return
				}
			}
			continue
		}

		text := l.text(u, n)
		r, err := c.a.call(ctx, rPost, "POST", "/v1/channels/"+channel+"/messages", u.token(), map[string]string{"text": text})
		switch {
		case err == nil && r.status == http.StatusCreated:
			l.ack(ack{u.app, "data.created", u.name, "channel", channel, r.tag})
			l.sent(r.field("id"), sentMessage{app: u.app, channel: channel, username: u.name, text: text, tag: r.tag})
			n++
			inChannel++
		case err == nil && r.status == http.StatusUnauthorized:
			if c.login(ctx) != nil {
				return
			}
			continue
		default:
			if !c.pause(ctx, rPost, r, err) {
				return
			}
			continue
		}

		r, err = c.a.call(ctx, rRead, "GET", "/v1/channels/"+channel+"/messages", u.token(), nil)
		switch {
		case err == nil && r.status == http.StatusOK:
			l.ack(ack{u.app, "data.read", u.name, "channel", channel, r.tag})
		case err == nil && r.status == http.StatusUnauthorized:
			if c.login(ctx) != nil {
				return
			}
		default:
			if !c.pause(ctx, rRead, r, err) {
				return
			}
		}
	}
}

// phases are the two parts of a loaded run: every client signs up and
// logs in (setup, measured into setupRec), then they all post and read for
// d (measured into the api's recorder). started, when not nil, is closed
// as the second phase begins.
type phases struct {
	setupRec *recorder
	d        time.Duration
	started  chan struct{}
}

// runClients runs n clients spread over apps: the setup phase (bounded by
// five minutes: argon2id on a loaded machine is slow), then the loaded
// phase for p.d.
func runClients(ctx context.Context, a *api, l *ledger, tol tolerated, apps []string, n int, p phases) {
	runRec := a.rec.Swap(p.setupRec)
	clients := make([]*client, n)
	setupCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	var wg sync.WaitGroup
	for i := range n {
		app := apps[i%len(apps)]
		u := &account{app: app, name: fmt.Sprintf("user%02d-%s", i, randHex(3)), password: "violet maple harbor lantern " + randHex(8)}
		l.addAccount(u)
		c := &client{a: a, l: l, tol: tol, u: u}
		wg.Go(func() {
			if c.signUp(setupCtx) == nil {
				clients[i] = c
			}
		})
	}
	wg.Wait()
	cancel()
	if p.setupRec != nil {
		p.setupRec.stop()
	}

	a.rec.Store(runRec)
	if runRec != nil {
		runRec.restart()
	}
	if p.started != nil {
		close(p.started)
	}
	runCtx, cancel := context.WithTimeout(ctx, p.d)
	defer cancel()
	for _, c := range clients {
		if c != nil {
			wg.Go(func() { c.run(runCtx) })
		}
	}
	wg.Wait()
	if runRec != nil {
		runRec.stop()
	}
}
