package lockout

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// MaxAccountLen is the longest account identifier, in bytes, a Guard
// accepts. Longer identifiers are refused with ErrInvalidAttempt, the same
// way whether or not such an account could exist.
const MaxAccountLen = 320

// inFlightRetry is the Retry-After given when an attempt is refused
// because every allowed attempt is already being checked.
const inFlightRetry = time.Second

// LockEvent describes a counter that has just locked. It carries
// identifiers only.
type LockEvent struct {
	AppID   string
	Kind    Kind
	Factor  Factor
	Account string
	// IP is the counter's address (KindIP, KindAccountIP), or the address
	// of the attempt that locked an account counter; empty when unknown.
	IP string
	// Until is the end of the lock on the store's clock; zero when Hard.
	Until time.Time
	// Hard reports a lock that only an administrator can lift.
	Hard bool
	// Consecutive is the number of consecutive failures counted.
	Consecutive int
	// At is the store's clock when the counter locked.
	At time.Time
}

// UnlockEvent describes an administrative unlock.
type UnlockEvent struct {
	AppID   string
	Account string
	Factor  Factor
	IP      string
	// Actor and Reason are the administrator and their stated reason.
	Actor  string
	Reason string
	// Unlocked are the counters that were locked and are now clear.
	Unlocked []CounterKey
	// At is the store's clock when the counters were cleared.
	At time.Time
}

// LockHook receives every lock, for the audit log. An error it returns is
// returned to the caller (joined with the attempt's own result) so that an
// audit record that could not be written is never silently lost.
type LockHook func(ctx context.Context, e LockEvent) error

// UnlockHook receives every administrative unlock, for the audit log; an
// error it returns is returned by Guard.Unlock.
type UnlockHook func(ctx context.Context, e UnlockEvent) error

// Notifier tells the owner of an account that it locked (the example
// sends an email). It is called for account counters only (not when one
// address is locked out of the account, nor for address locks), at most
// once per Policy.NotifyInterval per account and factor, as decided by the
// store, so several instances do not notify twice.
type Notifier func(ctx context.Context, e LockEvent) error

// Config configures a Guard. The hooks run on the caller's goroutine,
// after the store has recorded the event, and may run concurrently for
// different attempts.
type Config struct {
	// Store keeps the counters. Required.
	Store Store
	// Policy is the lockout policy; the zero Policy is the default.
	Policy Policy
	// Normalize maps a submitted account identifier to the counter's key,
	// so "Alice " and "alice" share one counter. Defaults to trimming
	// spaces and lowering case.
	Normalize func(string) string
	// OnLock, when not nil, receives every lock.
	OnLock LockHook
	// OnUnlock, when not nil, receives every administrative unlock.
	OnUnlock UnlockHook
	// Notify, when not nil, is told of account locks, rate-limited.
	Notify Notifier
}

// Guard throttles authentication attempts. It counts an attempt before the
// credential is checked: Reserve takes one of the allowed attempts from
// every counter the attempt touches, atomically in the store, and only a
// granted reservation may check the credential. So N concurrent wrong
// guesses, on one instance or many, get at most the allowed number of
// checks. A Guard is safe for concurrent use.
type Guard struct {
	store     Store
	policy    Policy
	normalize func(string) string
	onLock    LockHook
	onUnlock  UnlockHook
	notify    Notifier
}

// New returns a Guard, or an error wrapping ErrInvalidPolicy that names
// the bad field.
func New(cfg Config) (*Guard, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: Store is required", ErrInvalidPolicy)
	}
	p, err := cfg.Policy.withDefaults()
	if err != nil {
		return nil, err
	}
	norm := cfg.Normalize
	if norm == nil {
		norm = func(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
	}
	return &Guard{store: cfg.Store, policy: p, normalize: norm,
		onLock: cfg.OnLock, onUnlock: cfg.OnUnlock, notify: cfg.Notify}, nil
}

// Policy returns the guard's policy with its defaults filled in.
func (g *Guard) Policy() Policy { return g.policy }

// Attempt is one authentication attempt, as the guard counts it.
type Attempt struct {
	// AppID is the tenant. Required.
	AppID string
	// Account is the identifier the user submitted (a username or an
	// email address), whether or not such an account exists: unknown
	// identifiers are counted exactly like known ones. Required.
	Account string
	// Factor is the factor being proved. Defaults to FactorPassword.
	Factor Factor
	// IP is the source address; the zero Addr means unknown, and then no
	// IP counter is used.
	IP netip.Addr
}

// keys are the counters an attempt touches, in the fixed order account,
// account-and-IP, IP: every store takes its row locks in this order, so
// concurrent attempts cannot deadlock.
func (g *Guard) keys(a Attempt) (Attempt, []CounterKey, error) {
	if a.Factor == "" {
		a.Factor = FactorPassword
	}
	switch {
	case a.AppID == "":
		return a, nil, fmt.Errorf("%w: no AppID", ErrInvalidAttempt)
	case !a.Factor.valid():
		return a, nil, fmt.Errorf("%w: unknown factor", ErrInvalidAttempt)
	}
	// TODO: offer keying counters and history by a keyed hash of the
	// identifier, so a password typed into the username field is not
	// stored; today the application can pass such a hash itself.
	a.Account = g.normalize(a.Account)
	if a.Account == "" || len(a.Account) > MaxAccountLen {
		return a, nil, fmt.Errorf("%w: account identifier empty or longer than %d bytes", ErrInvalidAttempt, MaxAccountLen)
	}
	ip := g.source(a.IP)

	keys := []CounterKey{{AppID: a.AppID, Kind: KindAccount, Factor: a.Factor, Account: a.Account}}
	if g.policy.PerAccountAndIP {
		// Attempts without a known address share one "unknown source"
		// counter of the account.
		keys = append(keys, CounterKey{AppID: a.AppID, Kind: KindAccountIP, Factor: a.Factor, Account: a.Account, IP: ip})
	}
	if ip != "" && g.policy.IPMaxFailures > 0 {
		keys = append(keys, CounterKey{AppID: a.AppID, Kind: KindIP, IP: ip})
	}
	return a, keys, nil
}

// source is the counter form of an address: IPv4 (and IPv4-mapped IPv6)
// as is, IPv6 as its /IPv6Prefix network.
func (g *Guard) source(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	ip = ip.Unmap()
	if ip.Is6() && g.policy.IPv6Prefix < 128 {
		return netip.PrefixFrom(ip.WithZone(""), g.policy.IPv6Prefix).Masked().String()
	}
	return ip.WithZone("").String()
}

// address is the history form of an address: the whole address, without
// a zone, or empty when unknown.
func address(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	return ip.Unmap().WithZone("").String()
}

// Reservation is a granted attempt: the caller checks the credential and
// then calls exactly one of Succeed, Fail or Cancel. Until it is settled the
// attempt counts as a failure, so a reservation that is never settled (a
// crash, a lost connection) fails closed.
type Reservation struct {
	g       *Guard
	attempt Attempt
	addr    string // the full source address, for the history and hooks
	tickets []Ticket

	mu      sync.Mutex
	settled bool
}

// Reserve takes an attempt from every counter a touches. It returns a
// *LockedError (wrapping ErrLocked) when any of them refuses, in which case
// the credential must not be checked.
func (g *Guard) Reserve(ctx context.Context, a Attempt) (*Reservation, error) {
	a, keys, err := g.keys(a)
	if err != nil {
		return nil, err
	}
	reqs := make([]ReserveRequest, len(keys))
	for i, k := range keys {
		reqs[i] = ReserveRequest{Key: k, Limit: g.policy.limit(k.Kind)}
	}

	res, err := g.store.Reserve(ctx, reqs)
	if err != nil {
		return nil, fmt.Errorf("lockout: reserve: %w", err)
	}
	if len(res.Decisions) != len(reqs) {
		return nil, fmt.Errorf("lockout: reserve: store answered %d of %d counters", len(res.Decisions), len(reqs))
	}

	r := &Reservation{g: g, attempt: a, addr: address(a.IP)}
	var refused *LockedError
	for i, d := range res.Decisions {
		if d.Granted {
			r.tickets = append(r.tickets, Ticket{Key: d.Key, Limit: reqs[i].Limit, Epoch: d.Epoch})
			continue
		}
		if e := lockedError(d, reqs[i].Limit, res.Now); refused == nil || e.longer(refused) {
			refused = e
		}
	}
	if refused == nil {
		return r, nil
	}

	// Give back what the other counters granted and record the refusal.
	// The context is detached: a caller who hangs up must not leave the
	// attempt uncounted or the history incomplete.
	rec := r.record(OutcomeDenied)
	p := SettleParams{Outcome: OutcomeCancelled, Tickets: r.tickets, Record: &rec}
	if _, err := g.store.Settle(context.WithoutCancel(ctx), p); err != nil {
		return nil, errors.Join(refused, fmt.Errorf("lockout: record refused attempt: %w", err))
	}
	return nil, refused
}

// lockedError explains a refusal. A counter at its hard cap is reported
// hard even before a settlement has marked it so (its last reservation may
// never have been settled).
func lockedError(d Decision, l Limit, now time.Time) *LockedError {
	hard := d.Hard || (l.HardCap > 0 && d.Consecutive >= l.HardCap)
	e := &LockedError{Kind: d.Key.Kind, Hard: hard}
	switch {
	case hard:
	case now.Before(d.LockedUntil):
		e.Until = d.LockedUntil
		e.RetryAfter = d.LockedUntil.Sub(now)
	default:
		e.RetryAfter = inFlightRetry
	}
	return e
}

// longer reports whether e should be reported instead of o: a hard lock
// first, then the longest wait.
func (e *LockedError) longer(o *LockedError) bool {
	if e.Hard != o.Hard {
		return e.Hard
	}
	return e.RetryAfter > o.RetryAfter
}

func (r *Reservation) record(o Outcome) AttemptRecord {
	return AttemptRecord{AppID: r.attempt.AppID, Account: r.attempt.Account, Factor: r.attempt.Factor, IP: r.addr, Outcome: o}
}

// Succeed settles the reservation as a successful check: the account's
// counters are cleared (an IP counter only gets this attempt back).
func (r *Reservation) Succeed(ctx context.Context) error { return r.settle(ctx, OutcomeSuccess) }

// Fail settles the reservation as a failed check. The failure was counted
// by Reserve; Fail locks the counters that have reached their limit,
// calls the hooks, and records the attempt.
func (r *Reservation) Fail(ctx context.Context) error { return r.settle(ctx, OutcomeFailure) }

// Cancel gives the reservation back without a verdict, for a check that
// could not be made (its store was down, say). It is not recorded in the
// history.
func (r *Reservation) Cancel(ctx context.Context) error { return r.settle(ctx, OutcomeCancelled) }

func (r *Reservation) settle(ctx context.Context, o Outcome) error {
	r.mu.Lock()
	if r.settled {
		r.mu.Unlock()
		return ErrSettled
	}
	r.settled = true
	r.mu.Unlock()

	ctx = context.WithoutCancel(ctx)
	p := SettleParams{Outcome: o, Tickets: r.tickets}
	if o != OutcomeCancelled {
		rec := r.record(o)
		p.Record = &rec
	}
	res, err := r.g.store.Settle(ctx, p)
	if err != nil {
		return fmt.Errorf("lockout: settle %s: %w", o, err)
	}

	var errs []error
	for _, lt := range res.Locks {
		e := LockEvent{AppID: lt.Key.AppID, Kind: lt.Key.Kind, Factor: lt.Key.Factor, Account: lt.Key.Account,
			IP: lt.Key.IP, Until: lt.Until, Hard: lt.Hard, Consecutive: lt.Consecutive, At: res.Now}
		if e.Kind == KindAccount {
			e.IP = r.addr
		}
		if r.g.onLock != nil {
			if err := r.g.onLock(ctx, e); err != nil {
				errs = append(errs, fmt.Errorf("lockout: lock hook: %w", err))
			}
		}
		if lt.Notify && lt.Key.Kind == KindAccount && r.g.notify != nil {
			if err := r.g.notify(ctx, e); err != nil {
				errs = append(errs, fmt.Errorf("lockout: notifier: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// Check reserves an attempt, calls verify only if the reservation is
// granted, and settles it. It returns nil when verify reports a valid
// credential, ErrInvalidCredential when it reports an invalid one, a
// *LockedError when the attempt was refused (verify is not called), and
// verify's error, wrapped, when verify fails: that reservation is given
// back, so verify must return an error only when it made no check (a
// store it could not reach), never for a wrong credential. If verify
// panics, the attempt is settled as a failure before the panic continues.
// Hook errors are joined to the result.
//
// Check does the same store work for every identifier, so an application
// that also makes verify cost the same for unknown accounts (by checking
// a dummy hash) reveals nothing about which accounts exist.
func (g *Guard) Check(ctx context.Context, a Attempt, verify func(context.Context) (bool, error)) error {
	r, err := g.Reserve(ctx, a)
	if err != nil {
		return err
	}

	done := false
	defer func() {
		if !done {
			_ = r.Fail(ctx)
		}
	}()
	ok, verr := verify(ctx)
	done = true

	switch {
	case verr != nil:
		return errors.Join(fmt.Errorf("lockout: verify: %w", verr), r.Cancel(ctx))
	case ok:
		return r.Succeed(ctx)
	}
	return errors.Join(ErrInvalidCredential, r.Fail(ctx))
}

// Status is the state of the counters an attempt would touch.
type Status struct {
	// Locked reports whether an attempt would be refused for a lock now.
	Locked bool
	// Until is the latest end among the current locks; zero when Hard.
	Until time.Time
	// Hard reports a lock that only an administrator can lift.
	Hard bool
	// Counters are the counters' effective states.
	Counters []CounterStatus
	// Now is the store's clock.
	Now time.Time
}

// CounterStatus is the effective state of one counter: failures of an
// expired window or lock read as zero.
type CounterStatus struct {
	Key         CounterKey
	Failures    int
	Consecutive int
	LockedUntil time.Time
	LockCount   int
	Hard        bool
}

// Status reports the state of the counters that attempt a would touch.
// Counters that do not exist yet are reported empty.
func (g *Guard) Status(ctx context.Context, a Attempt) (Status, error) {
	_, keys, err := g.keys(a)
	if err != nil {
		return Status{}, err
	}
	res, err := g.store.Status(ctx, keys)
	if err != nil {
		return Status{}, fmt.Errorf("lockout: status: %w", err)
	}

	st := Status{Now: res.Now}
	found := make(map[CounterKey]Counter, len(res.Counters))
	for _, c := range res.Counters {
		found[c.Key] = c
	}
	for _, k := range keys {
		c := found[k]
		l := g.policy.limit(k.Kind)
		cs := CounterStatus{Key: k, Consecutive: c.Consecutive, LockCount: c.LockCount,
			Hard: c.Hard || (l.HardCap > 0 && c.Consecutive >= l.HardCap)}
		if res.Now.Before(c.LockedUntil) {
			cs.LockedUntil = c.LockedUntil
		}
		if res.Now.Before(c.WindowStart.Add(l.Window)) {
			cs.Failures = c.Failures // a lock clears the count, so a locked counter reads zero
		}
		switch {
		case cs.Hard:
			st.Locked, st.Hard, st.Until = true, true, time.Time{}
		case !cs.LockedUntil.IsZero() && !st.Hard:
			st.Locked = true
			if cs.LockedUntil.After(st.Until) {
				st.Until = cs.LockedUntil
			}
		}
		st.Counters = append(st.Counters, cs)
	}
	return st, nil
}

// UnlockRequest is an administrative unlock.
type UnlockRequest struct {
	// AppID is the tenant. Required.
	AppID string
	// Account, when set, unlocks the account's counters (all factors, or
	// only Factor when set; account-and-IP counters of every address, or
	// only of IP when set). When empty, IP must be set and the address's
	// IP counter is unlocked.
	Account string
	Factor  Factor
	IP      netip.Addr
	// Actor identifies the administrator; Reason says why. Both required,
	// both go to the UnlockHook.
	Actor  string
	Reason string
}

// Unlock clears the selected counters, hard locks included, and reports
// the unlock to the UnlockHook. It returns the counters that were locked.
func (g *Guard) Unlock(ctx context.Context, req UnlockRequest) ([]CounterKey, error) {
	if strings.TrimSpace(req.Actor) == "" || strings.TrimSpace(req.Reason) == "" {
		return nil, ErrReasonRequired
	}
	p := UnlockParams{AppID: req.AppID, Factor: req.Factor, IP: g.source(req.IP)}
	if req.Account != "" {
		p.Account = g.normalize(req.Account)
	}
	if p.AppID == "" || (p.Account == "" && p.IP == "") {
		return nil, fmt.Errorf("%w: unlock needs an AppID and an account or an address", ErrInvalidAttempt)
	}
	if p.Factor != "" && !p.Factor.valid() {
		return nil, fmt.Errorf("%w: unknown factor", ErrInvalidAttempt)
	}

	res, err := g.store.Unlock(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("lockout: unlock: %w", err)
	}
	if g.onUnlock != nil {
		e := UnlockEvent{AppID: p.AppID, Account: p.Account, Factor: p.Factor, IP: p.IP,
			Actor: req.Actor, Reason: req.Reason, Unlocked: res.Unlocked, At: res.Now}
		if err := g.onUnlock(ctx, e); err != nil {
			return res.Unlocked, fmt.Errorf("lockout: unlock hook: %w", err)
		}
	}
	return res.Unlocked, nil
}

// History returns the attempt records of a tenant, newest first, at most
// limit of them (default 100): of one account when account is not empty,
// from one address when ip is valid. Records keep the whole address, IPv6
// included, although the IP limit counts IPv6 by network.
func (g *Guard) History(ctx context.Context, appID, account string, ip netip.Addr, limit int) ([]AttemptRecord, error) {
	q := HistoryQuery{AppID: appID, IP: address(ip), Limit: limit}
	if account != "" {
		q.Account = g.normalize(account)
	}
	if q.AppID == "" {
		return nil, fmt.Errorf("%w: no AppID", ErrInvalidAttempt)
	}
	recs, err := g.store.History(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("lockout: history: %w", err)
	}
	return recs, nil
}

// Prune deletes attempt records older than Policy.HistoryRetention and
// counters idle for Policy.CounterRetention. Run it periodically (one
// instance is enough; running it on several is harmless).
func (g *Guard) Prune(ctx context.Context) (PruneResult, error) {
	res, err := g.store.Prune(ctx, PruneParams{HistoryAge: g.policy.HistoryRetention, CounterIdle: g.policy.CounterRetention})
	if err != nil {
		return res, fmt.Errorf("lockout: prune: %w", err)
	}
	return res, nil
}
