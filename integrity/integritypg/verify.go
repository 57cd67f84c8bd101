package integritypg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/chatsdk/compliance/integrity"
	"github.com/chatsdk/compliance/internal/canon"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Column is one protected column of a [Table].
type Column struct {
	// Name is the column name.
	Name string
	// Kind is the canonical kind its values are sealed as: KindString for
	// text, varchar, char and uuid (lower-case, dashed), KindBytes for
	// bytea, KindInt for smallint, integer and bigint, KindBool for
	// boolean and KindTime for timestamptz and timestamp (read as UTC).
	Kind canon.Kind
}

// Table declares an application table whose rows are sealed, so the
// verifier can read them. The application must seal each row with the
// same domain, tenant, id (as Postgres prints it with ::text) and fields,
// in Columns order, that the table holds. Tenant and id should be unique
// together (a primary key); duplicates are reported, never trusted.
type Table struct {
	// Domain is the domain the rows are sealed in. Required.
	Domain string
	// Schema is the table's schema. Defaults to the search_path.
	Schema string
	// Name is the table's name. Defaults to Domain.
	Name string
	// IDColumn is the row id column. Defaults to "id".
	IDColumn string
	// TenantColumn is the tenant column. Defaults to "app_id".
	TenantColumn string
	// Columns are the protected columns, in sealing order.
	Columns []Column
}

func (t Table) withDefaults() (Table, error) {
	if t.Domain == "" {
		return t, fmt.Errorf("%w: Table.Domain is required", integrity.ErrConfig)
	}
	if t.Name == "" {
		t.Name = t.Domain
	}
	if t.IDColumn == "" {
		t.IDColumn = "id"
	}
	if t.TenantColumn == "" {
		t.TenantColumn = "app_id"
	}
	return t, nil
}

func (t Table) ident() string {
	if t.Schema == "" {
		return pgx.Identifier{t.Name}.Sanitize()
	}
	return pgx.Identifier{t.Schema, t.Name}.Sanitize()
}

// selectList is the table's tenant and id as text, then its protected
// columns, each qualified with alias.
func (t Table) selectList(alias string) []string {
	col := func(c string) string { return alias + "." + pgx.Identifier{c}.Sanitize() }
	cols := []string{"(" + col(t.TenantColumn) + ")::text", "(" + col(t.IDColumn) + ")::text"}
	for _, c := range t.Columns {
		cols = append(cols, col(c.Name))
	}
	return cols
}

func binaryFormats(n int) pgx.QueryResultFormats {
	f := make(pgx.QueryResultFormats, n)
	for i := range f {
		f[i] = pgx.BinaryFormatCode
	}
	return f
}

// decoders checks the result columns from first on against t's declared
// kinds.
func (t Table) decoders(rows pgx.Rows, first int) ([]decoder, error) {
	fds := rows.FieldDescriptions()
	decs := make([]decoder, len(t.Columns))
	for i, c := range t.Columns {
		fd := fds[first+i]
		if fd.Format != pgx.BinaryFormatCode {
			return nil, fmt.Errorf("%w: column %s not in binary format", ErrSchema, c.Name)
		}
		d, err := decoderFor(fd.DataTypeOID, c.Kind)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", t.Name, c.Name, err)
		}
		decs[i] = d
	}
	return decs, nil
}

// Loader returns a function that reads rows of t by key through q, as
// integrity.ResealParams.Load wants.
func Loader(q Querier, t Table) func(ctx context.Context, keys []integrity.Key) ([]integrity.Record, error) {
	return func(ctx context.Context, keys []integrity.Key) ([]integrity.Record, error) {
		t, err := t.withDefaults()
		if err != nil {
			return nil, err
		}
		tenants, ids := make([]string, 0, len(keys)), make([]string, 0, len(keys))
		for _, k := range keys {
			if k.Domain == t.Domain {
				tenants, ids = append(tenants, k.Tenant), append(ids, k.ID)
			}
		}
		sel := t.selectList("d")
		// TODO: comparing the columns as text keeps the query generic but
		// cannot use an index on a non-text id; fine for reseal batches on
		// modest tables, slow on huge ones.
		sql := "SELECT " + strings.Join(sel, ", ") + " FROM " + t.ident() + " d WHERE (" + sel[0] + ", " + sel[1] +
			") IN (SELECT * FROM unnest($1::text[], $2::text[]))"
		rows, err := q.Query(ctx, sql, binaryFormats(len(sel)), tenants, ids)
		if err != nil {
			return nil, fmt.Errorf("integritypg: load %s: %w", t.Name, err)
		}
		defer rows.Close()
		decs, err := t.decoders(rows, 2)
		if err != nil {
			return nil, err
		}
		var out []integrity.Record
		for rows.Next() {
			raw := rows.RawValues()
			r := integrity.Record{Domain: t.Domain, Tenant: string(raw[0]), ID: string(raw[1]), Fields: make([]canon.Value, len(decs))}
			for i, dec := range decs {
				if raw[2+i] == nil {
					continue // the zero Value is NULL
				}
				if r.Fields[i], err = dec(raw[2+i]); err != nil {
					return nil, err
				}
			}
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("integritypg: load %s: %w", t.Name, err)
		}
		return out, nil
	}
}

// VerifierConfig configures a [Verifier].
type VerifierConfig struct {
	// Store is the integrity store, on a pool (not a transaction: the
	// verifier opens its own read-only snapshot). Required.
	Store *Store
	// Sealer holds the keys that verify. Required.
	Sealer *integrity.Sealer
	// Tables are the tables a run verifies.
	Tables []Table
	// OnFinding, if not nil, is called with each finding of a run after
	// the findings are appended to integrity_findings, for alerting. It
	// carries identifiers only.
	OnFinding func(ctx context.Context, runID string, f integrity.Finding)
	// Job names the scheduled run in integrity_runs. Defaults to
	// "integrity.verify".
	Job string
	// Interval is the time between scheduled runs. Defaults to 24 hours.
	Interval time.Duration
	// Poll is how often [Verifier.Schedule] checks whether a run is due.
	// Defaults to one minute.
	Poll time.Duration
	// Workers is how many goroutines check tags while others read rows.
	// Defaults to GOMAXPROCS; 1 checks on the matching goroutine.
	Workers int
	// JoinInDatabase, when true, has Postgres join the table with its tags
	// and reads the result on one connection, with client memory bounded
	// by a batch. By default (false) the table and the tags are scanned at
	// once on two connections of the Store's pool and matched in memory,
	// which is several times faster but holds the rows one stream has read
	// ahead of the other; for tables sealed in insertion order that lag is
	// small. Without a *pgxpool.Pool behind the Store (a connection or a
	// transaction cannot run two scans at once) the verifier joins in the
	// database whatever this says.
	JoinInDatabase bool
	// Logger, if not nil, receives errors of scheduled runs (identifiers
	// only).
	Logger *slog.Logger
}

// Verifier verifies declared tables against their tags and digests. It is
// safe for concurrent use.
type Verifier struct {
	cfg   VerifierConfig
	pairs sync.Pool // of *[]pair, batches the streaming verifier reuses
}

// NewVerifier returns a Verifier, or an error wrapping
// integrity.ErrConfig that names the bad field.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: VerifierConfig.Store is required", integrity.ErrConfig)
	}
	if cfg.Sealer == nil {
		return nil, fmt.Errorf("%w: VerifierConfig.Sealer is required", integrity.ErrConfig)
	}
	for i, t := range cfg.Tables {
		t, err := t.withDefaults()
		if err != nil {
			return nil, err
		}
		cfg.Tables[i] = t
	}
	if cfg.Job == "" {
		cfg.Job = "integrity.verify"
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 24 * time.Hour
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Minute
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	return &Verifier{cfg: cfg}, nil
}

// batch is a run of rows handed from the reading goroutine to a worker.
type batch struct {
	msgs  []byte
	rows  []batchRow
	arena []byte
}

type batchRow struct {
	tenant, id string
	msgEnd     int
	sealed     bool
	orphan     bool
	s          integrity.Sealed
}

const batchRows = 512

// VerifyTable streams t and its tags in one read-only snapshot, checks
// every row's tag and every scope's digest, hands each finding to report
// (which may be nil; it is called from one goroutine at a time) and
// returns a summary. It does not record findings; [Verifier.Run] does.
//
// By default the table and its tags are read at once on two connections
// sharing an exported snapshot, and matched in the verifier; see
// VerifierConfig.JoinInDatabase for the alternative.
func (v *Verifier) VerifyTable(ctx context.Context, t Table, report func(integrity.Finding)) (integrity.Summary, error) {
	t, err := t.withDefaults()
	if err != nil {
		return integrity.Summary{}, err
	}
	var mu sync.Mutex
	safeReport := func(f integrity.Finding) {
		if report != nil {
			mu.Lock()
			report(f)
			mu.Unlock()
		}
	}
	if p, pool := v.cfg.Store.q.(*pgxpool.Pool); v.cfg.JoinInDatabase || !pool || p.Config().MaxConns < 2 {
		return v.verifyJoin(ctx, t, safeReport)
	}
	return v.verifyStreams(ctx, t, safeReport)
}

// verifyJoin has Postgres join the table with its tags (a full outer
// join) and streams the result on one connection.
func (v *Verifier) verifyJoin(ctx context.Context, t Table, safeReport func(integrity.Finding)) (integrity.Summary, error) {
	tx, err := v.cfg.Store.q.Begin(ctx)
	if err != nil {
		return integrity.Summary{}, fmt.Errorf("integritypg: verify: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only
	if _, err := tx.Exec(ctx, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"); err != nil {
		return integrity.Summary{}, fmt.Errorf("integritypg: verify: snapshot: %w", err)
	}

	sel := t.selectList("d")
	nf := len(t.Columns)
	sql := "SELECT " + strings.Join(sel, ", ") + ", t.app_id, t.row_id, t.scope, t.key_id, t.tag FROM " + t.ident() + " d" +
		" FULL OUTER JOIN (SELECT app_id, row_id, scope, key_id, tag FROM " + v.cfg.Store.tags + " WHERE domain = $1) t" +
		" ON t.app_id = " + sel[0] + " COLLATE \"C\" AND t.row_id = " + sel[1] + " COLLATE \"C\""
	rows, err := tx.Query(ctx, sql, binaryFormats(len(sel)+5), t.Domain)
	if err != nil {
		return integrity.Summary{}, fmt.Errorf("integritypg: verify %s: %w", t.Name, err)
	}
	defer rows.Close()
	apps, err := t.appenders(rows, 2)
	if err != nil {
		return integrity.Summary{}, err
	}

	main := v.cfg.Sealer.NewScan(t.Domain, safeReport)
	workers := v.cfg.Workers
	var (
		wg    sync.WaitGroup
		work  chan *batch
		free  chan *batch
		scans []*integrity.Scan
	)
	if workers > 1 {
		work, free = make(chan *batch, workers), make(chan *batch, 2*workers)
		for range 2 * workers {
			free <- &batch{}
		}
		for range workers {
			sc := v.cfg.Sealer.NewScan(t.Domain, safeReport)
			scans = append(scans, sc)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := range work {
					checkBatch(sc, b)
					free <- b
				}
			}()
		}
	}
	stop := func() {
		if work != nil {
			close(work)
			wg.Wait()
			work = nil
		}
	}
	defer stop()

	var (
		enc         canon.Encoder
		lastTenant  string
		lastScope   string
		b           = &batch{}
		tenantIdx   = 0
		idIdx       = 1
		tTenantIdx  = 2 + nf
		tIDIdx      = 3 + nf
		tScopeIdx   = 4 + nf
		tKeyIdx     = 5 + nf
		tTagIdx     = 6 + nf
		internBytes = func(raw []byte, last *string) string {
			if string(raw) != *last {
				*last = string(raw)
			}
			return *last
		}
	)
	if workers > 1 {
		b = <-free
	}
	b.reset()
	for rows.Next() {
		raw := rows.RawValues()
		var r batchRow
		if raw[tIDIdx] != nil {
			r.sealed = true
			r.s.Tenant = internBytes(raw[tTenantIdx], &lastTenant)
			r.s.ID = string(raw[tIDIdx])
			r.s.Scope = internBytes(raw[tScopeIdx], &lastScope)
			if len(raw[tKeyIdx]) == 8 {
				r.s.KeyID = uint32(int64(be64(raw[tKeyIdx])))
			}
			start := len(b.arena)
			b.arena = append(b.arena, raw[tTagIdx]...)
			r.s.Tag = b.arena[start:len(b.arena):len(b.arena)]
		}
		if raw[idIdx] == nil {
			r.orphan = true
		} else {
			if r.sealed {
				r.tenant, r.id = r.s.Tenant, r.s.ID
			} else {
				r.tenant, r.id = internBytes(raw[tenantIdx], &lastTenant), string(raw[idIdx])
			}
			integrity.BeginMessage(&enc, t.Domain, r.tenant, r.id)
			b.msgs = append(b.msgs, enc.Bytes()...)
			for i, app := range apps {
				if raw[2+i] == nil {
					b.msgs = canon.AppendNull(b.msgs)
					continue
				}
				if b.msgs, err = app(b.msgs, raw[2+i]); err != nil {
					return integrity.Summary{}, err
				}
			}
		}
		r.msgEnd = len(b.msgs)
		b.rows = append(b.rows, r)

		if len(b.rows) == batchRows {
			if workers > 1 {
				work <- b
				b = <-free
			} else {
				checkBatch(main, b)
			}
			b.reset()
		}
	}
	if err := rows.Err(); err != nil {
		return integrity.Summary{}, fmt.Errorf("integritypg: verify %s: %w", t.Name, err)
	}
	if workers > 1 {
		work <- b
	} else {
		checkBatch(main, b)
	}
	stop()
	for _, sc := range scans {
		main.Merge(sc)
	}

	digests, err := v.cfg.Store.With(tx).Digests(ctx, t.Domain)
	if err != nil {
		return integrity.Summary{}, err
	}
	return main.Finish(digests), nil
}

// reset empties b for reuse. Its rows have been checked by then, and
// findings carry strings, never slices of the arena.
func (b *batch) reset() {
	b.msgs, b.rows, b.arena = b.msgs[:0], b.rows[:0], b.arena[:0]
}

func checkBatch(sc *integrity.Scan, b *batch) {
	start := 0
	for i := range b.rows {
		r := &b.rows[i]
		switch {
		case r.orphan:
			sc.Orphan(r.s)
		case r.sealed:
			sc.RowMessage(r.tenant, r.id, b.msgs[start:r.msgEnd], &r.s)
		default:
			sc.RowMessage(r.tenant, r.id, b.msgs[start:r.msgEnd], nil)
		}
		start = r.msgEnd
	}
}

func be64(b []byte) uint64 {
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

// RunResult is what one run of the verifier found.
type RunResult struct {
	// ID names the run in integrity_findings.
	ID string
	// Tables holds each table's summary, by domain.
	Tables map[string]integrity.Summary
	// Findings is the number of findings recorded.
	Findings int
}

// OK reports whether the run found nothing wrong.
func (r RunResult) OK() bool { return r.Findings == 0 }

// Run verifies every configured table now, appends the findings to
// integrity_findings under a new run id, then hands each to OnFinding.
func (v *Verifier) Run(ctx context.Context) (RunResult, error) {
	return v.run(ctx, newRunID())
}

func (v *Verifier) run(ctx context.Context, id string) (RunResult, error) {
	res := RunResult{ID: id, Tables: map[string]integrity.Summary{}}
	var found []integrity.Finding
	for _, t := range v.cfg.Tables {
		// TODO: findings are held in memory until the table is done; a
		// table where most rows are bad holds them all.
		sum, err := v.VerifyTable(ctx, t, func(f integrity.Finding) { found = append(found, f) })
		if err != nil {
			return res, err
		}
		res.Tables[t.Domain] = sum
	}
	res.Findings = len(found)

	werr := v.record(ctx, id, found)
	if v.cfg.OnFinding != nil {
		for _, f := range found {
			v.cfg.OnFinding(ctx, id, f)
		}
	}
	return res, werr
}

func (v *Verifier) record(ctx context.Context, runID string, found []integrity.Finding) error {
	for len(found) > 0 {
		n := min(len(found), 1000)
		chunk := found[:n]
		found = found[n:]
		var dom, app, scope, row, kind []string
		var key, want, got []int64
		for _, f := range chunk {
			dom, app, scope, row, kind = append(dom, f.Domain), append(app, f.Tenant), append(scope, f.Scope), append(row, f.ID), append(kind, f.Kind.String())
			key, want, got = append(key, int64(f.KeyID)), append(want, int64(f.WantCount)), append(got, int64(f.GotCount))
		}
		_, err := v.cfg.Store.q.Exec(ctx, `INSERT INTO `+v.cfg.Store.finds+`
			(run_id, domain, app_id, scope, row_id, kind, key_id, want_count, got_count)
			SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[], $8::int8[], $9::int8[])`,
			runID, dom, app, scope, row, kind, key, want, got)
		if err != nil {
			return fmt.Errorf("integritypg: record findings: %w", err)
		}
	}
	return nil
}

// RunDue performs a run if the schedule says one is due, claiming it in
// integrity_runs so that of several instances only one runs each period.
// It reports whether it ran.
func (v *Verifier) RunDue(ctx context.Context) (bool, RunResult, error) {
	q := v.cfg.Store.q
	if _, err := q.Exec(ctx, `INSERT INTO `+v.cfg.Store.runs+` (job, next_run) VALUES ($1, now()) ON CONFLICT DO NOTHING`, v.cfg.Job); err != nil {
		return false, RunResult{}, fmt.Errorf("integritypg: schedule: %w", err)
	}
	id := newRunID()
	var claimed bool
	err := q.QueryRow(ctx, `UPDATE `+v.cfg.Store.runs+`
		SET next_run = now() + make_interval(secs => $2), last_started = now(), last_run_id = $3
		WHERE job = $1 AND next_run <= now() RETURNING true`, v.cfg.Job, v.cfg.Interval.Seconds(), id).Scan(&claimed)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, RunResult{}, nil
	}
	if err != nil {
		return false, RunResult{}, fmt.Errorf("integritypg: schedule: %w", err)
	}

	res, err := v.run(ctx, id)
	if err != nil {
		// Fail closed: a run that could not finish is due again at once,
		// on whichever instance polls next.
		_, _ = q.Exec(context.WithoutCancel(ctx), `UPDATE `+v.cfg.Store.runs+` SET next_run = now() WHERE job = $1 AND last_run_id = $2`, v.cfg.Job, id)
		return true, res, err
	}
	if _, err := q.Exec(ctx, `UPDATE `+v.cfg.Store.runs+` SET last_finished = now() WHERE job = $1 AND last_run_id = $2`, v.cfg.Job, id); err != nil {
		return true, res, fmt.Errorf("integritypg: schedule: %w", err)
	}
	return true, res, nil
}

// Schedule calls [Verifier.RunDue] now and every Poll until ctx ends, and
// returns ctx's error. Errors of a run go to Logger; a run that failed is
// due again at the next poll.
func (v *Verifier) Schedule(ctx context.Context) error {
	tick := time.NewTicker(v.cfg.Poll)
	defer tick.Stop()
	for {
		ran, res, err := v.RunDue(ctx)
		if v.cfg.Logger != nil {
			switch {
			case err != nil:
				v.cfg.Logger.ErrorContext(ctx, "integrity verification failed", "job", v.cfg.Job, "run", res.ID, "error", err)
			case ran:
				v.cfg.Logger.InfoContext(ctx, "integrity verification done", "job", v.cfg.Job, "run", res.ID, "findings", res.Findings)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func newRunID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
