package integritypg

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/chatsdk/compliance/integrity"
	"github.com/chatsdk/compliance/internal/canon"
	"github.com/jackc/pgx/v5"
)

type rowKey struct{ tenant, id string }

// streamRow is a protected row as read: its key and the message its tag
// must authenticate.
type streamRow struct {
	rowKey
	msg []byte
}

// pair is a row matched with its tag; a nil msg marks a tag without a row
// and a nil tag (zero Sealed) a row without a tag.
type pair struct {
	row streamRow
	s   integrity.Sealed
	has bool // s is set
}

const streamBatch = 4096

// snapshotTx begins a repeatable-read, read-only transaction, on the
// snapshot snap when it is not empty.
func (v *Verifier) snapshotTx(ctx context.Context, snap string) (pgx.Tx, error) {
	tx, err := v.cfg.Store.q.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("integritypg: verify: %w", err)
	}
	if _, err := tx.Exec(ctx, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"); err != nil {
		_ = tx.Rollback(ctx)
		return nil, fmt.Errorf("integritypg: verify: snapshot: %w", err)
	}
	if snap != "" {
		if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+strings.ReplaceAll(snap, "'", "")+"'"); err != nil {
			_ = tx.Rollback(ctx)
			return nil, fmt.Errorf("integritypg: verify: share snapshot: %w", err)
		}
	}
	return tx, nil
}

// verifyStreams scans the table and its tags at once, on two transactions
// that share one snapshot, and matches them by key in memory.
func (v *Verifier) verifyStreams(ctx context.Context, t Table, report func(integrity.Finding)) (integrity.Summary, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	rowTx, err := v.snapshotTx(ctx, "")
	if err != nil {
		return integrity.Summary{}, err
	}
	defer rowTx.Rollback(ctx) //nolint:errcheck // read-only
	var snap string
	if err := rowTx.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&snap); err != nil {
		return integrity.Summary{}, fmt.Errorf("integritypg: verify: export snapshot: %w", err)
	}
	tagTx, err := v.snapshotTx(ctx, snap)
	if err != nil {
		return integrity.Summary{}, err
	}
	defer tagTx.Rollback(ctx) //nolint:errcheck // read-only

	sel := t.selectList("d")
	rows, err := rowTx.Query(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM "+t.ident()+" d", binaryFormats(len(sel)))
	if err != nil {
		return integrity.Summary{}, fmt.Errorf("integritypg: verify %s: %w", t.Name, err)
	}
	decs, err := t.decoders(rows, 2)
	if err != nil {
		rows.Close()
		return integrity.Summary{}, err
	}

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	rowCh := make(chan []streamRow, 8)
	tagCh := make(chan []integrity.Sealed, 8)

	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(rowCh)
		defer rows.Close()
		if err := readRows(ctx, rows, t, decs, rowCh); err != nil {
			errs <- err
			cancel()
		}
	}()
	go func() {
		defer wg.Done()
		defer close(tagCh)
		if err := readTags(ctx, tagTx, v.cfg.Store.tags, t.Domain, tagCh); err != nil {
			errs <- err
			cancel()
		}
	}()

	main := v.cfg.Sealer.NewScan(t.Domain, report)
	check, finish := v.checkers(t.Domain, report, main)
	// TODO: the pending maps hold whatever one scan has read ahead of the
	// other; for a table whose physical order is far from its tags' (say,
	// after a bulk reseal or a CLUSTER) that is most of the table. Spilling
	// or falling back to JoinInDatabase past a limit would bound it.
	pendingRows := map[rowKey]streamRow{}
	pendingTags := map[rowKey]integrity.Sealed{}
	out := make([]pair, 0, streamBatch)
	flush := func() {
		if len(out) > 0 {
			check(out)
			out = make([]pair, 0, streamBatch)
		}
	}
	for rowCh != nil || tagCh != nil {
		select {
		case batch, ok := <-rowCh:
			if !ok {
				rowCh = nil
				continue
			}
			for _, r := range batch {
				if s, ok := pendingTags[r.rowKey]; ok {
					delete(pendingTags, r.rowKey)
					out = append(out, pair{row: r, s: s, has: true})
				} else if _, dup := pendingRows[r.rowKey]; dup {
					// A second row with a key already waiting (a table
					// without a unique key) has no tag of its own. One that
					// comes after its key's tag was taken waits forever,
					// and is reported unsealed at the end just the same.
					out = append(out, pair{row: r})
				} else {
					pendingRows[r.rowKey] = r
				}
			}
		case batch, ok := <-tagCh:
			if !ok {
				tagCh = nil
				continue
			}
			for _, s := range batch {
				k := rowKey{s.Tenant, s.ID}
				if r, ok := pendingRows[k]; ok {
					delete(pendingRows, k)
					out = append(out, pair{row: r, s: s, has: true})
				} else {
					pendingTags[k] = s
				}
			}
		}
		if len(out) >= streamBatch {
			flush()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		finish()
		return integrity.Summary{}, err
	}
	for _, r := range pendingRows {
		out = append(out, pair{row: r})
		if len(out) >= streamBatch {
			flush()
		}
	}
	for _, s := range pendingTags {
		out = append(out, pair{s: s, has: true})
		if len(out) >= streamBatch {
			flush()
		}
	}
	flush()
	finish()

	digests, err := v.cfg.Store.With(rowTx).Digests(ctx, t.Domain)
	if err != nil {
		return integrity.Summary{}, err
	}
	return main.Finish(digests), nil
}

// checkers returns a function that checks a batch of pairs, on worker
// goroutines when there are several, and one that waits for them and
// merges their scans into main.
func (v *Verifier) checkers(domain string, report func(integrity.Finding), main *integrity.Scan) (func([]pair), func()) {
	if v.cfg.Workers <= 1 {
		return func(ps []pair) { checkPairs(main, ps) }, func() {}
	}
	work := make(chan []pair, v.cfg.Workers)
	var wg sync.WaitGroup
	scans := make([]*integrity.Scan, v.cfg.Workers)
	for i := range scans {
		sc := v.cfg.Sealer.NewScan(domain, report)
		scans[i] = sc
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ps := range work {
				checkPairs(sc, ps)
			}
		}()
	}
	var once sync.Once
	return func(ps []pair) { work <- ps }, func() {
		once.Do(func() {
			close(work)
			wg.Wait()
			for _, sc := range scans {
				main.Merge(sc)
			}
		})
	}
}

func checkPairs(sc *integrity.Scan, ps []pair) {
	for i := range ps {
		p := &ps[i]
		switch {
		case p.row.msg == nil:
			sc.Orphan(p.s)
		case p.has:
			sc.RowMessage(p.row.tenant, p.row.id, p.row.msg, &p.s)
		default:
			sc.RowMessage(p.row.tenant, p.row.id, p.row.msg, nil)
		}
	}
}

func readRows(ctx context.Context, rows pgx.Rows, t Table, decs []decoder, out chan<- []streamRow) error {
	var (
		enc        canon.Encoder
		lastTenant string
		fields     = make([]canon.Value, len(decs))
		batch      = make([]streamRow, 0, streamBatch)
		err        error
	)
	for rows.Next() {
		raw := rows.RawValues()
		if string(raw[0]) != lastTenant {
			lastTenant = string(raw[0])
		}
		r := streamRow{rowKey: rowKey{tenant: lastTenant, id: string(raw[1])}}
		for i, dec := range decs {
			if raw[2+i] == nil {
				fields[i] = canon.Null()
				continue
			}
			if fields[i], err = dec(raw[2+i]); err != nil {
				return err
			}
		}
		integrity.BeginMessage(&enc, t.Domain, r.tenant, r.id)
		for _, f := range fields {
			enc.Value(f)
		}
		r.msg = append(make([]byte, 0, len(enc.Bytes())), enc.Bytes()...)
		batch = append(batch, r)
		if len(batch) == streamBatch {
			select {
			case out <- batch:
			case <-ctx.Done():
				return ctx.Err()
			}
			batch = make([]streamRow, 0, streamBatch)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("integritypg: verify %s: %w", t.Name, err)
	}
	if len(batch) > 0 {
		select {
		case out <- batch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func readTags(ctx context.Context, tx pgx.Tx, tags, domain string, out chan<- []integrity.Sealed) error {
	rows, err := tx.Query(ctx, "SELECT app_id, row_id, scope, key_id, tag FROM "+tags+" WHERE domain = $1", binaryFormats(5), domain)
	if err != nil {
		return fmt.Errorf("integritypg: verify: read tags: %w", err)
	}
	defer rows.Close()
	var lastTenant, lastScope string
	batch := make([]integrity.Sealed, 0, streamBatch)
	for rows.Next() {
		raw := rows.RawValues()
		if string(raw[0]) != lastTenant {
			lastTenant = string(raw[0])
		}
		if string(raw[2]) != lastScope {
			lastScope = string(raw[2])
		}
		s := integrity.Sealed{Key: integrity.Key{Domain: domain, Tenant: lastTenant, ID: string(raw[1])}, Scope: lastScope,
			Tag: append([]byte(nil), raw[4]...)}
		if len(raw[3]) == 8 {
			s.KeyID = uint32(be64(raw[3]))
		}
		batch = append(batch, s)
		if len(batch) == streamBatch {
			select {
			case out <- batch:
			case <-ctx.Done():
				return ctx.Err()
			}
			batch = make([]integrity.Sealed, 0, streamBatch)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("integritypg: verify: read tags: %w", err)
	}
	if len(batch) > 0 {
		select {
		case out <- batch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
