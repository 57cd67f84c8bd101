// Command fieldcrypt measures fieldcrypt against its performance targets
// (DESIGN.md), as ratios taken side by side in one run so that the load of
// a shared machine affects both sides alike:
//
//   - aead: encrypt + decrypt of a 200-byte field through a Keyring, and
//     the same with crypto/aes GCM directly, in alternating short rounds;
//     the figure is the median of the per-round ratios (target ≤ 1.3);
//   - pgcrypto: the same rows through pgp_sym_encrypt and pgp_sym_decrypt
//     on the local Postgres, inside the server so no round trip is
//     counted, against a Keyring in process (target ≥ 200 × faster);
//   - rewrap: rows/s of a Rewrap through fieldcryptpg on a real table.
//
// Usage:
//
//	go run ./bench/fieldcrypt -db 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
//
// Without -db (or COMPLIANCE_TEST_DATABASE_URL) only the aead part runs.
package main

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"

	"github.com/chatsdk/compliance/fieldcrypt"
	"github.com/chatsdk/compliance/fieldcrypt/fieldcryptpg"
	"github.com/chatsdk/compliance/internal/canon"
)

const fieldSize = 200

func main() {
	dbURL := flag.String("db", os.Getenv("COMPLIANCE_TEST_DATABASE_URL"), "Postgres URL for the pgcrypto and rewrap parts")
	rounds := flag.Int("rounds", 41, "alternating rounds of the aead comparison")
	opsPerRound := flag.Int("ops", 5000, "operations per round of the aead comparison")
	pgRows := flag.Int("pgrows", 2000, "rows for the pgcrypto comparison")
	rewrapRows := flag.Int("rewraprows", 20000, "rows for the rewrap measure")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the aead part to this file")
	flag.Parse()
	ctx := context.Background()

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		check(err)
		check(pprof.StartCPUProfile(f))
	}

	kr := newKeyring(fieldcrypt.NewMemoryStore())
	benchAEAD(ctx, kr, *rounds, *opsPerRound)
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}

	if *dbURL == "" {
		fmt.Println("pgcrypto, rewrap: skipped (no -db)")
		return
	}
	pool, schema := openSchema(ctx, *dbURL)
	defer dropSchema(ctx, pool, schema)
	benchPgcrypto(ctx, pool, kr, *pgRows)
	benchRewrap(ctx, pool, *rewrapRows)
}

func newKeyring(st fieldcrypt.Store) *fieldcrypt.Keyring {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	check(err)
	kek, err := aead.New(h)
	check(err)
	kr, err := fieldcrypt.New(fieldcrypt.Config{Store: st, KEK: kek})
	check(err)
	return kr
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func benchAEAD(ctx context.Context, kr *fieldcrypt.Keyring, rounds, ops int) {
	key := make([]byte, 32)
	_, err := rand.Read(key)
	check(err)
	block, err := aes.NewCipher(key)
	check(err)
	gcm, err := cipher.NewGCM(block)
	check(err)
	pt := make([]byte, fieldSize)
	loc := fieldcrypt.Location{Tenant: "app-a", Table: "message", Column: "text", Row: "123456"}
	ad := loc.AssociatedData()

	raw := func() {
		nonce := make([]byte, gcm.NonceSize(), gcm.NonceSize()+fieldSize+gcm.Overhead())
		_, err := rand.Read(nonce)
		check(err)
		ct := gcm.Seal(nonce, nonce, pt, ad)
		_, err = gcm.Open(nil, ct[:gcm.NonceSize()], ct[gcm.NonceSize():], ad)
		check(err)
	}
	// rawAD also builds the location's associated data for every
	// operation, as a Keyring must: the difference to raw is the binding's
	// cost, the rest is the Keyring's.
	adBuf := make([]byte, 0, 256)
	encodeAD := func() []byte {
		// The same stateless appenders the Keyring uses.
		adBuf = canon.AppendHeader(adBuf[:0], "fieldcrypt.field.v1")
		adBuf = canon.AppendString(adBuf, loc.Tenant)
		adBuf = canon.AppendString(adBuf, loc.Table)
		adBuf = canon.AppendString(adBuf, loc.Column)
		adBuf = canon.AppendString(adBuf, loc.Row)
		return adBuf
	}
	rawAD := func() {
		ad := encodeAD()
		nonce := make([]byte, gcm.NonceSize(), gcm.NonceSize()+fieldSize+gcm.Overhead())
		_, err := rand.Read(nonce)
		check(err)
		ct := gcm.Seal(nonce, nonce, pt, ad)
		_, err = gcm.Open(nil, ct[:gcm.NonceSize()], ct[gcm.NonceSize():], encodeAD())
		check(err)
	}
	ours := func() {
		ct, err := kr.Encrypt(ctx, loc, pt)
		check(err)
		_, err = kr.Decrypt(ctx, loc, ct)
		check(err)
	}
	timeOps := func(f func()) float64 {
		start := cpuTime()
		for range ops {
			f()
		}
		return float64((cpuTime() - start).Nanoseconds()) / float64(ops)
	}

	// Warm up both, then alternate which side goes first.
	timeOps(raw)
	timeOps(ours)
	var ratios, adRatios, rawNs, rawADNs, oursNs []float64
	for i := range rounds {
		var r, a, o float64
		if i%2 == 0 {
			r, a, o = timeOps(raw), timeOps(rawAD), timeOps(ours)
		} else {
			o, a, r = timeOps(ours), timeOps(rawAD), timeOps(raw)
		}
		rawNs, rawADNs, oursNs = append(rawNs, r), append(rawADNs, a), append(oursNs, o)
		ratios, adRatios = append(ratios, o/r), append(adRatios, o/a)
	}
	fmt.Printf("aead: 200-byte field encrypt+decrypt, %d rounds of %d ops, timed by %s\n", rounds, ops, clockName)
	fmt.Printf("  raw crypto/aes GCM  median %7.0f ns/op\n", median(rawNs))
	fmt.Printf("  raw GCM + canon AD  median %7.0f ns/op\n", median(rawADNs))
	fmt.Printf("  fieldcrypt Keyring  median %7.0f ns/op\n", median(oursNs))
	fmt.Printf("  ratio to raw GCM (median of per-round ratios) %.2f  (target <= 1.30)\n", median(ratios))
	fmt.Printf("  ratio to raw GCM + the same AD per op          %.2f\n", median(adRatios))
}

func openSchema(ctx context.Context, url string) (*pgxpool.Pool, string) {
	var b [6]byte
	_, err := rand.Read(b[:])
	check(err)
	schema := "bench_fieldcrypt_" + hex.EncodeToString(b[:])
	cfg, err := pgxpool.ParseConfig(url)
	check(err)
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	check(err)
	_, err = pool.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize())
	check(err)
	return pool, schema
}

func dropSchema(ctx context.Context, pool *pgxpool.Pool, schema string) {
	if _, err := pool.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		log.Print(err)
	}
	pool.Close()
}

func benchPgcrypto(ctx context.Context, pool *pgxpool.Pool, kr *fieldcrypt.Keyring, n int) {
	_, err := pool.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pgcrypto`)
	check(err)
	var pgcrypto string
	check(pool.QueryRow(ctx, `SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pgcrypto'`).Scan(&pgcrypto))
	_, err = pool.Exec(ctx, `CREATE TABLE message (app_id text NOT NULL, id bigint NOT NULL, text text NOT NULL, PRIMARY KEY (app_id, id))`)
	check(err)
	_, err = pool.Exec(ctx, `INSERT INTO message SELECT 'app-a', g, rpad(md5(g::text), 200, 'x') FROM generate_series(1, $1) g`, n)
	check(err)

	// The key goes as a parameter, never in the SQL text, so it cannot land
	// in the server log. The work runs on one connection whose backend's
	// CPU time is read from /proc, so the load of other processes on the
	// machine does not count against pgcrypto.
	conn, err := pool.Acquire(ctx)
	check(err)
	defer conn.Release()
	var pid int
	check(conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid))
	key := "bench-only-passphrase"
	q := `SELECT count(*) FROM (SELECT ` + pgcrypto + `.pgp_sym_decrypt(` + pgcrypto + `.pgp_sym_encrypt(text, $1), $1) AS t FROM message) d WHERE length(d.t) = 200`
	var got int
	cpu0, cpuOK := backendCPU(pid)
	start := time.Now()
	check(conn.QueryRow(ctx, q, key).Scan(&got))
	pgWall := time.Since(start)
	cpu1, _ := backendCPU(pid)
	pgCPU := cpu1 - cpu0
	if got != n {
		log.Fatalf("pgcrypto round trip kept %d of %d rows", got, n)
	}

	rows, err := pool.Query(ctx, `SELECT id::text, text FROM message ORDER BY id`)
	check(err)
	type row struct {
		id   string
		text []byte
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		return x, r.Scan(&x.id, &x.text)
	})
	check(err)
	// Repeat our side until it runs long enough to time well.
	reps := 0
	start, cpuStart := time.Now(), cpuTime()
	for time.Since(start) < time.Second || reps == 0 {
		for _, r := range all {
			loc := fieldcrypt.Location{Tenant: "app-a", Table: "message", Column: "text", Row: r.id}
			ct, err := kr.Encrypt(ctx, loc, r.text)
			check(err)
			_, err = kr.Decrypt(ctx, loc, ct)
			check(err)
		}
		reps++
	}
	ourWall := time.Since(start) / time.Duration(reps)
	ourCPU := (cpuTime() - cpuStart) / time.Duration(reps)

	perRow := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 / float64(n) }
	fmt.Printf("pgcrypto: %d rows of 200 bytes, encrypt+decrypt each\n", n)
	fmt.Printf("  pgp_sym_encrypt/pgp_sym_decrypt in the server  wall %9.2f µs/row", perRow(pgWall))
	if cpuOK {
		fmt.Printf("  backend CPU %9.2f µs/row", perRow(pgCPU))
	}
	fmt.Printf("\n  fieldcrypt Keyring in process                 wall %9.2f µs/row  %s %6.2f µs/row\n", perRow(ourWall), clockName, perRow(ourCPU))
	fmt.Printf("  fieldcrypt is %.0f x faster by wall time", float64(pgWall)/float64(ourWall))
	if cpuOK {
		fmt.Printf(", %.0f x by CPU time", float64(pgCPU)/float64(ourCPU))
	}
	fmt.Println("  (target >= 200)")
}

// backendCPU returns the CPU time (user + system) a Postgres backend has
// used, from /proc/<pid>/stat; ok is false where /proc cannot tell.
func backendCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// Fields after the command name, which is in parentheses: state is
	// field 3, utime 14 and stime 15, in clock ticks of 1/100 s.
	s := string(b)
	rest := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(rest) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(rest[11], 10, 64)
	stime, err2 := strconv.ParseInt(rest[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, true
}

func benchRewrap(ctx context.Context, pool *pgxpool.Pool, n int) {
	check(fieldcryptpg.Migrate(ctx, pool, fieldcryptpg.Config{}))
	kr := newKeyring(fieldcryptpg.New(pool, fieldcryptpg.Config{}))
	_, err := pool.Exec(ctx, `CREATE TABLE note (app_id text NOT NULL, id bigint NOT NULL, body_enc bytea, PRIMARY KEY (app_id, id))`)
	check(err)

	scope := fieldcrypt.Scope{Tenant: "app-a"}
	pt := make([]byte, fieldSize)
	batch := &pgx.Batch{}
	for i := 1; i <= n; i++ {
		loc := fieldcrypt.Location{Tenant: "app-a", Table: "note", Column: "body", Row: strconv.Itoa(i)}
		ct, err := kr.Encrypt(ctx, loc, pt)
		check(err)
		batch.Queue(`INSERT INTO note VALUES ('app-a', $1, $2)`, i, ct)
	}
	check(pool.SendBatch(ctx, batch).Close())
	_, err = kr.Rotate(ctx, scope)
	check(err)

	col, err := fieldcryptpg.NewColumn(pool, fieldcryptpg.ColumnConfig{Table: "note", IDType: "bigint", Ciphertext: "body_enc"})
	check(err)
	start := time.Now()
	rep, err := (&fieldcrypt.Rewrap{Keyring: kr, Rows: col, Scope: scope, Table: "note", Column: "body", BatchSize: 500}).Run(ctx)
	check(err)
	d := time.Since(start)
	if !rep.Done || rep.Rewrapped != int64(n) {
		log.Fatalf("rewrap: %+v", rep)
	}
	fmt.Printf("rewrap: %d rows on Postgres, batches of 500, each batch one round trip and one transaction\n", n)
	fmt.Printf("  %.0f rows/s (%s)\n", float64(n)/d.Seconds(), d.Round(time.Millisecond))
}
