// Command integrity measures the integrity verifier against Postgres: it
// fills a message table, seals every row, then times a bare streaming read
// of the same join the verifier runs (the ceiling Postgres and pgx allow)
// and the verifier itself with one and with several tag-checking workers.
//
//	go run ./bench/integrity -rows 1000000
//
// The database comes from -url or COMPLIANCE_TEST_DATABASE_URL; the
// program works in a schema of its own and drops it at the end.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chatsdk/compliance/integrity"
	"github.com/chatsdk/compliance/integrity/integritypg"
	"github.com/chatsdk/compliance/internal/canon"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/mac"
)

func main() {
	url := flag.String("url", os.Getenv("COMPLIANCE_TEST_DATABASE_URL"), "Postgres URL")
	n := flag.Int("rows", 1_000_000, "rows to seal and verify")
	reps := flag.Int("reps", 3, "repetitions of each measurement")
	workers := flag.String("workers", "1,2", "verifier worker counts to time")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the measurements to this file")
	order := flag.String("order", "insert", `physical order of the rows: "insert" (by id, while each Seal writes its 5,000 tags in key order, `+
		`so the two scans disagree within each chunk) or "sealed" (each chunk inserted in the order its tags are written, `+
		`as when an application seals each row in the transaction that inserts it)`)
	flag.Parse()
	if *url == "" {
		*url = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx := context.Background()

	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "bench_integrity_" + hex.EncodeToString(b[:])
	admin, err := pgx.Connect(ctx, *url)
	check(err)
	defer admin.Close(ctx)
	_, err = admin.Exec(ctx, "CREATE SCHEMA "+schema)
	check(err)
	defer func() { _, _ = admin.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE") }()

	cfg, err := pgxpool.ParseConfig(*url)
	check(err)
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	check(err)
	defer pool.Close()

	check(integritypg.Migrate(ctx, pool, integritypg.Config{}))
	_, err = pool.Exec(ctx, `CREATE TABLE message (app_id text NOT NULL, id bigint NOT NULL, channel_id text NOT NULL,
		body text, created_at timestamptz NOT NULL, PRIMARY KEY (app_id, id))`)
	check(err)

	h, err := keyset.NewHandle(mac.HMACSHA256Tag256KeyTemplate())
	check(err)
	keys, err := integrity.NewKeys(h)
	check(err)
	store := integritypg.New(pool, integritypg.Config{})
	sealer, err := integrity.New(integrity.Config{Keys: keys, Store: store})
	check(err)

	// Fill and seal: 8 tenants, 50 channels each, a message a second in
	// all, so a channel-day scope holds a few hundred rows.
	start := time.Now()
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	body := strings.Repeat("lorem ipsum ", 9) // ~100 bytes
	const chunk = 5000
	for off := 0; off < *n; off += chunk {
		var rows [][]any
		var recs []integrity.Record
		for i := off; i < min(off+chunk, *n); i++ {
			tenant := fmt.Sprintf("app-%d", i%8)
			ch := fmt.Sprintf("chan-%d", i%50)
			at := base.Add(time.Duration(i) * time.Second)
			text := body + strconv.Itoa(i)
			rows = append(rows, []any{tenant, int64(i), ch, text, at})
			recs = append(recs, integrity.Record{Domain: "message", Tenant: tenant, ID: strconv.Itoa(i), Scope: integrity.DayScope(ch, at),
				Fields: []canon.Value{canon.String(ch), canon.String(text), canon.Time(at)}})
		}
		if *order == "sealed" {
			idx := make([]int, len(recs))
			for i := range idx {
				idx[i] = i
			}
			slices.SortFunc(idx, func(a, b int) int {
				return strings.Compare(recs[a].Tenant+"\x00"+recs[a].ID, recs[b].Tenant+"\x00"+recs[b].ID)
			})
			sorted := make([][]any, len(rows))
			for i, j := range idx {
				sorted[i] = rows[j]
			}
			rows = sorted
		}
		_, err := pool.CopyFrom(ctx, pgx.Identifier{"message"}, []string{"app_id", "id", "channel_id", "body", "created_at"}, pgx.CopyFromRows(rows))
		check(err)
		check(sealer.Seal(ctx, recs...))
	}
	for _, t := range []string{"message", "integrity_tags"} {
		_, err = pool.Exec(ctx, "VACUUM ANALYZE "+t)
		check(err)
	}
	var scopes int
	check(pool.QueryRow(ctx, "SELECT count(*) FROM integrity_digests").Scan(&scopes))
	fmt.Printf("filled and sealed %d rows in %d scopes in %s\n", *n, scopes, time.Since(start).Round(time.Millisecond))
	fmt.Printf("GOMAXPROCS %d, Go %s, row order %q\n\n", runtime.GOMAXPROCS(0), runtime.Version(), *order)

	table := integritypg.Table{Domain: "message", Columns: []integritypg.Column{
		{Name: "channel_id", Kind: canon.KindString}, {Name: "body", Kind: canon.KindString}, {Name: "created_at", Kind: canon.KindTime}}}

	// Besides wall-clock rates, which the load of other processes swings
	// by 2x, each measurement reports this process's CPU time per row
	// (user + system, all goroutines): the client's own cost, which that
	// load changes much less.
	cpuTime := func() time.Duration {
		var ru syscall.Rusage
		check(syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	measure := func(name string, fn func() int64) {
		var rates, cpus []float64
		for range *reps {
			t0, c0 := time.Now(), cpuTime()
			got := fn()
			rates = append(rates, float64(got)/time.Since(t0).Seconds())
			cpus = append(cpus, float64(cpuTime()-c0)/float64(time.Microsecond)/float64(got))
		}
		slices.Sort(rates)
		slices.Sort(cpus)
		fmt.Printf("| %s | %.0f | %.0f | %.0f | %.2f |\n", name, rates[0], rates[len(rates)/2], rates[len(rates)-1], cpus[len(cpus)/2])
	}

	if *profile != "" {
		f, err := os.Create(*profile)
		check(err)
		check(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}
	fmt.Println("| measurement | worst rows/s | median rows/s | best rows/s | client CPU µs/row (median) |")
	fmt.Println("|---|---|---|---|---|")
	rawCount := func(q string, args ...any) int64 {
		rows, err := pool.Query(ctx, q, args...)
		check(err)
		var c int64
		var sink int
		for rows.Next() {
			for _, v := range rows.RawValues() {
				sink += len(v)
			}
			c++
		}
		check(rows.Err())
		_ = sink
		return c
	}
	measure("bare seq scan of the message table alone", func() int64 {
		return rawCount("SELECT app_id, id::text, channel_id, body, created_at FROM message")
	})
	measure("bare seq scan of integrity_tags alone", func() int64 {
		return rawCount("SELECT app_id, row_id, scope, key_id, tag FROM integrity_tags WHERE domain = $1", "message")
	})
	measure("both tables scanned at once on two connections (no join)", func() int64 {
		done := make(chan int64)
		go func() {
			done <- rawCount("SELECT app_id, row_id, scope, key_id, tag FROM integrity_tags WHERE domain = $1", "message")
		}()
		c := rawCount("SELECT app_id, id::text, channel_id, body, created_at FROM message")
		<-done
		return c
	})
	measure("bare read of the verifier's join (no checks)", func() int64 {
		q := `SELECT (d.app_id)::text, (d.id)::text, d.channel_id, d.body, d.created_at, t.app_id, t.row_id, t.scope, t.key_id, t.tag
			FROM message d FULL OUTER JOIN (SELECT app_id, row_id, scope, key_id, tag FROM integrity_tags WHERE domain = $1) t
			ON t.app_id = (d.app_id)::text COLLATE "C" AND t.row_id = (d.id)::text COLLATE "C"`
		formats := make(pgx.QueryResultFormats, 10)
		for i := range formats {
			formats[i] = pgx.BinaryFormatCode
		}
		rows, err := pool.Query(ctx, q, formats, "message")
		check(err)
		var c int64
		var sink int
		for rows.Next() {
			for _, v := range rows.RawValues() {
				sink += len(v)
			}
			c++
		}
		check(rows.Err())
		_ = sink
		return c
	})
	for _, join := range []bool{false, true} {
		for _, w := range strings.Split(*workers, ",") {
			nw, err := strconv.Atoi(w)
			check(err)
			v, err := integritypg.NewVerifier(integritypg.VerifierConfig{Store: store, Sealer: sealer, Workers: nw, JoinInDatabase: join})
			check(err)
			mode := "two scans, matched in Go (default)"
			if join {
				mode = "JoinInDatabase"
			}
			measure(fmt.Sprintf("VerifyTable, %s, %d worker(s)", mode, nw), func() int64 {
				sum, err := v.VerifyTable(ctx, table, nil)
				check(err)
				if !sum.OK() {
					log.Fatalf("verification found %v", sum.Findings)
				}
				return sum.Rows
			})
		}
	}
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
