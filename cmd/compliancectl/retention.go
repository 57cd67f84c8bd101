package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/integrity"
	"github.com/chatsdk/compliance/integrity/integritypg"
	"github.com/chatsdk/compliance/retention"
	"github.com/chatsdk/compliance/retention/retentionpg"
)

// operator is the actor the tool's own audit entries name.
const operator = "compliancectl"

// retentionSetup is a Sweeper on the database with the declared targets.
type retentionSetup struct {
	policies *retention.Policies
	sweeper  *retention.Sweeper
	tenants  []string
}

// sweeper builds the Sweeper. Its clock is asOf (zero: now). onBatch, if
// not nil, receives each batch's record inside the batch's transaction,
// after the audit entry that records it is written there.
func (e *env) sweeper(asOf time.Time, onBatch func(retention.Record)) (*retentionSetup, error) {
	cfg, err := e.config()
	if err != nil {
		return nil, err
	}
	if len(cfg.Retention.Targets) == 0 {
		return nil, usagef("no retention targets are declared: add retention.targets to the configuration (--config)")
	}
	pool, err := e.connect()
	if err != nil {
		return nil, err
	}
	audits, err := e.auditStore()
	if err != nil {
		return nil, err
	}
	alog, err := audit.New(audit.Config{Store: audits})
	if err != nil {
		return nil, err
	}
	// Prepare only: the log never records, so it has nothing to flush.
	defer alog.Close(context.Background())

	var sealer *integrity.Sealer
	var sealStore *integritypg.Store
	var targets []retention.Target
	for i, t := range cfg.Retention.Targets {
		if t.Table == "" || t.ID == "" || t.Time == "" {
			return nil, usagef("retention target %d needs table, id and time columns", i+1)
		}
		table := t.Table
		if e.schema != "" && !strings.Contains(table, ".") {
			table = e.schema + "." + table
		}
		name := t.Name
		if name == "" {
			name = t.Table
		}
		target := retention.Target{Name: name, Table: table, ID: t.ID, Tenant: t.Tenant, Time: t.Time, Channel: t.Channel, User: t.User, Resource: t.Resource}
		if t.IntegrityDomain != "" {
			if sealer == nil {
				keys, err := e.integrityKeys()
				if err != nil {
					return nil, fmt.Errorf("target %s has an integrity_domain: %w", name, err)
				}
				sealStore = integritypg.New(pool, integritypg.Config{Schema: e.schema})
				if sealer, err = integrity.New(integrity.Config{Keys: keys, Store: sealStore}); err != nil {
					return nil, err
				}
			}
			domain := t.IntegrityDomain
			target.Deleter = func(ctx context.Context, d retention.Deleted) error {
				tx, ok := retentionpg.Tx(ctx)
				if !ok {
					return errors.New("no batch transaction to forget integrity tags in")
				}
				_, err := sealer.WithStore(sealStore.With(tx)).Forget(ctx, domain, d.AppID, d.IDs)
				return err
			}
		}
		targets = append(targets, target)
	}

	store, err := retentionpg.New(pool, retentionpg.Config{Schema: e.schema})
	if err != nil {
		return nil, err
	}
	now := time.Now
	if !asOf.IsZero() {
		now = func() time.Time { return asOf }
	}
	pcfg := retention.PoliciesConfig{Now: now}
	if cfg.Retention.DefaultDays > 0 {
		pcfg.DefaultPeriod = time.Duration(cfg.Retention.DefaultDays) * 24 * time.Hour
	}
	policies, err := retention.NewPolicies(store, pcfg)
	if err != nil {
		return nil, err
	}

	// The tenants swept: those with a policy, and those configured (which
	// may rely on the default period alone).
	tenants := func(ctx context.Context) ([]string, error) {
		have, err := store.PolicyTenants(ctx)
		if err != nil {
			return nil, err
		}
		return union(have, cfg.Tenants), nil
	}
	var mu sync.Mutex
	hook := func(ctx context.Context, r retention.Record) error {
		tx, ok := retentionpg.Tx(ctx)
		if !ok {
			return errors.New("no batch transaction to audit the sweep in")
		}
		ev := audit.Event{
			Tenant: r.AppID, Time: r.At, Actor: operator, Type: audit.TypeRetentionSweep, Category: audit.CategorySystem,
			Action: audit.ActionDelete, ResourceType: r.Target, Success: true,
			Metadata: map[string]string{
				"scope": r.Scope.String(), "deleted": strconv.Itoa(r.Deleted), "scanned": strconv.Itoa(r.Scanned),
				"held": strconv.Itoa(r.Held), "policy_version": strconv.FormatInt(r.PolicyVersion, 10),
				"cutoff": r.Cutoff.UTC().Format(time.RFC3339), "min_id": r.MinID, "max_id": r.MaxID,
			},
		}
		if err := alog.Prepare(&ev); err != nil {
			return err
		}
		if _, err := audits.AppendTx(ctx, tx, r.AppID, []audit.Event{ev}); err != nil {
			return fmt.Errorf("auditing the batch: %w", err)
		}
		if onBatch != nil {
			mu.Lock()
			onBatch(r)
			mu.Unlock()
		}
		return nil
	}
	sw, err := retention.NewSweeper(policies, retention.SweeperConfig{Targets: targets, Tenants: tenants, OnBatch: hook, Now: now, Instance: operator})
	if err != nil {
		return nil, usagef("retention configuration: %v", err)
	}
	all, err := tenants(e.ctx)
	if err != nil {
		return nil, fmt.Errorf("listing tenants: %w", err)
	}
	return &retentionSetup{policies: policies, sweeper: sw, tenants: all}, nil
}

func union(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range append(append([]string{}, a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// scopeCount is what was, or would be, deleted from one target for one
// tenant and scope.
type scopeCount struct {
	Target        string    `json:"target"`
	Tenant        string    `json:"tenant"`
	Scope         string    `json:"scope"`
	PolicyVersion int64     `json:"policy_version"`
	PeriodDays    float64   `json:"period_days"`
	Cutoff        time.Time `json:"cutoff"`
	// Due rows are past their period; Held of them are kept by a legal
	// hold; Deleted (a sweep only) were removed.
	Due     int64 `json:"due"`
	Held    int64 `json:"held"`
	Deleted int64 `json:"deleted"`
	Batches int   `json:"batches,omitempty"`
}

type holdJSON struct {
	Tenant    string    `json:"tenant"`
	ID        string    `json:"id"`
	Scope     string    `json:"scope"`
	CreatedAt time.Time `json:"created_at"`
}

type sweepResult struct {
	DryRun  bool         `json:"dry_run"`
	AsOf    time.Time    `json:"as_of"`
	Days    int          `json:"forecast_days,omitempty"`
	Deleted int64        `json:"deleted"`
	Scopes  []scopeCount `json:"scopes"`
	Holds   []holdJSON   `json:"active_holds"`
	Busy    []string     `json:"busy_targets,omitempty"`
}

func fromDue(d []retention.Due) []scopeCount {
	out := make([]scopeCount, 0, len(d))
	for _, x := range d {
		out = append(out, scopeCount{Target: x.Target, Tenant: x.AppID, Scope: x.Scope.String(), PolicyVersion: x.PolicyVersion,
			PeriodDays: x.Period.Hours() / 24, Cutoff: x.Cutoff.UTC(), Due: x.Due, Held: x.Held})
	}
	return out
}

// activeHolds lists the tenants' active legal holds. Reasons and authors
// stay in the store: they may say more than an operator's terminal should.
func activeHolds(ctx context.Context, p *retention.Policies, tenants []string) ([]holdJSON, error) {
	out := []holdJSON{}
	for _, t := range tenants {
		hs, err := p.Holds(ctx, t)
		if err != nil {
			return nil, fmt.Errorf("listing the holds of %s: %w", t, err)
		}
		for _, h := range hs {
			if h.Active() {
				out = append(out, holdJSON{Tenant: t, ID: h.ID, Scope: h.Scope.String(), CreatedAt: h.CreatedAt.UTC()})
			}
		}
	}
	return out, nil
}

func printSweep(w io.Writer, r sweepResult) {
	switch {
	case r.Days > 0:
		fmt.Fprintf(w, "forecast: due within %d days of %s\n", r.Days, r.AsOf.Format(time.RFC3339))
	case r.DryRun:
		fmt.Fprintf(w, "dry run as of %s: nothing deleted\n", r.AsOf.Format(time.RFC3339))
	default:
		fmt.Fprintf(w, "sweep as of %s: %d rows deleted\n", r.AsOf.Format(time.RFC3339), r.Deleted)
	}
	fmt.Fprintf(w, "%-14s %-14s %-20s %8s %10s %10s %10s\n", "TARGET", "TENANT", "SCOPE", "PERIOD", "DUE", "HELD", "DELETED")
	for _, s := range r.Scopes {
		fmt.Fprintf(w, "%-14s %-14s %-20s %7.0fd %10d %10d %10d\n", s.Target, s.Tenant, s.Scope, s.PeriodDays, s.Due, s.Held, s.Deleted)
	}
	if len(r.Busy) > 0 {
		fmt.Fprintf(w, "skipped, another instance is sweeping them: %s\n", strings.Join(r.Busy, ", "))
	}
	if len(r.Holds) == 0 {
		fmt.Fprintln(w, "active legal holds: none")
		return
	}
	fmt.Fprintln(w, "active legal holds:")
	for _, h := range r.Holds {
		fmt.Fprintf(w, "  %-14s %-24s hold %s since %s\n", h.Tenant, h.Scope, h.ID, h.CreatedAt.Format(time.DateOnly))
	}
}

func retentionSweepCommand() *command {
	return &command{
		name:     "retention sweep",
		summary:  "delete rows past their retention period, never under a legal hold, auditing each batch; --dry-run counts instead",
		synopsis: "[--dry-run] [--as-of T]",
		example: `compliancectl retention sweep --dry-run --config compliancectl.json
compliancectl retention sweep --config compliancectl.json`,
		bind: func(fs *flag.FlagSet, e *env) func([]string) error {
			dry := fs.Bool("dry-run", false, "count what a sweep would delete, per tenant and scope, and delete nothing")
			asOfFlag := fs.String("as-of", "", "sweep as if it were this time (RFC 3339 or a date); later than now only with --dry-run")
			return func(args []string) error {
				if len(args) > 0 {
					return usagef("retention sweep takes no arguments, got %q", args[0])
				}
				asOf, err := parseTime("as-of", *asOfFlag)
				if err != nil {
					return err
				}
				if !*dry && asOf.After(time.Now()) {
					return usagef("--as-of %s is in the future: a sweep would delete rows before their period ends; add --dry-run, or use retention forecast", *asOfFlag)
				}
				at := asOf
				if at.IsZero() {
					at = time.Now()
				}

				counts := map[string]*scopeCount{}
				var order []string
				var p *progress
				setup, err := e.sweeper(asOf, func(r retention.Record) {
					key := r.Target + "\x00" + r.AppID + "\x00" + r.Scope.String()
					c, ok := counts[key]
					if !ok {
						c = &scopeCount{Target: r.Target, Tenant: r.AppID, Scope: r.Scope.String(), PolicyVersion: r.PolicyVersion, PeriodDays: r.Period.Hours() / 24, Cutoff: r.Cutoff.UTC()}
						counts[key] = c
						order = append(order, key)
					}
					c.Due += int64(r.Scanned)
					c.Held += int64(r.Held)
					c.Deleted += int64(r.Deleted)
					c.Batches++
					p.Add(r.Deleted)
				})
				if err != nil {
					return err
				}
				// Count first, so that the result lists every scope, held or
				// not, and the bar knows the total.
				res := sweepResult{DryRun: *dry, AsOf: at.UTC()}
				due, err := setup.sweeper.DryRun(e.ctx)
				if err != nil {
					return fmt.Errorf("counting due rows: %w", err)
				}
				res.Scopes = fromDue(due)
				if !*dry {
					var total int64
					for _, s := range res.Scopes {
						total += s.Due - s.Held
					}
					p = e.progress(total, "sweep", "rows")
					rep, err := setup.sweeper.Run(e.ctx)
					p.Finish()
					if err != nil {
						return fmt.Errorf("sweep stopped (every committed batch is recorded; rerun to resume): %w", err)
					}
					res.Deleted, res.Busy = rep.Deleted, rep.Busy
					for i := range res.Scopes {
						s := &res.Scopes[i]
						if c, ok := counts[s.Target+"\x00"+s.Tenant+"\x00"+s.Scope]; ok {
							s.Deleted, s.Batches = c.Deleted, c.Batches
							delete(counts, s.Target+"\x00"+s.Tenant+"\x00"+s.Scope)
						}
					}
					// Rows that fell due between the count and the sweep.
					for _, k := range order {
						if c, ok := counts[k]; ok {
							res.Scopes = append(res.Scopes, *c)
						}
					}
				}
				if res.Scopes == nil {
					res.Scopes = []scopeCount{}
				}
				if res.Holds, err = activeHolds(e.ctx, setup.policies, setup.tenants); err != nil {
					return err
				}
				return e.emit(res, func(w io.Writer) { printSweep(w, res) })
			}
		},
	}
}

func retentionForecastCommand() *command {
	return &command{
		name:     "retention forecast",
		summary:  "count what will be due for deletion within N days, per tenant and scope, under the policies then in force",
		synopsis: "--days N",
		example:  "compliancectl retention forecast --days 30 --config compliancectl.json",
		bind: func(fs *flag.FlagSet, e *env) func([]string) error {
			days := fs.Int("days", 0, "how many days ahead to look")
			return func(args []string) error {
				if len(args) > 0 {
					return usagef("retention forecast takes no arguments, got %q", args[0])
				}
				if *days <= 0 {
					return usagef("--days must be a positive number of days")
				}
				setup, err := e.sweeper(time.Time{}, nil)
				if err != nil {
					return err
				}
				due, err := setup.sweeper.Forecast(e.ctx, time.Duration(*days)*24*time.Hour)
				if err != nil {
					return fmt.Errorf("forecasting: %w", err)
				}
				res := sweepResult{DryRun: true, AsOf: time.Now().UTC(), Days: *days, Scopes: fromDue(due)}
				if res.Holds, err = activeHolds(e.ctx, setup.policies, setup.tenants); err != nil {
					return err
				}
				return e.emit(res, func(w io.Writer) { printSweep(w, res) })
			}
		},
	}
}
