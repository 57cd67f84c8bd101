package integrity

import (
	"context"
	"fmt"
	"slices"
)

// ResealParams configures [Sealer.Reseal].
type ResealParams struct {
	// Domain is the domain whose rows move to the primary key. Required.
	Domain string
	// Load returns the current records for keys (all of Domain), so their
	// old tags can be checked and new ones made. A key it does not return
	// is reported [Missing] and left alone. Required.
	Load func(ctx context.Context, keys []Key) ([]Record, error)
	// BatchSize is how many rows one store update reseals. Defaults to 500.
	BatchSize int
	// AfterTenant and AfterID resume a run after the last row a previous
	// run reported through Progress. Rows resealed already are skipped in
	// any case, because only rows under older keys are listed.
	AfterTenant, AfterID string
	// Progress, if not nil, is called after each committed batch with the
	// cursor to resume from.
	Progress func(tenant, id string)
	// Report, if not nil, receives rows that were not resealed: a row whose
	// old tag does not verify is [Altered] and keeps its tag, so a reseal
	// never launders a tampered row.
	Report func(Finding)
}

// ResealResult says what a reseal run did.
type ResealResult struct {
	// Resealed is the number of rows moved to the primary key.
	Resealed int
	// Skipped is the number of rows left under their old key (reported).
	Skipped int
	// Digests is the number of digests re-signed under the primary key.
	Digests int
	// Unused lists the enabled keys, other than the primary, that no tag
	// or digest in the store uses any more, in any domain: they can be
	// disabled and later destroyed. Usage is counted by the stored key
	// ids, which the verifier checks against the tags' own (a mismatch is
	// [Altered]); verify before destroying a key.
	Unused []uint32
}

// Reseal moves a domain's rows, batch by batch, from older keys to the
// primary key, then re-signs the domain's digests under it, and reports
// which older keys are no longer used. Each batch is one store update, so
// a run killed at any point loses nothing and a new run carries on.
func (s *Sealer) Reseal(ctx context.Context, p ResealParams) (ResealResult, error) {
	var res ResealResult
	if p.Domain == "" || p.Load == nil {
		return res, fmt.Errorf("%w: Reseal needs Domain and Load", ErrConfig)
	}
	if p.BatchSize <= 0 {
		p.BatchSize = 500
	}
	report := p.Report
	if report == nil {
		report = func(Finding) {}
	}
	primary := s.keys.primary

	lp := ListParams{Domain: p.Domain, AfterTenant: p.AfterTenant, AfterID: p.AfterID, ExceptKeyID: primary, Limit: p.BatchSize}
	for {
		page, err := s.store.List(ctx, lp)
		if err != nil {
			return res, err
		}
		if len(page) == 0 {
			break
		}
		n, skipped, err := s.resealBatch(ctx, p, page, report)
		if err != nil {
			return res, err
		}
		res.Resealed += n
		res.Skipped += skipped

		last := page[len(page)-1]
		lp.AfterTenant, lp.AfterID = last.Tenant, last.ID
		if p.Progress != nil {
			p.Progress(last.Tenant, last.ID)
		}
		if len(page) < lp.Limit {
			break
		}
	}

	digests, err := s.store.Digests(ctx, p.Domain)
	if err != nil {
		return res, err
	}
	for _, d := range digests {
		if d.KeyID == primary || d.fresh() {
			continue
		}
		err := s.store.Update(ctx, func(ctx context.Context, tx Tx) error {
			cur, err := tx.Digest(ctx, d.ScopeKey)
			if err != nil {
				return err
			}
			cur.ScopeKey = d.ScopeKey
			if cur.KeyID == primary {
				return nil
			}
			if err := s.keys.checkDigest(cur); err != nil {
				return ErrDigestTampered
			}
			if err := s.keys.signDigest(&cur); err != nil {
				return err
			}
			res.Digests++
			return tx.PutDigest(ctx, cur)
		})
		if err != nil {
			return res, err
		}
	}

	use, err := s.store.KeyUsage(ctx)
	if err != nil {
		return res, err
	}
	for _, id := range s.keys.ids {
		if id != primary && use[id] == 0 {
			res.Unused = append(res.Unused, id)
		}
	}
	return res, nil
}

func (s *Sealer) resealBatch(ctx context.Context, p ResealParams, page []Sealed, report func(Finding)) (int, int, error) {
	keys := make([]Key, len(page))
	for i, r := range page {
		keys[i] = r.Key
	}
	recs, err := p.Load(ctx, keys)
	if err != nil {
		return 0, 0, err
	}
	byKey := make(map[Key]Record, len(recs))
	for _, r := range recs {
		byKey[Key{Domain: r.Domain, Tenant: r.Tenant, ID: r.ID}] = r
	}
	slices.SortFunc(keys, compareKeys)

	var resealed, skipped int
	var findings []Finding
	err = s.store.Update(ctx, func(ctx context.Context, tx Tx) error {
		resealed, skipped, findings = 0, 0, nil
		cur, err := tx.Lock(ctx, keys)
		if err != nil {
			return err
		}
		var old, fresh []Sealed // old: what Put replaced
		for _, c := range cur {
			if c.KeyID == s.keys.primary {
				continue // resealed meanwhile
			}
			r, ok := byKey[c.Key]
			if !ok {
				skipped++
				findings = append(findings, Finding{Kind: Missing, Domain: c.Domain, Tenant: c.Tenant, ID: c.ID, Scope: c.Scope, KeyID: c.KeyID})
				continue
			}
			if s.keys.Check(r, c.Tag) != nil {
				skipped++
				findings = append(findings, Finding{Kind: Altered, Domain: c.Domain, Tenant: c.Tenant, ID: c.ID, Scope: c.Scope, KeyID: c.KeyID})
				continue
			}
			tag, err := s.keys.Tag(r)
			if err != nil {
				return err
			}
			fresh = append(fresh, Sealed{Key: c.Key, Scope: c.Scope, KeyID: s.keys.primary, Tag: tag})
		}
		if len(fresh) == 0 {
			return nil
		}
		if old, err = tx.Put(ctx, fresh); err != nil {
			return err
		}
		resealed = len(fresh)
		return s.adjust(ctx, tx, old, fresh)
	})
	if err != nil {
		return 0, 0, err
	}
	for _, f := range findings {
		report(f)
	}
	return resealed, skipped, nil
}
