package main

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

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
		if buildDir, buildErr = os.MkdirTemp("", "loadtest-bin-"); buildErr == nil {
			builtBin, buildErr = buildServer(context.Background(), buildDir)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return &env{bin: builtBin, dbURL: db.URL, schema: db.Schema, pool: db.Pool, dir: t.TempDir(), logf: t.Logf}
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
	badInput(context.Background(), e, res)
	reportTo(t, res)
}

// TestCrashRecoveryShort is the crash scenario in short: SIGKILL twice
// under load, restart each time, then every acknowledged message reads
// back and verifies, every acknowledged request has its audit entry, every
// chain verifies, and no message text is stored in the clear.
func TestCrashRecoveryShort(t *testing.T) {
	e := testEnv(t)
	res := &result{Name: "crash"}
	crash(context.Background(), e, config{clients: 6, duration: 8 * time.Second, budget: 20000, kills: 2}, res)
	reportTo(t, res)
	if !strings.Contains(strings.Join(res.Notes, "\n"), "acknowledged messages:") {
		t.Error("the message check did not run")
	}
}

// TestChecksSeeWhatIsWrong: the checks are not vacuous. On a server run
// with -benchmark-unprotected the plaintext scan finds the text and the
// audit check finds requests without entries; a message the ledger says
// was acknowledged but the server never stored is reported missing.
func TestChecksSeeWhatIsWrong(t *testing.T) {
	e := testEnv(t)
	ctx := context.Background()
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
	for _, want := range []string{
		"1 missing",                           // the message never stored
		"message text stored in the clear: ",  // chat_messages.body
		"acknowledged requests have no entry", // no audit middleware
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the checks did not report %q; they reported:\n%s", want, got)
		}
	}
}
