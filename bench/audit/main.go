// Command audit compares, against a real Postgres in one run, the audit
// log's group-commit chain with the two obvious alternatives, and measures
// verification:
//
//   - chained: audit.Log on auditpg, W concurrent writers calling Record;
//   - naive: a chain that per event takes SELECT … FOR UPDATE on a head row,
//     inserts the entry and moves the head, in one transaction per event,
//     written as a careful engineer would: prepared statements and two
//     round trips (BEGIN with the locking read, then the INSERT, the head
//     UPDATE and COMMIT in one pipelined batch);
//   - unchained: one prepared INSERT per event (autocommit), no chain at
//     all;
//   - verify: audit.Verify over a chained stream, read from Postgres.
//
// Every variant writes the same rows to the same partitioned table with the
// same indexes, through the same pool. For each write variant it also
// reports the CPU time spent per event by this process and by the
// Postgres backends of the pool (read from /proc, so only when the server
// runs on this host), which with the core count bounds what any design can
// reach. It creates a schema of its own and drops it at the end.
//
//	go run ./bench/audit -url postgres://postgres@127.0.0.1:5432/test -d 10s -writers 32 -streams 1,8
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
	streams := flag.String("streams", "1", "comma-separated stream (tenant) counts the chained writers spread over, one chained run each; ratios use the first")
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
	var counts []int
	for _, f := range strings.Split(*streams, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintln(os.Stderr, "bench: -streams wants positive integers")
			os.Exit(2)
		}
		counts = append(counts, n)
	}
	if err := run(*url, *dur, *writers, counts, *conns, *verifyN); err != nil {
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

func run(url string, dur time.Duration, writers int, streams []int, conns, verifyN int) error {
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
	cfg.ConnConfig.RuntimeParams["application_name"] = schema // finds the backends for -cpu accounting
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

	fmt.Printf("writers=%d streams=%v conns=%d duration=%s cores=%d load average %s\n", writers, streams, conns, dur, runtime.NumCPU(), loadavg())
	defer func() { fmt.Printf("load average at the end %s\n", loadavg()) }()
	cpu := &cpuMeter{pool: pool, app: schema}

	// One writer's commit latency bounds what any synchronous design can
	// reach: W writers that each wait for a durable commit make at most
	// W / latency events per second (Little's law).
	one, err := runUnchained(ctx, pool, 2*time.Second, 1, nil)
	if err != nil {
		return fmt.Errorf("single writer: %w", err)
	}
	report("single writer, one insert", one)
	fmt.Printf("=> bound for %d synchronous writers at that latency: %.0f events/s\n", writers, float64(writers)*one.rate())

	var chained []result
	for _, n := range streams {
		r, err := runChained(ctx, store, dur, writers, n, cpu)
		if err != nil {
			return fmt.Errorf("chained: %w", err)
		}
		chained = append(chained, r)
	}
	name := func(i int) string { return fmt.Sprintf("chained, %d stream(s)", streams[i]) }
	if chainedOnly {
		for i, r := range chained {
			report(name(i), r)
		}
		return nil
	}
	naive, err := runNaive(ctx, pool, dur, writers, cpu)
	if err != nil {
		return fmt.Errorf("naive: %w", err)
	}
	plain, err := runUnchained(ctx, pool, dur, writers, cpu)
	if err != nil {
		return fmt.Errorf("unchained: %w", err)
	}

	for i, r := range chained {
		report(name(i), r)
	}
	report("naive FOR UPDATE chain", naive)
	report("unchained single-row insert", plain)
	fmt.Printf("ratio %s / naive     %.1fx\n", name(0), chained[0].rate()/naive.rate())
	fmt.Printf("ratio %s / unchained %.1fx\n", name(0), chained[0].rate()/plain.rate())
	for i, r := range append(chained, naive, plain) {
		label := []string{"naive", "unchained"}[max(0, i-len(chained))]
		if i < len(chained) {
			label = name(i)
		}
		if r.serverCPU > 0 {
			per := (r.clientCPU + r.serverCPU) / time.Duration(r.n)
			fmt.Printf("cpu per event %-24s client %6s server %6s => %d cores bound %.0f events/s\n", label,
				(r.clientCPU / time.Duration(r.n)).Round(100*time.Nanosecond), (r.serverCPU / time.Duration(r.n)).Round(100*time.Nanosecond),
				runtime.NumCPU(), float64(runtime.NumCPU())*float64(time.Second)/float64(per))
		} else {
			fmt.Printf("cpu per event %-24s client %6s server n/a (backends not readable in /proc)\n", label,
				(r.clientCPU / time.Duration(r.n)).Round(100*time.Nanosecond))
		}
	}

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
	// clientCPU and serverCPU are the CPU time this process and the
	// pool's backends used during the run; serverCPU is zero when the
	// backends could not be read.
	clientCPU, serverCPU time.Duration
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

// drive runs writers calling op until dur passes and returns the count,
// with the CPU time used when cpu is not nil.
func drive(dur time.Duration, writers int, cpu *cpuMeter, op func(w, i int) error) (result, error) {
	var before cpuSample
	if cpu != nil {
		before = cpu.sample()
	}
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
	r := result{n: n.Load(), elapsed: time.Since(start), latencies: lats}
	if cpu != nil {
		r.clientCPU, r.serverCPU = cpu.since(before)
	}
	return r, firstErr
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

func runChained(ctx context.Context, store *auditpg.Store, dur time.Duration, writers, streams int, cpu *cpuMeter) (result, error) {
	cs := &countingStore{Store: store, sizes: map[int]int{}, conc: map[int64]int{}}
	log, err := audit.New(audit.Config{Store: cs, MaxInFlight: maxInFlight})
	if err != nil {
		return result{}, err
	}
	defer log.Close(ctx)
	r, err := drive(dur, writers, cpu, func(w, i int) error {
		_, err := log.Record(ctx, event(w, i, fmt.Sprintf("tenant-%d", w%streams)))
		return err
	})
	if b := cs.batches.Load(); b > 0 {
		fmt.Printf("chained, %d stream(s): %d batches, %.1f events per batch\n", streams, b, float64(r.n)/float64(b))
		cs.histogram()
	}
	return r, err
}

// naiveSelect, naiveInsert and naiveMove are the naive chain's statements,
// prepared once per connection by pgx's statement cache.
const (
	naiveSelect = `SELECT seq, hash FROM naive_heads WHERE stream = $1 FOR UPDATE`
	naiveMove   = `UPDATE naive_heads SET seq = $2, hash = $3 WHERE stream = $1`
)

func runNaive(ctx context.Context, pool *pgxpool.Pool, dur time.Duration, writers int, cpu *cpuMeter) (result, error) {
	const stream = "naive"
	if _, err := pool.Exec(ctx, `INSERT INTO naive_heads VALUES ($1, 0, $2)`, stream, audit.GenesisHash()); err != nil {
		return result{}, err
	}
	return drive(dur, writers, cpu, func(w, i int) error {
		conn, err := pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release()
		if err := naiveAppend(ctx, conn.Conn(), stream, event(w, i, "naive")); err != nil {
			_, _ = conn.Exec(ctx, "ROLLBACK")
			return err
		}
		return nil
	})
}

// naiveAppend appends one event in two round trips: BEGIN and the locking
// read of the head, then the INSERT, the head UPDATE and COMMIT.
func naiveAppend(ctx context.Context, conn *pgx.Conn, stream string, ev audit.Event) error {
	head := audit.Head{Stream: stream}
	var seq int64
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(naiveSelect, stream).QueryRow(func(row pgx.Row) error { return row.Scan(&seq, &head.Hash) })
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	head.Seq = uint64(seq)
	entries, err := audit.Link(head, []audit.Event{ev})
	if err != nil {
		return err
	}
	e := &entries[0]
	b = &pgx.Batch{}
	b.Queue(insertSQL, insertArgs(e)...)
	b.Queue(naiveMove, stream, int64(e.Seq), e.Hash)
	b.Queue("COMMIT")
	return conn.SendBatch(ctx, b).Close()
}

var unchainedRuns atomic.Int64

func runUnchained(ctx context.Context, pool *pgxpool.Pool, dur time.Duration, writers int, cpu *cpuMeter) (result, error) {
	run := unchainedRuns.Add(1)
	return drive(dur, writers, cpu, func(w, i int) error {
		e := audit.Entry{Event: event(w, i, "plain"), Stream: fmt.Sprintf("plain-%d-%d", run, w), Seq: uint64(i + 1),
			PrevHash: audit.GenesisHash(), Hash: audit.GenesisHash()}
		return insertOne(ctx, pool, &e)
	})
}

// insertSQL inserts one entry with a plain single-row INSERT.
const insertSQL = `INSERT INTO audit_entries (stream, seq, prev_hash, hash, tenant, at, actor, session_id, ip,
	user_agent, type, category, action, resource_type, resource_id, subject, success, failure_reason, metadata, retain_until)
	VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20)`

func insertArgs(e *audit.Entry) []any {
	meta, _ := json.Marshal(e.Metadata)
	return []any{e.Stream, int64(e.Seq), e.PrevHash, e.Hash, e.Tenant, e.Time, e.Actor, e.SessionID, e.IP, e.UserAgent,
		e.Type, string(e.Category), e.Action, e.ResourceType, e.ResourceID, e.Subject, e.Success, e.FailureReason,
		string(meta), e.RetainUntil}
}

// insertOne inserts one entry, prepared (pgx caches the statement per
// connection) and in autocommit.
func insertOne(ctx context.Context, q auditpg.Querier, e *audit.Entry) error {
	_, err := q.Exec(ctx, insertSQL, insertArgs(e)...)
	return err
}

// cpuMeter reads the CPU time of this process and of the Postgres backends
// whose application_name is app.
type cpuMeter struct {
	pool *pgxpool.Pool
	app  string
}

type cpuSample struct {
	client   time.Duration
	backends map[int]time.Duration // pid -> CPU time; nil when unreadable
}

func (m *cpuMeter) sample() cpuSample {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	s := cpuSample{client: time.Duration(ru.Utime.Nano() + ru.Stime.Nano())}
	rows, err := m.pool.Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, m.app)
	if err != nil {
		return s
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return s
	}
	s.backends = map[int]time.Duration{}
	for _, pid := range pids {
		t, ok := procCPU(int(pid))
		if !ok {
			return cpuSample{client: s.client}
		}
		s.backends[int(pid)] = t
	}
	return s
}

// since returns the client and server CPU time used since before; the
// server's is zero when a sample could not read the backends. A backend
// that connected in between counts from zero.
func (m *cpuMeter) since(before cpuSample) (client, server time.Duration) {
	now := m.sample()
	client = now.client - before.client
	if before.backends == nil || now.backends == nil {
		return client, 0
	}
	for pid, t := range now.backends {
		server += t - before.backends[pid]
	}
	return client, server
}

// procCPU reads the user and system time of a process from /proc.
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	return parseStat(b)
}

// parseStat reads the user and system time from a /proc/<pid>/stat line.
func parseStat(b []byte) (time.Duration, bool) {
	// The command name, in parentheses, may hold spaces: count fields
	// after its closing parenthesis. utime and stime are fields 14 and 15.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(u+st) * time.Second / ticks, true
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "n/a"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "n/a"
	}
	return strings.Join(f[:3], " ")
}
