package lockout

import (
	"fmt"
	"time"
)

// Policy is the lockout policy of a Guard. A zero field takes its default,
// so the zero Policy is the reference's policy: five failures within
// fifteen minutes lock an account for fifteen minutes. A negative value
// turns a limit off where the field says so.
type Policy struct {
	// MaxFailures is how many failed attempts a counter admits within
	// Window; the attempt after them is refused and the counter locks.
	// Defaults to 5.
	MaxFailures int
	// Window is how long failures count, from the first failure of a run.
	// The window is fixed, not sliding. Defaults to 15 minutes.
	Window time.Duration
	// LockDurations are the lengths of successive locks of one counter:
	// the first lock after a success lasts LockDurations[0], the second
	// LockDurations[1], and so on, the last entry repeating. A success
	// or an administrative unlock starts again at the first. Defaults to
	// a single 15 minutes (every lock alike); pass growing values, such
	// as 15m, 1h, 4h, for growing locks.
	LockDurations []time.Duration
	// HardCap is the number of consecutive failures (across windows and
	// locks, until a success) after which a counter locks until an
	// administrator unlocks it: NIST SP 800-63B §5.2.2 caps consecutive
	// failed attempts on one account at 100. Defaults to 100; negative
	// turns it off.
	HardCap int

	// PerAccountAndIP, when set, counts an account's failures per source
	// address first: MaxFailures from one address lock the account for
	// that address only, so an attacker at one address cannot lock the
	// owner out everywhere. The account as a whole then locks only after
	// AccountMaxFailures, which still stops an attack spread over many
	// addresses, and HardCap still applies to the account as a whole.
	// Defaults to false: the account locks for every address.
	PerAccountAndIP bool
	// AccountMaxFailures is the limit of the account-wide counter when
	// PerAccountAndIP is set. Defaults to 10 × MaxFailures.
	AccountMaxFailures int

	// IPMaxFailures is how many failed attempts a source address may make
	// within IPWindow across all accounts and factors, against password
	// spraying and credential stuffing. IPv6 addresses are counted by
	// their /IPv6Prefix network. Defaults to 100; negative turns the IP
	// limit off (for example behind a proxy that hides client addresses).
	IPMaxFailures int
	// IPWindow is the window of the IP limit. Defaults to Window.
	IPWindow time.Duration
	// IPLockDurations are the lock lengths of an address. Defaults to
	// LockDurations.
	IPLockDurations []time.Duration
	// IPv6Prefix is the prefix length by which IPv6 sources are counted.
	// Defaults to 64, the size a single subscriber is usually given.
	IPv6Prefix int

	// NotifyInterval is the least time between two lock notifications of
	// one account and factor, so an attacker who keeps an account locked
	// does not flood its owner's inbox. Defaults to 1 hour.
	NotifyInterval time.Duration

	// HistoryRetention is how long Guard.Prune keeps attempt records.
	// Defaults to 90 days; keep them longer if your log-in monitoring
	// procedure needs it.
	HistoryRetention time.Duration
	// CounterRetention is how long Guard.Prune keeps a counter that has
	// not been touched and is not hard-locked. Defaults to 30 days.
	CounterRetention time.Duration
}

// DefaultPolicy returns the Policy with every default filled in.
func DefaultPolicy() Policy {
	p, _ := Policy{}.withDefaults()
	return p
}

// withDefaults fills the zero fields and checks the others.
func (p Policy) withDefaults() (Policy, error) {
	if p.MaxFailures == 0 {
		p.MaxFailures = 5
	}
	if p.Window == 0 {
		p.Window = 15 * time.Minute
	}
	if len(p.LockDurations) == 0 {
		p.LockDurations = []time.Duration{15 * time.Minute}
	}
	if p.HardCap == 0 {
		p.HardCap = 100
	}
	if p.AccountMaxFailures == 0 {
		p.AccountMaxFailures = 10 * p.MaxFailures
	}
	if p.IPMaxFailures == 0 {
		p.IPMaxFailures = 100
	}
	if p.IPWindow == 0 {
		p.IPWindow = p.Window
	}
	if len(p.IPLockDurations) == 0 {
		p.IPLockDurations = p.LockDurations
	}
	if p.IPv6Prefix == 0 {
		p.IPv6Prefix = 64
	}
	if p.NotifyInterval == 0 {
		p.NotifyInterval = time.Hour
	}
	if p.HistoryRetention == 0 {
		p.HistoryRetention = 90 * 24 * time.Hour
	}
	if p.CounterRetention == 0 {
		p.CounterRetention = 30 * 24 * time.Hour
	}

	switch {
	case p.MaxFailures < 0:
		return p, fmt.Errorf("%w: MaxFailures must be positive", ErrInvalidPolicy)
	case p.Window < time.Second:
		return p, fmt.Errorf("%w: Window must be at least a second", ErrInvalidPolicy)
	case p.AccountMaxFailures < 0:
		return p, fmt.Errorf("%w: AccountMaxFailures must be positive", ErrInvalidPolicy)
	case p.IPWindow < time.Second:
		return p, fmt.Errorf("%w: IPWindow must be at least a second", ErrInvalidPolicy)
	case p.IPv6Prefix < 1 || p.IPv6Prefix > 128:
		return p, fmt.Errorf("%w: IPv6Prefix must be between 1 and 128", ErrInvalidPolicy)
	case p.NotifyInterval < 0:
		return p, fmt.Errorf("%w: NotifyInterval must not be negative", ErrInvalidPolicy)
	case p.HistoryRetention < 0 || p.CounterRetention < 0:
		return p, fmt.Errorf("%w: retention must not be negative", ErrInvalidPolicy)
	}
	for _, d := range p.LockDurations {
		if d < time.Second {
			return p, fmt.Errorf("%w: LockDurations must each be at least a second", ErrInvalidPolicy)
		}
	}
	for _, d := range p.IPLockDurations {
		if d < time.Second {
			return p, fmt.Errorf("%w: IPLockDurations must each be at least a second", ErrInvalidPolicy)
		}
	}
	return p, nil
}

// limit returns the Limit of a counter kind under the policy.
func (p Policy) limit(k Kind) Limit {
	hardCap := max(p.HardCap, 0)
	switch k {
	case KindIP:
		return Limit{MaxFailures: p.IPMaxFailures, Window: p.IPWindow, LockDurations: p.IPLockDurations}
	case KindAccountIP:
		// No notification: a lock for one address keeps the owner in,
		// and an attack from many addresses must not mean many emails.
		return Limit{MaxFailures: p.MaxFailures, Window: p.Window, LockDurations: p.LockDurations,
			ResetOnSuccess: true}
	}
	l := Limit{MaxFailures: p.MaxFailures, Window: p.Window, LockDurations: p.LockDurations,
		HardCap: hardCap, ResetOnSuccess: true, NotifyInterval: p.NotifyInterval}
	if p.PerAccountAndIP {
		l.MaxFailures = p.AccountMaxFailures
	}
	return l
}
