package audit

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// MaxReportEntries bounds the entries [Disclosures] and [BreachScope] read,
// so one report cannot exhaust memory; a larger period must be split.
const MaxReportEntries = 1_000_000

// ErrReportTooLarge means a report would read more than MaxReportEntries.
var ErrReportTooLarge = fmt.Errorf("audit: report larger than %d entries: split the period", MaxReportEntries)

// DisclosureQuery selects the accounting of disclosures of one subject (a
// patient) or one resource in a period (§164.528). Tenant and one of
// Subject or ResourceID are required.
type DisclosureQuery struct {
	Tenant       string
	Subject      string
	ResourceType string
	ResourceID   string
	// Since and Until bound the period: Since <= Time < Until; zero is
	// unbounded.
	Since, Until time.Time
}

// Disclosures returns every data access and data modification entry about
// the subject or the resource in the period, and every emergency
// (break-glass) access, newest first, successful or not. With both Subject
// and ResourceID set it returns the union.
func Disclosures(ctx context.Context, s Store, q DisclosureQuery) ([]Entry, error) {
	if q.Tenant == "" || (q.Subject == "" && q.ResourceID == "") {
		return nil, fmt.Errorf("%w: disclosures need a tenant and a subject or resource", ErrInvalidEvent)
	}
	var queries []Query
	if q.Subject != "" {
		queries = append(queries, Query{Tenant: q.Tenant, Subject: q.Subject, Since: q.Since, Until: q.Until})
	}
	if q.ResourceID != "" {
		queries = append(queries, Query{Tenant: q.Tenant, ResourceType: q.ResourceType, ResourceID: q.ResourceID, Since: q.Since, Until: q.Until})
	}

	type key struct {
		stream string
		seq    uint64
	}
	seen := map[key]bool{}
	var out []Entry
	for _, base := range queries {
		err := eachEntry(ctx, s, base, func(e *Entry) error {
			if !disclosure(e) {
				return nil
			}
			k := key{e.Stream, e.Seq}
			if !seen[k] {
				seen[k] = true
				out = append(out, *e)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return newerFirst(&out[i], &out[j]) })
	return out, nil
}

// Touch is one resource an actor touched, for a breach scope.
type Touch struct {
	ResourceType string
	ResourceID   string
	Subject      string
	// Count is how many entries name it; Failed how many of them failed.
	Count, Failed int
	// First and Last are the times of the earliest and latest of them.
	First, Last time.Time
}

// BreachScope returns every resource the actor touched in the period
// (entries that name a resource, in any category), sorted by resource: the
// starting point of a breach assessment when an account is compromised.
func BreachScope(ctx context.Context, s Store, tenant, actor string, since, until time.Time) ([]Touch, error) {
	if tenant == "" || actor == "" {
		return nil, fmt.Errorf("%w: breach scope needs a tenant and an actor", ErrInvalidEvent)
	}
	type key struct{ typ, id, subject string }
	touches := map[key]*Touch{}
	err := eachEntry(ctx, s, Query{Tenant: tenant, Actor: actor, Since: since, Until: until}, func(e *Entry) error {
		if e.ResourceID == "" && e.Subject == "" {
			return nil
		}
		k := key{e.ResourceType, e.ResourceID, e.Subject}
		t := touches[k]
		if t == nil {
			t = &Touch{ResourceType: k.typ, ResourceID: k.id, Subject: k.subject, First: e.Time, Last: e.Time}
			touches[k] = t
		}
		t.Count++
		if !e.Success {
			t.Failed++
		}
		if e.Time.Before(t.First) {
			t.First = e.Time
		}
		if e.Time.After(t.Last) {
			t.Last = e.Time
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]Touch, 0, len(touches))
	for _, t := range touches {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.ResourceType != b.ResourceType {
			return a.ResourceType < b.ResourceType
		}
		if a.ResourceID != b.ResourceID {
			return a.ResourceID < b.ResourceID
		}
		return a.Subject < b.Subject
	})
	return out, nil
}

// eachEntry pages through q with the largest page size.
func eachEntry(ctx context.Context, s Store, q Query, fn func(*Entry) error) error {
	q.Limit = MaxPageSize
	n := 0
	for {
		page, err := s.Query(ctx, q)
		if err != nil {
			return err
		}
		for i := range page.Entries {
			if n++; n > MaxReportEntries {
				return ErrReportTooLarge
			}
			if err := fn(&page.Entries[i]); err != nil {
				return err
			}
		}
		if page.Next == "" {
			return nil
		}
		q.Cursor = page.Next
	}
}

// disclosure reports whether e belongs in an accounting of disclosures.
func disclosure(e *Entry) bool {
	return e.Category == CategoryDataAccess || e.Category == CategoryDataModification || e.Type == TypeEmergencyAccess
}
