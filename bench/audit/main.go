// Command audit compares, against a real Postgres in one run, the audit
// log's group-commit chain with the two obvious alternatives, and measures
// verification:
//
//   - chained: audit.Log on auditpg, W concurrent writers calling Record;
//   - naive: a chain that per event takes SELECT … FOR UPDATE on a head row,
//     inserts the entry and moves the head, in one transaction per event;
//   - unchained: one INSERT per event (autocommit), no chain at all;
//   - verify: audit.Verify over the chained stream, read from Postgres.
//
// Every variant writes the same rows to the same partitioned table with the
// same indexes. It creates a schema of its own and drops it at the end.
//
//	go run ./bench/audit -url postgres://postgres@127.0.0.1:5432/test -d 10s -writers 32
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/auditpg"
)

func main() {
	url := flag.String("url", envOr("COMPLIANCE_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"), "Postgres URL")
	dur := flag.Duration("d", 10*time.Second, "duration of each write run")
	writers := flag.Int("writers", 32, "concurrent writers")
	streams := flag.Int("streams", 1, "streams (tenants) the chained writers spread over")
	conns := flag.Int("conns", 0, "pool size for every variant; 0 means one connection per writer")
	verifyN := flag.Int("verify", 200000, "entries in the stream verification reads")
	inflight := flag.Int("inflight", 0, "audit.Config.MaxInFlight of the chained Log; 0 means its default")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.BoolVar(&chainedOnly, "chained-only", false, "run only the chained variant (no naive, unchained or verify runs)")
	flag.Parse()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}

	if *conns == 0 {
		*conns = *writers
	}
	maxInFlight = *inflight
	if err := run(*url, *dur, *writers, *streams, *conns, *verifyN); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

var (
	maxInFlight int
	chainedOnly bool
)

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run(url string, dur time.Duration, writers, streams, conns, verifyN int) error {
	ctx := context.Background()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "bench_audit_" + hex.EncodeToString(b[:])

	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return err
	}
	defer admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")

	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = int32(conns)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()

	store, err := auditpg.New(pool, auditpg.Config{})
	if err != nil {
		return err
	}
	if err := store.Migrate(ctx, pool); err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE naive_heads (stream text PRIMARY KEY, seq bigint NOT NULL, hash bytea NOT NULL)`); err != nil {
		return err
	}

	fmt.Printf("writers=%d streams=%d conns=%d duration=%s\n", writers, streams, conns, dur)

	// One writer's commit latency bounds what any synchronous design can
	// reach: W writers that each wait for a durable commit make at most
	// W / latency events per second (Little's law).
	one, err := runUnchained(ctx, pool, 2*time.Second, 1)
	if err != nil {
		return fmt.Errorf("single writer: %w", err)
	}
	report("single writer, one insert", one)
	fmt.Printf("=> bound for %d synchronous writers at that latency: %.0f events/s\n", writers, float64(writers)*one.rate())

	chained, err := runChained(ctx, store, dur, writers, streams)
	if err != nil {
		return fmt.Errorf("chained: %w", err)
	}
	if chainedOnly {
		report("chained (group commit)", chained)
		return nil
	}
	naive, err := runNaive(ctx, pool, dur, writers)
	if err != nil {
		return fmt.Errorf("naive: %w", err)
	}
	plain, err := runUnchained(ctx, pool, dur, writers)
	if err != nil {
		return fmt.Errorf("unchained: %w", err)
	}

	report("chained (group commit)", chained)
	report("naive FOR UPDATE chain", naive)
	report("unchained single-row insert", plain)
	fmt.Printf("ratio chained/naive     %.1fx\n", chained.rate()/naive.rate())
	fmt.Printf("ratio chained/unchained %.1fx\n", chained.rate()/plain.rate())

	// Verification of a long stream, read from Postgres.
	if err := seed(ctx, store, "verify", verifyN); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	// The floor under verification: the same rows read and thrown away.
	for range 2 {
		start := time.Now()
		rows, err := pool.Query(ctx, `SELECT seq, prev_hash, hash, tenant, at, actor, session_id, ip, user_agent, type,
			category, action, resource_type, resource_id, subject, success, failure_reason, metadata, retain_until
			FROM audit_entries WHERE stream = $1 AND seq >= 1 ORDER BY seq`, "verify")
		if err != nil {
			return err
		}
		n := 0
		for rows.Next() {
			_ = rows.RawValues()
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		el := time.Since(start)
		fmt.Printf("raw read %d rows in %s: %.0f rows/s\n", n, el.Round(time.Millisecond), float64(n)/el.Seconds())
	}
	for _, parallel := range []int{1, 1, 2, 2} { // the first run warms the cache
		start := time.Now()
		rep, err := audit.Verify(ctx, store, audit.VerifyOptions{Stream: "verify", Verifier: nopVerifier{}, Parallel: parallel})
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		el := time.Since(start)
		fmt.Printf("verify (parallel %d) %d entries in %s: %.0f events/s\n", parallel, rep.Entries, el.Round(time.Millisecond), float64(rep.Entries)/el.Seconds())
	}
	return nil
}

// seed appends n entries to stream in large batches.
func seed(ctx context.Context, store *auditpg.Store, stream string, n int) error {
	const batch = 2000
	for done := 0; done < n; done += batch {
		evs := make([]audit.Event, min(batch, n-done))
		for i := range evs {
			evs[i] = event(i%32, done+i, stream)
		}
		if _, err := store.Append(ctx, stream, evs); err != nil {
			return err
		}
	}
	return nil
}

// nopVerifier accepts every signature: the bench makes no checkpoints.
type nopVerifier struct{}

func (nopVerifier) Verify(_, _ []byte) error { return nil }

type result struct {
	n         int64
	elapsed   time.Duration
	latencies []time.Duration
}

func (r result) rate() float64 { return float64(r.n) / r.elapsed.Seconds() }

func report(name string, r result) {
	sort.Slice(r.latencies, func(i, j int) bool { return r.latencies[i] < r.latencies[j] })
	p := func(q float64) time.Duration {
		if len(r.latencies) == 0 {
			return 0
		}
		return r.latencies[int(q*float64(len(r.latencies)-1))].Round(10 * time.Microsecond)
	}
	fmt.Printf("%-28s %8d events %9.0f events/s  p50 %-8s p99 %s\n", name, r.n, r.rate(), p(0.5), p(0.99))
}

func event(w, i int, tenant string) audit.Event {
	now := time.Now()
	return audit.Event{
		Tenant: tenant, Time: now, Actor: fmt.Sprintf("user-%d", w), SessionID: fmt.Sprintf("sess-%d", w),
		IP: "192.0.2.10", UserAgent: "bench/1.0", Type: audit.TypeDataRead, Category: audit.CategoryDataAccess,
		Action: audit.ActionRead, ResourceType: "message", ResourceID: fmt.Sprintf("msg-%d-%d", w, i),
		Subject: fmt.Sprintf("patient-%d", i%100), Success: true,
		Metadata: map[string]string{"channel": fmt.Sprintf("ch-%d", i%10)}, RetainUntil: now.AddDate(6, 0, 0),
	}
}

// drive runs writers calling op until dur passes and returns the count.
func drive(dur time.Duration, writers int, op func(w, i int) error) (result, error) {
	var (
		n        atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		lats     []time.Duration
		firstErr error
	)
	deadline := time.Now().Add(dur)
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for i := 0; time.Now().Before(deadline); i++ {
				t0 := time.Now()
				if err := op(w, i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(t0))
				n.Add(1)
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return result{n: n.Load(), elapsed: time.Since(start), latencies: lats}, firstErr
}

// countingStore counts the batches the Log writes, their sizes, and how
// many Appends (of any stream) were in flight at once.
type countingStore struct {
	*auditpg.Store
	batches  atomic.Int64
	inflight atomic.Int64
	maxConc  atomic.Int64

	mu    sync.Mutex
	sizes map[int]int // batch size bucket (upper bound, powers of 2) -> batches
	conc  map[int64]int
}

func (c *countingStore) Append(ctx context.Context, stream string, events []audit.Event) ([]audit.Entry, error) {
	c.batches.Add(1)
	now := c.inflight.Add(1)
	defer c.inflight.Add(-1)
	for {
		m := c.maxConc.Load()
		if now <= m || c.maxConc.CompareAndSwap(m, now) {
			break
		}
	}
	bucket := 1
	for bucket < len(events) {
		bucket *= 2
	}
	c.mu.Lock()
	c.sizes[bucket]++
	c.conc[now]++
	c.mu.Unlock()
	return c.Store.Append(ctx, stream, events)
}

func (c *countingStore) histogram() {
	c.mu.Lock()
	defer c.mu.Unlock()
	var keys []int
	for k := range c.sizes {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	fmt.Printf("chained: batch sizes (bucket <= n: batches):")
	lo := 1
	for _, k := range keys {
		fmt.Printf(" %d-%d:%d", lo, k, c.sizes[k])
		lo = k + 1
	}
	fmt.Println()
	var ck []int64
	for k := range c.conc {
		ck = append(ck, k)
	}
	sort.Slice(ck, func(i, j int) bool { return ck[i] < ck[j] })
	fmt.Printf("chained: Appends in flight when one starts (n: batches):")
	for _, k := range ck {
		fmt.Printf(" %d:%d", k, c.conc[k])
	}
	fmt.Printf(" (max %d)\n", c.maxConc.Load())
}

func runChained(ctx context.Context, store *auditpg.Store, dur time.Duration, writers, streams int) (result, error) {
	cs := &countingStore{Store: store, sizes: map[int]int{}, conc: map[int64]int{}}
	log, err := audit.New(audit.Config{Store: cs, MaxInFlight: maxInFlight})
	if err != nil {
		return result{}, err
	}
	defer log.Close(ctx)
	r, err := drive(dur, writers, func(w, i int) error {
		_, err := log.Record(ctx, event(w, i, fmt.Sprintf("tenant-%d", w%streams)))
		return err
	})
	if b := cs.batches.Load(); b > 0 {
		fmt.Printf("chained: %d batches, %.1f events per batch\n", b, float64(r.n)/float64(b))
		cs.histogram()
	}
	return r, err
}

func runNaive(ctx context.Context, pool *pgxpool.Pool, dur time.Duration, writers int) (result, error) {
	const stream = "naive"
	if _, err := pool.Exec(ctx, `INSERT INTO naive_heads VALUES ($1, 0, $2)`, stream, audit.GenesisHash()); err != nil {
		return result{}, err
	}
	return drive(dur, writers, func(w, i int) error {
		tx, err := pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		head := audit.Head{Stream: stream}
		var seq int64
		if err := tx.QueryRow(ctx, `SELECT seq, hash FROM naive_heads WHERE stream = $1 FOR UPDATE`, stream).Scan(&seq, &head.Hash); err != nil {
			return err
		}
		head.Seq = uint64(seq)
		entries, err := audit.Link(head, []audit.Event{event(w, i, "naive")})
		if err != nil {
			return err
		}
		if err := insertOne(ctx, tx, &entries[0]); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE naive_heads SET seq = $2, hash = $3 WHERE stream = $1`, stream, int64(entries[0].Seq), entries[0].Hash); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
}

var unchainedRuns atomic.Int64

func runUnchained(ctx context.Context, pool *pgxpool.Pool, dur time.Duration, writers int) (result, error) {
	run := unchainedRuns.Add(1)
	return drive(dur, writers, func(w, i int) error {
		e := audit.Entry{Event: event(w, i, "plain"), Stream: fmt.Sprintf("plain-%d-%d", run, w), Seq: uint64(i + 1),
			PrevHash: audit.GenesisHash(), Hash: audit.GenesisHash()}
		return insertOne(ctx, pool, &e)
	})
}

// insertOne inserts one entry with a plain single-row INSERT.
func insertOne(ctx context.Context, q auditpg.Querier, e *audit.Entry) error {
	meta, _ := json.Marshal(e.Metadata)
	_, err := q.Exec(ctx, `INSERT INTO audit_entries (stream, seq, prev_hash, hash, tenant, at, actor, session_id, ip,
		user_agent, type, category, action, resource_type, resource_id, subject, success, failure_reason, metadata, retain_until)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20)`,
		e.Stream, int64(e.Seq), e.PrevHash, e.Hash, e.Tenant, e.Time, e.Actor, e.SessionID, e.IP, e.UserAgent,
		e.Type, string(e.Category), e.Action, e.ResourceType, e.ResourceID, e.Subject, e.Success, e.FailureReason,
		string(meta), e.RetainUntil)
	return err
}
