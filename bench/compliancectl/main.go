// Command compliancectl-bench measures what compliancectl adds to the work
// it drives: it seeds an audit stream of -n entries in a fresh schema,
// then times "compliancectl audit verify" and "audit export" as
// subprocesses against audit.Verify called in process on the same rows,
// alternating the runs, and prints entries per second and the ratio.
//
//	go build -o /tmp/compliancectl ./cmd/compliancectl
//	go run ./bench/compliancectl -bin /tmp/compliancectl -n 200000
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/auditpg"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/signature"
)

func main() {
	url := flag.String("url", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "Postgres URL")
	bin := flag.String("bin", "/tmp/compliancectl", "the compliancectl binary")
	n := flag.Int("n", 200000, "entries to seed")
	rounds := flag.Int("rounds", 3, "timed runs of each")
	keep := flag.Bool("keep", false, "keep the schema and the public key, and time nothing (for trying the progress bar by hand)")
	flag.Parse()
	ctx := context.Background()

	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "bench_cctl_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, *url)
	check(err)
	_, err = conn.Exec(ctx, "CREATE SCHEMA "+schema)
	check(err)
	defer func() {
		if !*keep {
			_, _ = conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		}
		conn.Close(context.Background())
	}()

	cfg, err := pgxpool.ParseConfig(*url)
	check(err)
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	check(err)
	defer pool.Close()
	store, err := auditpg.New(pool, auditpg.Config{Schema: schema})
	check(err)
	check(store.Migrate(ctx, pool))

	// Seed: batches of 1,000, then one signed checkpoint at the head.
	h, err := keyset.NewHandle(signature.ED25519KeyTemplate())
	check(err)
	signer, err := signature.NewSigner(h)
	check(err)
	pub, err := h.Public()
	check(err)
	verifier, err := signature.NewVerifier(pub)
	check(err)
	dir, err := os.MkdirTemp("", "cctl-bench")
	check(err)
	if !*keep {
		defer os.RemoveAll(dir)
	}
	var buf bytes.Buffer
	check(pub.WriteWithNoSecrets(keyset.NewJSONWriter(&buf)))
	pubFile := filepath.Join(dir, "pub.json")
	check(os.WriteFile(pubFile, buf.Bytes(), 0o600))

	start := time.Now().Add(-time.Hour)
	for done := 0; done < *n; {
		batch := make([]audit.Event, 0, 1000)
		for i := 0; i < 1000 && done < *n; i++ {
			at := start.Add(time.Duration(done) * time.Millisecond)
			batch = append(batch, audit.Event{Tenant: "app-1", Time: at, RetainUntil: at.AddDate(6, 0, 0), Actor: fmt.Sprintf("user-%d", done%97),
				IP: "203.0.113.9", UserAgent: "bench", Type: audit.TypeDataRead, Category: audit.CategoryDataAccess, Action: audit.ActionRead,
				ResourceType: "message", ResourceID: fmt.Sprintf("msg-%d", done), Subject: fmt.Sprintf("patient-%d", done%1000), Success: true,
				Metadata: map[string]string{"channel": "general"}})
			done++
		}
		_, err := store.Append(ctx, "app-1", batch)
		check(err)
	}
	head, err := store.Head(ctx, "app-1")
	check(err)
	cp := audit.Checkpoint{Stream: "app-1", Seq: head.Seq, Head: head.Hash, Time: time.Now(), Kind: audit.KindHead}
	check(audit.SignCheckpoint(signer, &cp))
	check(store.SaveCheckpoint(ctx, cp))
	fmt.Printf("seeded %d entries in schema %s\n", head.Seq, schema)
	if *keep {
		fmt.Printf("public key: %s\n", pubFile)
		return
	}

	env := append(os.Environ(), "DATABASE_URL="+*url)
	runCLI := func(args ...string) time.Duration {
		cmd := exec.Command(*bin, args...)
		cmd.Env = env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			log.Fatalf("compliancectl %v: %v\n%s", args, err, out.String())
		}
		return time.Since(t0)
	}
	var cli, inproc, export []time.Duration
	for r := 0; r < *rounds; r++ {
		cli = append(cli, runCLI("audit", "verify", "--app", "app-1", "--schema", schema, "--public-key", pubFile, "--json"))
		t0 := time.Now()
		_, err := audit.Verify(ctx, store, audit.VerifyOptions{Stream: "app-1", Verifier: verifier})
		check(err)
		inproc = append(inproc, time.Since(t0))
		out := filepath.Join(dir, fmt.Sprintf("export-%d.jsonl", r))
		export = append(export, runCLI("audit", "export", "--app", "app-1", "--schema", schema, "--out", out))
		_ = os.Remove(out)
	}
	rate := func(d time.Duration) float64 { return float64(head.Seq) / d.Seconds() }
	c, i, x := median(cli), median(inproc), median(export)
	fmt.Printf("audit.Verify in process:       median %v  %.0f entries/s\n", i.Round(time.Millisecond), rate(i))
	fmt.Printf("compliancectl audit verify:    median %v  %.0f entries/s  (%.2f x in-process time, process start and connect included)\n", c.Round(time.Millisecond), rate(c), c.Seconds()/i.Seconds())
	fmt.Printf("compliancectl audit export:    median %v  %.0f entries/s\n", x.Round(time.Millisecond), rate(x))
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
