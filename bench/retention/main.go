// Command retention measures a retention sweep on a real Postgres: how many
// expired rows per second it deletes, and what it does to the latency of
// inserts running at the same time, next to one unbatched DELETE of the
// same rows.
//
// It creates a schema of its own (dropped at the end), seeds -rows expired
// rows in one tenant, then runs three phases, each with -writers goroutines
// inserting one live row every -every:
//
//  1. idle: inserts alone, for -idle;
//  2. sweep: a retention.Sweeper deleting the expired rows in batches,
//     each batch recorded by a hook that inserts an audit row in the
//     batch's transaction;
//  3. unbatched: the rows seeded again, then one DELETE of all of them with
//     the same hold check;
//  4. idle again, since the load on a shared machine drifts;
//  5. interleaved: the rows seeded again and swept with a pause between
//     batches, each insert classed by whether a batch ran meanwhile, so
//     the two classes share one window of time.
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
	every := flag.Duration("every", 2*time.Millisecond, "pause between one writer's inserts")
	idle := flag.Duration("idle", 10*time.Second, "how long to measure inserts with no sweep")
	batch := flag.Int("batch", 0, "first batch size (0: the Sweeper's default)")
	maxBatch := flag.Int("max-batch", 0, "largest batch size (0: the Sweeper's default)")
	batchTime := flag.Duration("batch-time", 0, "batch duration the size adapts to (0: the Sweeper's default)")
	pause := flag.Duration("pause", 0, "pause between batches")
	interleave := flag.Duration("interleave", time.Second, "pause between batches in the interleaved phase")
	flag.Parse()
	if *url == "" {
		log.Fatal("set -url or COMPLIANCE_TEST_DATABASE_URL")
	}

	ctx := context.Background()
	b, err := setup(ctx, *url)
	if err != nil {
		log.Fatal(err)
	}
	defer b.close()

	fmt.Printf("rows %d, writers %d inserting every %v, batch %d max %d adapting to %v (0: default), pause %v\n\n",
		*rows, *writers, *every, *batch, *maxBatch, *batchTime, *pause)

	// 1. Idle inserts.
	if err := b.seed(ctx, *rows); err != nil {
		log.Fatal(err)
	}
	idleLat, _ := b.traffic(ctx, *writers, *every, nil, func() error { return sleepCtx(ctx, *idle) })

	// 2. The sweeper.
	var swept time.Duration
	var deleted int64
	sweepLat, _ := b.traffic(ctx, *writers, *every, nil, func() error {
		start := time.Now()
		n, err := b.sweep(ctx, *batch, *maxBatch, *batchTime, *pause, nil)
		swept, deleted = time.Since(start), n
		return err
	})
	if deleted != int64(*rows) {
		log.Fatalf("swept %d rows, want %d", deleted, *rows)
	}

	// 3. One unbatched DELETE.
	if err := b.seed(ctx, *rows); err != nil {
		log.Fatal(err)
	}
	var took time.Duration
	var n int64
	bigLat, _ := b.traffic(ctx, *writers, *every, nil, func() error {
		start := time.Now()
		tag, err := b.pool.Exec(ctx, `DELETE FROM message m WHERE app_id = 'bench' AND created_at < now() - interval '30 days'
			AND NOT EXISTS (SELECT 1 FROM retention_holds h WHERE h.app_id = m.app_id AND h.released_at IS NULL AND (h.kind = 'tenant'
			OR (h.kind = 'channel' AND h.scope_id = m.channel_id) OR (h.kind = 'user' AND h.scope_id = m.user_id)
			OR (h.kind = 'resource' AND h.scope_id = m.id::text)))`)
		took, n = time.Since(start), tag.RowsAffected()
		return err
	})

	// 4. Idle again: the load on a shared machine drifts, so the baseline is
	// measured at both ends, and ratios are to the lower (the harsher).
	idleAgain, _ := b.traffic(ctx, *writers, *every, nil, func() error { return sleepCtx(ctx, *idle) })
	base := min(p99(idleLat), p99(idleAgain))

	// 5. Interleaved: the sweeper pauses -interleave between batches, and
	// each insert is classed by whether a batch ran while it did. Both
	// classes share one window of time, so the machine's drifting load
	// weighs on them alike: their p99 ratio is the cleanest figure here.
	if err := b.seed(ctx, *rows); err != nil {
		log.Fatal(err)
	}
	var busy atomic.Bool
	var paused time.Duration
	pauseSleep := func(ctx context.Context, d time.Duration) error {
		busy.Store(false)
		start := time.Now()
		err := sleepCtx(ctx, d)
		paused += time.Since(start)
		busy.Store(true)
		return err
	}
	var interleavedTook time.Duration
	var interleaved int64
	during, between := b.traffic(ctx, *writers, *every, &busy, func() error {
		busy.Store(true)
		start := time.Now()
		n, err := b.sweep(ctx, *batch, *maxBatch, *batchTime, *interleave, pauseSleep)
		busy.Store(false)
		interleavedTook, interleaved = time.Since(start)-paused, n
		return err
	})

	fmt.Printf("\n| phase | rows/s | insert p50 | insert p99 | p99 / idle p99 |\n|---|---|---|---|---|\n")
	report("inserts alone, before", 0, *idle, idleLat, base)
	report("retention.Sweeper", deleted, swept, sweepLat, base)
	report("one unbatched DELETE", n, took, bigLat, base)
	report("inserts alone, after", 0, *idle, idleAgain, base)
	fmt.Printf("\ninterleaved, pausing %v between batches (rows/s counts batch time only):\n\n", *interleave)
	fmt.Printf("| inserts | rows/s | insert p50 | insert p99 | p99 / p99 between batches |\n|---|---|---|---|---|\n")
	report("while a batch runs", interleaved, interleavedTook, during, p99(between))
	report("between batches", 0, 0, between, p99(between))
}

type bench struct {
	pool   *pgxpool.Pool
	schema string
	admin  *pgx.Conn
}

func setup(ctx context.Context, url string) (*bench, error) {
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
	if err := retentionpg.Migrate(ctx, b.pool, retentionpg.Config{}); err != nil {
		return nil, err
	}
	for _, ddl := range []string{
		`CREATE TABLE message (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, app_id text NOT NULL,
			created_at timestamptz NOT NULL, channel_id text, user_id text, body text)`,
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
	b.pool.Close()
	_, _ = b.admin.Exec(context.Background(), "DROP SCHEMA "+b.schema+" CASCADE")
	_ = b.admin.Close(context.Background())
}

// seed inserts n expired rows (40 days old, a millisecond apart) and
// vacuums, so every phase starts from the same state.
func (b *bench) seed(ctx context.Context, n int) error {
	start := time.Now()
	if _, err := b.pool.Exec(ctx, `INSERT INTO message (app_id, created_at, channel_id, user_id, body)
		SELECT 'bench', now() - interval '40 days' + i * interval '1 millisecond', 'c' || (i % 10), 'u' || (i % 100), repeat('x', 100)
		FROM generate_series(1, $1) i`, n); err != nil {
		return err
	}
	if _, err := b.pool.Exec(ctx, "VACUUM ANALYZE message"); err != nil {
		return err
	}
	fmt.Printf("seeded %d rows in %v\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}

// traffic runs writers inserting live rows while work runs, and returns
// the latencies of the inserts that started while it ran: those that
// started and ended while busy was set, and those that started and ended
// while it was not (busy nil: all are in the first).
func (b *bench) traffic(ctx context.Context, writers int, every time.Duration, busy *atomic.Bool, work func() error) (during, between []time.Duration) {
	var stop, measuring atomic.Bool
	var mu sync.Mutex
	var wg sync.WaitGroup
	state := func() bool { return busy == nil || busy.Load() }
	for range writers {
		wg.Go(func() {
			var in, out []time.Duration
			for !stop.Load() {
				was, start := state(), time.Now()
				if _, err := b.pool.Exec(ctx, `INSERT INTO message (app_id, created_at, channel_id, user_id, body)
					VALUES ('live', now(), 'c1', 'u1', repeat('y', 100))`); err != nil {
					log.Fatal(err)
				}
				d := time.Since(start)
				switch is := state(); {
				case !measuring.Load() || is != was:
				case is:
					in = append(in, d)
				default:
					out = append(out, d)
				}
				time.Sleep(every)
			}
			mu.Lock()
			during, between = append(during, in...), append(between, out...)
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
	return during, between
}

func (b *bench) sweep(ctx context.Context, batch, maxBatch int, batchTime, pause time.Duration, sleep func(context.Context, time.Duration) error) (int64, error) {
	store, err := retentionpg.New(b.pool, retentionpg.Config{})
	if err != nil {
		return 0, err
	}
	// The period is set two days back, so its grace period is over.
	past, err := retention.NewPolicies(store, retention.PoliciesConfig{Now: func() time.Time { return time.Now().Add(-48 * time.Hour) }})
	if err != nil {
		return 0, err
	}
	if _, err := past.SetPeriod(ctx, "bench", "", 30*24*time.Hour, "bench"); err != nil {
		return 0, err
	}
	policies, err := retention.NewPolicies(store, retention.PoliciesConfig{})
	if err != nil {
		return 0, err
	}

	s, err := retention.NewSweeper(policies, retention.SweeperConfig{
		Targets:   []retention.Target{{Table: "message", ID: "id", Time: "created_at", Channel: "channel_id", User: "user_id"}},
		Tenants:   func(context.Context) ([]string, error) { return []string{"bench"}, nil },
		BatchSize: batch, MaxBatch: maxBatch, BatchTime: batchTime, Pause: pause, Sleep: sleep,
		OnBatch: func(ctx context.Context, r retention.Record) error {
			tx, _ := retentionpg.Tx(ctx)
			_, err := tx.Exec(ctx, "INSERT INTO audit (target, app_id, first_id, last_id, deleted, at) VALUES ($1, $2, $3, $4, $5, $6)",
				r.Target, r.AppID, r.MinID, r.MaxID, r.Deleted, r.At)
			return err
		},
	})
	if err != nil {
		return 0, err
	}
	rep, err := s.Run(ctx)
	if err == nil {
		fmt.Printf("sweep: %d batches\n", rep.Batches)
	}
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

func report(name string, rows int64, took time.Duration, lat []time.Duration, base time.Duration) {
	rate := "–"
	if rows > 0 {
		rate = fmt.Sprintf("%.0f (%d in %v)", float64(rows)/took.Seconds(), rows, took.Round(time.Millisecond))
	}
	fmt.Printf("| %s | %s | %v | %v | %.2f |\n", name, rate,
		quantile(lat, 0.5).Round(10*time.Microsecond), p99(lat).Round(10*time.Microsecond), float64(p99(lat))/float64(base))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
