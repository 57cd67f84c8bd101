// Command lockout measures lockout.Guard.Check (reserve, check, settle)
// against Postgres with concurrent callers and prints latency percentiles,
// next to floors measured in the same run: two bare round trips (SELECT 1
// twice) and two durable single-row upserts, the least that any design
// committing a reservation before the check and a settlement after it can
// cost on the same machine at the same moment.
//
//	go run ./bench/lockout -db "$COMPLIANCE_TEST_DATABASE_URL" -callers 32 -duration 8s
//
// Besides the default store it measures lockoutpg.Options.AsyncSettle
// (one WAL flush per attempt instead of two) and a pool whose sessions set
// plan_cache_mode=force_generic_plan: the adapter writes its rows out as
// VALUES so that Postgres picks generic plans by itself, and the two
// figures should match. The phases run
// in turn, -rounds times, so slow moments of a shared machine spread over
// all of them. The verify function does no work; one attempt in ten
// fails, over 10,000 accounts from 1,000 addresses. It works in a schema
// of its own, dropped at the end.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatsdk/compliance/lockout"
	"github.com/chatsdk/compliance/lockout/lockoutpg"
)

func main() {
	url := flag.String("db", os.Getenv("COMPLIANCE_TEST_DATABASE_URL"), "Postgres connection string")
	callers := flag.Int("callers", 32, "concurrent callers")
	duration := flag.Duration("duration", 8*time.Second, "measuring time of each phase in each round")
	rounds := flag.Int("rounds", 2, "rounds of all phases")
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "lockout bench: set -db or COMPLIANCE_TEST_DATABASE_URL")
		os.Exit(2)
	}
	if err := run(*url, *callers, *duration, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "lockout bench:", err)
		os.Exit(1)
	}
}

type phase struct {
	name string
	fn   func(context.Context, int) error
	lat  []time.Duration
	time time.Duration
}

func run(url string, callers int, duration time.Duration, rounds int) error {
	ctx := context.Background()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "bench_lockout_" + hex.EncodeToString(b[:])

	newPool := func(params map[string]string) (*pgxpool.Pool, error) {
		cfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			return nil, err
		}
		cfg.MaxConns, cfg.MinConns = int32(callers), int32(callers)
		for k, v := range params {
			cfg.ConnConfig.RuntimeParams[k] = v
		}
		return pgxpool.NewWithConfig(ctx, cfg)
	}
	pool, err := newPool(nil)
	if err != nil {
		return err
	}
	defer pool.Close()
	generic, err := newPool(map[string]string{"plan_cache_mode": "force_generic_plan"})
	if err != nil {
		return err
	}
	defer generic.Close()
	defer func() {
		_, _ = pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	}()

	opts := lockoutpg.Options{Schema: schema}
	if err := lockoutpg.Migrate(ctx, pool, opts); err != nil {
		return err
	}
	policy := lockout.Policy{IPMaxFailures: 1_000_000}
	guard := func(db lockoutpg.DB, opts lockoutpg.Options) (*lockout.Guard, error) {
		s, err := lockoutpg.New(db, opts)
		if err != nil {
			return nil, err
		}
		return lockout.New(lockout.Config{Store: s, Policy: policy})
	}
	plain, err := guard(pool, opts)
	if err != nil {
		return err
	}
	asyncOpts := opts
	asyncOpts.AsyncSettle = true
	async, err := guard(pool, asyncOpts)
	if err != nil {
		return err
	}
	genericGuard, err := guard(generic, opts)
	if err != nil {
		return err
	}

	floorTable := pgx.Identifier{schema, "floor"}.Sanitize()
	if _, err := pool.Exec(ctx, "CREATE TABLE "+floorTable+" (k integer PRIMARY KEY, n bigint NOT NULL)"); err != nil {
		return err
	}
	upsert := "INSERT INTO " + floorTable + " AS f VALUES ($1, 1) ON CONFLICT (k) DO UPDATE SET n = f.n + 1"

	phases := []*phase{
		{name: "floor: 2 x SELECT 1", fn: func(ctx context.Context, _ int) error {
			for i := 0; i < 2; i++ {
				if _, err := pool.Exec(ctx, "SELECT 1"); err != nil {
					return err
				}
			}
			return nil
		}},
		{name: "floor: 2 x durable upsert", fn: func(ctx context.Context, n int) error {
			for i := 0; i < 2; i++ {
				if _, err := pool.Exec(ctx, upsert, n%10_000); err != nil {
					return err
				}
			}
			return nil
		}},
		{name: "Check", fn: checkWith(plain)},
		{name: "Check, AsyncSettle", fn: checkWith(async)},
		{name: "Check, generic plans", fn: checkWith(genericGuard)},
	}

	fmt.Printf("lockout bench: %d callers, %d rounds of %s per phase, on a machine shared with other work\n",
		callers, rounds, duration)
	for _, p := range phases { // warm-up: connections, prepared statements
		if _, err := measure(ctx, callers, duration/8, p.fn); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
	}
	for r := 0; r < rounds; r++ {
		for _, p := range phases {
			lat, err := measure(ctx, callers, duration, p.fn)
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			p.lat = append(p.lat, lat...)
			p.time += duration
		}
	}
	for _, p := range phases {
		report(p)
	}
	return nil
}

func checkWith(g *lockout.Guard) func(context.Context, int) error {
	return func(ctx context.Context, n int) error {
		a := lockout.Attempt{AppID: "bench", Account: fmt.Sprintf("user%05d", n%10_000),
			IP: netip.AddrFrom4([4]byte{10, 0, byte(n / 256 % 4), byte(n % 250)})}
		fails := n%10 == 0
		err := g.Check(ctx, a, func(context.Context) (bool, error) { return !fails, nil })
		if err == nil || (fails && (errors.Is(err, lockout.ErrInvalidCredential) || errors.Is(err, lockout.ErrLocked))) {
			return nil
		}
		return err
	}
}

func measure(ctx context.Context, callers int, d time.Duration, fn func(context.Context, int) error) ([]time.Duration, error) {
	var mu sync.Mutex
	var all []time.Duration
	var firstErr error
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for c := 0; c < callers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			off, _ := rand.Int(rand.Reader, big.NewInt(1_000_000))
			n := int(off.Int64())
			var lat []time.Duration
			for time.Now().Before(deadline) {
				start := time.Now()
				err := fn(ctx, n)
				lat = append(lat, time.Since(start))
				n += 7919
				if err != nil {
					mu.Lock()
					firstErr = cmpOr(firstErr, err)
					mu.Unlock()
					return
				}
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all, firstErr
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func report(p *phase) {
	lat := p.lat
	slices.Sort(lat)
	pct := func(q float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(q*float64(len(lat))))].Round(time.Microsecond)
	}
	fmt.Printf("%-28s n=%-7d %7.0f/s  p50=%-9s p90=%-9s p99=%-9s p99.9=%s\n", p.name, len(lat),
		float64(len(lat))/p.time.Seconds(), pct(0.50), pct(0.90), pct(0.99), pct(0.999))
}
