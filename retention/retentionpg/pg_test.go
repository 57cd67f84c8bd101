package retentionpg_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatsdk/compliance/retention"
	"github.com/chatsdk/compliance/retention/retentionpg"
	"github.com/chatsdk/compliance/retention/retentiontest"
)

const day = 24 * time.Hour

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// sweepEnv is a fixture with app1 at a settled 30-day period and n expired
// rows m0000.. in channel c1 (even rows) and c2 (odd rows).
type sweepEnv struct {
	*fixture
	clock    *retentiontest.Clock
	policies *retention.Policies
	records  *retentiontest.Records
	rows     []retention.Row
}

func newSweepEnv(t *testing.T, n int) *sweepEnv {
	t.Helper()
	f := newFixture(t)
	clock := retentiontest.NewClock(now.Add(-2 * day))
	p, err := retention.NewPolicies(f.store, retention.PoliciesConfig{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.SetPeriod(context.Background(), "app1", "", 30*day, "test"); err != nil {
		t.Fatal(err)
	}
	clock.Set(now)

	rows := make([]retention.Row, n)
	for i := range rows {
		rows[i] = retention.Row{ID: fmt.Sprintf("m%04d", i), AppID: "app1", Channel: fmt.Sprintf("c%d", 1+i%2), User: "u1",
			Time: now.Add(-40 * day).Add(time.Duration(i) * time.Second)}
	}
	f.insert(t, rows...)
	return &sweepEnv{fixture: f, clock: clock, policies: p, records: &retentiontest.Records{}, rows: rows}
}

func (e *sweepEnv) sweeper(t testing.TB, p *retention.Policies, mod func(*retention.SweeperConfig)) *retention.Sweeper {
	t.Helper()
	if p == nil {
		p = e.policies
	}
	cfg := retention.SweeperConfig{
		Targets:   []retention.Target{messageTarget},
		OnBatch:   e.records.Hook,
		Instance:  "one",
		IDs:       true,
		BatchSize: 10, MinBatch: 10, MaxBatch: 10,
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := retention.NewSweeper(p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func rowIDs(rs []retention.Row) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

// sweepHeldInFirstBatch starts a sweep of e and returns once its first
// batch is in flight and held open: swept receives Run's error, and letGo
// lets the batch go on (it is also called when the test ends, so a failed
// test does not leave the batch waiting).
func (e *sweepEnv) sweepHeldInFirstBatch(t *testing.T) (swept <-chan error, letGo func()) {
	t.Helper()
	inBatch := make(chan struct{})
	release := make(chan struct{})
	letGo = sync.OnceFunc(func() { close(release) })
	t.Cleanup(letGo)
	var once sync.Once
	s := e.sweeper(t, nil, func(c *retention.SweeperConfig) {
		c.OnBatch = func(ctx context.Context, r retention.Record) error {
			once.Do(func() { close(inBatch); <-release })
			return e.records.Hook(ctx, r)
		}
	})
	done := make(chan error, 1)
	go func() { _, err := s.Run(context.Background()); done <- err }()
	<-inBatch
	return done, letGo
}

// waitsForBatch runs call while a batch is held open and fails the test
// if call returns before letGo releases the batch, or if call or the sweep
// fails.
func waitsForBatch(t *testing.T, name string, swept <-chan error, letGo func(), call func() error) {
	t.Helper()
	returned := make(chan error, 1)
	go func() { returned <- call() }()
	select {
	case err := <-returned:
		t.Fatalf("%s returned (%v) while a batch was in flight", name, err)
	case <-time.After(300 * time.Millisecond):
	}
	letGo()
	if err := <-returned; err != nil {
		t.Fatal(err)
	}
	if err := <-swept; err != nil {
		t.Fatal(err)
	}
}

// A hold placed while a batch is in flight waits for it; every later batch
// sees the hold, inside its DELETE.
func TestHoldWaitsForBatchInFlight(t *testing.T) {
	e := newSweepEnv(t, 40)
	ctx := context.Background()

	swept, letGo := e.sweepHeldInFirstBatch(t)
	other := newStore(t, e.db.NewPool(t, nil))
	waitsForBatch(t, "PlaceHold", swept, letGo, func() error {
		_, err := other.PlaceHold(ctx, retention.Hold{AppID: "app1", Scope: retention.Channel("c2"), Reason: "case", Author: "counsel", CreatedAt: now})
		return err
	})

	// The first batch (m0000..m0009) went before the hold; every c2 row
	// after it is held.
	var want []string
	for i, r := range e.rows {
		if i >= 10 && r.Channel == "c2" {
			want = append(want, r.ID)
		}
	}
	if got := e.ids(t); !slices.Equal(got, want) {
		t.Fatalf("left %v\nwant %v", got, want)
	}
}

// The hold check is in the DELETE itself: a hold row that appears without
// the lock protocol (written by hand, say) still keeps its rows.
func TestHoldCheckIsInTheDelete(t *testing.T) {
	e := newSweepEnv(t, 20)
	ctx := context.Background()

	var once sync.Once
	s := e.sweeper(t, nil, func(c *retention.SweeperConfig) {
		c.Sleep = func(ctx context.Context, _ time.Duration) error {
			once.Do(func() {
				_, err := e.db.Pool.Exec(ctx, `INSERT INTO retention_holds (app_id, kind, scope_id, reason, author, created_at)
					VALUES ('app1', 'resource', 'm0015', 'by hand', 'dba', now())`)
				if err != nil {
					t.Error(err)
				}
			})
			return ctx.Err()
		}
	})
	if _, err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.ids(t); !slices.Equal(got, []string{"m0015"}) {
		t.Fatalf("left %v, want [m0015]", got)
	}
}

// A row another transaction has locked is skipped, not waited for, and
// swept by the next run.
func TestLockedRowIsSkipped(t *testing.T) {
	e := newSweepEnv(t, 25)
	ctx := context.Background()

	tx, err := e.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "SELECT 1 FROM message WHERE id = 'm0012' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}

	runCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	s := e.sweeper(t, nil, nil)
	if _, err := s.Run(runCtx); err != nil {
		t.Fatalf("sweep with a locked row: %v", err)
	}
	if got := e.ids(t); !slices.Equal(got, []string{"m0012"}) {
		t.Fatalf("left %v, want [m0012]", got)
	}

	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.ids(t); len(got) != 0 {
		t.Fatalf("left %v after the lock was released", got)
	}
	e.records.CheckOnce(t, rowIDs(e.rows))
}

// A table lock held elsewhere makes each batch hit its lock timeout; the
// sweeper backs off, retries smaller and gives up with ErrTimeout instead
// of hanging.
func TestLockTimeoutBacksOff(t *testing.T) {
	e := newSweepEnv(t, 25)
	ctx := context.Background()

	tx, err := e.db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "LOCK TABLE message IN SHARE MODE"); err != nil {
		t.Fatal(err)
	}

	var waits []time.Duration
	s := e.sweeper(t, nil, func(c *retention.SweeperConfig) {
		c.LockTimeout, c.Retries, c.Backoff = 50*time.Millisecond, 3, 10*time.Millisecond
		c.BatchSize, c.MinBatch, c.MaxBatch = 16, 2, 16
		c.Sleep = func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return ctx.Err() }
	})
	runCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err = s.Run(runCtx)
	if !errors.Is(err, retention.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if want := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}; !slices.Equal(waits, want) {
		t.Fatalf("backoff waits %v, want %v", waits, want)
	}
	if got := e.ids(t); len(got) != 25 {
		t.Fatalf("%d rows left, want all 25", len(got))
	}

	_ = tx.Rollback(ctx)
	if _, err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.ids(t); len(got) != 0 {
		t.Fatalf("left %v after the lock was released", got)
	}
}

// auditTable is where the tests' batch hook writes, in the batch's
// transaction, as an audit log would.
const auditDDL = `CREATE TABLE audit (batch int PRIMARY KEY, first_id text, last_id text, deleted int)`

func auditHook(n *int) retention.BatchHook {
	return func(ctx context.Context, r retention.Record) error {
		tx, ok := retentionpg.Tx(ctx)
		if !ok {
			return errors.New("no transaction in the hook's context")
		}
		*n++
		_, err := tx.Exec(ctx, "INSERT INTO audit VALUES ($1, $2, $3, $4)", *n, r.MinID, r.MaxID, r.Deleted)
		return err
	}
}

func (e *sweepEnv) audited(t testing.TB) (rows, deleted int) {
	t.Helper()
	if err := e.db.Pool.QueryRow(context.Background(), "SELECT count(*), coalesce(sum(deleted), 0) FROM audit").Scan(&rows, &deleted); err != nil {
		t.Fatal(err)
	}
	return rows, deleted
}

// The hook's record commits with its batch, and rolls back with it.
func TestRecordCommitsWithBatch(t *testing.T) {
	e := newSweepEnv(t, 30)
	ctx := context.Background()
	if _, err := e.db.Pool.Exec(ctx, auditDDL); err != nil {
		t.Fatal(err)
	}

	n := 0
	audit := auditHook(&n)
	s := e.sweeper(t, nil, func(c *retention.SweeperConfig) {
		c.OnBatch = func(ctx context.Context, r retention.Record) error {
			if err := audit(ctx, r); err != nil {
				return err
			}
			if n == 2 {
				return errors.New("integrity digest unavailable") // after the audit row was written
			}
			return nil
		}
	})
	if _, err := s.Run(ctx); !errors.Is(err, retention.ErrHook) {
		t.Fatalf("err = %v, want ErrHook", err)
	}
	if rows, deleted := e.audited(t); rows != 1 || deleted != 10 {
		t.Fatalf("audit has %d rows for %d deletions, want 1 for 10", rows, deleted)
	}
	if got := len(e.ids(t)); got != 20 {
		t.Fatalf("%d rows left, want 20", got)
	}

	n = 1
	s = e.sweeper(t, nil, func(c *retention.SweeperConfig) { c.OnBatch = auditHook(&n) })
	if _, err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if rows, deleted := e.audited(t); rows != 3 || deleted != 30 {
		t.Fatalf("audit has %d rows for %d deletions, want 3 for 30", rows, deleted)
	}
}

// A batch whose connection dies, or whose context is cancelled after its
// hook ran, commits nothing; the next run resumes with nothing lost and
// nothing recorded twice.
func TestKilledMidBatch(t *testing.T) {
	for _, kill := range []string{"connection", "context"} {
		t.Run(kill, func(t *testing.T) {
			e := newSweepEnv(t, 30)
			ctx := context.Background()
			if _, err := e.db.Pool.Exec(ctx, auditDDL); err != nil {
				t.Fatal(err)
			}

			runCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			n := 0
			audit := auditHook(&n)
			s := e.sweeper(t, nil, func(c *retention.SweeperConfig) {
				c.OnBatch = func(ctx context.Context, r retention.Record) error {
					if err := audit(ctx, r); err != nil {
						return err
					}
					if n == 2 {
						if kill == "context" {
							cancel()
							return nil
						}
						tx, _ := retentionpg.Tx(ctx)
						_, _ = tx.Exec(ctx, "SELECT pg_terminate_backend(pg_backend_pid())")
					}
					return nil
				}
			})
			if _, err := s.Run(runCtx); err == nil {
				t.Fatal("killed run returned no error")
			}
			if rows, deleted := e.audited(t); rows != 1 || deleted != 10 {
				t.Fatalf("after the kill: audit has %d rows for %d deletions, want 1 for 10", rows, deleted)
			}
			if got := len(e.ids(t)); got != 20 {
				t.Fatalf("%d rows left after the kill, want 20", got)
			}

			n = 1
			s = e.sweeper(t, nil, func(c *retention.SweeperConfig) { c.OnBatch = auditHook(&n) })
			if _, err := s.Run(ctx); err != nil {
				t.Fatal(err)
			}
			if rows, deleted := e.audited(t); rows != 3 || deleted != 30 {
				t.Fatalf("after the restart: audit has %d rows for %d deletions, want 3 for 30", rows, deleted)
			}
			var overlap int
			if err := e.db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit a JOIN audit b ON a.batch < b.batch
				AND a.last_id >= b.first_id AND b.last_id >= a.first_id`).Scan(&overlap); err != nil {
				t.Fatal(err)
			}
			if overlap != 0 || len(e.ids(t)) != 0 {
				t.Fatalf("%d overlapping batches, %d rows left", overlap, len(e.ids(t)))
			}
		})
	}
}

// Two instances on their own pools: while one sweeps, the other keeps
// asking and is told the target is busy, without ever making the leader
// stop; every row is deleted and recorded once.
func TestTwoInstancesOneLeader(t *testing.T) {
	e := newSweepEnv(t, 400)
	ctx := context.Background()

	other, err := retention.NewPolicies(newStore(t, e.db.NewPool(t, nil)), retention.PoliciesConfig{Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	var once sync.Once
	one := e.sweeper(t, nil, func(c *retention.SweeperConfig) {
		c.OnBatch = func(ctx context.Context, r retention.Record) error {
			once.Do(func() { close(started) })
			return e.records.Hook(ctx, r)
		}
	})
	two := e.sweeper(t, other, func(c *retention.SweeperConfig) { c.Instance = "two" })

	done := make(chan struct{})
	var rep retention.Report
	go func() {
		defer close(done)
		rep, err = one.Run(ctx)
	}()
	select {
	case <-started:
	case <-done:
		t.Fatalf("leader finished without a batch: %+v, %v", rep, err)
	}
	asked := 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			r, err := two.Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if r.Deleted != 0 {
				t.Fatalf("second instance deleted while the first swept: %+v", r)
			}
			asked++
			if len(r.Busy) == 0 {
				<-done // not busy: the leader let go of its lease, at the end of its run
				running = false
			}
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deleted != 400 || len(rep.Busy) != 0 {
		t.Fatalf("leader's report %+v after %d questions from the other instance, want 400 rows deleted", rep, asked)
	}
	if got := e.ids(t); len(got) != 0 {
		t.Fatalf("%d rows left", len(got))
	}
	e.records.CheckOnce(t, rowIDs(e.rows))
}

// Bigint ids keep their numeric order across batches and checkpoints, and
// a target without a channel or user column is held whole by a channel or
// user hold.
func TestBigintIDsAndMissingColumns(t *testing.T) {
	e := newSweepEnv(t, 0)
	ctx := context.Background()
	if _, err := e.db.Pool.Exec(ctx, `CREATE TABLE attachment (id bigint PRIMARY KEY, app_id text NOT NULL, uploaded timestamptz NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO attachment SELECT i, 'app1', $1::timestamptz FROM generate_series(1, 25) i`, now.Add(-40*day)); err != nil {
		t.Fatal(err)
	}
	target := retention.Target{Table: "attachment", ID: "id", Time: "uploaded"}
	left := func() int {
		var n int
		if err := e.db.Pool.QueryRow(ctx, "SELECT count(*) FROM attachment").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	hold, err := e.policies.PlaceHold(ctx, "app1", retention.User("u9"), "case", "counsel")
	if err != nil {
		t.Fatal(err)
	}
	s := e.sweeper(t, nil, func(c *retention.SweeperConfig) { c.Targets = []retention.Target{target} })
	if _, err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if n := left(); n != 25 {
		t.Fatalf("%d rows left under a user hold on a table without users, want 25", n)
	}
	if err := e.policies.ReleaseHold(ctx, "app1", hold.ID, "counsel"); err != nil {
		t.Fatal(err)
	}

	var got []string
	s = e.sweeper(t, nil, func(c *retention.SweeperConfig) {
		c.Targets = []retention.Target{target}
		c.OnBatch = func(_ context.Context, r retention.Record) error { got = append(got, r.IDs...); return nil }
	})
	if _, err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if n := left(); n != 0 {
		t.Fatalf("%d rows left", n)
	}
	var want []string
	for i := 1; i <= 25; i++ {
		want = append(want, fmt.Sprint(i))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("deleted in order %v, want %v", got, want)
	}
}

func TestUnknownColumn(t *testing.T) {
	e := newSweepEnv(t, 1)
	bad := messageTarget
	bad.User = "no_such_column"
	s := e.sweeper(t, nil, func(c *retention.SweeperConfig) { c.Targets = []retention.Target{bad} })
	if _, err := s.Run(context.Background()); !errors.Is(err, retention.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
}

func TestMigrateConcurrentlyIdempotentInSchema(t *testing.T) {
	f := newFixture(t) // migrated once already, in the search_path
	ctx := context.Background()
	if _, err := f.db.Pool.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{f.db.Schema + "_r"}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = f.db.Pool.Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{f.db.Schema + "_r"}.Sanitize()+" CASCADE")
	})
	cfg := retentionpg.Config{Schema: f.db.Schema + "_r"}

	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = retentionpg.Migrate(ctx, f.db.Pool, cfg) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if err := retentionpg.Migrate(ctx, f.db.Pool, cfg); err != nil {
		t.Fatal(err)
	}

	s, err := retentionpg.New(f.db.Pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h, err := s.PlaceHold(ctx, retention.Hold{AppID: "app1", Scope: retention.Tenant, Reason: "r", Author: "a", CreatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := f.db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{cfg.Schema, "retention_holds"}.Sanitize()+" WHERE id::text = $1", h.ID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("hold in the configured schema: %d rows, %v", n, err)
	}
	if err := f.db.Pool.QueryRow(ctx, "SELECT count(*) FROM retention_holds").Scan(&n); err != nil || n != 0 {
		t.Fatalf("hold leaked into the search_path schema: %d rows, %v", n, err)
	}
}

// A partitioned table repeats ctids (and here ids) across partitions: a
// batch must delete exactly the rows it picked, not their namesakes in the
// partition of young rows.
func TestPartitionedTarget(t *testing.T) {
	e := newSweepEnv(t, 0)
	ctx := context.Background()
	for _, q := range []string{
		`CREATE TABLE event (id bigint NOT NULL, app_id text NOT NULL, at timestamptz NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)`,
		`CREATE TABLE event_old PARTITION OF event FOR VALUES FROM ('2000-01-01') TO ('2026-05-01')`,
		`CREATE TABLE event_new PARTITION OF event FOR VALUES FROM ('2026-05-01') TO ('2100-01-01')`,
		`CREATE INDEX ON event (app_id, at, id)`,
	} {
		if _, err := e.db.Pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO event SELECT i, 'app1', $1::timestamptz + i * interval '1 second' FROM generate_series(1, 8) i`, now.Add(-40*day)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO event SELECT i, 'app1', $1::timestamptz + i * interval '1 second' FROM generate_series(1, 8) i`, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}

	s := e.sweeper(t, nil, func(c *retention.SweeperConfig) {
		c.Targets = []retention.Target{{Table: "event", ID: "id", Time: "at"}}
		c.BatchSize, c.MinBatch, c.MaxBatch = 3, 3, 3
	})
	rep, err := s.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var old, young int
	if err := e.db.Pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM event_old), (SELECT count(*) FROM event_new)").Scan(&old, &young); err != nil {
		t.Fatal(err)
	}
	if old != 0 || young != 8 || rep.Deleted != 8 {
		t.Fatalf("left %d old and %d young rows after deleting %d, want 0, 8 and 8", old, young, rep.Deleted)
	}
}

func TestUUIDIDs(t *testing.T) {
	e := newSweepEnv(t, 0)
	ctx := context.Background()
	for _, q := range []string{
		`CREATE TABLE note (id uuid PRIMARY KEY, app_id text NOT NULL, at timestamptz NOT NULL)`,
		`INSERT INTO note SELECT ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid, 'app1', '2026-04-01' FROM generate_series(1, 7) i`,
	} {
		if _, err := e.db.Pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	var recs []retention.Record
	s := e.sweeper(t, nil, func(c *retention.SweeperConfig) {
		c.Targets = []retention.Target{{Table: "note", ID: "id", Time: "at"}}
		c.BatchSize, c.MinBatch, c.MaxBatch = 5, 5, 5
		c.OnBatch = func(_ context.Context, r retention.Record) error { recs = append(recs, r); return nil }
	})
	rep, err := s.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deleted != 7 || len(recs) != 2 || recs[0].MinID != "00000000-0000-0000-0000-000000000001" || recs[1].MaxID != "00000000-0000-0000-0000-000000000007" {
		t.Fatalf("report %+v, records %+v", rep, recs)
	}
}

// Leases are measured by the database's clock: an instance whose own clock
// runs ten minutes ahead still finds a crashed leader's one-minute lease
// live, and takes the target over only once the lease has expired by the
// database's time.
func TestLeaseUsesDatabaseClock(t *testing.T) {
	e := newSweepEnv(t, 30)
	ctx := context.Background()

	killed, kill := context.WithCancel(ctx)
	defer kill()
	one := e.sweeper(t, nil, func(c *retention.SweeperConfig) {
		c.LeaseTTL = time.Minute
		c.Sleep = func(context.Context, time.Duration) error { kill(); return context.Canceled }
	})
	if _, err := one.Run(killed); err == nil {
		t.Fatal("killed run returned no error")
	}

	ahead := retentiontest.NewClock(now.Add(10 * time.Minute))
	p, err := retention.NewPolicies(newStore(t, e.db.NewPool(t, nil)), retention.PoliciesConfig{Now: ahead.Now})
	if err != nil {
		t.Fatal(err)
	}
	two := e.sweeper(t, p, func(c *retention.SweeperConfig) { c.Instance, c.LeaseTTL = "two", time.Minute })
	rep, err := two.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Busy, []string{"message"}) || rep.Deleted != 0 {
		t.Fatalf("instance with a clock ten minutes ahead: report %+v, want the target busy", rep)
	}

	if _, err := e.db.Pool.Exec(ctx, "UPDATE retention_leases SET lease_until = now() - interval '1 second'"); err != nil {
		t.Fatal(err)
	}
	if rep, err = two.Run(ctx); err != nil || len(rep.Busy) != 0 || rep.Deleted != 20 {
		t.Fatalf("after the lease expired: report %+v, %v; want 20 rows deleted", rep, err)
	}
	e.records.CheckOnce(t, rowIDs(e.rows))
}

// A policy change made from another instance while a batch is in flight
// waits for the batch, and every later batch sees it: the period
// lengthened then keeps the rest.
func TestPolicyChangeWaitsForBatchInFlight(t *testing.T) {
	e := newSweepEnv(t, 40)
	ctx := context.Background()

	swept, letGo := e.sweepHeldInFirstBatch(t)
	other, err := retention.NewPolicies(newStore(t, e.db.NewPool(t, nil)), retention.PoliciesConfig{Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	waitsForBatch(t, "SetPeriod", swept, letGo, func() error {
		_, err := other.SetPeriod(ctx, "app1", "", 100*day, "counsel")
		return err
	})

	if got, want := e.ids(t), rowIDs(e.rows[10:]); !slices.Equal(got, want) {
		t.Fatalf("left %v\nwant %v", got, want)
	}
	e.records.CheckOnce(t, rowIDs(e.rows[:10]))
}

// A resource hold on a uuid row holds it however the uuid is spelled:
// upper case, without hyphens, in braces.
func TestUUIDResourceHoldAnySpelling(t *testing.T) {
	e := newSweepEnv(t, 0)
	ctx := context.Background()
	ids := []string{
		"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
		"b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12",
		"c0eebc99-9c0b-4ef8-bb6d-6bb9bd380a13",
		"d0eebc99-9c0b-4ef8-bb6d-6bb9bd380a14",
	}
	if _, err := e.db.Pool.Exec(ctx, `CREATE TABLE note (id uuid PRIMARY KEY, app_id text NOT NULL, at timestamptz NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := e.db.Pool.Exec(ctx, `INSERT INTO note VALUES ($1, 'app1', '2026-04-01')`, id); err != nil {
			t.Fatal(err)
		}
	}
	for _, spelling := range []string{strings.ToUpper(ids[0]), strings.ReplaceAll(ids[1], "-", ""), "{" + ids[2] + "}"} {
		if _, err := e.policies.PlaceHold(ctx, "app1", retention.Resource(spelling), "case", "counsel"); err != nil {
			t.Fatal(err)
		}
	}

	s := e.sweeper(t, nil, func(c *retention.SweeperConfig) {
		c.Targets = []retention.Target{{Table: "note", ID: "id", Time: "at"}}
	})
	if _, err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := e.db.Pool.Query(ctx, "SELECT id::text FROM note ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	left, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if want := ids[:3]; !slices.Equal(left, want) {
		t.Fatalf("left %v, want the three held %v", left, want)
	}
}
