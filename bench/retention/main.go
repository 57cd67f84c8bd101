// Command retention measures a retention sweep on a real Postgres: how many
// expired rows per second it deletes, and what it does to the latency of
// inserts running at the same time, next to one unbatched DELETE of the
// same rows.
//
// It creates a schema of its own (dropped at the end) and runs four
// phases under one and the same insert load: -writers goroutines, each
// inserting one live row every -every on a fixed schedule (open loop: an
// insert that is late starts at once, and its latency counts from when it
// was due, so a stall is not hidden by the inserts it delays; a writer
// more than 100ms behind drops the slots it missed beyond that):
//
//  1. idle: -rows expired rows seeded, then inserts alone for -idle;
//  2. sweep: a retention.Sweeper deleting those rows, each batch recorded
//     by a hook that inserts an audit row in the batch's transaction;
//  3. idle again, after the rows are seeded again;
//  4. unbatched: one DELETE of all of them with the same hold check.
//
// Before phases 1 and 3 the table is vacuumed and a CHECKPOINT is taken,
// and autovacuum is off for it, so the sweep and the DELETE start from the
// same state and pay the same full-page writes. Each workload's p99 is
// compared with that of the idle phase just before it, and with that of
// both idle phases' inserts together.
//
// Usage:
//
//	go run ./bench/retention -url 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatsdk/compliance/retention"
	"github.com/chatsdk/compliance/retention/retentionpg"
)

func main() {
	url := flag.String("url", os.Getenv("COMPLIANCE_TEST_DATABASE_URL"), "Postgres URL (defaults to $COMPLIANCE_TEST_DATABASE_URL)")
	rows := flag.Int("rows", 1_000_000, "expired rows to seed")
	writers := flag.Int("writers", 4, "concurrent inserting goroutines")
	every := flag.Duration("every", 8*time.Millisecond, "one writer's insert schedule")
	idle := flag.Duration("idle", 10*time.Second, "how long to measure inserts with no sweep")
	var cfg retention.SweeperConfig
	flag.IntVar(&cfg.BatchSize, "batch", 0, "first batch size (0: the Sweeper's default)")
	flag.IntVar(&cfg.MaxBatch, "max-batch", 0, "largest batch size (0: the Sweeper's default)")
	flag.DurationVar(&cfg.BatchTime, "batch-time", 0, "batch duration the size adapts to (0: the Sweeper's default)")
	flag.Float64Var(&cfg.Duty, "duty", 0, "share of time in batches (0: the Sweeper's default; 1: no pauses)")
	flag.Float64Var(&cfg.MaxRate, "max-rate", 0, "rows/s ceiling (0: none)")
	flag.DurationVar(&cfg.Pause, "pause", 0, "shortest pause between batches")
	trace := flag.Bool("trace", false, "print every batch")
	async := flag.Bool("sweep-async", false, "run the sweeper's sessions with synchronous_commit off (an experiment; the package does not do it)")
	flag.Parse()
	if *url == "" {
		log.Fatal("set -url or COMPLIANCE_TEST_DATABASE_URL")
	}

	ctx := context.Background()
	b, err := setup(ctx, *url, *async)
	if err != nil {
		log.Fatal(err)
	}
	defer b.close()
	load := &load{b: b, writers: *writers, every: *every}

	fmt.Printf("rows %d; %d writers, one insert each every %v (%.0f/s); batch %d, max %d, batch time %v, duty %v, max rate %v, pause %v (0: default)\n\n",
		*rows, *writers, *every, float64(*writers)/every.Seconds(), cfg.BatchSize, cfg.MaxBatch, cfg.BatchTime, cfg.Duty, cfg.MaxRate, cfg.Pause)

	// 1 and 2: idle, then the sweeper.
	if err := b.seed(ctx, *rows); err != nil {
		log.Fatal(err)
	}
	idle1 := load.run(ctx, nil, func() error { return sleepCtx(ctx, *idle) })
	timed := &timedStore{}
	var swept time.Duration
	var deleted int64
	var sweepWAL, idleWAL, bigWAL float64
	sweep := load.run(ctx, timed, func() error {
		start, wal := time.Now(), b.wal(ctx)
		n, err := b.sweep(ctx, cfg, timed)
		swept, deleted, sweepWAL = time.Since(start), n, b.wal(ctx)-wal
		return err
	})
	if deleted != int64(*rows) {
		log.Fatalf("swept %d rows, want %d", deleted, *rows)
	}

	// 3 and 4: idle, then one unbatched DELETE.
	if err := b.seed(ctx, *rows); err != nil {
		log.Fatal(err)
	}
	idle2 := load.run(ctx, nil, func() error {
		wal := b.wal(ctx)
		err := sleepCtx(ctx, *idle)
		idleWAL = b.wal(ctx) - wal
		return err
	})
	var took time.Duration
	var n int64
	big := load.run(ctx, nil, func() error {
		start, wal := time.Now(), b.wal(ctx)
		defer func() { bigWAL = b.wal(ctx) - wal }()
		tag, err := b.pool.Exec(ctx, `DELETE FROM message m WHERE app_id = 'bench' AND created_at < now() - interval '30 days'
			AND NOT EXISTS (SELECT 1 FROM retention_holds h WHERE h.app_id = m.app_id AND h.released_at IS NULL AND (h.kind = 'tenant'
			OR (h.kind = 'channel' AND h.scope_id = m.channel_id) OR (h.kind = 'user' AND h.scope_id = m.user_id)
			OR (h.kind = 'resource' AND h.scope_id = m.id::text)))`)
		took, n = time.Since(start), tag.RowsAffected()
		return err
	})

	// Each workload is compared with the idle phase just before it (same
	// seeded state, next in time) and with both idle phases pooled.
	pooled := p99(append(slices.Clone(idle1.all), idle2.all...))
	fmt.Printf("\n| phase | rows/s | inserts | p50 | p99 | p99.9 | p99 / p99 of the idle phase before | p99 / pooled idle p99 |\n|---|---|---|---|---|---|---|---|\n")
	report("inserts alone, before the sweep", 0, 0, idle1.all, p99(idle1.all), pooled)
	report("retention.Sweeper", deleted, swept, sweep.all, p99(idle1.all), pooled)
	report("  of which overlapping a batch", 0, 0, sweep.during, p99(idle1.all), pooled)
	report("  of which between batches", 0, 0, sweep.between, p99(idle1.all), pooled)
	report("inserts alone, before the DELETE", 0, 0, idle2.all, p99(idle2.all), pooled)
	report("one unbatched DELETE", n, took, big.all, p99(idle2.all), pooled)

	// The inserts write WAL at the same rate in every phase: the idle
	// phase's rate, taken off, leaves what the deletion wrote.
	idleRate := idleWAL / idle.Seconds()
	fmt.Printf("\nWAL written by the deletion (the inserts' %.1f MB/s taken off): sweep %.0f MB (%.0f bytes a row), unbatched DELETE %.0f MB (%.0f bytes a row)\n",
		idleRate/1e6, (sweepWAL-idleRate*swept.Seconds())/1e6, (sweepWAL-idleRate*swept.Seconds())/float64(deleted),
		(bigWAL-idleRate*took.Seconds())/1e6, (bigWAL-idleRate*took.Seconds())/float64(max(n, 1)))
	timed.summary(*trace)
}

// wal is the server's current WAL position, in bytes.
func (b *bench) wal(ctx context.Context) float64 {
	var lsn float64
	if err := b.pool.QueryRow(ctx, "SELECT pg_current_wal_lsn() - '0/0'").Scan(&lsn); err != nil {
		log.Fatal(err)
	}
	return lsn
}

type bench struct {
	pool *pgxpool.Pool
	// sweeper is the sweeper's own pool, so that its session settings can
	// differ from the writers'.
	sweeper *pgxpool.Pool
	schema  string
	admin   *pgx.Conn
}

func setup(ctx context.Context, url string, async bool) (*bench, error) {
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	var r [6]byte
	_, _ = rand.Read(r[:])
	b := &bench{schema: "bench_retention_" + hex.EncodeToString(r[:]), admin: admin}
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+b.schema); err != nil {
		return nil, err
	}

	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = b.schema
	cfg.MaxConns = 16
	if b.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, err
	}
	cfg = cfg.Copy()
	cfg.MaxConns = 2
	if async {
		cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	}
	if b.sweeper, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, err
	}
	if err := retentionpg.Migrate(ctx, b.pool, retentionpg.Config{}); err != nil {
		return nil, err
	}
	for _, ddl := range []string{
		`CREATE TABLE message (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, app_id text NOT NULL,
			created_at timestamptz NOT NULL, channel_id text, user_id text, body text) WITH (autovacuum_enabled = off)`,
		`CREATE INDEX ON message (app_id, created_at, id)`,
		`CREATE TABLE audit (n bigserial PRIMARY KEY, target text, app_id text, first_id text, last_id text, deleted int, at timestamptz)`,
	} {
		if _, err := b.pool.Exec(ctx, ddl); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (b *bench) close() {
	b.sweeper.Close()
	b.pool.Close()
	_, _ = b.admin.Exec(context.Background(), "DROP SCHEMA "+b.schema+" CASCADE")
	_ = b.admin.Close(context.Background())
}

// seed inserts n expired rows (40 days old, a millisecond apart), vacuums
// and checkpoints, so that both measured workloads start from one state.
func (b *bench) seed(ctx context.Context, n int) error {
	start := time.Now()
	if _, err := b.pool.Exec(ctx, `INSERT INTO message (app_id, created_at, channel_id, user_id, body)
		SELECT 'bench', now() - interval '40 days' + i * interval '1 millisecond', 'c' || (i % 10), 'u' || (i % 100), repeat('x', 100)
		FROM generate_series(1, $1) i`, n); err != nil {
		return err
	}
	for _, sql := range []string{"VACUUM ANALYZE message", "CHECKPOINT"} {
		if _, err := b.pool.Exec(ctx, sql); err != nil {
			return err
		}
	}
	fmt.Printf("seeded %d rows in %v\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}

// maxLate is how far behind its schedule a writer may fall: beyond it,
// the missed inserts are dropped.
const maxLate = 100 * time.Millisecond

// load is the insert traffic every phase runs under.
type load struct {
	b       *bench
	writers int
	every   time.Duration
}

// latencies are a phase's insert latencies: all of them and, during a
// sweep, those that overlapped a batch and those that did not.
type latencies struct {
	all, during, between []time.Duration
}

// run runs the writers while work runs and returns the latencies of the
// inserts due while it ran. With batches set, each insert is classed by
// whether a batch ran at any moment during it.
func (l *load) run(ctx context.Context, batches *timedStore, work func() error) latencies {
	var stop, measuring atomic.Bool
	var mu sync.Mutex
	var out latencies
	var wg sync.WaitGroup
	start := time.Now()
	for w := range l.writers {
		wg.Go(func() {
			var mine latencies
			due := start.Add(l.every * time.Duration(w) / time.Duration(l.writers))
			for !stop.Load() {
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
				var seen uint64
				if batches != nil {
					seen = batches.epoch.Load()
				}
				m := measuring.Load()
				if _, err := l.b.pool.Exec(ctx, `INSERT INTO message (app_id, created_at, channel_id, user_id, body)
					VALUES ('live', now(), 'c1', 'u1', repeat('y', 100))`); err != nil {
					log.Fatal(err)
				}
				lat := time.Since(due)
				due = due.Add(l.every)
				if late := time.Since(due); late > maxLate {
					// Give up the slots missed beyond maxLate rather than
					// fire them back to back: on a shared machine the
					// backlog would otherwise never drain.
					due = due.Add(late - maxLate)
				}
				if !m || !measuring.Load() {
					continue
				}
				mine.all = append(mine.all, lat)
				if batches != nil {
					// An odd epoch is a batch running; a change is one
					// starting or ending meanwhile.
					if now := batches.epoch.Load(); seen%2 == 1 || now != seen {
						mine.during = append(mine.during, lat)
					} else {
						mine.between = append(mine.between, lat)
					}
				}
			}
			mu.Lock()
			out.all = append(out.all, mine.all...)
			out.during = append(out.during, mine.during...)
			out.between = append(out.between, mine.between...)
			mu.Unlock()
		})
	}
	time.Sleep(500 * time.Millisecond) // let the writers settle
	measuring.Store(true)
	err := work()
	measuring.Store(false)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		log.Fatal(err)
	}
	return out
}

// timedStore times each batch of the store it wraps.
type timedStore struct {
	retention.Store
	// epoch is odd while a batch runs.
	epoch   atomic.Uint64
	mu      sync.Mutex
	batches []batchTime
	start   time.Time
}

type batchTime struct {
	at, took       time.Duration
	limit, scanned int
}

func (s *timedStore) SweepBatch(ctx context.Context, p retention.BatchParams) (retention.BatchResult, error) {
	s.epoch.Add(1)
	start := time.Now()
	res, err := s.Store.SweepBatch(ctx, p)
	took := time.Since(start)
	s.epoch.Add(1)
	s.mu.Lock()
	if s.start.IsZero() {
		s.start = start
	}
	s.batches = append(s.batches, batchTime{at: start.Sub(s.start), took: took, limit: p.Limit, scanned: res.Scanned})
	s.mu.Unlock()
	return res, err
}

func (s *timedStore) summary(all bool) {
	if len(s.batches) == 0 {
		return
	}
	var busy time.Duration
	var sizes []int
	var tooks []time.Duration
	for _, b := range s.batches {
		busy += b.took
		sizes = append(sizes, b.limit)
		tooks = append(tooks, b.took)
	}
	last := s.batches[len(s.batches)-1]
	span := last.at + last.took
	slices.Sort(sizes)
	fmt.Printf("\nsweep: %d batches over %v, %.0f%% of it in batches; batch size median %d (%d…%d), batch time median %v, max %v\n",
		len(s.batches), span.Round(time.Millisecond), 100*float64(busy)/float64(span),
		sizes[len(sizes)/2], sizes[0], sizes[len(sizes)-1], quantile(tooks, 0.5).Round(time.Millisecond), quantile(tooks, 1).Round(time.Millisecond))
	if all {
		fmt.Printf("\n| batch | at | limit | scanned | took | rows/s in batch |\n|---|---|---|---|---|---|\n")
		for i, b := range s.batches {
			fmt.Printf("| %d | %v | %d | %d | %v | %.0f |\n", i+1, b.at.Round(time.Millisecond), b.limit, b.scanned,
				b.took.Round(100*time.Microsecond), float64(b.scanned)/b.took.Seconds())
		}
	}
}

func (b *bench) sweep(ctx context.Context, cfg retention.SweeperConfig, timed *timedStore) (int64, error) {
	store, err := retentionpg.New(b.sweeper, retentionpg.Config{})
	if err != nil {
		return 0, err
	}
	timed.Store = store
	// The period is set two days back, so its grace period is over.
	past, err := retention.NewPolicies(store, retention.PoliciesConfig{Now: func() time.Time { return time.Now().Add(-48 * time.Hour) }})
	if err != nil {
		return 0, err
	}
	if _, err := past.SetPeriod(ctx, "bench", "", 30*24*time.Hour, "bench"); err != nil {
		return 0, err
	}
	policies, err := retention.NewPolicies(timed, retention.PoliciesConfig{})
	if err != nil {
		return 0, err
	}

	cfg.Targets = []retention.Target{{Table: "message", ID: "id", Time: "created_at", Channel: "channel_id", User: "user_id"}}
	cfg.Tenants = func(context.Context) ([]string, error) { return []string{"bench"}, nil }
	cfg.OnBatch = func(ctx context.Context, r retention.Record) error {
		tx, _ := retentionpg.Tx(ctx)
		_, err := tx.Exec(ctx, "INSERT INTO audit (target, app_id, first_id, last_id, deleted, at) VALUES ($1, $2, $3, $4, $5, $6)",
			r.Target, r.AppID, r.MinID, r.MaxID, r.Deleted, r.At)
		return err
	}
	s, err := retention.NewSweeper(policies, cfg)
	if err != nil {
		return 0, err
	}
	rep, err := s.Run(ctx)
	return rep.Deleted, err
}

func quantile(l []time.Duration, q float64) time.Duration {
	s := slices.Clone(l)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func p99(l []time.Duration) time.Duration { return quantile(l, 0.99) }

func report(name string, rows int64, took time.Duration, lat []time.Duration, before, pooled time.Duration) {
	rate := "–"
	if rows > 0 {
		rate = fmt.Sprintf("%.0f (%d in %v)", float64(rows)/took.Seconds(), rows, took.Round(time.Millisecond))
	}
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	fmt.Printf("| %s | %s | %d | %v | %v | %v | %.2f | %.2f |\n", name, rate, len(lat),
		r(quantile(lat, 0.5)), r(p99(lat)), r(quantile(lat, 0.999)), float64(p99(lat))/float64(before), float64(p99(lat))/float64(pooled))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
