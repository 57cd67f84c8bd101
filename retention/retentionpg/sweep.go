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

// SweepBatch implements retention.Store. The batch is one transaction:
//
//  1. statement_timeout and lock_timeout are set for it;
//  2. unless another owner's lease on the tenant's rows of the target is
//     live (ErrBusy), a transaction-scoped advisory lock on them is taken
//     and the lease taken or renewed;
//  3. the tenant's hold lock is taken shared, so a PlaceHold in progress
//     finishes first and one that starts waits for this batch; with
//     CheckPolicy, so is its policy lock (an UpdatePolicy waits in the
//     same way), and the batch fails with retention.ErrPolicyChanged if
//     the newest version is not p.PolicyVersion; the checkpoint is read
//     (steps 1 to 3 in one round trip);
//  4. one statement picks the next rows after the checkpoint, skipping rows
//     other transactions have locked, and deletes those no active hold
//     covers, the hold check in the same statement; the same statement
//     moves the checkpoint past the rows it picked (or clears it when they
//     were the last);
//  5. OnBatch runs, with the transaction in its context (see Tx);
//  6. everything commits together.
func (s *Store) SweepBatch(ctx context.Context, p retention.BatchParams) (retention.BatchResult, error) {
	if p.Limit <= 0 {
		return retention.BatchResult{}, fmt.Errorf("%w: batch limit %d", retention.ErrInvalid, p.Limit)
	}
	ts, err := s.target(ctx, p.Target)
	if err != nil {
		return retention.BatchResult{}, err
	}

	tx, err := s.db.Begin(ctx)
	if err != nil {
		return retention.BatchResult{}, translate(ctx, "begin batch", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	// One round trip for the batch's preamble: on a loaded server each
	// round trip costs a scheduling delay, and a batch makes several.
	scope := p.Scope.String()
	b := &pgx.Batch{}
	b.Queue("SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $2, true)",
		millis(p.StatementTimeout), millis(p.LockTimeout))
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
		b.Queue("SELECT coalesce(max(version), 0) FROM "+s.t.policies+" WHERE app_id = $1", p.AppID)
	}
	b.Queue("SELECT cursor_time, cursor_id FROM "+s.t.checkpoints+" WHERE app_id = $1 AND target = $2 AND scope = $3",
		p.AppID, p.Target.Name, scope)
	br := tx.SendBatch(ctx, b)
	var after *retention.Cursor
	var c retention.Cursor
	_, err = br.Exec()
	if err != nil {
		_ = br.Close()
		return retention.BatchResult{}, translate(ctx, "set timeouts", err)
	}
	tag, err := br.Exec()
	if err != nil {
		_ = br.Close()
		return retention.BatchResult{}, translate(ctx, "take lease", err)
	}
	if tag.RowsAffected() == 0 {
		_ = br.Close()
		return retention.BatchResult{}, retention.ErrBusy // not the leader, or another's lease
	}
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return retention.BatchResult{}, translate(ctx, "lock holds", err)
	}
	if p.CheckPolicy {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return retention.BatchResult{}, translate(ctx, "lock policy", err)
		}
		var latest int64
		if err := br.QueryRow().Scan(&latest); err != nil {
			_ = br.Close()
			return retention.BatchResult{}, translate(ctx, "read policy version", err)
		}
		if latest != p.PolicyVersion {
			_ = br.Close()
			return retention.BatchResult{}, fmt.Errorf("%w: version %d, batch planned on %d", retention.ErrPolicyChanged, latest, p.PolicyVersion)
		}
	}
	err = br.QueryRow().Scan(&c.Time, &c.ID)
	switch {
	case err == nil:
		after = &c
	case !errors.Is(err, pgx.ErrNoRows):
		_ = br.Close()
		return retention.BatchResult{}, translate(ctx, "read checkpoint", err)
	}
	if err := br.Close(); err != nil {
		return retention.BatchResult{}, translate(ctx, "batch preamble", err)
	}

	var a args
	where := ts.due(&a, p.AppID, p.Scope, p.Exclude, p.Cutoff)
	if after != nil {
		where += fmt.Sprintf(" AND (t.%s, t.%s) > (%s, %s::text::%s)", ts.time, ts.id, a.add(after.Time), a.add(after.ID), ts.idType)
	}
	limit := a.add(p.Limit)
	appArg := "$1" // due's first parameter is the tenant, as text
	// Rows are locked by the batch CTE, so their ctids hold until commit.
	match := "WHERE d.ctid = ANY(ARRAY(SELECT tid FROM batch))"
	if !ts.byCTID {
		match = fmt.Sprintf("USING batch b WHERE d.%s = b.id AND d.tableoid = b.toid AND d.ctid = b.tid", ts.id)
	}
	ids := "NULL::text[]"
	if p.IDs {
		ids = "(SELECT coalesce(array_agg(id::text ORDER BY ts, id), '{}') FROM gone)"
	}
	sql := fmt.Sprintf(`WITH batch AS (
	SELECT t.tableoid AS toid, t.ctid AS tid, t.%[2]s AS id, t.%[3]s AS ts FROM %[1]s t
	WHERE %[4]s
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
	DELETE FROM %[9]s WHERE app_id = $1 AND target = %[10]s AND scope = %[11]s AND NOT EXISTS (SELECT 1 FROM last WHERE n = %[5]s)
), stats AS (
	SELECT count(*)::int AS n, min(%[13]s)::text AS min_id, max(%[13]s)::text AS max_id, min(ts) AS min_ts, max(ts) AS max_ts FROM gone
)
SELECT coalesce((SELECT n FROM last), 0)::int, (SELECT ts FROM last), (SELECT id::text FROM last),
	n, min_id, max_id, min_ts, max_ts, %[6]s
FROM stats`,
		ts.table, ts.id, ts.time, where, limit, ids, s.held(ts, "d", appArg), match,
		s.t.checkpoints, a.add(p.Target.Name), a.add(scope), a.add(p.Now), ts.minMax)

	var res retention.BatchResult
	var lastTime, minTime, maxTime pgtype.Timestamptz
	var lastID, minID, maxID pgtype.Text
	if err := tx.QueryRow(ctx, sql, a...).Scan(&res.Scanned, &lastTime, &lastID, &res.Deleted, &minID, &maxID, &minTime, &maxTime, &res.IDs); err != nil {
		return retention.BatchResult{}, translate(ctx, "delete batch", err)
	}
	res.MinTime, res.MaxTime = minTime.Time, maxTime.Time
	res.MinID, res.MaxID = minID.String, maxID.String
	res.Done = res.Scanned < p.Limit
	switch {
	case lastTime.Valid:
		res.Cursor = retention.Cursor{Time: lastTime.Time, ID: lastID.String}
	case after != nil:
		res.Cursor = *after
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
