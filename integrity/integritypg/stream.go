package integritypg

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"unsafe"

	"github.com/chatsdk/compliance/integrity"
	"github.com/chatsdk/compliance/internal/canon"
	"github.com/jackc/pgx/v5"
)

type rowKey struct{ tenant, id string }

// streamRow is a protected row as read: its key and the message its tag
// must authenticate. id and msg alias the batch buffer they were read
// into, which is never written again.
type streamRow struct {
	tenant string
	id     []byte
	msg    []byte
}

// key returns r's key as map key, copying the id.
func (r streamRow) key() rowKey { return rowKey{r.tenant, string(r.id)} }

// detach returns r with its own copy of id and msg (one allocation), so
// that a row kept waiting for its tag does not pin a whole batch buffer.
func (r streamRow) detach() streamRow {
	b := make([]byte, len(r.id)+len(r.msg))
	n := copy(b, r.id)
	copy(b[n:], r.msg)
	r.id, r.msg = b[:n:n], b[n:]
	return r
}

// pair is a row matched with its tag; a nil msg marks a tag without a row
// and has false a row without a tag.
type pair struct {
	tenant, id string
	msg        []byte
	s          integrity.Sealed
	has        bool // s is set
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
	apps, err := t.appenders(rows, 2)
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
		if err := readRows(ctx, rows, t, apps, rowCh); err != nil {
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
	m := newMatcher(check, &v.pairs)
	var (
		rb []streamRow
		tb []integrity.Sealed
		rk *rowKey // the key of rb[0], once made
	)
	for {
		// Refill whichever side is used up. Waiting on one side while the
		// other has rows is what lets the two streams, both in physical
		// order and usually in the same order, pair up head to head.
		if len(rb) == 0 && rowCh != nil {
			var ok bool
			if rb, ok = <-rowCh; !ok {
				rowCh = nil
			}
		}
		if len(tb) == 0 && tagCh != nil {
			var ok bool
			if tb, ok = <-tagCh; !ok {
				tagCh = nil
			}
		}
		switch {
		case len(rb) > 0 && len(tb) > 0:
			r, s := rb[0], &tb[0]
			if r.tenant == s.Tenant && string(r.id) == s.ID {
				m.emit(pair{tenant: s.Tenant, id: s.ID, msg: r.msg, s: *s, has: true})
				rb, tb, rk = rb[1:], tb[1:], nil
				continue
			}
			// Out of step (tags rewritten since, rows moved, a row or tag
			// too many). A head whose partner is waiting pairs with it and
			// moves alone, which brings the heads back into step after a
			// row or tag too many; two heads new to the maps both wait.
			if rk == nil {
				k := r.key()
				rk = &k
			}
			if m.pairRow(*rk, r) {
				rb, rk = rb[1:], nil
				continue
			}
			if m.pairTag(s) {
				tb = tb[1:]
				continue
			}
			m.keepRow(*rk, r)
			m.keepTag(s)
			rb, tb, rk = rb[1:], tb[1:], nil
		case len(rb) > 0:
			for _, r := range rb {
				if k := r.key(); !m.pairRow(k, r) {
					m.keepRow(k, r)
				}
			}
			rb, rk = nil, nil
		case len(tb) > 0:
			for i := range tb {
				if !m.pairTag(&tb[i]) {
					m.keepTag(&tb[i])
				}
			}
			tb = nil
		}
		if rowCh == nil && tagCh == nil && len(rb) == 0 && len(tb) == 0 {
			break
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		finish()
		return integrity.Summary{}, err
	}
	m.drain()
	finish()

	digests, err := v.cfg.Store.With(rowTx).Digests(ctx, t.Domain)
	if err != nil {
		return integrity.Summary{}, err
	}
	return main.Finish(digests), nil
}

// matcher pairs rows with tags and hands the pairs, in batches, to check.
// Rows and tags it has not paired yet wait in maps, copied out of their
// batch buffers.
//
// TODO: the maps hold whatever one scan has read ahead of the other; for
// a table whose physical order is far from its tags' (say, after a bulk
// reseal or a CLUSTER) that is most of the table. Spilling, or falling
// back to JoinInDatabase past a limit, would bound it.
type matcher struct {
	check       func([]pair)
	pairs       *sync.Pool
	out         []pair
	pendingRows map[rowKey]streamRow
	pendingTags map[rowKey]integrity.Sealed
}

func newMatcher(check func([]pair), pairs *sync.Pool) *matcher {
	return &matcher{check: check, pairs: pairs, out: getPairs(pairs),
		pendingRows: map[rowKey]streamRow{}, pendingTags: map[rowKey]integrity.Sealed{}}
}

func (m *matcher) emit(p pair) {
	m.out = append(m.out, p)
	if len(m.out) >= streamBatch {
		m.flush()
	}
}

func (m *matcher) flush() {
	if len(m.out) > 0 {
		m.check(m.out)
		m.out = getPairs(m.pairs)
	}
}

// pairRow pairs r, whose key is k, with its waiting tag, if there is one.
func (m *matcher) pairRow(k rowKey, r streamRow) bool {
	if len(m.pendingTags) == 0 {
		return false
	}
	s, ok := m.pendingTags[k]
	if ok {
		delete(m.pendingTags, k)
		m.emit(pair{tenant: k.tenant, id: k.id, msg: r.msg, s: s, has: true})
	}
	return ok
}

// pairTag pairs s with its waiting row, if there is one.
func (m *matcher) pairTag(s *integrity.Sealed) bool {
	if len(m.pendingRows) == 0 {
		return false
	}
	k := rowKey{s.Tenant, s.ID}
	r, ok := m.pendingRows[k]
	if ok {
		delete(m.pendingRows, k)
		m.emit(pair{tenant: k.tenant, id: k.id, msg: r.msg, s: *s, has: true})
	}
	return ok
}

// keepRow makes r, whose key is k, wait for its tag. A second row with a
// key already waiting (a table without a unique key) has no tag of its
// own and is reported unsealed at once; one that comes after its key's
// tag was taken waits for good, and is reported unsealed at the end just
// the same.
func (m *matcher) keepRow(k rowKey, r streamRow) {
	if _, dup := m.pendingRows[k]; dup {
		m.emit(pair{tenant: k.tenant, id: k.id, msg: r.msg})
		return
	}
	m.pendingRows[k] = r.detach()
}

// keepTag makes s wait for its row.
func (m *matcher) keepTag(s *integrity.Sealed) {
	c := *s
	c.Tag = bytes.Clone(c.Tag)
	m.pendingTags[rowKey{s.Tenant, s.ID}] = c
}

// drain reports what never paired: rows without tags, tags without rows.
func (m *matcher) drain() {
	for k, r := range m.pendingRows {
		m.emit(pair{tenant: k.tenant, id: k.id, msg: r.msg})
	}
	for _, s := range m.pendingTags {
		m.emit(pair{s: s, has: true})
	}
	m.flush()
}

// getPairs returns an empty batch of pairs, recycled when pool has one:
// a batch is large and full of pointers, so making one per flush costs
// the garbage collector more than the rest of the matching.
func getPairs(pool *sync.Pool) []pair {
	if ps, ok := pool.Get().(*[]pair); ok {
		return (*ps)[:0]
	}
	return make([]pair, 0, streamBatch)
}

// putPairs recycles a checked batch, cleared so it pins no buffers.
func (v *Verifier) putPairs(ps []pair) {
	clear(ps)
	ps = ps[:0]
	v.pairs.Put(&ps)
}

// checkers returns a function that checks a batch of pairs, on worker
// goroutines when there are several, and one that waits for them and
// merges their scans into main.
func (v *Verifier) checkers(domain string, report func(integrity.Finding), main *integrity.Scan) (func([]pair), func()) {
	if v.cfg.Workers <= 1 {
		return func(ps []pair) { checkPairs(main, ps); v.putPairs(ps) }, func() {}
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
				v.putPairs(ps)
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
		case p.msg == nil:
			sc.Orphan(p.s)
		case p.has:
			sc.RowMessage(p.tenant, p.id, p.msg, &p.s)
		default:
			sc.RowMessage(p.tenant, p.id, p.msg, nil)
		}
	}
}

// appenders checks the result columns from first on against t's declared
// kinds, as decoders does, and returns their appenders.
func (t Table) appenders(rows pgx.Rows, first int) ([]appender, error) {
	if _, err := t.decoders(rows, first); err != nil {
		return nil, err
	}
	fds := rows.FieldDescriptions()
	apps := make([]appender, len(t.Columns))
	for i, c := range t.Columns {
		a, err := appenderFor(fds[first+i].DataTypeOID, c.Kind)
		if err != nil {
			return nil, err
		}
		apps[i] = a
	}
	return apps, nil
}

// interner hands out one string per distinct byte string, so tenants and
// scopes repeated on every row cost no allocation after the first.
type interner map[string]string

func (in interner) get(b []byte) string {
	if s, ok := in[string(b)]; ok {
		return s
	}
	s := string(b)
	in[s] = s
	return s
}

// readRows reads the table's rows and encodes each one's message into a
// buffer per batch, which it never writes again once the batch is sent.
func readRows(ctx context.Context, rows pgx.Rows, t Table, apps []appender, out chan<- []streamRow) error {
	var (
		enc     canon.Encoder
		tenants = interner{}
		batch   = make([]streamRow, 0, streamBatch)
		buf     []byte
		bufCap  = 64 << 10
		err     error
	)
	send := func() error {
		select {
		case out <- batch:
		case <-ctx.Done():
			return ctx.Err()
		}
		// The next buffer is sized on this one, so it rarely grows.
		bufCap = max(bufCap, len(buf)+len(buf)/8)
		batch, buf = make([]streamRow, 0, streamBatch), nil
		return nil
	}
	for rows.Next() {
		raw := rows.RawValues()
		if buf == nil {
			buf = make([]byte, 0, bufCap)
		}
		r := streamRow{tenant: tenants.get(raw[0])}
		start := len(buf)
		buf = append(buf, raw[1]...)
		idEnd := len(buf)

		// The id is passed as a string that aliases buf only for the
		// call, which copies it into enc.
		integrity.BeginMessage(&enc, t.Domain, r.tenant, unsafe.String(unsafe.SliceData(raw[1]), len(raw[1])))
		buf = append(buf, enc.Bytes()...)
		for i, app := range apps {
			if raw[2+i] == nil {
				buf = canon.AppendNull(buf)
				continue
			}
			if buf, err = app(buf, raw[2+i]); err != nil {
				return err
			}
		}
		r.id = buf[start:idEnd:idEnd]
		r.msg = buf[idEnd:len(buf):len(buf)]
		batch = append(batch, r)
		if len(batch) == streamBatch {
			if err := send(); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("integritypg: verify %s: %w", t.Name, err)
	}
	if len(batch) > 0 {
		return send()
	}
	return nil
}

func readTags(ctx context.Context, tx pgx.Tx, tags, domain string, out chan<- []integrity.Sealed) error {
	rows, err := tx.Query(ctx, "SELECT app_id, row_id, scope, key_id, tag FROM "+tags+" WHERE domain = $1", binaryFormats(5), domain)
	if err != nil {
		return fmt.Errorf("integritypg: verify: read tags: %w", err)
	}
	defer rows.Close()
	var (
		tenants, scopes = interner{}, interner{}
		batch           = make([]integrity.Sealed, 0, streamBatch)
		buf             []byte
	)
	send := func() error {
		select {
		case out <- batch:
		case <-ctx.Done():
			return ctx.Err()
		}
		batch, buf = make([]integrity.Sealed, 0, streamBatch), nil
		return nil
	}
	for rows.Next() {
		raw := rows.RawValues()
		if buf == nil {
			buf = make([]byte, 0, streamBatch*40) // Tink prefix and HMAC-SHA256
		}
		start := len(buf)
		buf = append(buf, raw[4]...)
		s := integrity.Sealed{Key: integrity.Key{Domain: domain, Tenant: tenants.get(raw[0]), ID: string(raw[1])},
			Scope: scopes.get(raw[2]), Tag: buf[start:len(buf):len(buf)]}
		if len(raw[3]) == 8 {
			s.KeyID = uint32(be64(raw[3]))
		}
		batch = append(batch, s)
		if len(batch) == streamBatch {
			if err := send(); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("integritypg: verify: read tags: %w", err)
	}
	if len(batch) > 0 {
		return send()
	}
	return nil
}
