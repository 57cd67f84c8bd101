package lockoutpg

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chatsdk/compliance/lockout"
)

// DB is what the store needs of a connection: *pgxpool.Pool, *pgx.Conn and
// pgx.Tx all satisfy it, so an application can settle an attempt inside a
// transaction of its own.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Options configures a Store.
type Options struct {
	// Schema holds the adapter's tables (lockout_counter, lockout_attempt,
	// lockout_schema_migrations). Defaults to the connection's
	// search_path.
	Schema string

	// AsyncSettle commits settlements with synchronous_commit off, so an
	// attempt waits for one WAL flush (its reservation) instead of two.
	// Reservations stay durable, and a reservation counts as a failure
	// until it is settled, so a database crash can lose only what a
	// settlement adds: a success's reset, a lock that the saturated
	// counter enforces anyway until its window ends, the newest history
	// records and notification marks. Defaults to false (every statement
	// durable). Ignored when the DB is a pgx.Tx, whose commit belongs to
	// the caller.
	AsyncSettle bool
}

// Store is a lockout.Store on Postgres. Each method is one SQL statement
// (a denied attempt's history record included), and every time is the
// database's now(), so any number of app instances can share it. It is
// safe for concurrent use.
type Store struct {
	db DB

	tables                                       *strings.Replacer
	unlockSQL, pruneHistorySQL, pruneCountersSQL string
	counterTable, attemptTable                   string

	// queries caches the statements that take a list of counters, one
	// text per statement and number of counters (see rowsSQL).
	queries sync.Map // queryKey -> string
}

type queryKey struct {
	template string
	n        int
}

var _ lockout.Store = (*Store)(nil)

// New returns a Store on db. Run Migrate first.
func New(db DB, opts Options) (*Store, error) {
	if db == nil {
		return nil, fmt.Errorf("lockoutpg: nil DB")
	}
	s := &Store{db: db}
	s.counterTable, s.attemptTable = "lockout_counter", "lockout_attempt"
	if opts.Schema != "" {
		s.counterTable = pgx.Identifier{opts.Schema, "lockout_counter"}.Sanitize()
		s.attemptTable = pgx.Identifier{opts.Schema, "lockout_attempt"}.Sanitize()
	}
	commit := "1"
	if _, inTx := db.(pgx.Tx); opts.AsyncSettle && !inTx {
		// Local to the statement's own implicit transaction.
		commit = "set_config('synchronous_commit', 'off', true)"
	}
	r := strings.NewReplacer("{counter}", s.counterTable, "{attempt}", s.attemptTable, "{commit}", commit)
	s.tables = r
	s.unlockSQL = r.Replace(unlockSQL)
	s.pruneHistorySQL = r.Replace(pruneHistorySQL)
	s.pruneCountersSQL = r.Replace(pruneCountersSQL)
	return s, nil
}

// col is a column of a list of rows sent as parameters.
type col struct{ name, typ string }

var keyCols = []col{{"app_id", "text"}, {"kind", "text"}, {"factor", "text"}, {"account", "text"}, {"ip", "text"}}

// rowsSQL is a derived table of n rows of parameters, numbered from
// first, with an ord column giving each row's position. Writing the rows
// out (rather than unnesting arrays) lets Postgres estimate the row count
// exactly, so after a few calls it settles on a generic plan and stops
// planning every statement afresh.
func rowsSQL(alias string, cols []col, n, first int) string {
	var b strings.Builder
	if n == 0 {
		b.WriteString("(SELECT ")
		for _, c := range cols {
			fmt.Fprintf(&b, "NULL::%s AS %s, ", c.typ, c.name)
		}
		b.WriteString("0 AS ord WHERE false) AS " + alias)
		return b.String()
	}
	b.WriteString("(VALUES ")
	p := first
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(")
		for _, c := range cols {
			fmt.Fprintf(&b, "$%d::%s, ", p, c.typ)
			p++
		}
		fmt.Fprintf(&b, "%d)", i+1)
	}
	b.WriteString(") AS " + alias + "(")
	for _, c := range cols {
		b.WriteString(c.name + ", ")
	}
	b.WriteString("ord)")
	return b.String()
}

// query returns template for n rows of cols from parameter first on,
// with the store's table names.
func (s *Store) query(template, alias string, cols []col, n, first int) string {
	k := queryKey{template, n}
	if q, ok := s.queries.Load(k); ok {
		return q.(string)
	}
	q := strings.ReplaceAll(s.tables.Replace(template), "{rows}", rowsSQL(alias, cols, n, first))
	s.queries.Store(k, q)
	return q
}

func keyArgs(args []any, k lockout.CounterKey) []any {
	return append(args, k.AppID, string(k.Kind), string(k.Factor), k.Account, k.IP)
}

// reserveSQL is the Reserve rule of lockout.MemoryStore in one upsert.
// In the DO UPDATE branch c.* are the row's values before the update, so
// each expression below reads the old row:
//
//	locked  = hard lock, or a lock that has not ended
//	expired = a lock that has ended (it is cleared)
//	fresh   = not locked, and a lock ended, nothing is counted or the
//	          window is over: the run restarts (new epoch)
//	granted = not blocked, not locked, under the limit and under the hard cap
//
// b.blocked says that a counter of the request is locked or at its hard
// cap (read from the statement's snapshot, without row locks), so that no
// counter counts the attempt; it reaches the DO UPDATE branch as
// EXCLUDED.last_granted, which is NOT blocked.
const reserveSQL = `
WITH r AS (
	SELECT * FROM {rows}
), b AS (
	SELECT COALESCE(bool_or(x.hard_locked OR COALESCE(x.locked_until > now(), false)
		OR (r.hard_cap > 0 AND x.consecutive >= r.hard_cap)), false) AS blocked
	FROM {counter} x JOIN r USING (app_id, kind, factor, account, ip)
)
INSERT INTO {counter} AS c (app_id, kind, factor, account, ip, failures, consecutive, epoch,
	window_start, lock_count, hard_locked, last_granted, max_failures, window_us, hard_cap, updated_at)
SELECT r.app_id, r.kind, r.factor, r.account, r.ip, (NOT b.blocked)::integer, (NOT b.blocked)::integer, 1,
	now(), 0, false, NOT b.blocked, r.max_failures, r.window_us, r.hard_cap, now()
FROM r CROSS JOIN b
ORDER BY r.ord
ON CONFLICT (app_id, kind, factor, account, ip) DO UPDATE SET
	failures = CASE WHEN {fresh} THEN 0 ELSE c.failures END + ({granted})::integer,
	consecutive = c.consecutive + ({granted})::integer,
	epoch = c.epoch + ({fresh})::integer,
	window_start = CASE WHEN {fresh} THEN now() ELSE c.window_start END,
	locked_until = CASE WHEN {expired} THEN NULL ELSE c.locked_until END,
	last_granted = {granted},
	max_failures = EXCLUDED.max_failures,
	window_us = EXCLUDED.window_us,
	hard_cap = EXCLUDED.hard_cap,
	updated_at = now()
RETURNING app_id, kind, factor, account, ip, last_granted, epoch, failures, consecutive,
	locked_until, hard_locked, now()`

// reserveQuery is reserveSQL with its named conditions written out.
var reserveQuery = func() string {
	locked := `(c.hard_locked OR COALESCE(c.locked_until > now(), false))`
	expired := `COALESCE(c.locked_until <= now(), false)`
	fresh := `(NOT ` + locked + ` AND (` + expired + ` OR c.failures = 0 OR c.window_start + EXCLUDED.window_us * interval '1 microsecond' <= now()))`
	base := `(CASE WHEN ` + fresh + ` THEN 0 ELSE c.failures END)`
	granted := `(EXCLUDED.last_granted AND NOT ` + locked + ` AND ` + base + ` < EXCLUDED.max_failures AND (EXCLUDED.hard_cap <= 0 OR c.consecutive < EXCLUDED.hard_cap))`
	return strings.NewReplacer("{granted}", granted, "{fresh}", fresh, "{expired}", expired).Replace(reserveSQL)
}()

var reserveCols = append(slices.Clone(keyCols), col{"max_failures", "integer"}, col{"window_us", "bigint"}, col{"hard_cap", "integer"})

// Reserve implements lockout.Store in one statement.
func (s *Store) Reserve(ctx context.Context, reqs []lockout.ReserveRequest) (lockout.ReserveResult, error) {
	if len(reqs) == 0 {
		return lockout.ReserveResult{}, fmt.Errorf("lockoutpg: reserve: no counters")
	}
	args := make([]any, 0, len(reqs)*len(reserveCols))
	for _, r := range reqs {
		args = keyArgs(args, r.Key)
		args = append(args, int32(r.Limit.MaxFailures), r.Limit.Window.Microseconds(), int32(r.Limit.HardCap))
	}
	rows, err := s.db.Query(ctx, s.query(reserveQuery, "r", reserveCols, len(reqs), 1), args...)
	if err != nil {
		return lockout.ReserveResult{}, fmt.Errorf("lockoutpg: reserve: %w", err)
	}
	defer rows.Close()

	byKey := make(map[lockout.CounterKey]lockout.Decision, len(reqs))
	var now time.Time
	for rows.Next() {
		var d lockout.Decision
		var kind, factor string
		var until *time.Time
		if err := rows.Scan(&d.Key.AppID, &kind, &factor, &d.Key.Account, &d.Key.IP, &d.Granted, &d.Epoch,
			&d.Failures, &d.Consecutive, &until, &d.Hard, &now); err != nil {
			return lockout.ReserveResult{}, fmt.Errorf("lockoutpg: reserve: %w", err)
		}
		d.Key.Kind, d.Key.Factor = lockout.Kind(kind), lockout.Factor(factor)
		d.LockedUntil = utc(until)
		byKey[d.Key] = d
	}
	if err := rows.Err(); err != nil {
		return lockout.ReserveResult{}, fmt.Errorf("lockoutpg: reserve: %w", err)
	}

	res := lockout.ReserveResult{Now: now.UTC(), Decisions: make([]lockout.Decision, 0, len(reqs))}
	for _, r := range reqs {
		d, ok := byKey[r.Key]
		if !ok {
			return lockout.ReserveResult{}, fmt.Errorf("lockoutpg: reserve: no row returned for a %s counter", r.Key.Kind)
		}
		res.Decisions = append(res.Decisions, d)
	}
	return res, nil
}

func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// settleSQL is the Settle rule of lockout.MemoryStore in one statement:
// lock the tickets' rows in order (o holds their old values), update
// them, and append the history record when its outcome ($6) is one the
// history keeps. The final select always returns a row, so the database
// clock comes back even without tickets. In the SET list c.* are the old
// values; in RETURNING they are the new ones.
//
// TODO: on Postgres 18, RETURNING OLD.* would give the old values without
// the o CTE and its second index lookup; kept for Postgres 15.
const settleSQL = `
WITH t AS (
	SELECT * FROM {rows}
), o AS (
	SELECT c.app_id, c.kind, c.factor, c.account, c.ip, c.lock_count, c.hard_locked, c.notified_at,
		t.t_epoch, t.t_max, t.t_cap, t.t_reset, t.t_notify_us, t.t_durations::jsonb AS t_durations,
		(c.hard_locked OR COALESCE(c.locked_until > now(), false)) AS was_locked
	FROM {counter} c JOIN t USING (app_id, kind, factor, account, ip)
	ORDER BY t.ord
	FOR UPDATE OF c
), u AS (
	UPDATE {counter} c SET
		failures = CASE WHEN {reset} OR {lock} THEN 0
			WHEN {giveback} AND c.epoch = o.t_epoch THEN GREATEST(c.failures - 1, 0)
			ELSE c.failures END,
		consecutive = CASE WHEN {reset} THEN 0 WHEN {giveback} THEN GREATEST(c.consecutive - 1, 0)
			ELSE c.consecutive END,
		lock_count = CASE WHEN {reset} THEN 0 WHEN {lock} THEN c.lock_count + 1 ELSE c.lock_count END,
		locked_until = CASE WHEN {reset} THEN NULL
			WHEN {lock} THEN now() + (o.t_durations ->> LEAST(c.lock_count, jsonb_array_length(o.t_durations) - 1))::bigint * interval '1 microsecond'
			ELSE c.locked_until END,
		epoch = c.epoch + ({reset} OR {lock})::integer,
		window_start = CASE WHEN {reset} OR {lock} THEN now() ELSE c.window_start END,
		hard_locked = c.hard_locked OR {hard},
		notified_at = CASE WHEN ({lock} OR {hard}) AND o.t_notify_us > 0
				AND (c.notified_at IS NULL OR c.notified_at + o.t_notify_us * interval '1 microsecond' <= now())
			THEN now() ELSE c.notified_at END,
		updated_at = now()
	FROM o
	WHERE (c.app_id, c.kind, c.factor, c.account, c.ip) = (o.app_id, o.kind, o.factor, o.account, o.ip)
	RETURNING c.app_id, c.kind, c.factor, c.account, c.ip,
		(c.lock_count > o.lock_count) AS timed, (c.hard_locked AND NOT o.hard_locked) AS hard,
		(c.notified_at IS DISTINCT FROM o.notified_at) AS notify,
		c.locked_until, c.consecutive
), rec AS (
	INSERT INTO {attempt} (app_id, account, factor, ip, outcome)
	SELECT $2::text, $3::text, $4::text, NULLIF($5::text, '')::inet, $6::text
	WHERE $6::text IN ('success', 'failure', 'denied')
)
SELECT now(), u.app_id, u.kind, u.factor, u.account, u.ip, u.timed, u.hard, u.notify, u.locked_until, u.consecutive
FROM (SELECT {commit}) AS one LEFT JOIN u ON true`

// settleQuery is settleSQL with its named conditions written out.
var settleQuery = func() string {
	outcome := `$1::text`
	reset := `(` + outcome + ` = 'success' AND o.t_reset)`
	giveback := `((` + outcome + ` = 'success' AND NOT o.t_reset) OR ` + outcome + ` = 'cancelled')`
	lock := `(` + outcome + ` = 'failure' AND c.epoch = o.t_epoch AND NOT o.was_locked AND c.failures >= o.t_max)`
	hard := `(` + outcome + ` = 'failure' AND o.t_cap > 0 AND NOT c.hard_locked AND c.consecutive >= o.t_cap)`
	return strings.NewReplacer("{reset}", reset, "{giveback}", giveback, "{lock}", lock, "{hard}", hard).Replace(settleSQL)
}()

var settleCols = append(slices.Clone(keyCols), col{"t_epoch", "bigint"}, col{"t_max", "integer"}, col{"t_cap", "integer"},
	col{"t_reset", "boolean"}, col{"t_notify_us", "bigint"}, col{"t_durations", "text"})

// Settle implements lockout.Store in one statement.
func (s *Store) Settle(ctx context.Context, p lockout.SettleParams) (lockout.SettleResult, error) {
	var rec lockout.AttemptRecord
	if p.Record != nil {
		rec = *p.Record
	}
	args := make([]any, 0, 6+len(p.Tickets)*len(settleCols))
	args = append(args, string(p.Outcome), rec.AppID, rec.Account, string(rec.Factor), rec.IP, string(rec.Outcome))
	for _, t := range p.Tickets {
		args = keyArgs(args, t.Key)
		us := make([]int64, len(t.Limit.LockDurations))
		for i, d := range t.Limit.LockDurations {
			us[i] = d.Microseconds()
		}
		if len(us) == 0 {
			return lockout.SettleResult{}, fmt.Errorf("lockoutpg: settle: a %s ticket has no lock durations", t.Key.Kind)
		}
		j, _ := json.Marshal(us)
		args = append(args, t.Epoch, int32(t.Limit.MaxFailures), int32(t.Limit.HardCap), t.Limit.ResetOnSuccess,
			t.Limit.NotifyInterval.Microseconds(), string(j))
	}

	rows, err := s.db.Query(ctx, s.query(settleQuery, "t", settleCols, len(p.Tickets), 7), args...)
	if err != nil {
		return lockout.SettleResult{}, fmt.Errorf("lockoutpg: settle: %w", err)
	}
	defer rows.Close()

	var res lockout.SettleResult
	for rows.Next() {
		var now time.Time
		var app, kind, factor, account, ip *string
		var timed, hard, notify *bool
		var until *time.Time
		var consecutive *int
		if err := rows.Scan(&now, &app, &kind, &factor, &account, &ip, &timed, &hard, &notify, &until, &consecutive); err != nil {
			return lockout.SettleResult{}, fmt.Errorf("lockoutpg: settle: %w", err)
		}
		res.Now = now.UTC()
		if app == nil || !(*timed || *hard) {
			continue
		}
		lt := lockout.LockTransition{
			Key:         lockout.CounterKey{AppID: *app, Kind: lockout.Kind(*kind), Factor: lockout.Factor(*factor), Account: *account, IP: *ip},
			Hard:        *hard,
			Notify:      *notify,
			Consecutive: *consecutive,
		}
		if !lt.Hard {
			lt.Until = utc(until)
		}
		res.Locks = append(res.Locks, lt)
	}
	if err := rows.Err(); err != nil {
		return lockout.SettleResult{}, fmt.Errorf("lockoutpg: settle: %w", err)
	}
	sortLocks(res.Locks)
	return res, nil
}

func sortLocks(ls []lockout.LockTransition) {
	keys := make([]lockout.CounterKey, len(ls))
	byKey := make(map[lockout.CounterKey]lockout.LockTransition, len(ls))
	for i, l := range ls {
		keys[i] = l.Key
		byKey[l.Key] = l
	}
	lockout.SortKeys(keys)
	for i, k := range keys {
		ls[i] = byKey[k]
	}
}

const statusSQL = `
SELECT c.app_id, c.kind, c.factor, c.account, c.ip, c.failures, c.consecutive, c.epoch,
	c.window_start, c.locked_until, c.lock_count, c.hard_locked, c.updated_at, now()
FROM {rows}
JOIN {counter} c USING (app_id, kind, factor, account, ip)
ORDER BY k.ord`

// Status implements lockout.Store.
func (s *Store) Status(ctx context.Context, keys []lockout.CounterKey) (lockout.StatusResult, error) {
	args := make([]any, 0, len(keys)*len(keyCols))
	for _, k := range keys {
		args = keyArgs(args, k)
	}
	rows, err := s.db.Query(ctx, s.query(statusSQL, "k", keyCols, len(keys), 1), args...)
	if err != nil {
		return lockout.StatusResult{}, fmt.Errorf("lockoutpg: status: %w", err)
	}
	defer rows.Close()

	var res lockout.StatusResult
	for rows.Next() {
		var c lockout.Counter
		var kind, factor string
		var until *time.Time
		var now time.Time
		if err := rows.Scan(&c.Key.AppID, &kind, &factor, &c.Key.Account, &c.Key.IP, &c.Failures, &c.Consecutive, &c.Epoch,
			&c.WindowStart, &until, &c.LockCount, &c.Hard, &c.UpdatedAt, &now); err != nil {
			return lockout.StatusResult{}, fmt.Errorf("lockoutpg: status: %w", err)
		}
		c.Key.Kind, c.Key.Factor = lockout.Kind(kind), lockout.Factor(factor)
		c.LockedUntil = utc(until)
		c.WindowStart, c.UpdatedAt = c.WindowStart.UTC(), c.UpdatedAt.UTC()
		res.Now = now.UTC()
		res.Counters = append(res.Counters, c)
	}
	if err := rows.Err(); err != nil {
		return lockout.StatusResult{}, fmt.Errorf("lockoutpg: status: %w", err)
	}
	if res.Now.IsZero() {
		if err := s.db.QueryRow(ctx, "SELECT now()").Scan(&res.Now); err != nil {
			return lockout.StatusResult{}, fmt.Errorf("lockoutpg: status: %w", err)
		}
		res.Now = res.Now.UTC()
	}
	return res, nil
}

// unlockSQL clears the matching counters in one statement and reports,
// from the locked old rows, which of them were locked.
const unlockSQL = `
WITH o AS (
	SELECT app_id, kind, factor, account, ip,
		(hard_locked OR COALESCE(locked_until > now(), false)) AS was_locked
	FROM {counter}
	WHERE app_id = $1 AND CASE WHEN $2::text <> ''
		THEN account = $2 AND kind IN ('account', 'account_ip') AND ($3::text = '' OR factor = $3)
			AND ($4::text = '' OR kind = 'account' OR ip = $4)
		ELSE $4::text <> '' AND kind = 'ip' AND ip = $4 END
	ORDER BY app_id, kind, factor, account, ip
	FOR UPDATE
), u AS (
	UPDATE {counter} c SET failures = 0, consecutive = 0, lock_count = 0, locked_until = NULL,
		hard_locked = false, epoch = c.epoch + 1, window_start = now(), updated_at = now()
	FROM o
	WHERE (c.app_id, c.kind, c.factor, c.account, c.ip) = (o.app_id, o.kind, o.factor, o.account, o.ip)
	RETURNING c.app_id, c.kind, c.factor, c.account, c.ip, o.was_locked
)
SELECT now(), u.app_id, u.kind, u.factor, u.account, u.ip, u.was_locked
FROM (SELECT 1) AS one LEFT JOIN u ON true`

// Unlock implements lockout.Store in one statement.
func (s *Store) Unlock(ctx context.Context, p lockout.UnlockParams) (lockout.UnlockResult, error) {
	rows, err := s.db.Query(ctx, s.unlockSQL, p.AppID, p.Account, string(p.Factor), p.IP)
	if err != nil {
		return lockout.UnlockResult{}, fmt.Errorf("lockoutpg: unlock: %w", err)
	}
	defer rows.Close()

	var res lockout.UnlockResult
	for rows.Next() {
		var now time.Time
		var app, kind, factor, account, ip *string
		var was *bool
		if err := rows.Scan(&now, &app, &kind, &factor, &account, &ip, &was); err != nil {
			return lockout.UnlockResult{}, fmt.Errorf("lockoutpg: unlock: %w", err)
		}
		res.Now = now.UTC()
		if app != nil && *was {
			res.Unlocked = append(res.Unlocked, lockout.CounterKey{AppID: *app, Kind: lockout.Kind(*kind),
				Factor: lockout.Factor(*factor), Account: *account, IP: *ip})
		}
	}
	if err := rows.Err(); err != nil {
		return lockout.UnlockResult{}, fmt.Errorf("lockoutpg: unlock: %w", err)
	}
	lockout.SortKeys(res.Unlocked)
	return res, nil
}

// History implements lockout.Store.
func (s *Store) History(ctx context.Context, q lockout.HistoryQuery) ([]lockout.AttemptRecord, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	where, args := []string{"app_id = $1"}, []any{q.AppID}
	if q.Account != "" {
		args = append(args, q.Account)
		where = append(where, fmt.Sprintf("account = $%d", len(args)))
	}
	if q.IP != "" {
		args = append(args, q.IP)
		where = append(where, fmt.Sprintf("ip = $%d::inet", len(args)))
	}
	args = append(args, limit)
	sql := fmt.Sprintf(`SELECT app_id, account, factor, COALESCE(host(ip), ''), outcome, at FROM %s
		WHERE %s ORDER BY id DESC LIMIT $%d`, s.attemptTable, strings.Join(where, " AND "), len(args))

	rows, err := s.db.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("lockoutpg: history: %w", err)
	}
	defer rows.Close()

	var out []lockout.AttemptRecord
	for rows.Next() {
		var r lockout.AttemptRecord
		var factor, outcome string
		if err := rows.Scan(&r.AppID, &r.Account, &factor, &r.IP, &outcome, &r.At); err != nil {
			return nil, fmt.Errorf("lockoutpg: history: %w", err)
		}
		r.Factor, r.Outcome, r.At = lockout.Factor(factor), lockout.Outcome(outcome), r.At.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("lockoutpg: history: %w", err)
	}
	return out, nil
}

// pruneBatch is the number of rows one prune statement deletes, so a large
// backlog is removed in short statements rather than one long one.
const pruneBatch = 5000

const pruneHistorySQL = `
DELETE FROM {attempt} WHERE id IN (
	SELECT id FROM {attempt} WHERE at < now() - $1 * interval '1 microsecond' ORDER BY id LIMIT $2)`

const pruneCountersSQL = `
DELETE FROM {counter} WHERE ctid IN (
	SELECT ctid FROM {counter}
	WHERE NOT hard_locked AND updated_at < now() - $1 * interval '1 microsecond'
		AND (locked_until IS NULL OR locked_until <= now())
	LIMIT $2)`

// Prune implements lockout.Store, deleting in batches.
func (s *Store) Prune(ctx context.Context, p lockout.PruneParams) (lockout.PruneResult, error) {
	var res lockout.PruneResult
	run := func(sql string, age time.Duration, n *int64) error {
		if age <= 0 {
			return nil
		}
		for {
			tag, err := s.db.Exec(ctx, sql, age.Microseconds(), pruneBatch)
			if err != nil {
				return err
			}
			*n += tag.RowsAffected()
			if tag.RowsAffected() < pruneBatch {
				return nil
			}
		}
	}
	if err := run(s.pruneHistorySQL, p.HistoryAge, &res.Records); err != nil {
		return res, fmt.Errorf("lockoutpg: prune history: %w", err)
	}
	if err := run(s.pruneCountersSQL, p.CounterIdle, &res.Counters); err != nil {
		return res, fmt.Errorf("lockoutpg: prune counters: %w", err)
	}
	return res, nil
}
