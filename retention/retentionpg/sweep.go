package retentionpg

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/chatsdk/compliance/retention"
)

// targetSQL is a target's identifiers, quoted, and the types of the columns
// parameters are compared with (a cursor id is stored as text and cast
// back, so that a bigint id orders as a number).
type targetSQL struct {
	table                                string
	id, tenant, time, channel, user, res string // quoted column names; channel, user may be ""
	idType, tenantType, channelType      string
	userType, resType                    string
	// byCTID: a plain table without children, where the rows a batch has
	// locked can be deleted by their physical address. A partitioned or
	// inherited table repeats ctids across partitions, so its batches
	// delete by id.
	byCTID bool
	// minMax is the id as min and max aggregate it: the id itself, or its
	// text for a type with no min (uuid).
	minMax string
}

// target returns t's identifiers, looking up its column types once.
func (s *Store) target(ctx context.Context, t retention.Target) (*targetSQL, error) {
	s.mu.Lock()
	ts, ok := s.targets[t.Name]
	s.mu.Unlock()
	if ok {
		return ts, nil
	}

	quote := func(col string) string {
		if col == "" {
			return ""
		}
		return pgx.Identifier{col}.Sanitize()
	}
	ts = &targetSQL{
		table:   pgx.Identifier(strings.Split(t.Table, ".")).Sanitize(),
		id:      quote(t.ID),
		tenant:  quote(t.Tenant),
		time:    quote(t.Time),
		channel: quote(t.Channel),
		user:    quote(t.User),
		res:     quote(t.Resource),
	}
	typeOf := func(col string) (string, error) {
		var typ string
		err := s.db.QueryRow(ctx, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute
			WHERE attrelid = $1::regclass AND attname = $2 AND attnum > 0 AND NOT attisdropped`, ts.table, col).Scan(&typ)
		if errors.Is(err, pgx.ErrNoRows) {
			return "", fmt.Errorf("%w: target %s has no column %s", retention.ErrInvalid, t.Name, col)
		}
		if err != nil {
			return "", fmt.Errorf("retentionpg: describe target %s: %w", t.Name, err)
		}
		return typ, nil
	}
	var plain bool
	if err := s.db.QueryRow(ctx, "SELECT relkind = 'r' AND NOT relhassubclass FROM pg_class WHERE oid = $1::regclass", ts.table).Scan(&plain); err != nil {
		return nil, fmt.Errorf("retentionpg: describe target %s: %w", t.Name, err)
	}
	ts.byCTID = plain
	var ordered bool
	if err := s.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_attribute a ON p.proargtypes[0] = a.atttypid
		WHERE p.proname = 'min' AND p.prokind = 'a' AND a.attrelid = $1::regclass AND a.attname = $2)`, ts.table, t.ID).Scan(&ordered); err != nil {
		return nil, fmt.Errorf("retentionpg: describe target %s: %w", t.Name, err)
	}
	ts.minMax = "id"
	if !ordered {
		ts.minMax = "id::text"
	}
	var err error
	if ts.idType, err = typeOf(t.ID); err != nil {
		return nil, err
	}
	if ts.tenantType, err = typeOf(t.Tenant); err != nil {
		return nil, err
	}
	if _, err = typeOf(t.Time); err != nil {
		return nil, err
	}
	if t.Channel != "" {
		if ts.channelType, err = typeOf(t.Channel); err != nil {
			return nil, err
		}
	}
	if t.User != "" {
		if ts.userType, err = typeOf(t.User); err != nil {
			return nil, err
		}
	}
	if ts.resType, err = typeOf(t.Resource); err != nil {
		return nil, err
	}

	s.mu.Lock()
	s.targets[t.Name] = ts
	s.mu.Unlock()
	return ts, nil
}

// args collects positional parameters.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// due is the WHERE clause of a scope's due rows, for table alias t.
func (ts *targetSQL) due(a *args, appID string, scope retention.Scope, exclude []string, cutoff time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "t.%s = %s::text::%s AND t.%s < %s", ts.tenant, a.add(appID), ts.tenantType, ts.time, a.add(cutoff))
	switch {
	case ts.channel == "":
	case scope.Kind == retention.ScopeChannel:
		fmt.Fprintf(&b, " AND t.%s = %s::text::%s", ts.channel, a.add(scope.ID), ts.channelType)
	case len(exclude) > 0:
		fmt.Fprintf(&b, " AND (t.%[1]s IS NULL OR t.%[1]s::text <> ALL(%[2]s::text[]))", ts.channel, a.add(exclude))
	}
	return b.String()
}

// held is the condition that an active hold covers the row aliased alias.
// A target without a channel (user) column is wholly covered by any channel
// (user) hold of the tenant: it cannot tell whose rows are whose.
func (s *Store) held(ts *targetSQL, alias, appArg string) string {
	match := func(kind, col, typ string) string {
		if col == "" {
			return fmt.Sprintf("h.kind = '%s'", kind)
		}
		if typ == "uuid" {
			// A uuid has several spellings (case, hyphens, braces) that
			// name one value: the hold matches whichever it was given in.
			return fmt.Sprintf("(h.kind = '%s' AND translate(lower(h.scope_id), '-{}', '') = translate(%s.%s::text, '-', ''))", kind, alias, col)
		}
		return fmt.Sprintf("(h.kind = '%s' AND h.scope_id = %s.%s::text)", kind, alias, col)
	}
	return fmt.Sprintf(`EXISTS (SELECT 1 FROM %s h WHERE h.app_id = %s AND h.released_at IS NULL AND (h.kind = 'tenant' OR %s OR %s OR %s))`,
		s.t.holds, appArg, match("channel", ts.channel, ts.channelType), match("user", ts.user, ts.userType), match("resource", ts.res, ts.resType))
}

func millis(d time.Duration) string {
	if d <= 0 {
		return "0"
	}
	return strconv.FormatInt(max(d.Milliseconds(), 1), 10)
}

// SweepBatch implements retention.Store. The batch is one transaction of
// three round trips (begin; one pipeline; commit) plus whatever OnBatch
// sends:
//
//  1. statement_timeout and lock_timeout are set for it, with the BEGIN;
//  2. unless another owner's lease on the tenant's rows of the target is
//     live (ErrBusy), a transaction-scoped advisory lock on them is taken
//     and the lease taken or renewed;
//  3. the tenant's hold lock is taken shared, so a PlaceHold in progress
//     finishes first and one that starts waits for this batch; with
//     CheckPolicy, so is its policy lock (an UpdatePolicy waits in the
//     same way);
//  4. one statement, whose snapshot is taken after those locks, reads the
//     checkpoint, checks that the lease is this owner's and (with
//     CheckPolicy) that the newest policy version is still
//     p.PolicyVersion, picks the next rows after the checkpoint, skipping
//     rows other transactions have locked, deletes those no active hold
//     covers, the hold check in the same statement, moves the checkpoint
//     past the rows it picked (or clears it when they were the last) and
//     returns the batch's record; when a check fails it touches nothing,
//     and the batch fails with ErrBusy or retention.ErrPolicyChanged;
//  5. OnBatch runs, with the transaction in its context (see Tx);
//  6. everything commits together.
//
// Steps 2 to 4 are sent as one pipeline: on a loaded server each round
// trip waits for a core, and the fewer a batch makes, the smaller a batch
// can be for the same overhead. The timeouts go with the BEGIN rather than
// into the pipeline because pgx prepares a pipeline's statements before it
// runs any of them, and preparing the DELETE locks its table: the lock
// timeout must already be in force then.
//
// A batch commits with the session's synchronous_commit, never with it
// turned off. Off would be sound for what the batch writes itself: a
// commit lost in a crash takes the deletion, the checkpoint move and
// whatever OnBatch wrote through [Tx] with it, all or nothing, and the
// resumed sweep deletes and records those rows again, once. It is not
// sound for what OnBatch or a Deleter does outside the transaction (an
// audit service, an object store), which would already have acted on a
// batch the database then forgets, and a store cannot tell the two kinds
// of hook apart. Nor did it buy concurrent inserts anything measurable:
// their own commits still flush the WAL the batch wrote before them (see
// docs/benchmarks/retention.md). TestBatchKeepsSynchronousCommit pins
// this.
func (s *Store) SweepBatch(ctx context.Context, p retention.BatchParams) (retention.BatchResult, error) {
	if p.Limit <= 0 {
		return retention.BatchResult{}, fmt.Errorf("%w: batch limit %d", retention.ErrInvalid, p.Limit)
	}
	ts, err := s.target(ctx, p.Target)
	if err != nil {
		return retention.BatchResult{}, err
	}

	tx, err := s.begin(ctx, p)
	if err != nil {
		return retention.BatchResult{}, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	scope := p.Scope.String()
	b := &pgx.Batch{}
	// Lease times are the database's (now(), the transaction's start), so
	// the instances' clocks need not agree: the lease runs for the length
	// the sweeper asks (LeaseUntil - Now), from the database's now.
	// Another owner's live lease: busy at once, with no lock taken, so
	// that asking never delays the leader. Otherwise wait (up to the lock
	// timeout) for the advisory lock on the tenant's rows of the target,
	// which serializes batches, and take or renew the lease, unless
	// someone took it meanwhile.
	ttl := pgtype.Interval{Microseconds: max(p.LeaseUntil.Sub(p.Now), 0).Microseconds(), Valid: true}
	b.Queue("INSERT INTO "+s.t.leases+` AS l (app_id, target, owner, lease_until)
		SELECT $5, $1, $2, now() + $3::interval
		WHERE CASE WHEN EXISTS (SELECT 1 FROM `+s.t.leases+` WHERE app_id = $5 AND target = $1 AND owner <> $2 AND lease_until > now()) THEN false
			ELSE (SELECT true FROM pg_advisory_xact_lock(`+s.keyExpr("$4")+`)) END
		ON CONFLICT (app_id, target) DO UPDATE SET owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until
		WHERE l.owner = EXCLUDED.owner OR l.lease_until <= now()`,
		p.Target.Name, p.Owner, ttl, s.key("sweep", p.Target.Name)+" "+strconv.Quote(p.AppID), p.AppID)
	b.Queue("SELECT pg_advisory_xact_lock_shared("+s.keyExpr("$1")+")", s.key("hold", p.AppID))
	if p.CheckPolicy {
		// The policy lock taken shared, as the hold lock is, so that a
		// policy change waits for this batch and the next statement (with
		// a snapshot taken after the lock) sees every change committed.
		b.Queue("SELECT pg_advisory_xact_lock_shared("+s.keyExpr("$1")+")", s.key("policy", p.AppID))
	}
	sql, a := s.batchSQL(ts, p, scope)
	b.Queue(sql, a...)

	br := tx.SendBatch(ctx, b)
	defer func() { _ = br.Close() }()
	tag, err := br.Exec()
	if err != nil {
		return retention.BatchResult{}, translate(ctx, "take lease", err)
	}
	if _, err := br.Exec(); err != nil {
		return retention.BatchResult{}, translate(ctx, "lock holds", err)
	}
	if p.CheckPolicy {
		if _, err := br.Exec(); err != nil {
			return retention.BatchResult{}, translate(ctx, "lock policy", err)
		}
	}
	var res retention.BatchResult
	var leased bool
	var latest int64
	var lastTime, minTime, maxTime, cpTime pgtype.Timestamptz
	var lastID, minID, maxID, cpID pgtype.Text
	err = br.QueryRow().Scan(&leased, &latest, &cpTime, &cpID, &res.Scanned, &lastTime, &lastID,
		&res.Deleted, &minID, &maxID, &minTime, &maxTime, &res.IDs)
	if err != nil {
		return retention.BatchResult{}, translate(ctx, "delete batch", err)
	}
	if err := br.Close(); err != nil {
		return retention.BatchResult{}, translate(ctx, "delete batch", err)
	}
	switch {
	case tag.RowsAffected() == 0 || !leased:
		return retention.BatchResult{}, retention.ErrBusy // not the leader, or another's lease
	case p.CheckPolicy && latest != p.PolicyVersion:
		return retention.BatchResult{}, fmt.Errorf("%w: version %d, batch planned on %d", retention.ErrPolicyChanged, latest, p.PolicyVersion)
	}
	res.MinTime, res.MaxTime = minTime.Time, maxTime.Time
	res.MinID, res.MaxID = minID.String, maxID.String
	res.Done = res.Scanned < p.Limit
	switch {
	case lastTime.Valid:
		res.Cursor = retention.Cursor{Time: lastTime.Time, ID: lastID.String}
	case cpTime.Valid:
		res.Cursor = retention.Cursor{Time: cpTime.Time, ID: cpID.String}
	}

	if p.OnBatch != nil {
		if err := p.OnBatch(context.WithValue(ctx, txKey{}, tx), res); err != nil {
			return retention.BatchResult{}, err
		}
	}

	if err := tx.Commit(ctx); err != nil {
		return retention.BatchResult{}, translate(ctx, "commit batch", err)
	}
	return res, nil
}

// txBeginner is what a *pgxpool.Pool and a *pgx.Conn have beyond DB: a
// BEGIN of the caller's choosing.
type txBeginner interface {
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// begin starts a batch's transaction with its timeouts set: in the BEGIN's
// own round trip when the handle allows it, else (a pgx.Tx, where the batch
// is a savepoint) in one more.
func (s *Store) begin(ctx context.Context, p retention.BatchParams) (pgx.Tx, error) {
	set := "SET LOCAL statement_timeout = " + millis(p.StatementTimeout) + "; SET LOCAL lock_timeout = " + millis(p.LockTimeout)
	if bt, ok := s.db.(txBeginner); ok {
		tx, err := bt.BeginTx(ctx, pgx.TxOptions{BeginQuery: "BEGIN; " + set})
		if err != nil {
			return nil, translate(ctx, "begin batch", err)
		}
		return tx, nil
	}
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return nil, translate(ctx, "begin batch", err)
	}
	if _, err := tx.Exec(ctx, set); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, translate(ctx, "set timeouts", err)
	}
	return tx, nil
}

// batchSQL is the statement of a batch's step 4 (see SweepBatch) and its
// parameters. Its result row is: whether the lease is p.Owner's, the
// tenant's newest policy version, the checkpoint it started from (NULLs:
// none), how many rows it picked, the last of them, and the record of
// those it deleted (count, id and time range, and with p.IDs every id).
//
// The checkpoint is read inside the statement rather than by a statement
// before it, so that the batch needs no round trip of its own to learn it.
// The keyset condition is then split in two: t.time >= the checkpoint's
// time (or -infinity with none), which the index on (tenant, time, id)
// starts its scan from, and the exact (time, id) > checkpoint, a filter
// over the few rows of that one time.
func (s *Store) batchSQL(ts *targetSQL, p retention.BatchParams, scope string) (string, args) {
	var a args
	where := ts.due(&a, p.AppID, p.Scope, p.Exclude, p.Cutoff) // its first parameter, $1, is the tenant
	target, scopeArg, owner := a.add(p.Target.Name), a.add(scope), a.add(p.Owner)
	limit := a.add(p.Limit)
	ok := "g.leased"
	if p.CheckPolicy {
		ok += " AND g.latest = " + a.add(p.PolicyVersion) + "::bigint"
	}
	// Rows are locked by the batch CTE, so their ctids hold until commit.
	match := "WHERE d.ctid = ANY(ARRAY(SELECT tid FROM batch))"
	if !ts.byCTID {
		match = fmt.Sprintf("USING batch b WHERE d.%s = b.id AND d.tableoid = b.toid AND d.ctid = b.tid", ts.id)
	}
	ids := "NULL::text[]"
	if p.IDs {
		ids = "(SELECT coalesce(array_agg(id::text ORDER BY ts, id), '{}') FROM gone)"
	}
	sql := fmt.Sprintf(`WITH gate AS (
	SELECT EXISTS (SELECT 1 FROM %[14]s WHERE app_id = $1 AND target = %[10]s AND owner = %[15]s) AS leased,
		(SELECT coalesce(max(version), 0) FROM %[16]s WHERE app_id = $1) AS latest
), cp AS (
	SELECT cursor_time, cursor_id FROM %[9]s WHERE app_id = $1 AND target = %[10]s AND scope = %[11]s
), batch AS (
	SELECT t.tableoid AS toid, t.ctid AS tid, t.%[2]s AS id, t.%[3]s AS ts FROM %[1]s t
	WHERE %[4]s
		AND (SELECT %[17]s FROM gate g)
		AND t.%[3]s >= coalesce((SELECT cursor_time FROM cp), '-infinity')
		AND ((t.%[3]s, t.%[2]s) > ((SELECT cursor_time FROM cp), (SELECT cursor_id FROM cp)::%[18]s) OR NOT EXISTS (SELECT FROM cp))
	ORDER BY t.%[3]s, t.%[2]s
	LIMIT %[5]s
	FOR UPDATE OF t SKIP LOCKED
), gone AS (
	DELETE FROM %[1]s d %[8]s AND NOT %[7]s
	RETURNING d.%[2]s AS id, d.%[3]s AS ts
), last AS (
	SELECT ts, id, count(*) OVER () AS n FROM batch ORDER BY ts DESC, id DESC LIMIT 1
), moved AS (
	INSERT INTO %[9]s (app_id, target, scope, cursor_time, cursor_id, updated_at)
	SELECT $1, %[10]s, %[11]s, ts, id::text, %[12]s FROM last WHERE n = %[5]s
	ON CONFLICT (app_id, target, scope) DO UPDATE
	SET cursor_time = EXCLUDED.cursor_time, cursor_id = EXCLUDED.cursor_id, updated_at = EXCLUDED.updated_at
), cleared AS (
	DELETE FROM %[9]s WHERE app_id = $1 AND target = %[10]s AND scope = %[11]s
		AND (SELECT %[17]s FROM gate g) AND NOT EXISTS (SELECT 1 FROM last WHERE n = %[5]s)
), stats AS (
	SELECT count(*)::int AS n, min(%[13]s)::text AS min_id, max(%[13]s)::text AS max_id, min(ts) AS min_ts, max(ts) AS max_ts FROM gone
)
SELECT g.leased, g.latest, (SELECT cursor_time FROM cp), (SELECT cursor_id FROM cp),
	coalesce((SELECT n FROM last), 0)::int, (SELECT ts FROM last), (SELECT id::text FROM last),
	n, min_id, max_id, min_ts, max_ts, %[6]s
FROM stats, gate g`,
		ts.table, ts.id, ts.time, where, limit, ids, s.held(ts, "d", "$1"), match,
		s.t.checkpoints, target, scopeArg, a.add(p.Now), ts.minMax,
		s.t.leases, owner, s.t.policies, ok, ts.idType)
	return sql, a
}

// Count implements retention.Store with the same conditions as SweepBatch.
func (s *Store) Count(ctx context.Context, p retention.CountParams) (retention.Counts, error) {
	ts, err := s.target(ctx, p.Target)
	if err != nil {
		return retention.Counts{}, err
	}
	var a args
	where := ts.due(&a, p.AppID, p.Scope, p.Exclude, p.Cutoff)
	sql := fmt.Sprintf("SELECT count(*), count(*) FILTER (WHERE %s) FROM %s t WHERE %s", s.held(ts, "t", "$1"), ts.table, where)

	var c retention.Counts
	if err := s.db.QueryRow(ctx, sql, a...).Scan(&c.Due, &c.Held); err != nil {
		return retention.Counts{}, translate(ctx, "count", err)
	}
	return c, nil
}
