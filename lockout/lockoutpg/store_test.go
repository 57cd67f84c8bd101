package lockoutpg_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/chatsdk/compliance/internal/pgtest"
	"github.com/chatsdk/compliance/lockout"
	"github.com/chatsdk/compliance/lockout/lockoutpg"
	"github.com/chatsdk/compliance/lockout/lockouttest"
)

func newStore(t *testing.T, pool *pgxpool.Pool) *lockoutpg.Store {
	t.Helper()
	return newStoreWith(t, pool, lockoutpg.Options{})
}

func newStoreWith(t *testing.T, pool *pgxpool.Pool, opts lockoutpg.Options) *lockoutpg.Store {
	t.Helper()
	s, err := lockoutpg.New(pool, opts)
	require.NoError(t, err)
	return s
}

// advance moves the database clock forward for the adapter's rows by
// moving every stored time back: the adapter reads only now(), so this is
// indistinguishable from time passing.
func advance(t *testing.T, pool *pgxpool.Pool, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	_, err := pool.Exec(ctx, `UPDATE lockout_counter SET window_start = window_start - $1::bigint * interval '1 microsecond',
		locked_until = locked_until - $1::bigint * interval '1 microsecond',
		notified_at = notified_at - $1::bigint * interval '1 microsecond',
		updated_at = updated_at - $1::bigint * interval '1 microsecond'`, d.Microseconds())
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE lockout_attempt SET at = at - $1::bigint * interval '1 microsecond'`, d.Microseconds())
	require.NoError(t, err)
}

func harness(opts lockoutpg.Options) func(t *testing.T) lockouttest.Harness {
	return func(t *testing.T) lockouttest.Harness {
		db := pgtest.New(t)
		require.NoError(t, lockoutpg.Migrate(context.Background(), db.Pool, opts))
		return lockouttest.Harness{
			Store:   newStoreWith(t, db.Pool, opts),
			Advance: func(t *testing.T, d time.Duration) { advance(t, db.Pool, d) },
			Instances: func(t *testing.T, n int) []lockout.Store {
				out := make([]lockout.Store, n)
				for i := range out {
					out[i] = newStoreWith(t, db.NewPool(t, nil), opts)
				}
				return out
			},
		}
	}
}

func TestConformance(t *testing.T) {
	lockouttest.Run(t, harness(lockoutpg.Options{}))
}

func TestConformanceAsyncSettle(t *testing.T) {
	lockouttest.Run(t, harness(lockoutpg.Options{AsyncSettle: true}))
}

// TestAsyncSettleStaysLocal checks that AsyncSettle changes only the
// settlement's own commit, not the session the pool hands out next.
func TestAsyncSettleStaysLocal(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	require.NoError(t, lockoutpg.Migrate(ctx, db.Pool, lockoutpg.Options{}))
	conn, err := db.Pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	s, err := lockoutpg.New(conn.Conn(), lockoutpg.Options{AsyncSettle: true})
	require.NoError(t, err)
	rec := lockout.AttemptRecord{AppID: "a", Account: "alice", Factor: lockout.FactorPassword, Outcome: lockout.OutcomeDenied}
	_, err = s.Settle(ctx, lockout.SettleParams{Outcome: lockout.OutcomeDenied, Record: &rec})
	require.NoError(t, err)
	var mode string
	require.NoError(t, conn.QueryRow(ctx, "SHOW synchronous_commit").Scan(&mode))
	require.Equal(t, "on", mode)
}

func TestMigrateIdempotentAndConcurrent(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		pool := db.NewPool(t, nil)
		go func() { errs <- lockoutpg.Migrate(ctx, pool, lockoutpg.Options{}) }()
	}
	for i := 0; i < 4; i++ {
		require.NoError(t, <-errs)
	}
	require.NoError(t, lockoutpg.Migrate(ctx, db.Pool, lockoutpg.Options{}))
	var n int
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM lockout_schema_migrations").Scan(&n))
	require.Equal(t, 1, n)
}

func TestSchemaOption(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	opts := lockoutpg.Options{Schema: db.Schema + "_lockout"}
	t.Cleanup(func() {
		_, _ = db.Pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{opts.Schema}.Sanitize()+" CASCADE")
	})
	require.NoError(t, lockoutpg.Migrate(ctx, db.Pool, opts))
	s, err := lockoutpg.New(db.Pool, opts)
	require.NoError(t, err)
	g, err := lockout.New(lockout.Config{Store: s})
	require.NoError(t, err)
	require.ErrorIs(t, g.Check(ctx, lockout.Attempt{AppID: "a", Account: "alice"}, func(context.Context) (bool, error) { return false, nil }),
		lockout.ErrInvalidCredential)

	var n int
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{opts.Schema, "lockout_counter"}.Sanitize()).Scan(&n))
	require.Equal(t, 1, n)
	var exists bool
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT to_regclass('lockout_counter') IS NOT NULL").Scan(&exists))
	require.False(t, exists, "tables were created in the search_path instead of the schema")
}

func TestSettleInCallersTransaction(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	require.NoError(t, lockoutpg.Migrate(ctx, db.Pool, lockoutpg.Options{}))
	k := lockout.CounterKey{AppID: "a", Kind: lockout.KindAccount, Factor: lockout.FactorPassword, Account: "alice"}
	l := lockout.DefaultPolicy()
	limit := lockout.Limit{MaxFailures: l.MaxFailures, Window: l.Window, LockDurations: l.LockDurations, ResetOnSuccess: true}

	res, err := newStore(t, db.Pool).Reserve(ctx, []lockout.ReserveRequest{{Key: k, Limit: limit}})
	require.NoError(t, err)

	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	txStore, err := lockoutpg.New(tx, lockoutpg.Options{})
	require.NoError(t, err)
	_, err = txStore.Settle(ctx, lockout.SettleParams{Outcome: lockout.OutcomeSuccess,
		Tickets: []lockout.Ticket{{Key: k, Limit: limit, Epoch: res.Decisions[0].Epoch}},
		Record:  &lockout.AttemptRecord{AppID: "a", Account: "alice", Factor: lockout.FactorPassword, Outcome: lockout.OutcomeSuccess}})
	require.NoError(t, err)
	require.NoError(t, tx.Rollback(ctx))

	recs, err := newStore(t, db.Pool).History(ctx, lockout.HistoryQuery{AppID: "a"})
	require.NoError(t, err)
	require.Empty(t, recs, "a settlement in a rolled-back transaction was kept")
}

// TestInstancesInDifferentZonesAgree runs two instances whose sessions
// use time zones fourteen hours ahead of and twelve hours behind UTC. The
// adapter takes no application clock at all (there is nothing to skew:
// lockoutpg.New has no clock option), so what could still differ between
// instances is their session settings; locks must end at the same instant,
// the database's now() plus the lock duration.
func TestInstancesInDifferentZonesAgree(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	require.NoError(t, lockoutpg.Migrate(ctx, db.Pool, lockoutpg.Options{}))
	zone := func(tz string) *lockout.Guard {
		pool := db.NewPool(t, func(c *pgxpool.Config) { c.ConnConfig.RuntimeParams["timezone"] = tz })
		g, err := lockout.New(lockout.Config{Store: newStore(t, pool)})
		require.NoError(t, err)
		return g
	}
	east, west := zone("Pacific/Kiritimati"), zone("Etc/GMT+12")
	wrong := func(context.Context) (bool, error) { return false, nil }
	a := lockout.Attempt{AppID: "a", Account: "alice"}

	var before, after time.Time
	for i := 0; i < 5; i++ {
		g := east
		if i%2 == 1 {
			g = west
		}
		if i == 4 {
			require.NoError(t, db.Pool.QueryRow(ctx, "SELECT now()").Scan(&before))
		}
		require.ErrorIs(t, g.Check(ctx, a, wrong), lockout.ErrInvalidCredential)
	}
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT now()").Scan(&after))

	var e1, e2 *lockout.LockedError
	require.ErrorAs(t, east.Check(ctx, a, wrong), &e1)
	require.ErrorAs(t, west.Check(ctx, a, wrong), &e2)
	require.True(t, e1.Until.Equal(e2.Until), "instances disagree: %v and %v", e1.Until, e2.Until)
	require.False(t, e1.Until.Before(before.Add(15*time.Minute)), "lock ends before database now + 15m")
	require.False(t, e1.Until.After(after.Add(15*time.Minute)), "lock ends after database now + 15m")
}

// TestRaceNeedsReserveBeforeCheck runs the suite's race harness on
// Postgres with four pools against the unsafe pattern (look at the
// status, check, then count): it lets far more than five checks through,
// which is what GuardRaceAdmitsOnlyAllowedChecks would see if the guard
// checked before it counted.
func TestRaceNeedsReserveBeforeCheck(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	require.NoError(t, lockoutpg.Migrate(ctx, db.Pool, lockoutpg.Options{}))
	var guards []*lockout.Guard
	for i := 0; i < 4; i++ {
		g, err := lockout.New(lockout.Config{Store: newStore(t, db.NewPool(t, nil))})
		require.NoError(t, err)
		guards = append(guards, g)
	}
	a := lockout.Attempt{AppID: "a", Account: "alice"}
	checks := lockouttest.ConcurrentChecks(t, 100, func(i int, verify func(context.Context) (bool, error)) error {
		g := guards[i%len(guards)]
		st, err := g.Status(ctx, a)
		if err != nil {
			return err
		}
		if st.Locked {
			return &lockout.LockedError{Kind: lockout.KindAccount}
		}
		if ok, err := verify(ctx); ok || err != nil {
			return err
		}
		if r, err := g.Reserve(ctx, a); err == nil {
			_ = r.Fail(ctx)
		}
		return lockout.ErrInvalidCredential
	})
	require.Greater(t, checks, 5, "check-then-count should have let more than the limit through")
}
