package auditpg_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/auditpg"
	"github.com/chatsdk/compliance/audit/audittest"
	"github.com/chatsdk/compliance/internal/pgtest"
)

func newStore(t testing.TB, db *pgtest.DB, pool *pgxpool.Pool) *auditpg.Store {
	t.Helper()
	s, err := auditpg.New(pool, auditpg.Config{})
	require.NoError(t, err)
	require.NoError(t, s.Migrate(context.Background(), pool))
	return s
}

func TestConformance(t *testing.T) {
	audittest.Run(t, func(t *testing.T) audit.Store {
		db := pgtest.New(t)
		return newStore(t, db, db.Pool)
	})
}

func TestMigrateIsIdempotentAndConcurrent(t *testing.T) {
	db := pgtest.New(t)
	s, err := auditpg.New(db.Pool, auditpg.Config{Schema: db.Schema})
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.Migrate(context.Background(), db.Pool)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, s.Migrate(context.Background(), db.Pool))

	var n int
	require.NoError(t, db.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM pg_inherits i WHERE i.inhparent = 'audit_entries'::regclass`).Scan(&n))
	require.Equal(t, 5, n, "previous month, this month and three ahead")
}

func TestUpdateDeleteTruncateAreRefused(t *testing.T) {
	db := pgtest.New(t)
	s := newStore(t, db, db.Pool)
	ctx := context.Background()
	_, err := s.Append(ctx, "t1", audittest.Events("t1", 0, 3))
	require.NoError(t, err)
	keys := audittest.NewKeys(t)
	c := audit.Checkpoint{Stream: "t1", Seq: 3, Head: make([]byte, 32), Time: time.Now()}
	require.NoError(t, audit.SignCheckpoint(keys.Signer, &c))
	require.NoError(t, s.SaveCheckpoint(ctx, c))

	for _, stmt := range []string{
		`UPDATE audit_entries SET actor = 'mallory' WHERE seq = 2`,
		`DELETE FROM audit_entries WHERE seq = 2`,
		`TRUNCATE audit_entries`,
		`TRUNCATE audit_entries_202603`,
		`UPDATE audit_checkpoints SET seq = 1`,
		`DELETE FROM audit_checkpoints`,
		`TRUNCATE audit_checkpoints`,
	} {
		_, err := db.Pool.Exec(ctx, stmt)
		require.ErrorContains(t, err, "insert-only", stmt)
	}
	var n int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_entries`).Scan(&n))
	require.Equal(t, 3, n)
}

// recordAll records n events per writer through log, failing t on error.
func recordAll(t *testing.T, log *audit.Log, tenant string, writers, n, base int) {
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				if _, err := log.Record(context.Background(), audittest.Event(tenant, base+w*n+i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestFourPoolsKeepOneGaplessChain(t *testing.T) {
	db := pgtest.New(t)
	keys := audittest.NewKeys(t)
	newStore(t, db, db.Pool) // migrate once

	const pools, writers, perWriter = 4, 8, 250 // 2,000 events per pool
	var wg sync.WaitGroup
	for p := range pools {
		pool := db.NewPool(t, func(c *pgxpool.Config) { c.MaxConns = 2 })
		s, err := auditpg.New(pool, auditpg.Config{})
		require.NoError(t, err)
		log, err := audit.New(audit.Config{Store: s, Signer: keys.Signer, CheckpointEvery: 500})
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			recordAll(t, log, "t1", writers, perWriter, p*writers*perWriter)
			require.NoError(t, log.Close(context.Background()))
		}()
	}
	wg.Wait()

	s := newStore(t, db, db.Pool)
	rep, err := audit.Verify(context.Background(), s, audit.VerifyOptions{Stream: "t1", Verifier: keys.Verifier})
	require.NoError(t, err)
	require.Equal(t, pools*writers*perWriter, rep.Entries)
	require.Equal(t, uint64(pools*writers*perWriter), rep.Head.Seq)
	require.Positive(t, rep.Checkpoints)

	var n, distinct int
	require.NoError(t, db.Pool.QueryRow(context.Background(),
		`SELECT count(*), count(DISTINCT seq) FROM audit_entries WHERE stream = 't1'`).Scan(&n, &distinct))
	require.Equal(t, n, distinct)
}

func TestKilledWriterLeavesNoPartialBatch(t *testing.T) {
	db := pgtest.New(t)
	s := newStore(t, db, db.Pool)
	ctx := context.Background()
	_, err := s.Append(ctx, "t1", audittest.Events("t1", 0, 5))
	require.NoError(t, err)

	// A second instance appends a batch in its transaction and dies before
	// committing.
	victimPool := db.NewPool(t, func(c *pgxpool.Config) { c.MaxConns = 1 })
	victim, err := auditpg.New(victimPool, auditpg.Config{})
	require.NoError(t, err)
	conn, err := victimPool.Acquire(ctx)
	require.NoError(t, err)
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	_, err = victim.AppendTx(ctx, tx, "t1", audittest.Events("t1", 5, 50))
	require.NoError(t, err)
	pid := conn.Conn().PgConn().PID()

	// Meanwhile a live writer queues behind the victim's head lock.
	done := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, "t1", audittest.Events("t1", 100, 3))
		done <- err
	}()
	_, err = db.Pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid)
	require.NoError(t, err)
	require.NoError(t, <-done)
	conn.Release()

	var n int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_entries`).Scan(&n))
	require.Equal(t, 8, n, "none of the killed batch, all of the live one")
	keys := audittest.NewKeys(t)
	rep, err := audit.Verify(ctx, s, audit.VerifyOptions{Stream: "t1", Verifier: keys.Verifier})
	require.NoError(t, err)
	require.Equal(t, 8, rep.Entries)
}

func TestAppendTxCommitsWithTheCallersChange(t *testing.T) {
	db := pgtest.New(t)
	s := newStore(t, db, db.Pool)
	ctx := context.Background()
	_, err := db.Pool.Exec(ctx, `CREATE TABLE message (id text PRIMARY KEY)`)
	require.NoError(t, err)

	for _, commit := range []bool{false, true} {
		tx, err := db.Pool.Begin(ctx)
		require.NoError(t, err)
		defer tx.Rollback(ctx)
		_, err = tx.Exec(ctx, `INSERT INTO message VALUES ($1)`, fmt.Sprint("m-", commit))
		require.NoError(t, err)
		_, err = s.AppendTx(ctx, tx, "t1", audittest.Events("t1", 0, 2))
		require.NoError(t, err)
		if commit {
			require.NoError(t, tx.Commit(ctx))
		} else {
			require.NoError(t, tx.Rollback(ctx))
		}
	}
	var n int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_entries`).Scan(&n))
	require.Equal(t, 2, n, "only the committed transaction's entries")
	// The pool path picks up after the transaction's entries.
	got, err := s.Append(ctx, "t1", audittest.Events("t1", 2, 1))
	require.NoError(t, err)
	require.Equal(t, uint64(3), got[0].Seq)
}

func TestAppendCreatesMissingPartition(t *testing.T) {
	db := pgtest.New(t)
	s := newStore(t, db, db.Pool)
	ev := audittest.Event("t1", 0)
	ev.Time = time.Date(2031, 8, 9, 10, 11, 12, 0, time.UTC)
	_, err := s.Append(context.Background(), "t1", []audit.Event{ev})
	require.NoError(t, err)
	var n int
	require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_entries_203108`).Scan(&n))
	require.Equal(t, 1, n)
}

func TestMiddlewareFailsClosedWhenPostgresIsDown(t *testing.T) {
	db := pgtest.New(t)
	pool := db.NewPool(t, nil)
	s := newStore(t, db, pool)
	log, err := audit.New(audit.Config{Store: s, WriteTimeout: 5 * time.Second})
	require.NoError(t, err)
	mw, err := audit.Middleware(audit.MiddlewareConfig{
		Recorder: log,
		Actor:    func(*http.Request) (audit.Actor, bool) { return audit.Actor{UserID: "dr-lee", Tenant: "t1"}, true },
		Classify: func(*http.Request) (audit.Route, bool) {
			return audit.Route{Type: audit.TypeDataRead, Category: audit.CategoryDataAccess, Action: audit.ActionRead, ResourceID: "m-1"}, true
		},
	})
	require.NoError(t, err)
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "PHI") }))

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/m/1", nil))
	require.Equal(t, http.StatusOK, rec.Code)

	pool.Close() // the database goes away
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/m/1", nil))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.NotContains(t, rec.Body.String(), "PHI")
}
