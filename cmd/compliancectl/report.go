package main

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/auditpg"
)

// period reads --since and --until; until defaults to now and since to
// defaultBack before it.
func period(since, until string, defaultBack time.Duration) (time.Time, time.Time, error) {
	to, err := parseTime("until", until)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	if to.IsZero() {
		to = time.Now()
	}
	from, err := parseTime("since", since)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	if from.IsZero() {
		if defaultBack == 0 {
			return time.Time{}, time.Time{}, usagef("--since is required")
		}
		from = to.Add(-defaultBack)
	}
	if !from.Before(to) {
		return time.Time{}, time.Time{}, usagef("--since must be before --until")
	}
	return from.UTC(), to.UTC(), nil
}

// search is what an audit log report has read before it searches.
type search struct {
	from, to time.Time
	tenants  []string
	store    *auditpg.Store
}

// bindSearch binds the --app, --since and --until flags the audit log
// reports share. The function it returns checks them, with the report's
// one required flag, and opens the audit store.
func bindSearch(fs *flag.FlagSet, e *env, sinceHelp string) func(name string, args []string, flagName, value string) (search, error) {
	var apps stringList
	fs.Var(&apps, "app", "tenant to search; repeatable; default the configured tenants")
	since := fs.String("since", "", sinceHelp)
	until := fs.String("until", "", "end of the period, exclusive; default now")
	return func(name string, args []string, flagName, value string) (search, error) {
		if len(args) > 0 {
			return search{}, usagef("%s takes no arguments, got %q", name, args[0])
		}
		if value == "" {
			return search{}, usagef("%s is required", flagName)
		}
		var q search
		var err error
		q.from, q.to, err = period(*since, *until, 0)
		if err != nil {
			return search{}, err
		}
		if q.tenants, err = e.tenants(apps); err != nil {
			return search{}, err
		}
		if q.store, err = e.auditStore(); err != nil {
			return search{}, err
		}
		return q, nil
	}
}

type touchJSON struct {
	Tenant       string    `json:"tenant"`
	ResourceType string    `json:"resource_type"`
	ResourceID   string    `json:"resource_id"`
	Subject      string    `json:"subject,omitempty"`
	Count        int       `json:"count"`
	Failed       int       `json:"failed"`
	First        time.Time `json:"first"`
	Last         time.Time `json:"last"`
}

type breachScopeResult struct {
	Actor     string      `json:"actor"`
	Since     time.Time   `json:"since"`
	Until     time.Time   `json:"until"`
	Subjects  []string    `json:"subjects"`
	Resources []touchJSON `json:"resources"`
}

func reportBreachScopeCommand() *command {
	return &command{
		name:     "report breach-scope",
		summary:  "list every record an actor touched in a period, and whose records they were, from the audit log (§164.404 breach assessment)",
		synopsis: "--actor USER --since T [--until T] [--app TENANT]…",
		example: `compliancectl report breach-scope --app app-1 --actor user-42 --since 2026-11-01 --until 2026-12-01
compliancectl report breach-scope --app app-1 --actor user-42 --since 2026-11-01 --json > scope.json`,
		bind: func(fs *flag.FlagSet, e *env) func([]string) error {
			actor := fs.String("actor", "", "the user or service whose actions to list (a compromised account)")
			open := bindSearch(fs, e, "start of the period (RFC 3339 or a date)")
			return func(args []string) error {
				q, err := open("report breach-scope", args, "--actor", *actor)
				if err != nil {
					return err
				}
				res := breachScopeResult{Actor: *actor, Since: q.from, Until: q.to, Subjects: []string{}, Resources: []touchJSON{}}
				subjects := map[string]bool{}
				for _, tenant := range q.tenants {
					touches, err := audit.BreachScope(e.ctx, q.store, tenant, *actor, q.from, q.to)
					if err != nil {
						return fmt.Errorf("searching %s: %w", tenant, err)
					}
					for _, t := range touches {
						res.Resources = append(res.Resources, touchJSON{Tenant: tenant, ResourceType: t.ResourceType, ResourceID: t.ResourceID, Subject: t.Subject,
							Count: t.Count, Failed: t.Failed, First: t.First.UTC(), Last: t.Last.UTC()})
						if t.Subject != "" && !subjects[tenant+"\x00"+t.Subject] {
							subjects[tenant+"\x00"+t.Subject] = true
							res.Subjects = append(res.Subjects, t.Subject)
						}
					}
				}
				sort.Strings(res.Subjects)
				return e.emit(res, func(w io.Writer) {
					fmt.Fprintf(w, "%s touched %d records of %d subjects between %s and %s\n", res.Actor, len(res.Resources), len(res.Subjects), q.from.Format(time.RFC3339), q.to.Format(time.RFC3339))
					fmt.Fprintf(w, "%-12s %-14s %-24s %-16s %6s %6s  %-20s %s\n", "TENANT", "TYPE", "RESOURCE", "SUBJECT", "COUNT", "FAILED", "FIRST", "LAST")
					for _, t := range res.Resources {
						fmt.Fprintf(w, "%-12s %-14s %-24s %-16s %6d %6d  %-20s %s\n", t.Tenant, t.ResourceType, t.ResourceID, t.Subject, t.Count, t.Failed, t.First.Format(time.RFC3339), t.Last.Format(time.RFC3339))
					}
				})
			}
		},
	}
}

type disclosureJSON struct {
	Tenant       string    `json:"tenant"`
	Time         time.Time `json:"time"`
	Actor        string    `json:"actor"`
	Type         string    `json:"type"`
	Action       string    `json:"action"`
	ResourceType string    `json:"resource_type"`
	ResourceID   string    `json:"resource_id"`
	Success      bool      `json:"success"`
	IP           string    `json:"ip,omitempty"`
	Stream       string    `json:"stream"`
	Seq          uint64    `json:"seq"`
}

type disclosuresResult struct {
	Subject  string           `json:"subject"`
	Since    time.Time        `json:"since"`
	Until    time.Time        `json:"until"`
	Actors   map[string]int   `json:"actors"`
	Accesses []disclosureJSON `json:"accesses"`
}

func reportDisclosuresCommand() *command {
	return &command{
		name:     "report disclosures",
		summary:  "list who read or changed a subject's records in a period, newest first, from the audit log (§164.528 accounting of disclosures)",
		synopsis: "--subject S --since T [--until T] [--app TENANT]…",
		example:  "compliancectl report disclosures --app app-1 --subject patient-42 --since 2020-12-01 --until 2026-12-01",
		bind: func(fs *flag.FlagSet, e *env) func([]string) error {
			subject := fs.String("subject", "", "the person whose records to account for (a patient id)")
			open := bindSearch(fs, e, "start of the period (RFC 3339 or a date); §164.528 covers six years")
			return func(args []string) error {
				q, err := open("report disclosures", args, "--subject", *subject)
				if err != nil {
					return err
				}
				res := disclosuresResult{Subject: *subject, Since: q.from, Until: q.to, Actors: map[string]int{}, Accesses: []disclosureJSON{}}
				for _, tenant := range q.tenants {
					entries, err := audit.Disclosures(e.ctx, q.store, audit.DisclosureQuery{Tenant: tenant, Subject: *subject, Since: q.from, Until: q.to})
					if err != nil {
						return fmt.Errorf("searching %s: %w", tenant, err)
					}
					for _, en := range entries {
						res.Accesses = append(res.Accesses, disclosureJSON{Tenant: tenant, Time: en.Time.UTC(), Actor: en.Actor, Type: en.Type, Action: en.Action,
							ResourceType: en.ResourceType, ResourceID: en.ResourceID, Success: en.Success, IP: en.IP, Stream: en.Stream, Seq: en.Seq})
						res.Actors[en.Actor]++
					}
				}
				sort.SliceStable(res.Accesses, func(i, j int) bool { return res.Accesses[i].Time.After(res.Accesses[j].Time) })
				return e.emit(res, func(w io.Writer) {
					fmt.Fprintf(w, "%d accesses to the records of %s by %d actors between %s and %s\n", len(res.Accesses), res.Subject, len(res.Actors), q.from.Format(time.RFC3339), q.to.Format(time.RFC3339))
					fmt.Fprintf(w, "%-20s %-12s %-14s %-18s %-8s %-24s %s\n", "TIME", "TENANT", "ACTOR", "TYPE", "OUTCOME", "RESOURCE", "IP")
					for _, a := range res.Accesses {
						outcome := "ok"
						if !a.Success {
							outcome = "failed"
						}
						fmt.Fprintf(w, "%-20s %-12s %-14s %-18s %-8s %-24s %s\n", a.Time.Format(time.RFC3339), a.Tenant, a.Actor, a.Type, outcome, a.ResourceType+"/"+a.ResourceID, a.IP)
					}
				})
			}
		},
	}
}
