package lockoutpg

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
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

	reserveSQL, settleSQL, statusSQL, unlockSQL, pruneHistorySQL, pruneCountersSQL string
	counterTable, attemptTable                                                     string
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
	s.reserveSQL = r.Replace(reserveQuery)
	s.settleSQL = r.Replace(settleQuery)
	s.statusSQL = r.Replace(statusSQL)
	s.unlockSQL = r.Replace(unlockSQL)
	s.pruneHistorySQL = r.Replace(pruneHistorySQL)
	s.pruneCountersSQL = r.Replace(pruneCountersSQL)
	return s, nil
}

// keyArrays are the columns of a list of counter keys, as arrays for
// unnest.
type keyArrays struct {
	app, kind, factor, account, ip []string
}

func (k *keyArrays) add(key lockout.CounterKey) {
	k.app = append(k.app, key.AppID)
	k.kind = append(k.kind, string(key.Kind))
	k.factor = append(k.factor, string(key.Factor))
	k.account = append(k.account, key.Account)
	k.ip = append(k.ip, key.IP)
}

// reserveSQL is the Reserve rule of lockout.MemoryStore in one upsert.
// In the DO UPDATE branch c.* are the row's values before the update, so
// each expression below reads the old row:
//
//	locked  = hard lock, or a lock that has not ended
//	expired = a lock that has ended (it is cleared)
//	fresh   = not locked, and a lock ended, nothing is counted or the
//	          window is over: the run restarts (new epoch)
//	granted = not locked, under the limit and under the hard cap
const reserveSQL = `
INSERT INTO {counter} AS c (app_id, kind, factor, account, ip, failures, consecutive, epoch,
	window_start, lock_count, hard_locked, last_granted, max_failures, window_us, hard_cap, updated_at)
SELECT r.app_id, r.kind, r.factor, r.account, r.ip, 1, 1, 1,
	now(), 0, false, true, r.max_failures, r.window_us, r.hard_cap, now()
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::integer[], $7::bigint[], $8::integer[])
	WITH ORDINALITY AS r(app_id, kind, factor, account, ip, max_failures, window_us, hard_cap, ord)
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
	granted := `(NOT ` + locked + ` AND ` + base + ` < EXCLUDED.max_failures AND (EXCLUDED.hard_cap <= 0 OR c.consecutive < EXCLUDED.hard_cap))`
	return strings.NewReplacer("{granted}", granted, "{fresh}", fresh, "{expired}", expired).Replace(reserveSQL)
}()

// Reserve implements lockout.Store in one statement.
func (s *Store) Reserve(ctx context.Context, reqs []lockout.ReserveRequest) (lockout.ReserveResult, error) {
	var k keyArrays
	var maxF, caps []int32
	var windows []int64
	for _, r := range reqs {
		k.add(r.Key)
		maxF = append(maxF, int32(r.Limit.MaxFailures))
		windows = append(windows, r.Limit.Window.Microseconds())
		caps = append(caps, int32(r.Limit.HardCap))
	}
	rows, err := s.db.Query(ctx, s.reserveSQL, k.app, k.kind, k.factor, k.account, k.ip, maxF, windows, caps)
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
// them, and append the history record when $17 is true. The final select
// always returns a row, so the database clock comes back even without
// tickets. In the SET list c.* are the old values; in RETURNING they are
// the new ones.
const settleSQL = `
WITH t AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
		$6::bigint[], $7::integer[], $8::integer[], $9::boolean[], $10::bigint[], $11::text[])
		WITH ORDINALITY AS t(app_id, kind, factor, account, ip,
			t_epoch, t_max, t_cap, t_reset, t_notify_us, t_durations, ord)
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
	SELECT $13, $14, $15, NULLIF($16, '')::inet, $12 WHERE $17::boolean
)
SELECT now(), u.app_id, u.kind, u.factor, u.account, u.ip, u.timed, u.hard, u.notify, u.locked_until, u.consecutive
FROM (SELECT {commit}) AS one LEFT JOIN u ON true`

// settleQuery is settleSQL with its named conditions written out.
var settleQuery = func() string {
	outcome := `$12::text`
	reset := `(` + outcome + ` = 'success' AND o.t_reset)`
	giveback := `((` + outcome + ` = 'success' AND NOT o.t_reset) OR ` + outcome + ` = 'cancelled')`
	lock := `(` + outcome + ` = 'failure' AND c.epoch = o.t_epoch AND NOT o.was_locked AND c.failures >= o.t_max)`
	hard := `(` + outcome + ` = 'failure' AND o.t_cap > 0 AND NOT c.hard_locked AND c.consecutive >= o.t_cap)`
	return strings.NewReplacer("{reset}", reset, "{giveback}", giveback, "{lock}", lock, "{hard}", hard).Replace(settleSQL)
}()

// Settle implements lockout.Store in one statement.
func (s *Store) Settle(ctx context.Context, p lockout.SettleParams) (lockout.SettleResult, error) {
	var k keyArrays
	var epochs, notify []int64
	var maxF, caps []int32
	var reset []bool
	var durations []string
	for _, t := range p.Tickets {
		k.add(t.Key)
		epochs = append(epochs, t.Epoch)
		maxF = append(maxF, int32(t.Limit.MaxFailures))
		caps = append(caps, int32(t.Limit.HardCap))
		reset = append(reset, t.Limit.ResetOnSuccess)
		notify = append(notify, t.Limit.NotifyInterval.Microseconds())
		us := make([]int64, len(t.Limit.LockDurations))
		for i, d := range t.Limit.LockDurations {
			us[i] = d.Microseconds()
		}
		if len(us) == 0 {
			return lockout.SettleResult{}, fmt.Errorf("lockoutpg: settle: a %s ticket has no lock durations", t.Key.Kind)
		}
		j, _ := json.Marshal(us)
		durations = append(durations, string(j))
	}
	var rec lockout.AttemptRecord
	if p.Record != nil {
		rec = *p.Record
	}

	rows, err := s.db.Query(ctx, s.settleSQL, k.app, k.kind, k.factor, k.account, k.ip,
		epochs, maxF, caps, reset, notify, durations,
		string(p.Outcome), rec.AppID, rec.Account, string(rec.Factor), rec.IP, p.Record != nil)
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
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS k(app_id, kind, factor, account, ip, ord)
JOIN {counter} c USING (app_id, kind, factor, account, ip)
ORDER BY k.ord`

// Status implements lockout.Store.
func (s *Store) Status(ctx context.Context, keys []lockout.CounterKey) (lockout.StatusResult, error) {
	var k keyArrays
	for _, key := range keys {
		k.add(key)
	}
	rows, err := s.db.Query(ctx, s.statusSQL, k.app, k.kind, k.factor, k.account, k.ip)
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
