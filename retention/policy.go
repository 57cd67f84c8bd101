package retention

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// maxPeriod bounds a period so that cutoffs stay far from time overflow.
const maxPeriod = 200 * 365 * 24 * time.Hour

// PoliciesConfig configures Policies. The zero value is usable.
type PoliciesConfig struct {
	// DefaultPeriod is the period of a tenant with none of its own.
	// Defaults to DefaultPeriod (2,555 days).
	DefaultPeriod time.Duration
	// Grace is how long a change that shortens retention waits before it
	// takes effect, so a mistake can be undone. Defaults to DefaultGrace
	// (24 hours); it cannot be turned off, only made shorter.
	Grace time.Duration
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// Policies sets tenants' retention periods and legal holds and resolves
// which period applies where. It is safe for concurrent use; several
// processes may share its store.
type Policies struct {
	store Store
	cfg   PoliciesConfig
}

// NewPolicies returns Policies on store.
func NewPolicies(store Store, cfg PoliciesConfig) (*Policies, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: nil store", ErrInvalid)
	}
	if cfg.DefaultPeriod == 0 {
		cfg.DefaultPeriod = DefaultPeriod
	}
	if cfg.DefaultPeriod < 0 || cfg.DefaultPeriod > maxPeriod {
		return nil, fmt.Errorf("%w: DefaultPeriod out of range", ErrInvalid)
	}
	if cfg.Grace == 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.Grace < 0 {
		return nil, fmt.Errorf("%w: negative Grace", ErrInvalid)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Policies{store: store, cfg: cfg}, nil
}

// Store returns the store Policies works on.
func (p *Policies) Store() Store { return p.store }

// SetPeriod sets the retention period of a tenant (channel empty) or of one
// of its channels. A channel period of zero removes the override. A change
// that shortens the period in force takes effect after the grace period; a
// change that lengthens it takes effect at once and cancels any shortening
// still waiting for its grace period to end.
func (p *Policies) SetPeriod(ctx context.Context, appID, channel string, period time.Duration, author string) (PolicyVersion, error) {
	if appID == "" {
		return PolicyVersion{}, fmt.Errorf("%w: empty tenant", ErrInvalid)
	}
	if period < 0 || period > maxPeriod || (period == 0 && channel == "") {
		return PolicyVersion{}, fmt.Errorf("%w: period out of range", ErrInvalid)
	}

	return p.store.UpdatePolicy(ctx, appID, func(history []PolicyVersion) (PolicyVersion, error) {
		now := p.cfg.Now()
		// The store numbers the version; it comes after every other.
		next := int64(1)
		for _, h := range history {
			next = max(next, h.Version+1)
		}
		v := PolicyVersion{AppID: appID, Version: next, Kind: KindPeriod, Channel: channel, Period: period, Author: author, SetAt: now, EffectiveAt: now}

		before := p.resolve(appID, history, now).Period(channel)
		after := p.resolve(appID, append(history[:len(history):len(history)], v), now).Period(channel)
		if after < before {
			v.EffectiveAt = now.Add(p.cfg.Grace)
		}
		return v, nil
	})
}

// LockMinimum sets a tenant's locked minimum: no period of the tenant is
// shorter while it stands. It takes effect at once and can only be raised;
// a lower value fails with ErrMinimumLocked.
func (p *Policies) LockMinimum(ctx context.Context, appID string, minimum time.Duration, author string) (PolicyVersion, error) {
	if appID == "" {
		return PolicyVersion{}, fmt.Errorf("%w: empty tenant", ErrInvalid)
	}
	if minimum <= 0 || minimum > maxPeriod {
		return PolicyVersion{}, fmt.Errorf("%w: minimum out of range", ErrInvalid)
	}

	return p.store.UpdatePolicy(ctx, appID, func(history []PolicyVersion) (PolicyVersion, error) {
		now := p.cfg.Now()
		if cur := p.resolve(appID, history, now).Minimum; minimum < cur {
			return PolicyVersion{}, ErrMinimumLocked
		}
		return PolicyVersion{AppID: appID, Kind: KindMinimum, Period: minimum, Author: author, SetAt: now, EffectiveAt: now}, nil
	})
}

// Resolved is a tenant's policy in force at one instant.
type Resolved struct {
	AppID string
	// At is the instant resolved.
	At time.Time
	// Version is the highest version in force, zero when the tenant has
	// none: together with AppID it names the policy a sweep applied.
	Version int64
	// Tenant is the tenant-wide period (the default when none was set).
	Tenant time.Duration
	// Minimum is the locked minimum, zero if none.
	Minimum time.Duration
	// Channels are the channel overrides in force.
	Channels map[string]time.Duration

	tenantSet bool // Tenant came from a version, not the default
}

// Period returns the period that applies to a row of channel (empty: a row
// with no channel, or a table without channels): the channel's override if
// it has one, else the tenant's period, and never less than the minimum.
func (r Resolved) Period(channel string) time.Duration {
	d := r.Tenant
	if c, ok := r.Channels[channel]; ok && channel != "" {
		d = c
	}
	return max(d, r.Minimum)
}

// Resolve returns the tenant's policy in force at at.
func (p *Policies) Resolve(ctx context.Context, appID string, at time.Time) (Resolved, error) {
	history, err := p.store.Policies(ctx, appID)
	if err != nil {
		return Resolved{}, err
	}
	return p.resolve(appID, history, at), nil
}

// resolveLatest is Resolve, and also returns the newest version of the
// tenant's policies, whether in force yet or not (zero: none).
func (p *Policies) resolveLatest(ctx context.Context, appID string, at time.Time) (Resolved, int64, error) {
	history, err := p.store.Policies(ctx, appID)
	if err != nil {
		return Resolved{}, 0, err
	}
	var latest int64
	for _, v := range history {
		latest = max(latest, v.Version)
	}
	return p.resolve(appID, history, at), latest, nil
}

// resolve picks, for each scope, the newest version in force at at. A
// version waiting for its grace period is cancelled by any later version of
// the same scope made before it took effect.
func (p *Policies) resolve(appID string, history []PolicyVersion, at time.Time) Resolved {
	r := Resolved{AppID: appID, At: at, Tenant: p.cfg.DefaultPeriod, Channels: map[string]time.Duration{}}

	type key struct {
		kind    PolicyKind
		channel string
	}
	byScope := map[key][]PolicyVersion{}
	for _, v := range history {
		k := key{v.Kind, v.Channel}
		byScope[k] = append(byScope[k], v)
	}

	for k, vs := range byScope {
		sort.Slice(vs, func(i, j int) bool { return vs[i].Version < vs[j].Version })
		v, ok := inForce(vs, at)
		if !ok {
			continue
		}
		r.Version = max(r.Version, v.Version)
		switch {
		case k.kind == KindMinimum:
			r.Minimum = v.Period
		case k.channel == "":
			r.Tenant, r.tenantSet = v.Period, true
		case v.Period > 0:
			r.Channels[k.channel] = v.Period
		}
	}
	return r
}

// inForce returns the newest version of one scope in force at at.
func inForce(vs []PolicyVersion, at time.Time) (PolicyVersion, bool) {
	for i := len(vs) - 1; i >= 0; i-- {
		v := vs[i]
		if v.EffectiveAt.After(at) {
			continue
		}
		cancelled := false
		for _, w := range vs[i+1:] {
			if w.SetAt.Before(v.EffectiveAt) {
				cancelled = true
				break
			}
		}
		if !cancelled {
			return v, true
		}
	}
	return PolicyVersion{}, false
}

// Row describes one row of a target, as the precedence rules see it. The
// memory store keeps rows of this shape.
type Row struct {
	ID      string
	AppID   string
	Time    time.Time
	Channel string
	User    string
}

// Reason says which rule decided a row's fate, in order of precedence.
type Reason string

// The reasons, strongest first.
const (
	ReasonHold    Reason = "hold"
	ReasonMinimum Reason = "minimum"
	ReasonChannel Reason = "channel"
	ReasonTenant  Reason = "tenant"
	ReasonDefault Reason = "default"
)

// Verdict is the decision for one row.
type Verdict struct {
	// Delete reports whether a sweep at the instant asked would delete it.
	Delete bool
	// Reason is the rule that set the period (or ReasonHold).
	Reason Reason
	// Period is the period applied; zero under a hold.
	Period time.Duration
	// Version is the policy version applied.
	Version int64
}

// Explain says what a sweep at at would do with row, and why: a legal hold
// always wins, then the locked minimum, then the most specific period
// (channel, then tenant, then the default).
func (p *Policies) Explain(ctx context.Context, row Row, at time.Time) (Verdict, error) {
	holds, err := p.store.Holds(ctx, row.AppID)
	if err != nil {
		return Verdict{}, err
	}
	history, err := p.store.Policies(ctx, row.AppID)
	if err != nil {
		return Verdict{}, err
	}
	r := p.resolve(row.AppID, history, at)

	for _, h := range holds {
		if h.Active() && holdCovers(h.Scope, row, true, true) {
			return Verdict{Reason: ReasonHold, Version: r.Version}, nil
		}
	}

	v := Verdict{Version: r.Version, Period: r.Period(row.Channel)}
	_, channel := r.Channels[row.Channel]
	specific := r.Tenant
	switch {
	case channel && row.Channel != "":
		v.Reason, specific = ReasonChannel, r.Channels[row.Channel]
	case r.tenantSet:
		v.Reason = ReasonTenant
	default:
		v.Reason = ReasonDefault
	}
	if r.Minimum > specific {
		v.Reason = ReasonMinimum
	}
	v.Delete = row.Time.Before(at.Add(-v.Period))
	return v, nil
}

// holdCovers reports whether a hold's scope covers row. A table without a
// channel (or user) column cannot tell whose rows are whose, so a channel
// (or user) hold covers all of it.
func holdCovers(s Scope, row Row, hasChannel, hasUser bool) bool {
	switch s.Kind {
	case ScopeTenant:
		return true
	case ScopeChannel:
		return !hasChannel || row.Channel == s.ID
	case ScopeUser:
		return !hasUser || row.User == s.ID
	case ScopeResource:
		return row.ID == s.ID
	}
	return true // an unknown kind holds everything: fail closed
}

// PlaceHold places a legal hold on scope of a tenant. When it returns, no
// sweep deletes a row the hold covers until it is released.
func (p *Policies) PlaceHold(ctx context.Context, appID string, scope Scope, reason, author string) (Hold, error) {
	if appID == "" {
		return Hold{}, fmt.Errorf("%w: empty tenant", ErrInvalid)
	}
	if err := scope.validate(); err != nil {
		return Hold{}, err
	}
	return p.store.PlaceHold(ctx, Hold{AppID: appID, Scope: scope, Reason: reason, Author: author, CreatedAt: p.cfg.Now()})
}

// ReleaseHold releases a tenant's hold. Released holds stay on record.
func (p *Policies) ReleaseHold(ctx context.Context, appID, id, by string) error {
	return p.store.ReleaseHold(ctx, appID, id, by, p.cfg.Now())
}

// Holds returns a tenant's holds, active and released, oldest first.
func (p *Policies) Holds(ctx context.Context, appID string) ([]Hold, error) {
	return p.store.Holds(ctx, appID)
}
