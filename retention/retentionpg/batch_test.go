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
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatsdk/compliance/retention"
	"github.com/chatsdk/compliance/retention/retentionpg"
)

// batchTarget is messageTarget with the defaults a Sweeper fills in, for
// calling SweepBatch directly.
var batchTarget = retention.Target{Name: "message", Table: "message", ID: "id", Tenant: "app_id", Time: "created_at",
	Channel: "channel_id", User: "user_id", Resource: "id"}

func batchParams(owner string, limit int) retention.BatchParams {
	return retention.BatchParams{
		Target: batchTarget, AppID: "app1", Scope: retention.Tenant, Cutoff: now.Add(-30 * day),
		Limit: limit, IDs: true, Owner: owner, Now: now, LeaseUntil: now.Add(time.Minute),
		StatementTimeout: 10 * time.Second, LockTimeout: 2 * time.Second,
	}
}

// checkpoint returns the stored checkpoint of app1's tenant scope, "" if
// none.
func (f *fixture) checkpoint(t *testing.T) string {
	t.Helper()
	var id string
	err := f.db.Pool.QueryRow(context.Background(), "SELECT cursor_id FROM retention_checkpoints WHERE app_id = 'app1'").Scan(&id)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	return id
}

// The batch statement reads the checkpoint itself: a store that has never
// seen the scope resumes after it, and rows that share the checkpoint's
// time are told apart by id.
func TestBatchReadsTheCheckpoint(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	at := now.Add(-40 * day)
	var rows []retention.Row
	for _, id := range []string{"a", "b", "c", "d", "e", "f"} {
		rows = append(rows, retention.Row{ID: id, AppID: "app1", Channel: "c1", User: "u1", Time: at})
	}
	rows = append(rows, retention.Row{ID: "g", AppID: "app1", Channel: "c1", User: "u1", Time: at.Add(time.Second)})
	f.insert(t, rows...)

	res, err := f.store.SweepBatch(ctx, batchParams("one", 4))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.IDs, []string{"a", "b", "c", "d"}) || res.Done || f.checkpoint(t) != "d" {
		t.Fatalf("first batch deleted %v (done %v), checkpoint %q", res.IDs, res.Done, f.checkpoint(t))
	}

	// A row put back before the checkpoint is not seen again.
	f.insert(t, retention.Row{ID: "a", AppID: "app1", Channel: "c1", User: "u1", Time: at})
	fresh := newStore(t, f.db.Pool)
	res, err = fresh.SweepBatch(ctx, batchParams("one", 4))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.IDs, []string{"e", "f", "g"}) || !res.Done || f.checkpoint(t) != "" {
		t.Fatalf("resumed batch deleted %v (done %v), checkpoint %q; want e f g, the checkpoint cleared", res.IDs, res.Done, f.checkpoint(t))
	}
	if got := f.ids(t); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("left %v, want only the row put back behind the checkpoint", got)
	}
}

// A row dated -infinity is the first in keyset order; with no checkpoint
// the statement starts from -infinity inclusive, so it is swept.
func TestBatchSweepsMinusInfinity(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.db.Pool.Exec(ctx, "INSERT INTO message VALUES ('old', 'app1', '-infinity', 'c1', 'u1'), ('new', 'app1', $1, 'c1', 'u1')", now.Add(-40*day)); err != nil {
		t.Fatal(err)
	}
	res, err := f.store.SweepBatch(ctx, batchParams("one", 10))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.IDs, []string{"old", "new"}) {
		t.Fatalf("deleted %v, want old and new", res.IDs)
	}
}

// A batch that finds another owner's live lease, or a policy version newer
// than it was planned on, deletes nothing and leaves the checkpoint where it
// was, although its statement ran, and calls no hook.
func TestBatchChecksTouchNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.insert(t, expired("m", 10)...)
	if _, err := f.store.SweepBatch(ctx, batchParams("one", 4)); err != nil {
		t.Fatal(err)
	}
	before := f.ids(t)

	for _, c := range []struct {
		name string
		p    func() retention.BatchParams
		want error
	}{
		{"another owner's lease", func() retention.BatchParams { return batchParams("two", 4) }, retention.ErrBusy},
		{"a newer policy", func() retention.BatchParams {
			p := batchParams("one", 4)
			p.CheckPolicy, p.PolicyVersion = true, 7 // the tenant has none: its newest is 0
			return p
		}, retention.ErrPolicyChanged},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := c.p()
			p.OnBatch = func(context.Context, retention.BatchResult) error {
				t.Error("OnBatch ran for a refused batch")
				return nil
			}
			if _, err := f.store.SweepBatch(ctx, p); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if got := f.ids(t); !slices.Equal(got, before) || f.checkpoint(t) != "m0003" {
				t.Fatalf("left %v, checkpoint %q; want %v and m0003", got, f.checkpoint(t), before)
			}
		})
	}
}

// expired returns n expired rows of app1 with ids prefix0000...
func expired(prefix string, n int) []retention.Row {
	out := make([]retention.Row, n)
	for i := range out {
		out[i] = retention.Row{ID: fmt.Sprintf("%s%04d", prefix, i), AppID: "app1", Channel: "c1", User: "u1", Time: now.Add(-40 * day).Add(time.Duration(i) * time.Second)}
	}
	return out
}

// roundTrips counts what a connection sends: queries and pipelines.
type roundTrips struct {
	mu      sync.Mutex
	queries []string
	batches int
}

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.mu.Lock()
	r.queries = append(r.queries, strings.Fields(d.SQL)[0])
	r.mu.Unlock()
	return ctx
}

func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.mu.Lock()
	r.batches++
	r.mu.Unlock()
	return ctx
}

func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

func (r *roundTrips) reset() (queries []string, batches int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	queries, batches = r.queries, r.batches
	r.queries, r.batches = nil, 0
	return queries, batches
}

// A batch on a pool is three round trips: the BEGIN with its timeouts, one
// pipeline (lease, locks, the batch statement), the COMMIT; the hook's own
// statements come on top.
func TestBatchRoundTrips(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.insert(t, expired("m", 30)...)
	trace := &roundTrips{}
	pool := f.db.NewPool(t, func(c *pgxpool.Config) { c.ConnConfig.Tracer = trace; c.MaxConns = 1 })
	store := newStore(t, pool)

	for i := range 3 {
		p := batchParams("one", 10)
		p.OnBatch = func(context.Context, retention.BatchResult) error { return nil }
		if _, err := store.SweepBatch(ctx, p); err != nil {
			t.Fatal(err)
		}
		queries, batches := trace.reset()
		if i == 0 {
			continue // the first also looks up the target's columns
		}
		if !slices.Equal(queries, []string{"BEGIN;", "commit"}) || batches != 1 {
			t.Fatalf("batch %d sent queries %q and %d pipelines, want BEGIN, one pipeline, commit", i, queries, batches)
		}
	}
}

// The timeouts are in force for the whole batch, whether the store is on a
// pool (set with the BEGIN) or on a caller's transaction (set in the
// savepoint), and the statement timeout bounds the batch statement.
func TestBatchTimeouts(t *testing.T) {
	ctx := context.Background()
	for _, onTx := range []bool{false, true} {
		name := map[bool]string{false: "pool", true: "caller's transaction"}[onTx]
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.insert(t, expired("m", 5)...)
			store := f.store
			if onTx {
				tx, err := f.db.Pool.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer func() { _ = tx.Rollback(ctx) }()
				if store, err = retentionpg.New(tx, retentionpg.Config{}); err != nil {
					t.Fatal(err)
				}
			}

			p := batchParams("one", 2)
			p.StatementTimeout, p.LockTimeout = 1234*time.Millisecond, 567*time.Millisecond
			var st, lt string
			p.OnBatch = func(ctx context.Context, _ retention.BatchResult) error {
				tx, _ := retentionpg.Tx(ctx)
				return tx.QueryRow(ctx, "SELECT current_setting('statement_timeout'), current_setting('lock_timeout')").Scan(&st, &lt)
			}
			if _, err := store.SweepBatch(ctx, p); err != nil {
				t.Fatal(err)
			}
			if st != "1234ms" || lt != "567ms" {
				t.Fatalf("in the batch statement_timeout %s, lock_timeout %s; want 1234ms and 567ms", st, lt)
			}
		})
	}

	t.Run("statement timeout stops a slow delete", func(t *testing.T) {
		f := newFixture(t)
		f.insert(t, expired("m", 5)...)
		if _, err := f.db.Pool.Exec(ctx, `CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.1); RETURN OLD; END $$;
			CREATE TRIGGER slow BEFORE DELETE ON message FOR EACH ROW EXECUTE FUNCTION slow()`); err != nil {
			t.Fatal(err)
		}
		p := batchParams("one", 5)
		p.StatementTimeout = 150 * time.Millisecond
		if _, err := f.store.SweepBatch(ctx, p); !errors.Is(err, retention.ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
		if got := f.ids(t); len(got) != 5 || f.checkpoint(t) != "" {
			t.Fatalf("left %v, checkpoint %q after a timed-out batch; want all 5 and none", got, f.checkpoint(t))
		}
	})
}

// A batch commits with the session's synchronous_commit: the store never
// turns it off (see SweepBatch for why).
func TestBatchKeepsSynchronousCommit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.insert(t, expired("m", 3)...)
	var setting string
	p := batchParams("one", 10)
	p.OnBatch = func(ctx context.Context, _ retention.BatchResult) error {
		tx, _ := retentionpg.Tx(ctx)
		return tx.QueryRow(ctx, "SELECT current_setting('synchronous_commit')").Scan(&setting)
	}
	if _, err := f.store.SweepBatch(ctx, p); err != nil {
		t.Fatal(err)
	}
	var session string
	if err := f.db.Pool.QueryRow(ctx, "SELECT current_setting('synchronous_commit')").Scan(&session); err != nil {
		t.Fatal(err)
	}
	if setting != session {
		t.Fatalf("synchronous_commit in the batch %q, in the session %q", setting, session)
	}
}
