// Command loadtest drives the example chat server (examples/chatserver) on
// Postgres from a separate process, over loopback only, and checks
// afterwards that nothing acknowledged was lost, nothing was leaked and
// no audit chain forked.
//
//	go run ./loadtest -database-url postgres://postgres@127.0.0.1:5432/test?sslmode=disable
//
// It builds the server with go build into a temporary directory, gives
// every scenario a fresh schema (dropped afterwards unless -keep), and
// bounds every scenario by time (-duration) and by request count
// (-max-requests). Scenarios (-scenarios, comma-separated):
//
//	load       32 clients sign up, log in, post and read; requests/s and
//	           p50/p99 per route, against the server with its safeguards
//	           and against -benchmark-unprotected, and the ratios
//	crash      SIGKILL at random moments under load, restart, -kills times;
//	           then every acknowledged message reads back and verifies,
//	           every acknowledged request has its audit entry, every chain
//	           verifies, and no message text is in the clear
//	instances  two servers on one schema: one verified chain per tenant,
//	           lockout counted across both, one sweeper at a time
//	dbfault    Postgres stopped under load (-pg-stop, -pg-start): 503 while
//	           it is down, recovery without a restart, nothing lost; runs
//	           only with -allow-db-restart, since it stops the database
//	           for every other user of it
//	badinput   malformed JSON, oversized bodies, invalid UTF-8, huge
//	           headers, forged tokens, traversal and SQL metacharacters in
//	           every field: a 4xx with the API's error code, never a 500
//
// The exit status is 1 when any check failed. The report is Markdown on
// standard output.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ok, err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (bool, error) {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := fs.String("database-url", os.Getenv("COMPLIANCE_TEST_DATABASE_URL"), "Postgres server (default $COMPLIANCE_TEST_DATABASE_URL)")
	scenarios := fs.String("scenarios", "load,crash,instances,badinput", "comma-separated: load, crash, instances, dbfault, badinput")
	clients := fs.Int("clients", 32, "concurrent clients")
	duration := fs.Duration("duration", 20*time.Second, "length of each loaded run")
	maxRequests := fs.Int64("max-requests", 1_000_000, "request budget of each run")
	kills := fs.Int("kills", 5, "SIGKILLs in the crash scenario")
	repeat := fs.Int("repeat", 1, "load: measure the unprotected/protected pair this many times, alternating which runs first")
	allowDB := fs.Bool("allow-db-restart", false, "let the dbfault scenario stop and start the database server")
	pgStop := fs.String("pg-stop", "pg_ctlcluster --skip-systemctl-redirect 15 main stop -m fast", "command that stops the database (dbfault)")
	pgStart := fs.String("pg-start", "pg_ctlcluster --skip-systemctl-redirect 15 main start", "command that starts it again (dbfault)")
	outage := fs.Duration("outage", 4*time.Second, "how long the database stays down (dbfault; at most 10s)")
	keep := fs.Bool("keep", false, "keep the schemas and the work directory")
	if err := fs.Parse(args); err != nil {
		return false, err
	}
	if *dbURL == "" {
		return false, errors.New("no database: give -database-url or set COMPLIANCE_TEST_DATABASE_URL")
	}
	if *clients < 1 || *duration <= 0 || *maxRequests < 1 || *kills < 1 || *repeat < 1 {
		return false, errors.New("-clients, -duration, -max-requests, -kills and -repeat must be positive")
	}
	if *outage <= 0 || *outage > 10*time.Second {
		return false, errors.New("-outage must be between 0 and 10s")
	}
	cfg := config{clients: *clients, duration: *duration, budget: *maxRequests, kills: *kills, repeat: *repeat, outage: *outage,
		pgStop: strings.Fields(*pgStop), pgStart: strings.Fields(*pgStart)}

	dir, err := os.MkdirTemp("", "loadtest-")
	if err != nil {
		return false, err
	}
	if !*keep {
		defer os.RemoveAll(dir)
	}
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "loadtest: "+format+"\n", args...) }
	logf("building the chat server into %s", dir)
	bin, err := buildServer(ctx, dir)
	if err != nil {
		return false, err
	}

	ok := true
	fmt.Fprintf(stdout, "# loadtest %s\n\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(stdout, "`loadtest %s`\n\n", commandLine(fs))
	for _, name := range strings.Split(*scenarios, ",") {
		name = strings.TrimSpace(name)
		if name == "dbfault" && !*allowDB {
			return false, errors.New("dbfault stops the database server for everyone using it: add -allow-db-restart")
		}
		res, err := scenario(ctx, name, bin, dir, *dbURL, cfg, *keep, logf, stdout)
		if err != nil {
			return false, err
		}
		report(stdout, res)
		ok = ok && res.OK()
	}
	return ok, nil
}

// commandLine is the flags given, for the report, with the database URL
// cut to its scheme, host and path: the report is meant to be shared,
// and the URL may hold a password.
func commandLine(fs *flag.FlagSet) string {
	var parts []string
	fs.Visit(func(f *flag.Flag) {
		v := f.Value.String()
		if f.Name == "database-url" {
			v = "(not shown)"
			if u, err := url.Parse(f.Value.String()); err == nil && u.Scheme != "" {
				v = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
			}
		}
		parts = append(parts, "-"+f.Name+"="+v)
	})
	return strings.Join(parts, " ")
}

// scenario runs one scenario in a fresh schema.
func scenario(ctx context.Context, name, bin, dir, dbURL string, cfg config, keep bool, logf func(string, ...any), out io.Writer) (*result, error) {
	newEnv := func(tag string) (*env, func(), error) {
		schema, pool, err := createSchema(ctx, dbURL, "loadtest_"+tag)
		if err != nil {
			return nil, nil, err
		}
		d, err := os.MkdirTemp(dir, tag+"-")
		if err != nil {
			return nil, nil, err
		}
		e := &env{bin: bin, dbURL: dbURL, schema: schema, pool: pool, dir: d, logf: logf}
		return e, func() {
			e.killAll()
			pool.Close()
			if !keep {
				if err := dropSchema(context.WithoutCancel(ctx), dbURL, schema); err != nil {
					logf("drop schema %s: %v", schema, err)
				}
			}
		}, nil
	}
	res := &result{Name: name}
	logf("scenario %s", name)
	switch name {
	case "load":
		for i := range cfg.repeat {
			runs := map[bool]loadRun{}
			order := []bool{true, false}
			if i%2 == 1 {
				order = []bool{false, true}
			}
			for _, unprotected := range order {
				e, done, err := newEnv("load")
				if err != nil {
					return nil, err
				}
				runs[unprotected] = runLoad(ctx, e, cfg, unprotected, res)
				done()
			}
			first := "unprotected"
			if !order[0] {
				first = "protected"
			}
			fmt.Fprintf(out, "## load, pair %d of %d (%s first): %d clients, %s each\n\n", i+1, cfg.repeat, first, cfg.clients, cfg.duration)
			loadReport(out, cfg, runs[false], runs[true], res)
		}
	case "crash":
		e, done, err := newEnv("crash")
		if err != nil {
			return nil, err
		}
		defer done()
		crash(ctx, e, cfg, res)
	case "instances":
		e, done, err := newEnv("instances")
		if err != nil {
			return nil, err
		}
		defer done()
		instances(ctx, e, cfg, res)
	case "dbfault":
		e, done, err := newEnv("dbfault")
		if err != nil {
			return nil, err
		}
		defer done()
		dbFault(ctx, e, cfg, res)
	case "badinput":
		e, done, err := newEnv("badinput")
		if err != nil {
			return nil, err
		}
		defer done()
		badInput(ctx, e, res)
	default:
		return nil, fmt.Errorf("no scenario %q", name)
	}
	return res, nil
}

// loadReport writes both runs' figures and their ratios.
func loadReport(w io.Writer, cfg config, prot, unprot loadRun, res *result) {
	for _, run := range []struct {
		name string
		r    loadRun
	}{{"unprotected (-benchmark-unprotected: no audit middleware, text in the clear)", unprot}, {"protected (audit middleware, field encryption)", prot}} {
		fmt.Fprintf(w, "### %s\n\n| route | 2xx | req/s | p50 | p99 | other answers |\n|---|---|---|---|---|---|\n", run.name)
		for _, f := range run.r.routes {
			fmt.Fprintln(w, f.String())
		}
		fmt.Fprintln(w, run.r.all.String())
		for _, f := range run.r.setup {
			f.Route = "setup: " + f.Route
			fmt.Fprintln(w, f.String())
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "The setup rows are the %d sign-ups and log-ins before the measured %s, all at once (argon2id).\n\n", cfg.clients, cfg.duration)
	if unprot.all.OK == 0 || prot.all.OK == 0 {
		res.failf("a run answered nothing")
		return
	}
	fmt.Fprintf(w, "### protected / unprotected\n\n| route | throughput | p50 | p99 |\n|---|---|---|---|\n")
	byRoute := map[string]routeFigures{}
	for _, f := range unprot.routes {
		byRoute[f.Route] = f
	}
	for _, f := range append(prot.routes, prot.all) {
		u := byRoute[f.Route]
		if f.Route == "all" {
			u = unprot.all
		}
		if u.OK == 0 || u.P99 == 0 {
			continue
		}
		fmt.Fprintf(w, "| %s | %.2f× | %.2f× | %.2f× |\n", f.Route, f.PerSec/u.PerSec, ratio(f.P50, u.P50), ratio(f.P99, u.P99))
	}
	fmt.Fprintln(w)
	tput, p99 := prot.all.PerSec/unprot.all.PerSec, ratio(prot.all.P99, unprot.all.P99)
	res.notef("all routes: throughput %.2f× of unprotected (target ≥ 0.7×), p99 %.2f× (target ≤ 1.5×)", tput, p99)
	if tput < 0.7 || p99 > 1.5 {
		res.notef("TARGET MISSED (a measurement on a loaded machine; see the per-route ratios)")
	}
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// report writes a scenario's notes and failures.
func report(w io.Writer, res *result) {
	status := "PASS"
	if !res.OK() {
		status = "FAIL"
	}
	fmt.Fprintf(w, "## %s: %s\n\n", res.Name, status)
	for _, n := range res.Notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
	for _, f := range res.Failures {
		fmt.Fprintf(w, "- **FAIL** %s\n", f)
	}
	fmt.Fprintln(w)
}
