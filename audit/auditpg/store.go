package auditpg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatsdk/compliance/audit"
)

// Querier is what the store runs SQL on. A *pgxpool.Pool, a *pgx.Conn and a
// pgx.Tx all satisfy it, so an entry can join the caller's transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

var (
	_ Querier = (*pgxpool.Pool)(nil)
	_ Querier = (*pgx.Conn)(nil)
	_ Querier = (pgx.Tx)(nil)
)

// Config configures a [Store]. The zero Config is usable.
type Config struct {
	// Schema holds the audit tables. Empty means the connection's
	// search_path.
	Schema string
	// Now is the clock Migrate uses to pick the partitions it creates.
	// Defaults to time.Now.
	Now func() time.Time
	// PartitionsAhead is how many monthly partitions past the current
	// month Migrate creates. Defaults to 3.
	PartitionsAhead int
	// DisableTree stops the Store writing the Merkle tree hashes of new
	// batches (see tree.go). The zero value keeps the tree. A stream
	// appended to with the tree off has no proofs after that point.
	DisableTree bool
}

// Store is an [audit.Store] on Postgres. The chain head of each stream is a
// row of audit_heads, and every batch moves it in the same statement that
// inserts the batch: a compare-and-set UPDATE from the head the Store last
// wrote (one round trip when no other instance wrote in between), or, when
// that fails, an UPDATE under SELECT … FOR UPDATE in a transaction. Either
// way the row lock orders writers across every instance, a batch lands
// whole or not at all, and UNIQUE (stream, seq) in each partition is the
// backstop. It is safe for concurrent use when db is (a pool is; a single
// connection or transaction is not).
type Store struct {
	db              Querier
	schema          string // quoted and dotted, or empty
	now             func() time.Time
	partitionsAhead int

	noTree bool
	tree   treeCache

	mu     sync.Mutex
	heads  map[string]audit.Head
	months map[string]bool // "2006-01" of partitions known to exist
}

var (
	_ audit.Store        = (*Store)(nil)
	_ audit.RangeScanner = (*Store)(nil)
)

// New returns a Store on db. Call [Store.Migrate] before first use.
func New(db Querier, cfg Config) (*Store, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: db is nil", audit.ErrConfig)
	}
	if cfg.PartitionsAhead < 0 {
		return nil, fmt.Errorf("%w: negative PartitionsAhead", audit.ErrConfig)
	}
	s := &Store{db: db, now: cfg.Now, partitionsAhead: cfg.PartitionsAhead, noTree: cfg.DisableTree,
		heads: map[string]audit.Head{}, months: map[string]bool{}}
	if cfg.Schema != "" {
		s.schema = pgx.Identifier{cfg.Schema}.Sanitize() + "."
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.partitionsAhead == 0 {
		s.partitionsAhead = 3
	}
	return s, nil
}

// sql fills in the schema placeholder.
func (s *Store) sql(q string) string { return strings.ReplaceAll(q, "{{schema}}", s.schema) }

const entryColumns = `seq, prev_hash, hash, tenant, at, actor, session_id, ip, user_agent, type,
	category, action, resource_type, resource_id, subject, success, failure_reason, metadata, retain_until`

// appendSQL moves the head from ($4, $5) to ($2, $3) and inserts the batch,
// or does neither when the head is elsewhere. It also makes the commit of
// its transaction wait for the WAL flush when the session has
// synchronous_commit off (a common tuning), since Record promises a
// durable entry; any stricter setting is kept.
const appendSQL = `WITH durable AS (
	SELECT set_config('synchronous_commit', 'on', true) FROM (SELECT current_setting('synchronous_commit') AS sc) c WHERE c.sc = 'off'
	UNION ALL SELECT 'kept'
), moved AS (
	UPDATE {{schema}}audit_heads SET seq = $2, hash = $3
	WHERE stream = $1 AND seq = $4 AND hash = $5 AND (SELECT count(*) FROM durable) > 0
	RETURNING 1
), tree AS (
	INSERT INTO {{schema}}audit_tree_hashes (stream, first_index, hashes)
	SELECT $1, $25::bigint, $26::bytea WHERE $26::bytea IS NOT NULL AND EXISTS (SELECT 1 FROM moved)
)
INSERT INTO {{schema}}audit_entries (stream, ` + entryColumns + `)
SELECT $1, u.* FROM unnest($6::bigint[], $7::bytea[], $8::bytea[], $9::text[], $10::timestamptz[],
	$11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[],
	$18::text[], $19::text[], $20::text[], $21::bool[], $22::text[], $23::jsonb[], $24::timestamptz[]) AS u
WHERE EXISTS (SELECT 1 FROM moved)`

// Append implements [audit.Store]. With a cached head it first tries the
// one-statement compare-and-set; when another writer moved the head, or
// none is cached, it appends in a transaction that holds the head row's
// lock (SELECT … FOR UPDATE), which cannot lose the race.
func (s *Store) Append(ctx context.Context, stream string, events []audit.Event) ([]audit.Entry, error) {
	if len(events) == 0 {
		return nil, nil
	}
	if head, ok := s.cachedHead(stream); ok {
		entries, err := audit.Link(head, events)
		if err != nil {
			return nil, err
		}
		tb, err := s.treeFor(ctx, s.db, head, entries)
		if err != nil {
			return nil, err
		}
		tag, err := s.db.Exec(ctx, s.sql(appendSQL), appendArgs(stream, head, entries, tb)...)
		switch {
		case err == nil && tag.RowsAffected() == int64(len(entries)):
			s.remember(entries[len(entries)-1])
			s.committed(stream, tb)
			return entries, nil
		case err == nil && tag.RowsAffected() != 0:
			s.forget(stream)
			return nil, fmt.Errorf("auditpg: append inserted %d of %d entries", tag.RowsAffected(), len(entries))
		case err != nil && !isNoPartition(err):
			s.forget(stream)
			return nil, fmt.Errorf("auditpg: append: %w", err)
		}
		// The head moved, or the month has no partition: take the lock.
		s.forget(stream)
	}

	entries, err := s.appendLocked(ctx, stream, events)
	if isNoPartition(err) {
		s.forgetMonths()
		if err := s.partitionsForEvents(ctx, events); err != nil {
			return nil, err
		}
		entries, err = s.appendLocked(ctx, stream, events)
	}
	if err != nil {
		return nil, err
	}
	s.remember(entries[len(entries)-1])
	return entries, nil
}

// appendLocked appends in a transaction of its own under the head lock.
func (s *Store) appendLocked(ctx context.Context, stream string, events []audit.Event) ([]audit.Entry, error) {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("auditpg: append: %w", err)
	}
	defer tx.Rollback(ctx)
	head, err := s.loadHead(ctx, tx, stream, true)
	if err != nil {
		return nil, err
	}
	entries, err := audit.Link(head, events)
	if err != nil {
		return nil, err
	}
	tb, err := s.treeFor(ctx, tx, head, entries)
	if err != nil {
		return nil, err
	}
	tag, err := tx.Exec(ctx, s.sql(appendSQL), appendArgs(stream, head, entries, tb)...)
	if err != nil {
		return nil, fmt.Errorf("auditpg: append: %w", err)
	}
	if tag.RowsAffected() != int64(len(entries)) {
		return nil, fmt.Errorf("%w: under a held lock", audit.ErrHeadMoved)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("auditpg: append commit: %w", err)
	}
	s.committed(stream, tb)
	return entries, nil
}

func (s *Store) partitionsForEvents(ctx context.Context, events []audit.Event) error {
	entries := make([]audit.Entry, len(events))
	for i := range events {
		entries[i].Time = events[i].Time
	}
	return s.partitionsFor(ctx, s.db, entries, false)
}

// AppendTx appends events to stream inside the caller's transaction tx, so
// the entries commit or roll back with the caller's own change. It locks
// the stream's head row until tx ends: keep such transactions short, since
// every other writer of the stream waits for them. The entries are durable
// only once the caller commits; if the session has synchronous_commit off,
// AppendTx turns it on for the rest of tx, so that commit waits for the
// flush.
func (s *Store) AppendTx(ctx context.Context, tx Querier, stream string, events []audit.Event) ([]audit.Entry, error) {
	if len(events) == 0 {
		return nil, nil
	}
	s.forget(stream)
	head, err := s.loadHead(ctx, tx, stream, true)
	if err != nil {
		return nil, err
	}
	entries, err := audit.Link(head, events)
	if err != nil {
		return nil, err
	}
	if err := s.partitionsFor(ctx, tx, entries, true); err != nil {
		return nil, err
	}
	tb, err := s.treeFor(ctx, tx, head, entries)
	if err != nil {
		return nil, err
	}
	tag, err := tx.Exec(ctx, s.sql(appendSQL), appendArgs(stream, head, entries, tb)...)
	if err != nil {
		return nil, fmt.Errorf("auditpg: append: %w", err)
	}
	if tag.RowsAffected() != int64(len(entries)) {
		return nil, fmt.Errorf("%w: under a held lock", audit.ErrHeadMoved)
	}
	return entries, nil
}

func appendArgs(stream string, head audit.Head, entries []audit.Entry, tb treeBatch) []any {
	n := len(entries)
	var (
		seq                                              = make([]int64, n)
		prev, hash                                       = make([][]byte, n), make([][]byte, n)
		tenant, actor, session, ip, ua, typ, cat, action = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		rtype, rid, subject, reason                      = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		at, retain                                       = make([]time.Time, n), make([]time.Time, n)
		success                                          = make([]bool, n)
		metadata                                         = make([]*string, n)
	)
	for i := range entries {
		e := &entries[i]
		seq[i], prev[i], hash[i] = int64(e.Seq), e.PrevHash, e.Hash
		tenant[i], actor[i], session[i], ip[i], ua[i] = e.Tenant, e.Actor, e.SessionID, e.IP, e.UserAgent
		typ[i], cat[i], action[i] = e.Type, string(e.Category), e.Action
		rtype[i], rid[i], subject[i], reason[i] = e.ResourceType, e.ResourceID, e.Subject, e.FailureReason
		at[i], retain[i], success[i] = e.Time, e.RetainUntil, e.Success
		if len(e.Metadata) > 0 {
			b, _ := json.Marshal(e.Metadata) // map[string]string cannot fail
			m := string(b)
			metadata[i] = &m
		}
	}
	last := entries[n-1]
	return []any{stream, int64(last.Seq), last.Hash, int64(head.Seq), head.Hash,
		seq, prev, hash, tenant, at, actor, session, ip, ua, typ, cat, action,
		rtype, rid, subject, success, reason, metadata, retain, tb.first, tb.hashes}
}

// partitionsFor creates, through q, the partitions of every month the
// entries fall in that this Store does not know to exist. When q is a
// caller's transaction (inTx), what it finds or creates is not
// remembered, since the caller may roll it back, and a creation holds a
// lock on the entries table until that transaction ends; Migrate and
// EnsurePartitions create months ahead so that this is rare.
func (s *Store) partitionsFor(ctx context.Context, q Querier, entries []audit.Entry, inTx bool) error {
	done := map[string]bool{}
	for i := range entries {
		t := entries[i].Time.UTC()
		key := t.Format("2006-01")
		s.mu.Lock()
		known := s.months[key]
		s.mu.Unlock()
		if known || done[key] {
			continue
		}
		done[key] = true
		if inTx {
			var exists bool
			name := s.sql("{{schema}}audit_entries_" + t.Format("200601"))
			if err := q.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", name).Scan(&exists); err != nil {
				return fmt.Errorf("auditpg: look up partition: %w", err)
			}
			if exists {
				continue
			}
		}
		if err := s.createPartition(ctx, q, t); err != nil {
			return err
		}
		if !inTx {
			s.markMonth(t)
		}
	}
	return nil
}

func (s *Store) markMonth(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.months[t.UTC().Format("2006-01")] = true
}

func (s *Store) forgetMonths() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.months)
}

func isNoPartition(err error) bool {
	var pgErr *pgconn.PgError
	// 23514 check_violation is what Postgres raises for "no partition of
	// relation found for row".
	return errors.As(err, &pgErr) && pgErr.Code == "23514" && strings.Contains(pgErr.Message, "partition")
}

// loadHead reads the stream's head, creating the row for a new stream. With
// lock it takes the row lock, which the caller's transaction then holds.
func (s *Store) loadHead(ctx context.Context, q Querier, stream string, lock bool) (audit.Head, error) {
	query := `SELECT seq, hash FROM {{schema}}audit_heads WHERE stream = $1`
	if lock {
		query += ` FOR UPDATE`
	}
	for try := 0; ; try++ {
		h := audit.Head{Stream: stream}
		var seq int64
		err := q.QueryRow(ctx, s.sql(query), stream).Scan(&seq, &h.Hash)
		if err == nil {
			h.Seq = uint64(seq)
			return h, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) || try > 0 {
			return audit.Head{}, fmt.Errorf("auditpg: read head: %w", err)
		}
		if _, err := q.Exec(ctx, s.sql(`INSERT INTO {{schema}}audit_heads (stream, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (stream) DO NOTHING`),
			stream, audit.GenesisHash()); err != nil {
			return audit.Head{}, fmt.Errorf("auditpg: create head: %w", err)
		}
	}
}

func (s *Store) cachedHead(stream string) (audit.Head, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.heads[stream]
	return h, ok
}

func (s *Store) remember(last audit.Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.heads) > 10000 {
		clear(s.heads) // a cache, not a registry: bound it crudely
	}
	s.heads[last.Stream] = audit.Head{Stream: last.Stream, Seq: last.Seq, Hash: last.Hash}
}

func (s *Store) forget(stream string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.heads, stream)
}

// Head implements [audit.Store].
func (s *Store) Head(ctx context.Context, stream string) (audit.Head, error) {
	h := audit.Head{Stream: stream}
	var seq int64
	err := s.db.QueryRow(ctx, s.sql(`SELECT seq, hash FROM {{schema}}audit_heads WHERE stream = $1`), stream).Scan(&seq, &h.Hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return audit.Head{Stream: stream, Hash: audit.GenesisHash()}, nil
	}
	if err != nil {
		return audit.Head{}, fmt.Errorf("auditpg: read head: %w", err)
	}
	h.Seq = uint64(seq)
	return h, nil
}

// Scan implements [audit.Store]. Entries come in seq order straight from
// the partitions' (stream, seq) indexes, duplicates and gaps included.
func (s *Store) Scan(ctx context.Context, stream string, from uint64, fn func(*audit.Entry) error) error {
	return s.ScanRange(ctx, stream, from, math.MaxInt64, fn)
}

// ScanRange implements [audit.RangeScanner]: Scan limited to
// from <= seq <= to.
func (s *Store) ScanRange(ctx context.Context, stream string, from, to uint64, fn func(*audit.Entry) error) error {
	to = min(to, math.MaxInt64)
	rows, err := s.db.Query(ctx, s.sql(`SELECT `+entryColumns+` FROM {{schema}}audit_entries
		WHERE stream = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq`), stream, int64(min(from, math.MaxInt64)), int64(to))
	if err != nil {
		return fmt.Errorf("auditpg: scan: %w", err)
	}
	defer rows.Close()
	e := audit.Entry{Stream: stream}
	var sc scanner
	raw, fast := newRawScanner(rows)
	for rows.Next() {
		if fast {
			if err := raw.scan(rows.RawValues(), &e); err != nil {
				return err
			}
		} else if err := sc.scan(rows, &e); err != nil {
			return err
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("auditpg: scan: %w", err)
	}
	return nil
}

// LastSeq implements [audit.RangeScanner].
func (s *Store) LastSeq(ctx context.Context, stream string) (uint64, error) {
	var last int64
	if err := s.db.QueryRow(ctx, s.sql(`SELECT coalesce(max(seq), 0) FROM {{schema}}audit_entries WHERE stream = $1`), stream).Scan(&last); err != nil {
		return 0, fmt.Errorf("auditpg: last seq: %w", err)
	}
	return uint64(last), nil
}

// scanner reads entry rows, reusing its buffers.
type scanner struct {
	seq      int64
	cat      string
	metadata []byte
}

func (sc *scanner) scan(rows pgx.Rows, e *audit.Entry) error {
	err := rows.Scan(&sc.seq, &e.PrevHash, &e.Hash, &e.Tenant, &e.Time, &e.Actor, &e.SessionID, &e.IP,
		&e.UserAgent, &e.Type, &sc.cat, &e.Action, &e.ResourceType, &e.ResourceID, &e.Subject,
		&e.Success, &e.FailureReason, &sc.metadata, &e.RetainUntil)
	if err != nil {
		return fmt.Errorf("auditpg: read entry: %w", err)
	}
	e.Seq = uint64(sc.seq)
	e.Category = audit.Category(sc.cat)
	e.Time, e.RetainUntil = e.Time.UTC(), e.RetainUntil.UTC()
	e.Metadata = nil
	if sc.metadata != nil {
		if err := json.Unmarshal(sc.metadata, &e.Metadata); err != nil {
			return fmt.Errorf("auditpg: read entry metadata at seq %d: %w", e.Seq, err)
		}
	}
	return nil
}

// Query implements [audit.Store].
func (s *Store) Query(ctx context.Context, q audit.Query) (audit.Page, error) {
	if q.Tenant == "" {
		return audit.Page{}, fmt.Errorf("%w: query tenant is empty", audit.ErrInvalidEvent)
	}
	where := []string{"tenant = $1"}
	args := []any{q.Tenant}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if q.Actor != "" {
		add("actor = $%d", q.Actor)
	}
	if q.ResourceType != "" {
		add("resource_type = $%d", q.ResourceType)
	}
	if q.ResourceID != "" {
		add("resource_id = $%d", q.ResourceID)
	}
	if q.Subject != "" {
		add("subject = $%d", q.Subject)
		where = append(where, "subject <> ''") // lets the partial index serve
	}
	if q.Type != "" {
		add("type = $%d", q.Type)
	}
	if q.Category != "" {
		add("category = $%d", string(q.Category))
	}
	if q.Success != nil {
		add("success = $%d", *q.Success)
	}
	if !q.Since.IsZero() {
		add("at >= $%d", q.Since)
	}
	if !q.Until.IsZero() {
		add("at < $%d", q.Until)
	}
	if q.Cursor != "" {
		c, err := audit.ParseCursor(q.Cursor)
		if err != nil {
			return audit.Page{}, err
		}
		args = append(args, c.Time, c.Stream, int64(c.Seq))
		n := len(args)
		where = append(where, fmt.Sprintf("(at, stream, seq) < ($%d, $%d, $%d)", n-2, n-1, n))
	}
	size := q.PageSize()
	args = append(args, size+1)
	sql := s.sql(`SELECT stream, ` + entryColumns + ` FROM {{schema}}audit_entries WHERE ` +
		strings.Join(where, " AND ") + fmt.Sprintf(` ORDER BY at DESC, stream DESC, seq DESC LIMIT $%d`, len(args)))

	rows, err := s.db.Query(ctx, sql, args...)
	if err != nil {
		return audit.Page{}, fmt.Errorf("auditpg: query: %w", err)
	}
	defer rows.Close()
	var (
		out []audit.Entry
		sc  scanner
	)
	for rows.Next() {
		var e audit.Entry
		if err := sc.scanWithStream(rows, &e); err != nil {
			return audit.Page{}, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return audit.Page{}, fmt.Errorf("auditpg: query: %w", err)
	}
	if len(out) <= size {
		return audit.Page{Entries: out}, nil
	}
	out = out[:size]
	return audit.Page{Entries: out, Next: audit.CursorAt(&out[size-1]).String()}, nil
}

func (sc *scanner) scanWithStream(rows pgx.Rows, e *audit.Entry) error {
	err := rows.Scan(&e.Stream, &sc.seq, &e.PrevHash, &e.Hash, &e.Tenant, &e.Time, &e.Actor, &e.SessionID, &e.IP,
		&e.UserAgent, &e.Type, &sc.cat, &e.Action, &e.ResourceType, &e.ResourceID, &e.Subject,
		&e.Success, &e.FailureReason, &sc.metadata, &e.RetainUntil)
	if err != nil {
		return fmt.Errorf("auditpg: read entry: %w", err)
	}
	e.Seq = uint64(sc.seq)
	e.Category = audit.Category(sc.cat)
	e.Time, e.RetainUntil = e.Time.UTC(), e.RetainUntil.UTC()
	if sc.metadata != nil {
		if err := json.Unmarshal(sc.metadata, &e.Metadata); err != nil {
			return fmt.Errorf("auditpg: read entry metadata: %w", err)
		}
	}
	return nil
}

// SaveCheckpoint implements [audit.Store].
func (s *Store) SaveCheckpoint(ctx context.Context, c audit.Checkpoint) error {
	_, err := s.db.Exec(ctx, s.sql(`INSERT INTO {{schema}}audit_checkpoints (stream, seq, kind, head, at, signature)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`),
		c.Stream, int64(c.Seq), string(c.Kind), c.Head, c.Time, c.Signature)
	if err != nil {
		return fmt.Errorf("auditpg: save checkpoint: %w", err)
	}
	return nil
}

// Checkpoints implements [audit.Store].
func (s *Store) Checkpoints(ctx context.Context, stream string) ([]audit.Checkpoint, error) {
	rows, err := s.db.Query(ctx, s.sql(`SELECT seq, kind, head, at, signature FROM {{schema}}audit_checkpoints
		WHERE stream = $1 ORDER BY seq, kind`), stream)
	if err != nil {
		return nil, fmt.Errorf("auditpg: checkpoints: %w", err)
	}
	defer rows.Close()
	var out []audit.Checkpoint
	for rows.Next() {
		c := audit.Checkpoint{Stream: stream}
		var seq int64
		var kind string
		if err := rows.Scan(&seq, &kind, &c.Head, &c.Time, &c.Signature); err != nil {
			return nil, fmt.Errorf("auditpg: read checkpoint: %w", err)
		}
		c.Seq, c.Kind, c.Time = uint64(seq), audit.CheckpointKind(kind), c.Time.UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auditpg: checkpoints: %w", err)
	}
	return out, nil
}
