// Command session measures the session package against a real Postgres:
// refresh-token rotation latency under concurrent callers (target: p99
// ≤ 2 ms at 32 callers), and, side by side in the same run, access-token
// verification for HS256 and EdDSA beside the bare primitives.
//
//	go run ./bench/session -db 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable' -callers 32 -duration 10s
//
// It creates a schema of its own (bench_session_<hex>) and drops it at the
// end. Each caller owns one session and rotates its refresh token in a
// loop, as a client would: every rotation is Manager.Refresh end to end
// (the conditional UPDATE … INSERT statement plus signing the new access
// token).
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatsdk/compliance/session"
	"github.com/chatsdk/compliance/session/sessionpg"
)

func main() {
	url := flag.String("db", os.Getenv("COMPLIANCE_TEST_DATABASE_URL"), "Postgres URL (default $COMPLIANCE_TEST_DATABASE_URL)")
	callers := flag.Int("callers", 32, "concurrent refresh callers")
	conns := flag.Int("conns", 0, "pool size (default: callers)")
	duration := flag.Duration("duration", 10*time.Second, "length of the rotation run")
	rate := flag.Float64("rate", 0, "total rotations per second, spread over the callers; 0 runs closed-loop (each caller back to back)")
	verifyN := flag.Int("verify", 20000, "verifications per algorithm")
	flag.Parse()
	if *url == "" {
		log.Fatal("set -db or COMPLIANCE_TEST_DATABASE_URL")
	}
	if *conns == 0 {
		*conns = *callers
	}
	if *duration > 5*time.Minute {
		log.Fatal("-duration is capped at 5m")
	}

	fmt.Printf("GOMAXPROCS=%d NumCPU=%d %s\n", runtime.GOMAXPROCS(0), runtime.NumCPU(), loadavg())
	verify(*verifyN)
	if err := rotation(*url, *callers, *conns, *duration, *rate); err != nil {
		log.Fatal(err)
	}
	fmt.Println(loadavg())
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return "loadavg " + string(b[:len(b)-1])
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs fn n times and prints wall and CPU time per call.
func measure(name string, n int, fn func()) {
	runtime.GC()
	c0, t0 := cpuNow(), time.Now()
	for range n {
		fn()
	}
	wall, cpu := time.Since(t0)/time.Duration(n), (cpuNow()-c0)/time.Duration(n)
	fmt.Printf("  %-22s  wall %8.2f µs/op   cpu %8.2f µs/op\n", name, us(wall), us(cpu))
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func newManager(key session.Key, st session.Store, cacheSize int) *session.Manager {
	ring, err := session.NewKeyRing(key)
	if err != nil {
		log.Fatal(err)
	}
	m, err := session.New(session.Config{
		Store: st, Keys: ring, Issuer: "https://auth.example", Audience: "chat-api", VerifyCacheSize: cacheSize,
	})
	if err != nil {
		log.Fatal(err)
	}
	return m
}

func verify(n int) {
	fmt.Printf("access-token verification, %d calls each, one goroutine:\n", n)
	ctx := context.Background()
	hk, _ := session.NewHS256Key("h1", []byte("0123456789abcdef0123456789abcdef"))
	ek, _ := session.GenerateEd25519Key("e1")
	for _, run := range []struct {
		name  string
		key   session.Key
		cache int
	}{{"Verify HS256", hk, -1}, {"Verify EdDSA", ek, -1}, {"Verify EdDSA, cached", ek, 0}} {
		m := newManager(run.key, session.NewMemoryStore(), run.cache)
		tok, err := m.Create(ctx, session.CreateParams{AppID: "app1", UserID: "u1", Methods: []string{"pwd", "otp"}})
		if err != nil {
			log.Fatal(err)
		}
		measure(run.name, n, func() {
			if _, err := m.Verify(tok.AccessToken); err != nil {
				log.Fatal(err)
			}
		})
	}
	msg := make([]byte, 400)
	key := make([]byte, 32)
	measure("raw HMAC-SHA-256", n, func() {
		h := hmac.New(sha256.New, key)
		h.Write(msg)
		_ = h.Sum(nil)
	})
	pub, priv, _ := ed25519.GenerateKey(nil)
	sig := ed25519.Sign(priv, msg)
	measure("raw Ed25519 verify", n, func() {
		if !ed25519.Verify(pub, msg, sig) {
			log.Fatal("bad signature")
		}
	})
}

func rotation(url string, callers, conns int, d time.Duration, rate float64) error {
	ctx := context.Background()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "bench_session_" + hex.EncodeToString(b[:])

	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return err
	}
	cfg.MaxConns = int32(conns)
	cfg.MinConns = int32(conns)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return err
	}
	defer func() {
		if _, err := pool.Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			log.Printf("drop schema %s: %v", schema, err)
		}
	}()
	scfg := sessionpg.Config{Schema: schema}
	if err := sessionpg.Migrate(ctx, pool, scfg); err != nil {
		return err
	}
	st, err := sessionpg.New(pool, scfg)
	if err != nil {
		return err
	}
	key, _ := session.GenerateEd25519Key("e1")
	m := newManager(key, st, 0)

	tokens := make([]string, callers)
	for i := range tokens {
		t, err := m.Create(ctx, session.CreateParams{AppID: "app1", UserID: fmt.Sprintf("u%d", i), Methods: []string{"pwd"}})
		if err != nil {
			return err
		}
		tokens[i] = t.RefreshToken
	}
	// Warm the pool's connections and statement caches.
	for i := range tokens {
		t, err := m.Refresh(ctx, tokens[i])
		if err != nil {
			return err
		}
		tokens[i] = t.RefreshToken
	}

	lat := make([][]time.Duration, callers)
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	errs := make(chan error, callers)
	start := time.Now()
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rt := tokens[i]
			// In paced mode each caller has a schedule, staggered, and
			// latency counts from the scheduled time, so a stall is not
			// hidden by the caller waiting it out.
			var every time.Duration
			next := time.Now()
			if rate > 0 {
				every = time.Duration(float64(callers) / rate * float64(time.Second))
				next = next.Add(every * time.Duration(i) / time.Duration(callers))
			}
			for time.Now().Before(deadline) {
				if every > 0 {
					time.Sleep(time.Until(next))
				}
				t0 := time.Now()
				if every > 0 {
					t0 = next
					next = next.Add(every)
				}
				t, err := m.Refresh(ctx, rt)
				if err != nil {
					errs <- err
					return
				}
				lat[i] = append(lat[i], time.Since(t0))
				rt = t.RefreshToken
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		return err
	}

	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	q := func(p float64) float64 { return us(all[int(p*float64(len(all)-1))]) / 1000 }
	mode := "closed loop"
	if rate > 0 {
		mode = fmt.Sprintf("paced at %.0f/s", rate)
	}
	fmt.Printf("refresh rotation on Postgres, %d callers, %d pooled connections, %v, %s:\n", callers, conns, d, mode)
	fmt.Printf("  %d rotations, %.0f/s; latency ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
		len(all), float64(len(all))/elapsed.Seconds(), q(0.50), q(0.90), q(0.99), q(0.999), us(all[len(all)-1])/1000)
	return nil
}
