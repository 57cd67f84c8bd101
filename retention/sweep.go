package retention

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mathrand "math/rand/v2"
	"slices"
	"sort"
	"time"
)

// Record is one batch's deletion record, handed to the batch hook. It
// carries identifiers and counts, never row contents.
type Record struct {
	Target string
	AppID  string
	// Scope is the policy scope swept (the tenant or a channel).
	Scope Scope
	// PolicyVersion is the tenant's policy version applied (zero: the
	// default period); Period and Cutoff are what it meant.
	PolicyVersion int64
	Period        time.Duration
	Cutoff        time.Time
	// Owner is the instance that swept.
	Owner string
	// Scanned due rows, Deleted of them, Held back by a legal hold.
	Scanned, Deleted, Held int
	// MinID and MaxID bound the deleted ids (in the id column's order);
	// MinTime and MaxTime bound their times.
	MinID, MaxID     string
	MinTime, MaxTime time.Time
	// IDs are all the deleted ids, in keyset order, when
	// SweeperConfig.IDs is set.
	IDs []string
	// At is when the batch ran, by the sweeper's clock.
	At time.Time
}

// BatchHook receives each batch's record before the batch commits; an error
// rolls the batch back (fail closed). On Postgres it runs inside the
// batch's transaction (retentionpg.Tx(ctx) returns it), so what it writes
// commits or rolls back with the deletion. Only batches that deleted rows
// are recorded.
type BatchHook func(ctx context.Context, r Record) error

// SweeperConfig configures a Sweeper. Zero fields take their defaults.
type SweeperConfig struct {
	// Targets are the tables to sweep. Required.
	Targets []Target
	// Tenants lists the tenants to sweep. Defaults to the tenants with at
	// least one policy version; a tenant that relies on the default period
	// alone must then be listed here to be swept.
	Tenants func(ctx context.Context) ([]string, error)
	// OnBatch is told of each batch; nil records nothing.
	OnBatch BatchHook
	// IDs puts every deleted id in Record.IDs. Defaults to false: a record
	// carries the first and last id, which keeps large batches cheaper. A
	// Target's Deleter is given the ids either way.
	IDs bool
	// BatchSize is the first batch's size. Defaults to 10,000. The size
	// then adapts between MinBatch (default 100) and MaxBatch (default
	// 100,000) so that a batch takes about BatchTime (default 250ms), from
	// the rate the last full batch achieved.
	BatchSize, MinBatch, MaxBatch int
	BatchTime                     time.Duration
	// Duty is the share of time the sweep may spend in batches: after a
	// batch that took d, the sweeper waits d*(1-Duty)/Duty before the
	// next, so live traffic has the database to itself for that long and
	// the WAL the batch wrote is flushed before the next one adds more.
	// Defaults to 0.5 (a pause as long as the batch); 1 sweeps without
	// pausing. A busier server makes batches slower, hence smaller (see
	// BatchTime) and their pauses no shorter: the sweep slows down rather
	// than take more than its share.
	Duty float64
	// MaxRate, when positive, caps the sweep at that many rows a second
	// (scanned, over batch and pause time). Defaults to no cap.
	MaxRate float64
	// Pause is the shortest wait between batches, whatever Duty and
	// MaxRate allow. Defaults to none.
	Pause time.Duration
	// StatementTimeout and LockTimeout bound each batch's statements.
	// Default 10s and 2s.
	StatementTimeout, LockTimeout time.Duration
	// Retries is how many times a timed-out batch is retried, halving its
	// size and backing off from Backoff (default 100ms), before the scope
	// is given up with ErrTimeout. Defaults to 5.
	Retries int
	Backoff time.Duration
	// LeaseTTL is how long an instance that stops sweeping keeps others
	// off a target. Defaults to one minute.
	LeaseTTL time.Duration
	// Instance names this sweeper among the instances sharing the store.
	// Defaults to a random id.
	Instance string
	// Now is the clock. Defaults to the Policies' clock.
	Now func() time.Time
	// Sleep waits for d or until ctx is done. Defaults to a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Logger, when not nil, is told of retried batches and failed daily
	// runs, with identifiers only. Defaults to nil: the sweeper is silent.
	Logger *slog.Logger
}

// Sweeper deletes expired rows from the targets. It is safe for concurrent
// use, and any number of instances may share a store: a tenant's rows of a
// target are swept by one instance at a time.
type Sweeper struct {
	policies *Policies
	store    Store
	cfg      SweeperConfig
	pacer    pacer
	// clock times batches for the pacer (time.Now; a test's fake). It is
	// not cfg.Now, which is the policies' clock and may stand still.
	clock func() time.Time
}

// NewSweeper returns a Sweeper applying p's policies.
func NewSweeper(p *Policies, cfg SweeperConfig) (*Sweeper, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: nil policies", ErrInvalid)
	}
	if len(cfg.Targets) == 0 {
		return nil, fmt.Errorf("%w: no targets", ErrInvalid)
	}
	cfg.Targets = slices.Clone(cfg.Targets)
	names := map[string]bool{}
	for i, t := range cfg.Targets {
		t = t.withDefaults()
		if err := t.validate(); err != nil {
			return nil, err
		}
		if names[t.Name] {
			return nil, fmt.Errorf("%w: two targets named %s", ErrInvalid, t.Name)
		}
		names[t.Name] = true
		cfg.Targets[i] = t
	}

	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.BatchSize, 10000)
	def(&cfg.MinBatch, 100)
	def(&cfg.MaxBatch, 100000)
	def(&cfg.Retries, 5)
	if cfg.MinBatch > cfg.MaxBatch {
		return nil, fmt.Errorf("%w: MinBatch above MaxBatch", ErrInvalid)
	}
	switch {
	case cfg.Duty == 0:
		cfg.Duty = 0.5
	case cfg.Duty < 0 || cfg.Duty > 1 || math.IsNaN(cfg.Duty):
		return nil, fmt.Errorf("%w: Duty %v outside (0, 1]", ErrInvalid, cfg.Duty)
	}
	if cfg.MaxRate < 0 || math.IsNaN(cfg.MaxRate) {
		return nil, fmt.Errorf("%w: negative MaxRate", ErrInvalid)
	}
	cfg.BatchSize = min(max(cfg.BatchSize, cfg.MinBatch), cfg.MaxBatch)
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defd(&cfg.BatchTime, 250*time.Millisecond)
	defd(&cfg.StatementTimeout, 10*time.Second)
	defd(&cfg.LockTimeout, 2*time.Second)
	defd(&cfg.Backoff, 100*time.Millisecond)
	defd(&cfg.LeaseTTL, time.Minute)
	if cfg.Instance == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		cfg.Instance = hex.EncodeToString(b[:])
	}
	if cfg.Now == nil {
		cfg.Now = p.cfg.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	return &Sweeper{policies: p, store: p.store, cfg: cfg, clock: time.Now, pacer: pacer{
		target: cfg.BatchTime, duty: cfg.Duty, maxRate: cfg.MaxRate, floor: cfg.Pause,
		min: cfg.MinBatch, max: cfg.MaxBatch,
	}}, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// scopePlan is one (target, tenant, scope) to sweep or count.
type scopePlan struct {
	target  Target
	appID   string
	scope   Scope
	exclude []string
	period  time.Duration
	cutoff  time.Time
	version int64
	// latest is the newest version of the tenant's policies when they
	// were read, in force or not: a batch checks that it is still newest.
	latest int64
}

// apply sets the period, cutoff, version and (for a tenant scope) the
// channels to leave alone from the tenant's policy r, resolved at at.
func (p *scopePlan) apply(r Resolved, at time.Time) {
	p.version = r.Version
	if p.scope.Kind == ScopeChannel {
		p.period = r.Period(p.scope.ID)
		p.cutoff = at.Add(-p.period)
		return
	}

	p.exclude = nil
	p.period = r.Period("")
	if p.target.Channel != "" {
		for c := range r.Channels {
			p.exclude = append(p.exclude, c)
		}
		sort.Strings(p.exclude)
	} else {
		// A table that cannot tell channels apart keeps every row as long
		// as the longest period that might apply to it.
		for c := range r.Channels {
			p.period = max(p.period, r.Period(c))
		}
	}
	p.cutoff = at.Add(-p.period)
}

// plan lists what a sweep at at covers. Sweeps, dry runs and forecasts all
// start here, so they cannot disagree about what is due.
func (s *Sweeper) plan(ctx context.Context, at time.Time) ([]scopePlan, error) {
	var tenants []string
	var err error
	if s.cfg.Tenants != nil {
		tenants, err = s.cfg.Tenants(ctx)
	} else {
		tenants, err = s.store.PolicyTenants(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("retention: list tenants: %w", err)
	}
	tenants = slices.Compact(slices.Sorted(slices.Values(tenants)))

	var plans []scopePlan
	for _, target := range s.cfg.Targets {
		for _, app := range tenants {
			if app == "" {
				continue
			}
			r, latest, err := s.policies.resolveLatest(ctx, app, at)
			if err != nil {
				return nil, err
			}
			var channels []string
			if target.Channel != "" {
				for c := range r.Channels {
					channels = append(channels, c)
				}
				sort.Strings(channels)
			}
			for _, c := range channels {
				p := scopePlan{target: target, appID: app, scope: Channel(c), latest: latest}
				p.apply(r, at)
				plans = append(plans, p)
			}
			p := scopePlan{target: target, appID: app, scope: Tenant, latest: latest}
			p.apply(r, at)
			plans = append(plans, p)
		}
	}
	return plans, nil
}

// Due is what a dry run or forecast found for one target, tenant and scope.
type Due struct {
	Target        string
	AppID         string
	Scope         Scope
	PolicyVersion int64
	Period        time.Duration
	Cutoff        time.Time
	// Due rows are older than Cutoff; Held of them are under a legal hold.
	Due, Held int64
}

// DryRun reports what a sweep now would delete, per target, tenant and
// scope, deleting nothing.
func (s *Sweeper) DryRun(ctx context.Context) ([]Due, error) {
	return s.count(ctx, s.cfg.Now())
}

// Forecast reports what will be due within d from now, under the policies
// that will then be in force (a shortened period waiting out its grace
// period counts from when it takes effect). The counts include what is due
// already. It deletes nothing.
func (s *Sweeper) Forecast(ctx context.Context, d time.Duration) ([]Due, error) {
	return s.count(ctx, s.cfg.Now().Add(d))
}

func (s *Sweeper) count(ctx context.Context, at time.Time) ([]Due, error) {
	plans, err := s.plan(ctx, at)
	if err != nil {
		return nil, err
	}
	out := make([]Due, 0, len(plans))
	for _, p := range plans {
		c, err := s.store.Count(ctx, CountParams{Target: p.target, AppID: p.appID, Scope: p.scope, Exclude: p.exclude, Cutoff: p.cutoff})
		if err != nil {
			return nil, fmt.Errorf("retention: count %s: %w", p.target.Name, err)
		}
		out = append(out, Due{Target: p.target.Name, AppID: p.appID, Scope: p.scope, PolicyVersion: p.version, Period: p.period, Cutoff: p.cutoff, Due: c.Due, Held: c.Held})
	}
	return out, nil
}

// Report sums up a run.
type Report struct {
	// Batches recorded and rows Deleted, over every target.
	Batches int
	Deleted int64
	// Busy lists targets another instance was sweeping, skipped.
	Busy []string
	// Started and Finished bound the run.
	Started, Finished time.Time
}

// Run sweeps every target once: the one-shot run for a cron job. A target
// another instance is sweeping is skipped and listed in Report.Busy. A run
// stopped at any point (a cancelled context, a killed process) leaves every
// batch either committed with its record or not at all; the next run
// resumes from the last committed batch of each scope.
func (s *Sweeper) Run(ctx context.Context) (Report, error) {
	rep := Report{Started: s.cfg.Now()}
	plans, err := s.plan(ctx, rep.Started)
	if err != nil {
		return rep, err
	}

	pace := &pacing{limit: s.cfg.BatchSize}
	var errs []error
	for i := 0; i < len(plans); {
		target := plans[i].target.Name
		j := i
		for j < len(plans) && plans[j].target.Name == target {
			j++
		}

		busy := false
		for _, p := range plans[i:j] {
			err := s.sweepScope(ctx, p, pace, &rep)
			if errors.Is(err, ErrBusy) {
				busy = true
				break
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("retention: sweep %s: %w", target, err))
				if ctx.Err() != nil {
					rep.Finished = s.cfg.Now()
					return rep, errors.Join(errs...)
				}
			}
		}
		if busy {
			rep.Busy = append(rep.Busy, target)
		} else if err := s.store.ReleaseLease(context.WithoutCancel(ctx), target, s.cfg.Instance); err != nil {
			errs = append(errs, fmt.Errorf("retention: release lease on %s: %w", target, err))
		}
		i = j
	}
	rep.Finished = s.cfg.Now()
	return rep, errors.Join(errs...)
}

// maxPolicyChanges is how many batches in a row a sweep lets a policy
// change refuse before it gives the scope up, so that policies changed
// without end cannot keep it busy.
const maxPolicyChanges = 10

// pacing is what a run carries from batch to batch, across scopes: the
// next batch's size and the pause owed before it.
type pacing struct {
	limit int
	owed  time.Duration
}

// sweepScope deletes one scope's due rows, batch by batch, sized and paced
// by s.pacer. Between two batches of a scope it always calls Sleep (with
// the pause owed, perhaps zero); before a scope's first batch only when a
// pause is owed from the scope before, so that many small scopes cannot
// together take more than the sweep's share of time.
func (s *Sweeper) sweepScope(ctx context.Context, p scopePlan, pace *pacing, rep *Report) error {
	retries, changes := 0, 0
	resolved := s.cfg.Now()
	reread := false
	if pace.owed > 0 {
		if err := s.cfg.Sleep(ctx, pace.owed); err != nil {
			return err
		}
		pace.owed = 0
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}

		// A period lengthened while the sweep runs applies from the next
		// batch, within a second, as the cutoff moves with the clock. A
		// change committed after this read is caught by the batch itself
		// (BatchParams.CheckPolicy), which then deletes nothing, and the
		// policies are read again at once.
		now := s.cfg.Now()
		if reread || now.Sub(resolved) >= time.Second {
			r, latest, err := s.policies.resolveLatest(ctx, p.appID, now)
			if err != nil {
				return err
			}
			p.apply(r, now)
			p.latest, resolved, reread = latest, now, false
		}
		limit := pace.limit
		start := s.clock()
		res, err := s.store.SweepBatch(ctx, BatchParams{
			Target: p.target, AppID: p.appID, Scope: p.scope, Exclude: p.exclude,
			Cutoff: p.cutoff, Limit: limit, Owner: s.cfg.Instance, Now: now,
			LeaseUntil: now.Add(s.cfg.LeaseTTL), StatementTimeout: s.cfg.StatementTimeout,
			LockTimeout: s.cfg.LockTimeout, IDs: s.cfg.IDs || p.target.Deleter != nil,
			CheckPolicy: true, PolicyVersion: p.latest,
			OnBatch: func(ctx context.Context, r BatchResult) error {
				return s.recordBatch(ctx, p, now, r)
			},
		})
		elapsed := s.clock().Sub(start)

		if errors.Is(err, ErrTimeout) && ctx.Err() == nil {
			retries++
			pace.limit = max(s.cfg.MinBatch, limit/2)
			if retries > s.cfg.Retries {
				return err
			}
			s.log(ctx, "retention batch timed out", p, slog.Int("next_limit", pace.limit))
			if err := s.cfg.Sleep(ctx, s.cfg.Backoff<<(retries-1)); err != nil {
				return err
			}
			continue
		}
		if errors.Is(err, ErrPolicyChanged) && changes < maxPolicyChanges {
			changes++
			reread = true
			continue
		}
		if err != nil {
			return err
		}
		retries, changes = 0, 0
		if res.Deleted > 0 {
			rep.Batches++
			rep.Deleted += int64(res.Deleted)
		}
		pace.limit, pace.owed = s.pacer.next(limit, res.Scanned, elapsed)

		if res.Done {
			return nil
		}
		if err := s.cfg.Sleep(ctx, pace.owed); err != nil {
			return err
		}
		pace.owed = 0
	}
}

func (s *Sweeper) recordBatch(ctx context.Context, p scopePlan, at time.Time, r BatchResult) error {
	if r.Deleted == 0 {
		return nil
	}
	if p.target.Deleter != nil {
		if err := p.target.Deleter(ctx, Deleted{Target: p.target.Name, AppID: p.appID, IDs: r.IDs}); err != nil {
			return fmt.Errorf("%w: deleter: %w", ErrHook, err)
		}
	}
	if s.cfg.OnBatch == nil {
		return nil
	}
	rec := Record{
		Target: p.target.Name, AppID: p.appID, Scope: p.scope, PolicyVersion: p.version,
		Period: p.period, Cutoff: p.cutoff, Owner: s.cfg.Instance,
		Scanned: r.Scanned, Deleted: r.Deleted, Held: r.Scanned - r.Deleted,
		MinID: r.MinID, MaxID: r.MaxID,
		MinTime: r.MinTime, MaxTime: r.MaxTime, At: at,
	}
	if s.cfg.IDs {
		rec.IDs = r.IDs
	}
	if err := s.cfg.OnBatch(ctx, rec); err != nil {
		return fmt.Errorf("%w: %w", ErrHook, err)
	}
	return nil
}

func (s *Sweeper) log(ctx context.Context, msg string, p scopePlan, attrs ...slog.Attr) {
	if s.cfg.Logger == nil {
		return
	}
	attrs = append(attrs, slog.String("target", p.target.Name), slog.String("app_id", p.appID), slog.String("scope", p.scope.String()))
	s.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, msg, attrs...)
}

// RunDaily runs a sweep every day at offset past midnight UTC plus a random
// delay of up to jitter, so instances started together do not all wake at
// once (only one sweeps each target anyway). It returns when ctx is done.
// done, when not nil, is told of each run.
func (s *Sweeper) RunDaily(ctx context.Context, offset, jitter time.Duration, done func(Report, error)) error {
	for {
		now := s.cfg.Now().UTC()
		next := now.Truncate(24 * time.Hour).Add(offset)
		if !next.After(now) {
			next = next.Add(24 * time.Hour)
		}
		if jitter > 0 {
			next = next.Add(mathrand.N(jitter))
		}
		if err := s.cfg.Sleep(ctx, next.Sub(now)); err != nil {
			return err
		}

		rep, err := s.Run(ctx)
		if err != nil && s.cfg.Logger != nil {
			s.cfg.Logger.LogAttrs(ctx, slog.LevelError, "retention sweep failed", slog.String("error", err.Error()))
		}
		if done != nil {
			done(rep, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}
