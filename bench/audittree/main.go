// Command audittree measures the Merkle tree of package audit/tlog:
// inclusion and consistency proof generation and verification for trees
// of a million and ten million leaves, and chained append throughput on
// Postgres with the tree on and off (auditpg.Config.DisableTree), the
// same Log, store and writers as bench/audit's chained run, alternated so
// that drift in a loaded machine hits both alike.
//
//	go run ./bench/audittree -sizes 1000000,10000000 -proofs 20000 -d 10s -rounds 3
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/signature"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/auditpg"
	"github.com/chatsdk/compliance/audit/tlog"
)

func main() {
	url := flag.String("url", envOr("COMPLIANCE_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"), "Postgres URL")
	sizes := flag.String("sizes", "1000000,10000000", "comma-separated tree sizes for the proof runs; empty skips them")
	proofs := flag.Int("proofs", 20000, "proofs of each kind generated and verified per size")
	dur := flag.Duration("d", 10*time.Second, "duration of each append run; 0 skips them")
	rounds := flag.Int("rounds", 3, "append runs with the tree and without it, alternated")
	writers := flag.Int("writers", 32, "concurrent writers of the append runs")
	batches := flag.Int("batches", 100, "512-event batches appended straight to the store per round (no Log), tree on and off alternated; 0 skips")
	flag.Parse()

	for _, s := range strings.Split(*sizes, ",") {
		if s == "" {
			continue
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			fail(err)
		}
		benchProofs(n, *proofs)
	}
	if *dur > 0 || *batches > 0 {
		if err := benchAppends(*url, *dur, *rounds, *writers, *batches); err != nil {
			fail(err)
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "audittree:", err)
	os.Exit(1)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// memTree is stored hashes in a slice, the memory store's layout.
type memTree []tlog.Hash

func (m memTree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = m[x]
	}
	return out, nil
}

type stats struct{ d []time.Duration }

func (s *stats) add(d time.Duration) { s.d = append(s.d, d) }

func (s *stats) String() string {
	slices.Sort(s.d)
	var sum time.Duration
	for _, d := range s.d {
		sum += d
	}
	p := func(q float64) time.Duration { return s.d[int(q*float64(len(s.d)-1))] }
	return fmt.Sprintf("mean %v p50 %v p99 %v max %v", sum/time.Duration(len(s.d)), p(0.5), p(0.99), s.d[len(s.d)-1])
}

func benchProofs(n uint64, k int) {
	t0 := time.Now()
	tree := make(memTree, 0, tlog.StoredHashCount(n))
	leaves := make([]tlog.Hash, 0, 4096)
	var b [32]byte
	for done := uint64(0); done < n; {
		leaves = leaves[:0]
		for i := 0; i < 4096 && done+uint64(len(leaves)) < n; i++ {
			_, _ = rand.Read(b[:])
			leaves = append(leaves, tlog.LeafHash(b[:]))
		}
		hs, err := tlog.AppendLeaves(done, leaves, tree)
		if err != nil {
			fail(err)
		}
		tree = append(tree, hs...)
		done += uint64(len(leaves))
	}
	build := time.Since(t0)
	root, err := tlog.TreeRoot(n, tree)
	if err != nil {
		fail(err)
	}
	head := tlog.TreeHead{Origin: "bench", Size: n, Root: root}
	fmt.Printf("tree of %d leaves: built in %v (%.0f leaves/s), %d stored hashes\n", n, build.Round(time.Millisecond), float64(n)/build.Seconds(), len(tree))

	var genI, verI, genC, verC stats
	hashes := 0
	for range k {
		idx := mrand.Uint64N(n)
		t := time.Now()
		p, err := tlog.ProveInclusion(n, idx, tree)
		genI.add(time.Since(t))
		if err != nil {
			fail(err)
		}
		hashes += len(p)
		t = time.Now()
		err = tlog.VerifyInclusion(head, idx, tree[tlog.StoredHashIndex(0, idx)], p)
		verI.add(time.Since(t))
		if err != nil {
			fail(err)
		}

		old := 1 + mrand.Uint64N(n-1)
		oldRoot, err := tlog.TreeRoot(old, tree)
		if err != nil {
			fail(err)
		}
		t = time.Now()
		c, err := tlog.ProveConsistency(old, n, tree)
		genC.add(time.Since(t))
		if err != nil {
			fail(err)
		}
		t = time.Now()
		err = tlog.VerifyConsistency(tlog.TreeHead{Origin: "bench", Size: old, Root: oldRoot}, head, c)
		verC.add(time.Since(t))
		if err != nil {
			fail(err)
		}
	}
	fmt.Printf("  inclusion   (%d, %.1f hashes each): generate %v\n", k, float64(hashes)/float64(k), &genI)
	fmt.Printf("  inclusion   verify   %v\n", &verI)
	fmt.Printf("  consistency generate %v\n", &genC)
	fmt.Printf("  consistency verify   %v\n", &verC)
}

func benchAppends(url string, dur time.Duration, rounds, writers, batches int) error {
	ctx := context.Background()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "bench_audittree_" + hex.EncodeToString(b[:])
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
	cfg.MaxConns = int32(writers)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()

	if batches > 0 {
		var on, off []float64
		for r := range rounds {
			for _, tree := range order(r) {
				store, err := auditpg.New(pool, auditpg.Config{DisableTree: !tree})
				if err != nil {
					return err
				}
				if err := store.Migrate(ctx, pool); err != nil {
					return err
				}
				stream := fmt.Sprintf("batch-%d-%v", r, tree)
				evs := make([]audit.Event, 512)
				start := time.Now()
				for i := range batches {
					for j := range evs {
						evs[j] = event(j, i, stream)
					}
					if _, err := store.Append(ctx, stream, evs); err != nil {
						return err
					}
				}
				rate := float64(batches*len(evs)) / time.Since(start).Seconds()
				name := "tree off"
				if tree {
					name, on = "tree on ", append(on, rate)
				} else {
					off = append(off, rate)
				}
				fmt.Printf("batch round %d %s: %8.0f events/s (512-event batches, one writer)\n", r+1, name, rate)
			}
		}
		fmt.Printf("batch mean: tree on %.0f events/s, tree off %.0f events/s: on/off = %.3f\n", mean(on), mean(off), mean(on)/mean(off))
	}
	if dur == 0 {
		return nil
	}

	var on, off []float64
	for r := range rounds {
		for _, tree := range order(r) {
			store, err := auditpg.New(pool, auditpg.Config{DisableTree: !tree})
			if err != nil {
				return err
			}
			if err := store.Migrate(ctx, pool); err != nil {
				return err
			}
			stream := fmt.Sprintf("tenant-%d-%v", r, tree)
			rate, err := chained(ctx, store, stream, dur, writers)
			if err != nil {
				return err
			}
			name := "tree off"
			if tree {
				name, on = "tree on ", append(on, rate)
				if err := checkTree(ctx, store, stream); err != nil {
					return err
				}
				if err := pgProofs(ctx, store, stream, 500); err != nil {
					return err
				}
			} else {
				off = append(off, rate)
			}
			fmt.Printf("round %d %s: %8.0f events/s\n", r+1, name, rate)
		}
	}
	fmt.Printf("mean: tree on %.0f events/s, tree off %.0f events/s: on/off = %.3f\n", mean(on), mean(off), mean(on)/mean(off))
	return nil
}

// order is the tree setting of round r's two runs: off first in even
// rounds, on first in odd ones, so that the tables growing from run to run
// (later runs are slower) do not favour either.
func order(r int) []bool {
	if r%2 == 0 {
		return []bool{false, true}
	}
	return []bool{true, false}
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// chained is bench/audit's chained run: a Log on the store, writers
// calling Record in a loop on one stream until dur passes.
func chained(ctx context.Context, store *auditpg.Store, stream string, dur time.Duration, writers int) (float64, error) {
	log, err := audit.New(audit.Config{Store: store})
	if err != nil {
		return 0, err
	}
	var (
		n        atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	deadline := time.Now().Add(dur)
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				if _, err := log.Record(ctx, event(w, i, stream)); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := log.Close(ctx); err != nil {
		return 0, err
	}
	return float64(n.Load()) / elapsed.Seconds(), firstErr
}

// checkTree makes sure the tree run really kept a tree: its root at the
// head matches the entries.
func checkTree(ctx context.Context, store *auditpg.Store, stream string) error {
	head, err := store.Head(ctx, stream)
	if err != nil {
		return err
	}
	var f tlog.Frontier
	if err := store.Scan(ctx, stream, 1, func(e *audit.Entry) error { f.Append(tlog.LeafHash(e.Hash)); return nil }); err != nil {
		return err
	}
	root, err := audit.TreeRoot(ctx, store, stream, head.Seq)
	if err != nil {
		return err
	}
	if root != f.Root() {
		return fmt.Errorf("tree root of %s does not match its entries", stream)
	}
	return nil
}

// pgProofs signs a tree head at the stream's head and times inclusion
// proofs served from Postgres (the entry and about 2·log2(n) hash reads)
// and their offline verification.
func pgProofs(ctx context.Context, store *auditpg.Store, stream string, k int) error {
	h, err := keyset.NewHandle(signature.ED25519KeyTemplate())
	if err != nil {
		return err
	}
	signer, err := tlog.NewSigner("", h)
	if err != nil {
		return err
	}
	vs, _, err := tlog.Verifiers("", h)
	if err != nil {
		return err
	}
	head, err := store.Head(ctx, stream)
	if err != nil {
		return err
	}
	sth, err := audit.SignTreeHead(ctx, store, signer, stream, head.Seq)
	if err != nil {
		return err
	}
	var gen, ver stats
	for range k {
		seq := 1 + mrand.Uint64N(head.Seq)
		t := time.Now()
		p, err := audit.ProveInclusion(ctx, store, stream, seq, sth)
		gen.add(time.Since(t))
		if err != nil {
			return err
		}
		t = time.Now()
		_, err = p.Verify(vs)
		ver.add(time.Since(t))
		if err != nil {
			return err
		}
	}
	fmt.Printf("  postgres, %d entries: inclusion proof served %v\n", head.Seq, &gen)
	fmt.Printf("  postgres, %d entries: verified offline (signature, entry hash, path) %v\n", head.Seq, &ver)
	return nil
}

// event is bench/audit's event.
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
