package integrity

import (
	"cmp"
	"context"
	"crypto/sha256"
	"iter"
	"maps"
	"slices"

	"github.com/chatsdk/compliance/internal/canon"
)

// FindingKind says what the verifier found wrong.
type FindingKind uint8

// The kinds of finding.
const (
	// Altered: the row exists and is sealed, but its tag does not
	// authenticate it (a field was edited, or a tag was copied or
	// swapped from another row).
	Altered FindingKind = iota + 1
	// Unsealed: the row exists but has no tag, so it was inserted (or its
	// tag removed) behind the package's back.
	Unsealed
	// Missing: a tag exists for a row that does not, so the row was
	// deleted behind the package's back.
	Missing
	// DigestMismatch: a scope's sealed rows do not add up to its signed
	// digest, so rows and their tags were deleted, inserted or replayed
	// behind the package's back. The ids cannot be named.
	DigestMismatch
	// DigestForged: a scope's digest itself does not verify.
	DigestForged
)

// String returns the kind's name, as stored in findings tables.
func (k FindingKind) String() string {
	switch k {
	case Altered:
		return "altered"
	case Unsealed:
		return "unsealed"
	case Missing:
		return "missing"
	case DigestMismatch:
		return "digest_mismatch"
	case DigestForged:
		return "digest_forged"
	}
	return "unknown"
}

// Finding is one problem the verifier found. It carries identifiers only,
// never field values.
type Finding struct {
	Kind   FindingKind
	Domain string
	Tenant string
	// Scope is the digest scope, when known.
	Scope string
	// ID is the row id; empty for digest findings.
	ID string
	// KeyID is the id of the key of the tag or digest involved, if any.
	KeyID uint32
	// WantCount and GotCount are, for digest findings, the row count the
	// digest records and the count of sealed rows found in the scope.
	WantCount, GotCount uint64
}

// Summary counts what a verification run saw.
type Summary struct {
	// Rows is the number of protected rows read.
	Rows int64
	// Sealed is the number of tags read.
	Sealed int64
	// Scopes is the number of scopes whose digests were checked.
	Scopes int64
	// Findings counts findings per kind.
	Findings map[FindingKind]int64
}

// OK reports whether the run found nothing wrong.
func (s Summary) OK() bool {
	for _, n := range s.Findings {
		if n > 0 {
			return false
		}
	}
	return true
}

type scopeAcc struct {
	count uint64
	sum   Sum
}

// Scan is the verifier's accumulator, for adapters that stream a domain's
// rows joined with their tags (as integritypg does): call [Scan.Row] for
// each row, [Scan.Orphan] for each tag without a row, then [Scan.Finish]
// with the domain's digests. Row and Orphan report per-row findings at
// once. A Scan is not safe for concurrent use; parallel workers each use
// their own and [Scan.Merge] them before Finish.
type Scan struct {
	keys   *Keys
	domain string
	report func(Finding)
	sums   map[ScopeKey]*scopeAcc
	// last and lastKey cache the scope of the previous row: rows of one
	// scope tend to come together.
	last    *scopeAcc
	lastKey ScopeKey
	enc     canon.Encoder
	ebuf    []byte
	sum     Summary
}

// NewScan returns a Scan of domain that hands findings to report (which
// may be nil).
func (s *Sealer) NewScan(domain string, report func(Finding)) *Scan {
	if report == nil {
		report = func(Finding) {}
	}
	return &Scan{keys: s.keys, domain: domain, report: report, sums: map[ScopeKey]*scopeAcc{}, sum: Summary{Findings: map[FindingKind]int64{}}}
}

func (sc *Scan) emit(f Finding) {
	f.Domain = sc.domain
	sc.sum.Findings[f.Kind]++
	sc.report(f)
}

func (sc *Scan) count(sealed *Sealed) {
	sc.sum.Sealed++
	acc := sc.last
	if acc == nil || sc.lastKey.Tenant != sealed.Tenant || sc.lastKey.Scope != sealed.Scope {
		k := ScopeKey{Domain: sc.domain, Tenant: sealed.Tenant, Scope: sealed.Scope}
		acc = sc.sums[k]
		if acc == nil {
			acc = &scopeAcc{}
			sc.sums[k] = acc
		}
		sc.last, sc.lastKey = acc, k
	}
	acc.count++
	sc.ebuf = appendElementInput(sc.ebuf[:0], sealed.Scope, sealed.Tag)
	acc.sum.Add(sha256.Sum256(sc.ebuf))
}

// Row checks one row that exists, with its tag (nil when it has none).
func (sc *Scan) Row(tenant, id string, fields []canon.Value, sealed *Sealed) {
	BeginMessage(&sc.enc, sc.domain, tenant, id)
	for _, f := range fields {
		sc.enc.Value(f)
	}
	sc.RowMessage(tenant, id, sc.enc.Bytes(), sealed)
}

// RowMessage is [Scan.Row] for a caller that built the row's message
// itself with [BeginMessage] and canon.Encoder, to save allocations.
func (sc *Scan) RowMessage(tenant, id string, msg []byte, sealed *Sealed) {
	sc.sum.Rows++
	if sealed == nil {
		sc.emit(Finding{Kind: Unsealed, Tenant: tenant, ID: id})
		return
	}
	sc.count(sealed)
	// The stored key id is not under the MAC, but reseal and key usage go
	// by it: one that disagrees with the tag's own is tampering too.
	if kid, _ := KeyID(sealed.Tag); kid != sealed.KeyID || sc.keys.checkMessage(msg, sealed.Tag) != nil {
		sc.emit(Finding{Kind: Altered, Tenant: tenant, ID: id, Scope: sealed.Scope, KeyID: sealed.KeyID})
	}
}

// Orphan records a tag whose row does not exist.
func (sc *Scan) Orphan(sealed Sealed) {
	sc.count(&sealed)
	sc.emit(Finding{Kind: Missing, Tenant: sealed.Tenant, ID: sealed.ID, Scope: sealed.Scope, KeyID: sealed.KeyID})
}

// Merge adds o's counts and sums to sc. o must scan the same domain.
func (sc *Scan) Merge(o *Scan) {
	for k, a := range o.sums {
		acc := sc.sums[k]
		if acc == nil {
			acc = &scopeAcc{}
			sc.sums[k] = acc
		}
		acc.count += a.count
		acc.sum.Add(a.sum)
	}
	sc.sum.Rows += o.sum.Rows
	sc.sum.Sealed += o.sum.Sealed
	for k, n := range o.sum.Findings {
		sc.sum.Findings[k] += n
	}
}

// Finish checks the scanned scopes against the domain's digests, reports
// digest findings and returns the run's summary. A digest whose scope had
// no sealed rows must record none; sealed rows in a scope without a digest
// are a mismatch.
func (sc *Scan) Finish(digests []Digest) Summary {
	seen := map[ScopeKey]bool{}
	for _, d := range digests {
		if d.Domain != sc.domain {
			continue
		}
		seen[d.ScopeKey] = true
		sc.sum.Scopes++
		acc := sc.sums[d.ScopeKey]
		if acc == nil {
			acc = &scopeAcc{}
		}
		if !d.fresh() && sc.keys.checkDigest(d) != nil {
			sc.emit(Finding{Kind: DigestForged, Tenant: d.Tenant, Scope: d.Scope, KeyID: d.KeyID, WantCount: d.Count, GotCount: acc.count})
			continue
		}
		if acc.count != d.Count || !equalTags(acc.sum[:], d.Sum[:]) {
			sc.emit(Finding{Kind: DigestMismatch, Tenant: d.Tenant, Scope: d.Scope, KeyID: d.KeyID, WantCount: d.Count, GotCount: acc.count})
		}
	}

	rest := slices.SortedFunc(maps.Keys(sc.sums), func(a, b ScopeKey) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Scope, b.Scope))
	})
	for _, k := range rest {
		if seen[k] {
			continue
		}
		sc.sum.Scopes++
		sc.emit(Finding{Kind: DigestMismatch, Tenant: k.Tenant, Scope: k.Scope, GotCount: sc.sums[k].count})
	}
	return sc.sum
}

// Verify checks every row of a domain held outside the store (rows yields
// them, in any order) against the store's tags and digests, hands each
// finding to report (which may be nil) and returns a summary. It finds
// rows altered, inserted or deleted behind the package's back, and tags
// and digests altered. It holds the domain's tags in memory; integritypg
// streams instead.
func (s *Sealer) Verify(ctx context.Context, domain string, rows iter.Seq2[Record, error], report func(Finding)) (Summary, error) {
	tags := map[Key]Sealed{}
	p := ListParams{Domain: domain, Limit: 1000}
	for {
		page, err := s.store.List(ctx, p)
		if err != nil {
			return Summary{}, err
		}
		for _, t := range page {
			tags[t.Key] = t
		}
		if len(page) < p.Limit {
			break
		}
		last := page[len(page)-1]
		p.AfterTenant, p.AfterID = last.Tenant, last.ID
	}

	sc := s.NewScan(domain, report)
	for r, err := range rows {
		if err != nil {
			return Summary{}, err
		}
		if err := ctx.Err(); err != nil {
			return Summary{}, err
		}
		k := Key{Domain: domain, Tenant: r.Tenant, ID: r.ID}
		t, ok := tags[k]
		if !ok {
			sc.Row(r.Tenant, r.ID, r.Fields, nil)
			continue
		}
		delete(tags, k)
		sc.Row(r.Tenant, r.ID, r.Fields, &t)
	}
	orphans := slices.SortedFunc(maps.Values(tags), func(a, b Sealed) int { return compareKeys(a.Key, b.Key) })
	for _, t := range orphans {
		sc.Orphan(t)
	}

	digests, err := s.store.Digests(ctx, domain)
	if err != nil {
		return Summary{}, err
	}
	return sc.Finish(digests), nil
}

// BeginMessage resets e and begins the message a row's tag authenticates,
// the same bytes [AppendMessage] starts with; the caller appends the
// fields with e's methods.
func BeginMessage(e *canon.Encoder, domain, tenant, id string) {
	e.Reset(rowDomain)
	e.String(domain)
	e.String(tenant)
	e.String(id)
}
