package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/internal/pgtest"
)

// The server binary, built once for every test of the package.
var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// testEnv gives t a fresh schema (internal/pgtest: skipped without
// COMPLIANCE_TEST_DATABASE_URL, failed when CI is set) and the server
// binary.
func testEnv(t *testing.T) *env {
	t.Helper()
	db := pgtest.New(t)
	buildOnce.Do(func() {
		start := time.Now()
		if buildDir, buildErr = os.MkdirTemp("", "loadtest-bin-"); buildErr == nil {
			builtBin, buildErr = buildServer(context.Background(), buildDir)
		}
		t.Logf("go build ./examples/chatserver: %s (the first test pays for it)", time.Since(start).Round(time.Millisecond))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	e := &env{bin: builtBin, dbURL: db.URL, schema: db.Schema, pool: db.Pool, dir: t.TempDir(), logf: t.Logf}
	t.Cleanup(e.killAll) // before the schema is dropped
	return e
}

// testContext ends before the test binary's -timeout would kill it (30s
// before, or a quarter of the time left when that is short), so that a
// scenario stuck past its bounds still returns and its test's cleanups
// (servers killed, schema dropped) still run.
func testContext(t *testing.T) context.Context {
	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		margin := min(30*time.Second, time.Until(d)/4)
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-margin))
		t.Cleanup(cancel)
	}
	return ctx
}

func reportTo(t *testing.T, res *result) {
	t.Helper()
	for _, n := range res.Notes {
		t.Log(n)
	}
	for _, f := range res.Failures {
		t.Error(f)
	}
}

// TestBadInput: every malformed or hostile request of the bad-input
// scenario gets its 4xx and error code (or, for valid text full of SQL
// metacharacters, its 2xx with the text intact), never a 500, a panic or a
// stack trace, and the server survives all of it with its tables and
// audit chains intact.
func TestBadInput(t *testing.T) {
	e := testEnv(t)
	res := &result{Name: "badinput"}
	badInput(testContext(t), e, res)
	reportTo(t, res)
}

// TestCrashRecoveryShort is the crash scenario in short: SIGKILL twice
// under load, restart each time, then every acknowledged message reads
// back and verifies, every acknowledged request has its audit entry, every
// chain verifies, and no message text is stored in the clear.
func TestCrashRecoveryShort(t *testing.T) {
	e := testEnv(t)
	res := &result{Name: "crash"}
	crash(testContext(t), e, config{clients: 6, duration: 8 * time.Second, budget: 20000, kills: 2}, res)
	reportTo(t, res)
	if !strings.Contains(strings.Join(res.Notes, "\n"), "acknowledged messages:") {
		t.Error("the message check did not run")
	}
}

// TestInstancesShort is the instances scenario in short: two servers on
// one schema under load, one verified chain per tenant, wrong passwords
// sent to both at once locking the account after exactly the limit, and
// overlapping sweeps of which one at a time holds the lease and each
// expired row is deleted once.
func TestInstancesShort(t *testing.T) {
	e := testEnv(t)
	res := &result{Name: "instances"}
	instances(testContext(t), e, config{clients: 4, duration: 5 * time.Second, budget: 20000}, res)
	reportTo(t, res)
}

// TestChecksSeeWhatIsWrong: the checks are not vacuous. On a server run
// with -benchmark-unprotected the plaintext scan finds the text (through
// SQL and in the raw files) and the audit check finds requests without
// entries; a message the ledger says was acknowledged but the server never
// stored is reported missing.
func TestChecksSeeWhatIsWrong(t *testing.T) {
	e := testEnv(t)
	ctx := testContext(t)
	srv, err := e.start(ctx, "-benchmark-unprotected", "-benchmark-unprotected-ack", "no-audit-no-encryption")
	if err != nil {
		t.Fatal(err)
	}
	a := newAPI(newTargets(srv.base), nil, 200)
	l := newLedger()
	runClients(ctx, a, l, tolerated{}, []string{"neg"}, 2, phases{d: 2 * time.Second})
	if len(l.msgs) == 0 {
		t.Fatalf("no message acknowledged: %v", l.oddAnswers())
	}
	l.msgs["never-stored"] = sentMessage{app: "neg", channel: l.accounts[0].channels[0], username: l.accounts[0].name, text: l.marker + " lost"}

	res := &result{}
	checkAll(ctx, e, srv, l, res)
	got := strings.Join(res.Failures, "\n")
	want := []string{
		"1 missing",                           // the message never stored
		"message text stored in the clear: ",  // chat_messages.body
		"acknowledged requests have no entry", // no audit middleware
	}
	if strings.Contains(strings.Join(res.Notes, "\n"), "searched raw") {
		want = append(want, "message text in the raw bytes of relation chat_messages")
	}
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("the checks did not report %q; they reported:\n%s", w, got)
		}
	}
}

// TestChecksSeeTampering: on the protected server, each check fails on
// its own kind of damage done after the run: a message edited in the
// database (integrity), a text the ledger remembers otherwise, a request
// the server never saw and one whose entry names another resource
// (audit, matched per request), a chain cut back with its stored
// checkpoints and head (only the published checkpoints show it), message
// text put into audit metadata, and text and a panic in a server log.
func TestChecksSeeTampering(t *testing.T) {
	e := testEnv(t)
	ctx := testContext(t)
	// A checkpoint every 10 entries: even a few requests on a loaded
	// machine publish one to cut back before.
	srv, err := e.start(ctx, "-audit-checkpoint-every", "10")
	if err != nil {
		t.Fatal(err)
	}
	a := newAPI(newTargets(srv.base), nil, 2000)
	l := newLedger()
	runClients(ctx, a, l, tolerated{}, []string{"cut", "meta"}, 2, phases{d: 3 * time.Second})
	if len(l.msgs) < 2 || len(l.acks) == 0 {
		t.Fatalf("%d messages and %d requests acknowledged: %v", len(l.msgs), len(l.acks), l.oddAnswers())
	}

	// A chain with a published checkpoint to cut back to before it.
	cps, err := audit.ReadCheckpointFile(e.checkpointsPath())
	if err != nil {
		t.Fatalf("no checkpoints published: %v", err)
	}
	var cut audit.Checkpoint
	for _, c := range cps {
		if c.Stream == "cut" && c.Seq > cut.Seq {
			cut = c
		}
	}
	if cut.Seq < 2 {
		t.Fatalf("no checkpoint of stream cut among %d published", len(cps))
	}

	// The damage.
	var edited string
	metaMsgs := 0
	for id, m := range l.msgs {
		if m.app == "meta" {
			edited = id
			metaMsgs++
		}
	}
	if metaMsgs < 2 {
		t.Fatalf("%d messages of tenant meta acknowledged, want 2 to damage", metaMsgs)
	}
	tamper(t, e,
		`UPDATE chat_messages SET created_at = created_at + interval '1 second' WHERE id = '`+edited+`'`,
		fmt.Sprintf(`DELETE FROM audit_entries WHERE stream = 'cut' AND seq >= %d`, cut.Seq),
		fmt.Sprintf(`DELETE FROM audit_checkpoints WHERE stream = 'cut' AND seq >= %d`, cut.Seq),
		fmt.Sprintf(`UPDATE audit_heads SET seq = %[1]d, hash = (SELECT hash FROM audit_entries WHERE stream = 'cut' AND seq = %[1]d) WHERE stream = 'cut'`, cut.Seq-1),
		`UPDATE audit_entries SET metadata = coalesce(metadata, '{}') || jsonb_build_object('note', '`+l.marker+`') WHERE stream = 'meta' AND seq = 1`,
	)
	for id, m := range l.msgs {
		if id != edited && m.app == "meta" {
			m.text += " (edited)"
			l.msgs[id] = m
			break
		}
	}
	var read ack
	for _, x := range l.acks {
		if x.app == "meta" && x.typ == "data.read" {
			read = x
			break
		}
	}
	if read.tag == "" {
		t.Fatal("no read of tenant meta acknowledged")
	}
	forgedResource := read
	forgedResource.resourceID = "another-channel"
	forgedTag := read
	forgedTag.tag = "never-sent"
	l.acks = append(l.acks, forgedResource, forgedTag)
	// The cut chain is the chain check's: the rest of the checks look at
	// the other tenant only, where each kind of damage is done once.
	l.acks = slices.DeleteFunc(l.acks, func(x ack) bool { return x.app == "cut" })
	l.accounts = slices.DeleteFunc(l.accounts, func(u *account) bool { return u.app == "cut" })
	maps.DeleteFunc(l.msgs, func(_ string, m sentMessage) bool { return m.app == "cut" })
	// A log of a server of its own: the running one writes over what is
	// appended to its file.
	leaked := l.marker + "\n" + l.accounts[0].password + "\n" + l.accounts[0].token() + "\npanic: boom\n"
	if err := os.WriteFile(filepath.Join(e.dir, "server-99.log"), []byte(leaked), 0o600); err != nil {
		t.Fatal(err)
	}

	res := &result{}
	checkAll(ctx, e, srv, l, res)
	got := strings.Join(res.Failures, "\n")
	for _, want := range []string{
		"1 failing integrity or decryption",
		"1 with other text",
		"1 acknowledged requests have no entry of their own",
		"1 acknowledged requests have entries, but none with their tenant",
		`audit chain "cut": `,
		`audit chain "meta": `,
		"message text stored in the clear: 1 rows of audit_entries",
		"message text in the server log",
		"a password in the server log",
		"an access token in the server log",
		"a panic in the server log",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the checks did not report %q; they reported:\n%s", want, got)
		}
	}
}

// tamper runs statements as the database's owner would, past the audit
// tables' insert-only triggers.
func tamper(t *testing.T, e *env, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
		t.Fatal(err)
	}
	for _, q := range stmts {
		if tag, err := tx.Exec(ctx, q); err != nil || tag.RowsAffected() == 0 {
			t.Fatalf("%s: %v (%d rows)", q, err, tag.RowsAffected())
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestReportHidesDatabasePassword: the report repeats the command line,
// but not the password a -database-url may carry (nor its query string,
// where libpq also takes one).
func TestReportHidesDatabasePassword(t *testing.T) {
	const pw = "hunter2-in-the-url"
	var out, errs strings.Builder
	_, err := run(testContext(t), []string{"-database-url", "postgres://u:" + pw + "@127.0.0.1:5432/db?password=" + pw, "-scenarios", "no-such-scenario"}, &out, &errs)
	if err == nil || !strings.Contains(err.Error(), "no scenario") {
		t.Fatalf("run: %v\n%s", err, errs.String())
	}
	if !strings.Contains(out.String(), "`loadtest -database-url=postgres://127.0.0.1:5432/db -scenarios=no-such-scenario`") {
		t.Errorf("no command line in the report:\n%s", out.String())
	}
	if strings.Contains(out.String()+errs.String()+err.Error(), pw) {
		t.Errorf("the password is in the report or the error:\n%s\n%s", out.String(), errs.String())
	}
}

// TestDatabaseURLNotOnCommandLine: the servers get the database URL from
// their environment, not from their command line, which every local user
// can read.
func TestDatabaseURLNotOnCommandLine(t *testing.T) {
	e := testEnv(t)
	srv, err := e.start(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	for _, a := range srv.cmd.Args {
		if strings.Contains(a, e.dbURL) {
			t.Fatalf("the database URL is in the server's arguments: %q", srv.cmd.Args)
		}
	}
	if !slices.Contains(srv.cmd.Env, "DATABASE_URL="+e.dbURL) {
		t.Fatal("the server was not given the database URL in its environment")
	}
}
