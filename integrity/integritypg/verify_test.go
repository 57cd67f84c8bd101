package integritypg_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chatsdk/compliance/integrity"
	"github.com/chatsdk/compliance/integrity/integritypg"
	"github.com/chatsdk/compliance/integrity/integritytest"
	"github.com/chatsdk/compliance/internal/canon"
	"github.com/chatsdk/compliance/internal/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tink-crypto/tink-go/v2/keyset"
)

var messages = integritypg.Table{
	Domain: "message",
	Columns: []integritypg.Column{
		{Name: "channel_id", Kind: canon.KindString},
		{Name: "body", Kind: canon.KindString},
		{Name: "created_at", Kind: canon.KindTime},
	},
}

// app is a chat application's slice of the database: a message table
// whose rows are sealed in the transaction that writes them.
type app struct {
	db     *pgtest.DB
	ctx    context.Context
	store  *integritypg.Store
	sealer *integrity.Sealer
	m      *keyset.Manager
	day    time.Time
}

func newApp(t *testing.T) *app {
	t.Helper()
	db := newDB(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE message (
		app_id text NOT NULL, id bigint NOT NULL, channel_id text NOT NULL, body text, created_at timestamptz NOT NULL,
		PRIMARY KEY (app_id, id))`); err != nil {
		t.Fatal(err)
	}
	m, keys := integritytest.NewKeyset(t)
	store := integritypg.New(db.Pool, integritypg.Config{})
	s, err := integrity.New(integrity.Config{Keys: keys, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	return &app{db: db, ctx: ctx, store: store, sealer: s, m: m, day: time.Date(2026, 12, 3, 9, 30, 0, 123456000, time.UTC)}
}

func record(tenant string, id int64, channel string, body *string, at time.Time) integrity.Record {
	return integrity.Record{Domain: "message", Tenant: tenant, ID: strconv.FormatInt(id, 10), Scope: integrity.DayScope(channel, at),
		Fields: []canon.Value{canon.String(channel), canon.OptString(body), canon.Time(at)}}
}

func ptr(s string) *string { return &s }

// post inserts a message and seals it in one transaction.
func (a *app) post(t *testing.T, tenant string, id int64, channel string, body *string, at time.Time) {
	t.Helper()
	if err := a.tryPost(tenant, id, channel, body, at); err != nil {
		t.Fatalf("post: %v", err)
	}
}

func (a *app) tryPost(tenant string, id int64, channel string, body *string, at time.Time) error {
	return pgx.BeginFunc(a.ctx, a.db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(a.ctx, "INSERT INTO message VALUES ($1, $2, $3, $4, $5)", tenant, id, channel, body, at); err != nil {
			return err
		}
		return a.sealer.WithStore(a.store.With(tx)).Seal(a.ctx, record(tenant, id, channel, body, at))
	})
}

func (a *app) postMany(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		a.post(t, "t1", int64(i+1), "c1", ptr(fmt.Sprintf("hello %d", i)), a.day.Add(time.Duration(i)*time.Second))
	}
}

// loadSealed copies n sealed messages into the table in one statement:
// ids 1..n, body "m<i>", spread over channels channels, step apart.
func (a *app) loadSealed(t *testing.T, n, channels int, step time.Duration) {
	t.Helper()
	rows := make([][]any, n)
	recs := make([]integrity.Record, n)
	for i := range n {
		at := a.day.Add(time.Duration(i) * step)
		ch := fmt.Sprintf("c%d", i%channels)
		body := fmt.Sprintf("m%d", i)
		rows[i] = []any{"t1", int64(i + 1), ch, body, at}
		recs[i] = record("t1", int64(i+1), ch, &body, at)
	}
	if _, err := a.db.Pool.CopyFrom(a.ctx, pgx.Identifier{"message"}, []string{"app_id", "id", "channel_id", "body", "created_at"}, pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
	if err := a.sealer.Seal(a.ctx, recs...); err != nil {
		t.Fatal(err)
	}
}

func (a *app) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := a.db.Pool.Exec(a.ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func (a *app) verifier(t *testing.T, cfg integritypg.VerifierConfig) *integritypg.Verifier {
	t.Helper()
	if cfg.Store == nil {
		cfg.Store = a.store
	}
	cfg.Sealer = a.sealer
	if cfg.Tables == nil {
		cfg.Tables = []integritypg.Table{messages}
	}
	v, err := integritypg.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (a *app) verify(t *testing.T) (integrity.Summary, []integrity.Finding) {
	t.Helper()
	var fs []integrity.Finding
	sum, err := a.verifier(t, integritypg.VerifierConfig{}).VerifyTable(a.ctx, messages, func(f integrity.Finding) { fs = append(fs, f) })
	if err != nil {
		t.Fatalf("VerifyTable: %v", err)
	}
	return sum, fs
}

func (a *app) wantClean(t *testing.T) {
	t.Helper()
	if sum, fs := a.verify(t); !sum.OK() || len(fs) != 0 {
		t.Fatalf("findings %+v, want none", fs)
	}
}

func wantOnly(t *testing.T, fs []integrity.Finding, want ...string) {
	t.Helper()
	var got []string
	for _, f := range fs {
		got = append(got, f.Kind.String()+" "+f.ID)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("findings %q, want %q", got, want)
	}
}

func TestVerifyCleanTable(t *testing.T) {
	a := newApp(t)
	a.postMany(t, 20)
	a.post(t, "t2", 1, "c1", nil, a.day)
	sum, fs := a.verify(t)
	if len(fs) != 0 || sum.Rows != 21 || sum.Sealed != 21 || sum.Scopes != 2 {
		t.Fatalf("summary %+v, findings %v", sum, fs)
	}
	if err := a.sealer.Check(a.ctx, record("t2", 1, "c1", nil, a.day)); err != nil {
		t.Fatalf("verify on read: %v", err)
	}
}

func TestEachProtectedFieldAlteredThroughSQL(t *testing.T) {
	edits := []struct{ name, sql string }{
		{"channel", "UPDATE message SET channel_id = 'c2' WHERE id = 2"},
		{"body", "UPDATE message SET body = 'hello 1!' WHERE id = 2"},
		{"created_at", "UPDATE message SET created_at = created_at + interval '1 microsecond' WHERE id = 2"},
		{"null to empty", "UPDATE message SET body = '' WHERE id = 3"},
		{"empty to null", "UPDATE message SET body = NULL WHERE id = 4"},
	}
	for _, e := range edits {
		t.Run(e.name, func(t *testing.T) {
			a := newApp(t)
			a.postMany(t, 2)
			a.post(t, "t1", 3, "c1", nil, a.day)
			a.post(t, "t1", 4, "c1", ptr(""), a.day)
			a.wantClean(t)

			a.exec(t, e.sql)
			_, fs := a.verify(t)
			id := "2"
			if e.name == "null to empty" {
				id = "3"
			} else if e.name == "empty to null" {
				id = "4"
			}
			wantOnly(t, fs, "altered "+id)
		})
	}
}

func TestTagsSwappedThroughSQL(t *testing.T) {
	a := newApp(t)
	a.postMany(t, 3)
	a.exec(t, `UPDATE integrity_tags t SET tag = o.tag FROM integrity_tags o
		WHERE t.domain = o.domain AND t.app_id = o.app_id AND t.row_id IN ('1', '2') AND o.row_id IN ('1', '2') AND o.row_id <> t.row_id`)
	_, fs := a.verify(t)
	wantOnly(t, fs, "altered 1", "altered 2")
}

func TestRowDeletedBehindBack(t *testing.T) {
	a := newApp(t)
	a.postMany(t, 5)
	a.exec(t, "DELETE FROM message WHERE id = 2")
	_, fs := a.verify(t)
	wantOnly(t, fs, "missing 2")

	// Deleting the tag as well leaves the digest to notice.
	a.exec(t, "DELETE FROM integrity_tags WHERE row_id = '2'")
	_, fs = a.verify(t)
	if len(fs) != 1 || fs[0].Kind != integrity.DigestMismatch || fs[0].WantCount != 5 || fs[0].GotCount != 4 {
		t.Fatalf("findings %+v, want one digest mismatch, 5 recorded, 4 found", fs)
	}
}

func TestRowInsertedBehindBack(t *testing.T) {
	a := newApp(t)
	a.postMany(t, 3)
	a.exec(t, "INSERT INTO message VALUES ('t1', 99, 'c1', 'forged', $1)", a.day)
	_, fs := a.verify(t)
	wantOnly(t, fs, "unsealed 99")

	// With a tag copied from a genuine row, it is altered instead.
	a.exec(t, `INSERT INTO integrity_tags (domain, app_id, row_id, scope, key_id, tag)
		SELECT domain, app_id, '99', scope, key_id, tag FROM integrity_tags WHERE row_id = '1'`)
	_, fs = a.verify(t)
	if !slices.ContainsFunc(fs, func(f integrity.Finding) bool { return f.Kind == integrity.Altered && f.ID == "99" }) {
		t.Fatalf("findings %+v lack altered 99", fs)
	}
}

// sweep deletes messages the way a retention sweep does: the delete and
// the integrity hook in one transaction.
func (a *app) sweep(ctx context.Context, tenant string, ids []int64, fail bool) error {
	return pgx.BeginFunc(ctx, a.db.Pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, "DELETE FROM message WHERE app_id = $1 AND id = ANY($2) RETURNING id::text", tenant, ids)
		if err != nil {
			return err
		}
		deleted, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		// The hook a retention sweep calls: (tx, tenant, table, row ids).
		// Called twice, as a retried step may: forgetting is idempotent.
		hook := a.store.ForgetHook(a.sealer)
		for range 2 {
			if err := hook(ctx, tx, tenant, "message", deleted); err != nil {
				return err
			}
		}
		if fail {
			return errors.New("sweep aborted")
		}
		return nil
	})
}

func TestSweptRowPutBackDetectedByDigest(t *testing.T) {
	a := newApp(t)
	a.postMany(t, 4)
	a.exec(t, "CREATE TABLE saved AS SELECT * FROM message WHERE id = 2")
	a.exec(t, "CREATE TABLE saved_tag AS SELECT * FROM integrity_tags WHERE row_id = '2'")
	if err := a.sweep(a.ctx, "t1", []int64{2}, false); err != nil {
		t.Fatal(err)
	}
	a.wantClean(t)

	// The row and its once genuine tag, put back through SQL: the row's
	// tag verifies, but its scope's digest no longer counts it.
	a.exec(t, "INSERT INTO message SELECT * FROM saved")
	a.exec(t, "INSERT INTO integrity_tags SELECT * FROM saved_tag")
	_, fs := a.verify(t)
	if len(fs) != 1 || fs[0].Kind != integrity.DigestMismatch || fs[0].WantCount != 3 || fs[0].GotCount != 4 {
		t.Fatalf("findings %+v, want one digest mismatch, 3 recorded, 4 found", fs)
	}
}

func TestRetentionDeletionThroughHookNotReported(t *testing.T) {
	a := newApp(t)
	a.postMany(t, 10)
	if err := a.sweep(a.ctx, "t1", []int64{1, 2, 3}, false); err != nil {
		t.Fatal(err)
	}
	a.wantClean(t)

	// An aborted sweep rolls back the delete and the forget together.
	if err := a.sweep(a.ctx, "t1", []int64{4, 5}, true); err == nil {
		t.Fatal("aborted sweep returned nil")
	}
	a.wantClean(t)

	// Whole scope swept: an empty digest still verifies.
	if err := a.sweep(a.ctx, "t1", []int64{4, 5, 6, 7, 8, 9, 10}, false); err != nil {
		t.Fatal(err)
	}
	a.wantClean(t)
}

func TestSessionTimeZoneAndDateStyleRaiseNoAlarm(t *testing.T) {
	a := newApp(t)
	session := func(tz, style string) *pgxpool.Pool {
		return a.db.NewPool(t, func(c *pgxpool.Config) {
			c.ConnConfig.RuntimeParams["timezone"] = tz
			c.ConnConfig.RuntimeParams["datestyle"] = style
		})
	}
	writer := session("America/New_York", "SQL, MDY")
	reader := session("Asia/Kathmandu", "German, DMY")

	// One row written with a Go time, one from a literal the writer's
	// session interprets in its own zone and date style.
	err := pgx.BeginFunc(a.ctx, writer, func(tx pgx.Tx) error {
		s := a.sealer.WithStore(a.store.With(tx))
		if _, err := tx.Exec(a.ctx, "INSERT INTO message VALUES ('t1', 1, 'c1', 'a', $1)", a.day); err != nil {
			return err
		}
		if _, err := tx.Exec(a.ctx, "SET LOCAL DateStyle = 'Postgres, DMY'"); err != nil {
			return err
		}
		// 03/12/2026 is the 3rd of December under DMY; 04:30 in New York
		// is 09:30 UTC.
		if _, err := tx.Exec(a.ctx, "INSERT INTO message VALUES ('t1', 2, 'c1', 'b', '03/12/2026 04:30:00.123456')"); err != nil {
			return err
		}
		return s.Seal(a.ctx, record("t1", 1, "c1", ptr("a"), a.day), record("t1", 2, "c1", ptr("b"), a.day))
	})
	if err != nil {
		t.Fatal(err)
	}

	for name, pool := range map[string]*pgxpool.Pool{"writer": writer, "reader": reader, "default": a.db.Pool} {
		if _, err := pool.Exec(a.ctx, "SET TIME ZONE 'Pacific/Chatham'"); err != nil {
			t.Fatal(err)
		}
		v := a.verifier(t, integritypg.VerifierConfig{Store: a.store.With(pool)})
		var fs []integrity.Finding
		sum, err := v.VerifyTable(a.ctx, messages, func(f integrity.Finding) { fs = append(fs, f) })
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) != 0 || sum.Rows != 2 {
			t.Fatalf("%s session: findings %+v, rows %d", name, fs, sum.Rows)
		}
		loaded, err := integritypg.Loader(pool, messages)(a.ctx, []integrity.Key{{Domain: "message", Tenant: "t1", ID: "2"}})
		if err != nil || len(loaded) != 1 {
			t.Fatalf("%s Loader: %v, %v", name, loaded, err)
		}
		if err := a.sealer.Check(a.ctx, loaded[0]); err != nil {
			t.Fatalf("%s: verify on read of a loaded row: %v", name, err)
		}
	}
}

func TestRotationAndResealOnPostgres(t *testing.T) {
	a := newApp(t)
	a.postMany(t, 12)
	old := a.sealer.Keys().Primary()

	keys := integritytest.Rotate(t, a.m)
	s, err := integrity.New(integrity.Config{Keys: keys, Store: a.store})
	if err != nil {
		t.Fatal(err)
	}
	a.sealer = s
	a.wantClean(t) // old tags verify under the rotated keyset

	a.exec(t, "UPDATE message SET body = 'tampered' WHERE id = 5")
	var skipped []integrity.Finding
	res, err := s.Reseal(a.ctx, integrity.ResealParams{Domain: "message", Load: integritypg.Loader(a.db.Pool, messages), BatchSize: 5,
		Report: func(f integrity.Finding) { skipped = append(skipped, f) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Resealed != 11 || res.Skipped != 1 || len(res.Unused) != 0 {
		t.Fatalf("Reseal = %+v", res)
	}
	wantOnly(t, skipped, "altered 5")
	_, fs := a.verify(t)
	wantOnly(t, fs, "altered 5")

	a.exec(t, "UPDATE message SET body = 'hello 4' WHERE id = 5")
	res, err = s.Reseal(a.ctx, integrity.ResealParams{Domain: "message", Load: integritypg.Loader(a.db.Pool, messages)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Resealed != 1 || !slices.Equal(res.Unused, []uint32{old}) {
		t.Fatalf("Reseal = %+v, want 1 resealed and key %d unused", res, old)
	}
	a.wantClean(t)
}

func TestRunRecordsFindingsAndHook(t *testing.T) {
	a := newApp(t)
	a.postMany(t, 4)
	a.exec(t, "UPDATE message SET body = 'x' WHERE id = 1")
	a.exec(t, "DELETE FROM message WHERE id = 2")

	var hooked []string
	v := a.verifier(t, integritypg.VerifierConfig{OnFinding: func(_ context.Context, run string, f integrity.Finding) {
		hooked = append(hooked, f.Kind.String()+" "+f.ID)
	}})
	res, err := v.Run(a.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK() || res.Findings != 2 || res.Tables["message"].Rows != 3 {
		t.Fatalf("Run = %+v", res)
	}
	slices.Sort(hooked)
	if !slices.Equal(hooked, []string{"altered 1", "missing 2"}) {
		t.Fatalf("hook saw %q", hooked)
	}

	rows, err := a.db.Pool.Query(a.ctx, "SELECT kind || ' ' || row_id FROM integrity_findings WHERE run_id = $1 ORDER BY 1", res.ID)
	if err != nil {
		t.Fatal(err)
	}
	stored, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(stored, []string{"altered 1", "missing 2"}) {
		t.Fatalf("stored findings %q", stored)
	}
	for _, sql := range []string{"UPDATE integrity_findings SET kind = 'ok'", "DELETE FROM integrity_findings", "TRUNCATE integrity_findings"} {
		if _, err := a.db.Pool.Exec(a.ctx, sql); err == nil {
			t.Fatalf("%s succeeded on the append-only findings", sql)
		}
	}
}

func TestScheduledRunOneInstanceAtATime(t *testing.T) {
	a := newApp(t)
	a.postMany(t, 3)
	var vs []*integritypg.Verifier
	for range 3 {
		vs = append(vs, a.verifier(t, integritypg.VerifierConfig{Store: a.store.With(a.db.NewPool(t, nil))}))
	}

	var mu sync.Mutex
	ran := 0
	var wg sync.WaitGroup
	for _, v := range vs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			did, res, err := v.RunDue(a.ctx)
			if err != nil || (did && !res.OK()) {
				t.Errorf("RunDue: %v, %+v", err, res)
			}
			if did {
				mu.Lock()
				ran++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ran != 1 {
		t.Fatalf("%d instances ran, want 1", ran)
	}
	if did, _, _ := vs[1].RunDue(a.ctx); did {
		t.Fatal("ran again within the interval")
	}

	// A day later (moved by hand rather than waited for) one runs again.
	a.exec(t, "UPDATE integrity_runs SET next_run = now() - interval '1 second'")
	if did, _, err := vs[2].RunDue(a.ctx); !did || err != nil {
		t.Fatalf("due run did not run: %v", err)
	}
	var finished bool
	if err := a.db.Pool.QueryRow(a.ctx, "SELECT last_finished IS NOT NULL AND next_run > now() + interval '23 hours' FROM integrity_runs").Scan(&finished); err != nil || !finished {
		t.Fatalf("run not recorded as finished with next run a day away: %v", err)
	}

	// A run that fails (here: a table that does not exist) is due again.
	a.exec(t, "UPDATE integrity_runs SET next_run = now() - interval '1 second'")
	broken := a.verifier(t, integritypg.VerifierConfig{Tables: []integritypg.Table{{Domain: "nope"}}})
	if did, _, err := broken.RunDue(a.ctx); !did || err == nil {
		t.Fatalf("broken run: ran %v, err %v", did, err)
	}
	if did, _, err := vs[0].RunDue(a.ctx); !did || err != nil {
		t.Fatalf("run after a failed one: ran %v, err %v", did, err)
	}
}

func TestStreamingModesAgree(t *testing.T) {
	a := newApp(t)
	const n = 1500 // crosses several batches
	a.loadSealed(t, n, 3, time.Minute)
	a.exec(t, "UPDATE message SET body = 'x' WHERE id IN (7, 700, 1400)")
	a.exec(t, "DELETE FROM message WHERE id = 1000")

	// Put one tag far out of the table's order, so the streams disagree.
	a.exec(t, "UPDATE integrity_tags SET scope = scope WHERE row_id = '3'")
	a.exec(t, "INSERT INTO message VALUES ('t1', 5000, 'c1', 'intruder', $1)", a.day)
	for _, join := range []bool{false, true} {
		for _, w := range []int{1, 3} {
			var mu sync.Mutex
			var fs []integrity.Finding
			v := a.verifier(t, integritypg.VerifierConfig{Workers: w, JoinInDatabase: join})
			sum, err := v.VerifyTable(a.ctx, messages, func(f integrity.Finding) { mu.Lock(); fs = append(fs, f); mu.Unlock() })
			if err != nil {
				t.Fatal(err)
			}
			if sum.Rows != n || sum.Sealed != n || sum.Scopes != 6 {
				t.Fatalf("join %v, workers %d: summary %+v", join, w, sum)
			}
			wantOnly(t, fs, "altered 7", "altered 700", "altered 1400", "missing 1000", "unsealed 5000")
		}
	}
}

func TestVerifyDuringWritesRaisesNoAlarm(t *testing.T) {
	a := newApp(t)
	a.postMany(t, 50)
	ctx, cancel := context.WithCancel(a.ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := int64(100); ctx.Err() == nil; i++ {
			if err := a.tryPost("t1", i, "c1", ptr("more"), a.day); err != nil {
				t.Errorf("post: %v", err)
				return
			}
			if i%3 == 0 {
				if err := a.sweep(ctx, "t1", []int64{i - 1}, false); err != nil && ctx.Err() == nil {
					t.Errorf("sweep: %v", err)
				}
			}
		}
	}()
	for _, join := range []bool{false, true, false, true} {
		v := a.verifier(t, integritypg.VerifierConfig{JoinInDatabase: join})
		var fs []integrity.Finding
		if _, err := v.VerifyTable(a.ctx, messages, func(f integrity.Finding) { fs = append(fs, f) }); err != nil {
			t.Fatal(err)
		}
		if len(fs) != 0 {
			cancel()
			t.Fatalf("join %v: findings during concurrent writes: %+v", join, fs)
		}
	}
	cancel()
	wg.Wait()
}

func TestDuplicateRowsReported(t *testing.T) {
	a := newApp(t)
	a.exec(t, "CREATE TABLE loose (app_id text, id bigint, channel_id text, body text, created_at timestamptz)")
	table := messages
	table.Domain, table.Name = "message", "loose"
	a.exec(t, "INSERT INTO loose VALUES ('t1', 1, 'c1', 'forged', $1)", a.day)
	a.post(t, "t1", 1, "c1", ptr("genuine"), a.day)
	a.exec(t, "INSERT INTO loose SELECT * FROM message")
	a.exec(t, "INSERT INTO loose VALUES ('t1', 1, 'c1', 'forged again', $1)", a.day)
	for _, join := range []bool{false, true} {
		v := a.verifier(t, integritypg.VerifierConfig{JoinInDatabase: join})
		var fs []integrity.Finding
		if _, err := v.VerifyTable(a.ctx, table, func(f integrity.Finding) { fs = append(fs, f) }); err != nil {
			t.Fatal(err)
		}
		if len(fs) < 2 {
			t.Fatalf("join %v: findings %+v, want both forged copies reported", join, fs)
		}
	}
}

func TestOtherColumnTypes(t *testing.T) {
	a := newApp(t)
	a.exec(t, `CREATE TABLE attachment (app_id text, id uuid PRIMARY KEY, data bytea, size int4, small int2, flagged bool, at timestamp)`)
	table := integritypg.Table{Domain: "attachment", Columns: []integritypg.Column{
		{Name: "data", Kind: canon.KindBytes}, {Name: "size", Kind: canon.KindInt}, {Name: "small", Kind: canon.KindInt},
		{Name: "flagged", Kind: canon.KindBool}, {Name: "at", Kind: canon.KindTime},
	}}
	id := "0193a1f2-7c3d-7e4f-8a9b-0c1d2e3f4a5b"
	a.exec(t, "INSERT INTO attachment VALUES ('t1', $1, '\\x00ff', -7, 3, true, '2026-12-03 09:30:00')", id)
	a.exec(t, "INSERT INTO attachment VALUES ('t1', '00000000-0000-0000-0000-000000000001', NULL, NULL, NULL, NULL, NULL)")
	err := a.sealer.Seal(a.ctx,
		integrity.Record{Domain: "attachment", Tenant: "t1", ID: id, Scope: "s", Fields: []canon.Value{
			canon.Bytes([]byte{0, 0xff}), canon.Int(-7), canon.Int(3), canon.Bool(true), canon.Time(time.Date(2026, 12, 3, 9, 30, 0, 0, time.UTC))}},
		integrity.Record{Domain: "attachment", Tenant: "t1", ID: "00000000-0000-0000-0000-000000000001", Scope: "s", Fields: make([]canon.Value, 5)})
	if err != nil {
		t.Fatal(err)
	}
	// Both modes, which encode the columns separately.
	for _, join := range []bool{false, true} {
		v := a.verifier(t, integritypg.VerifierConfig{Tables: []integritypg.Table{table}, JoinInDatabase: join})
		var fs []integrity.Finding
		if _, err := v.VerifyTable(a.ctx, table, func(f integrity.Finding) { fs = append(fs, f) }); err != nil {
			t.Fatal(err)
		}
		if len(fs) != 0 {
			t.Fatalf("join %v: findings %+v", join, fs)
		}
	}
	v := a.verifier(t, integritypg.VerifierConfig{Tables: []integritypg.Table{table}})

	wrong := integritypg.Table{Domain: "attachment", Columns: []integritypg.Column{{Name: "data", Kind: canon.KindString}}}
	if _, err := v.VerifyTable(a.ctx, wrong, nil); !errors.Is(err, integritypg.ErrSchema) {
		t.Fatalf("bytea declared as string: %v, want ErrSchema", err)
	}
}

// BenchmarkVerifyTable verifies a sealed table of 20,000 messages per
// iteration; rows/s is the figure to compare with the bench program's.
func BenchmarkVerifyTable(b *testing.B) {
	for _, w := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) {
			a := newBenchApp(b, 20000)
			v, err := integritypg.NewVerifier(integritypg.VerifierConfig{Store: a.store, Sealer: a.sealer, Workers: w})
			if err != nil {
				b.Fatal(err)
			}
			var rows int64
			for b.Loop() {
				sum, err := v.VerifyTable(a.ctx, messages, nil)
				if err != nil || !sum.OK() {
					b.Fatalf("VerifyTable: %v, %+v", err, sum)
				}
				rows += sum.Rows
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

func newBenchApp(b *testing.B, n int) *app {
	b.Helper()
	db := pgtest.New(b)
	ctx := context.Background()
	if err := integritypg.Migrate(ctx, db.Pool, integritypg.Config{}); err != nil {
		b.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE message (
		app_id text NOT NULL, id bigint NOT NULL, channel_id text NOT NULL, body text, created_at timestamptz NOT NULL,
		PRIMARY KEY (app_id, id))`); err != nil {
		b.Fatal(err)
	}
	m, keys := integritytest.NewKeyset(b)
	store := integritypg.New(db.Pool, integritypg.Config{})
	s, err := integrity.New(integrity.Config{Keys: keys, Store: store})
	if err != nil {
		b.Fatal(err)
	}
	a := &app{db: db, ctx: ctx, store: store, sealer: s, m: m, day: time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)}
	rows := make([][]any, n)
	recs := make([]integrity.Record, n)
	for i := range n {
		at := a.day.Add(time.Duration(i) * time.Second)
		body := fmt.Sprintf("%100d", i)
		rows[i] = []any{"t1", int64(i), "c1", body, at}
		recs[i] = record("t1", int64(i), "c1", &body, at)
	}
	if _, err := db.Pool.CopyFrom(ctx, pgx.Identifier{"message"}, []string{"app_id", "id", "channel_id", "body", "created_at"}, pgx.CopyFromRows(rows)); err != nil {
		b.Fatal(err)
	}
	if err := s.Seal(ctx, recs...); err != nil {
		b.Fatal(err)
	}
	return a
}
