package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/auditpg"
	"github.com/chatsdk/compliance/internal/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/signature"
)

// binary is the compliancectl built once for every test. It is built
// without the race detector even under -race: a race build made the
// suite three times slower; the in-process tests run under it.
var binary string

func TestMain(m *testing.M) {
	for _, a := range os.Args {
		if strings.Contains(a, "test.fuzzworker") {
			os.Exit(m.Run()) // a fuzz worker runs only the fuzz target
		}
	}
	dir, err := os.MkdirTemp("", "compliancectl-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	binary = filepath.Join(dir, "compliancectl")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building compliancectl:", err)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one run of the binary.
type result struct {
	code           int
	stdout, stderr string
}

// cli runs the binary with args and the environment given (and nothing
// else of the test's environment but PATH and HOME).
func cli(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running compliancectl %s: %v", strings.Join(args, " "), err)
	}
	t.Logf("compliancectl %s -> %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	return r
}

// fixture is a migrated schema with keys on disk and an audit log.
type fixture struct {
	t      *testing.T
	db     *pgtest.DB
	dir    string
	env    []string // DATABASE_URL and COMPLIANCECTL_CONFIG
	pubKey string   // audit public keyset file
	cpFile string   // published checkpoints
	signer *keyset.Handle
	audit  *auditpg.Store
	config map[string]any
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db := pgtest.New(t)
	dir := t.TempDir()
	f := &fixture{t: t, db: db, dir: dir, cpFile: filepath.Join(dir, "checkpoints.jsonl")}

	// The schema goes in through the URL's search_path here; other tests
	// pass --schema.
	url := db.URL + "&search_path=" + db.Schema
	f.writeConfig(map[string]any{"tenants": []string{"app-1", "app-2"}})
	f.env = []string{"DATABASE_URL=" + url, "COMPLIANCECTL_CONFIG=" + filepath.Join(dir, "config.json")}
	r := cli(t, f.env, "", "migrate")
	require.Equal(t, 0, r.code, r.stderr)

	h, err := keyset.NewHandle(signature.ED25519KeyTemplate())
	require.NoError(t, err)
	f.signer = h
	pub, err := h.Public()
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, pub.WriteWithNoSecrets(keyset.NewJSONWriter(&buf)))
	f.pubKey = filepath.Join(dir, "audit-public.json")
	require.NoError(t, os.WriteFile(f.pubKey, buf.Bytes(), 0o600))

	f.audit, err = auditpg.New(db.Pool, auditpg.Config{Schema: db.Schema})
	require.NoError(t, err)
	return f
}

// writeConfig merges fields into the configuration file.
func (f *fixture) writeConfig(fields map[string]any) {
	f.t.Helper()
	if f.config == nil {
		f.config = map[string]any{}
	}
	for k, v := range fields {
		f.config[k] = v
	}
	data, err := json.Marshal(f.config)
	require.NoError(f.t, err)
	require.NoError(f.t, os.WriteFile(filepath.Join(f.dir, "config.json"), data, 0o600))
}

// record appends n events per tenant through an audit.Log that signs a
// checkpoint every 10 entries and publishes it to f.cpFile.
func (f *fixture) record(n int, start time.Time, tenants ...string) {
	f.t.Helper()
	ctx := context.Background()
	s, err := signature.NewSigner(f.signer)
	require.NoError(f.t, err)
	now := start
	log, err := audit.New(audit.Config{
		Store: f.audit, Signer: s, CheckpointEvery: 10, CheckpointInterval: time.Hour,
		Publisher: &audit.FilePublisher{Path: f.cpFile},
		Now:       func() time.Time { return now },
	})
	require.NoError(f.t, err)
	for i := range n {
		for _, tenant := range tenants {
			now = now.Add(time.Second)
			_, err := log.Record(ctx, audit.Event{
				Tenant: tenant, Actor: fmt.Sprintf("user-%d", i%3), IP: "203.0.113.9",
				Type: audit.TypeDataRead, Category: audit.CategoryDataAccess, Action: audit.ActionRead,
				ResourceType: "message", ResourceID: fmt.Sprintf("msg-%d", i), Subject: fmt.Sprintf("patient-%d", i%4),
				Success: true, Metadata: map[string]string{"channel": "general"},
			})
			require.NoError(f.t, err)
		}
	}
	require.NoError(f.t, log.Close(ctx))
}

// tamper runs SQL with triggers off, as an attacker with superuser rights
// on the database could.
func (f *fixture) tamper(sql string, args ...any) {
	f.t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, f.db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, sql, args...)
		if err == nil && tag.RowsAffected() == 0 {
			err = errors.New("tampering changed no row")
		}
		return err
	})
	require.NoError(f.t, err)
}

func TestHelpAndUsage(t *testing.T) {
	t.Parallel()
	r := cli(t, nil, "", "help")
	require.Equal(t, 0, r.code)
	require.Contains(t, r.stdout, "audit verify")

	for _, c := range commands() {
		args := append(strings.Fields(c.name), "--help")
		r := cli(t, nil, "", args...)
		require.Equal(t, 0, r.code, c.name)
		require.Contains(t, r.stdout, "Example:\n  compliancectl "+c.name, c.name)
		require.Contains(t, r.stdout, "--json", c.name)
	}

	r = cli(t, nil, "", "audit", "frobnicate")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "compliancectl help")

	r = cli(t, nil, "", "audit", "verify", "--from-seq", "many")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "--help")

	r = cli(t, nil, "", "migrate")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "DATABASE_URL")

	r = cli(t, []string{"DATABASE_URL=postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"}, "", "migrate")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "cannot reach the database")
}

func TestAuditVerify(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.record(25, time.Now().Add(-time.Hour), "app-1", "app-2")

	// Clean chains: exit 0, and JSON for automation.
	// Common flags may also come before the command.
	r := cli(t, f.env, "", "--json", "audit", "verify", "--public-key", f.pubKey, "--checkpoint", f.cpFile)
	require.Empty(t, r.stderr, "no progress bar off a terminal")
	require.Equal(t, 0, r.code, r.stderr)
	var out struct {
		OK      bool          `json:"ok"`
		Streams []chainResult `json:"streams"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	require.True(t, out.OK)
	require.Len(t, out.Streams, 2)
	for _, s := range out.Streams {
		require.Equal(t, uint64(25), s.Through, s.Stream)
		require.Equal(t, 25, s.Entries)
		require.NotNil(t, s.LatestCheckpoint)
		require.Equal(t, uint64(20), s.LatestCheckpoint.Seq)
	}

	// From a later sequence number, anchored by the checkpoint before it.
	r = cli(t, f.env, "", "audit", "verify", "--app", "app-1", "--from-seq", "11", "--public-key", f.pubKey)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "app-1: chain holds from seq 11 through 25 (15 entries")

	// --record appends the outcome to the chain it verified.
	r = cli(t, f.env, "", "audit", "verify", "--app", "app-1", "--public-key", f.pubKey, "--record")
	require.Equal(t, 0, r.code, r.stderr)
	var through string
	require.NoError(t, f.db.Pool.QueryRow(context.Background(),
		"SELECT metadata->>'verified_through' FROM audit_entries WHERE stream = 'app-1' AND type = $1 AND seq = 26", audit.TypeAuditVerified).Scan(&through))
	require.Equal(t, "25", through)

	// One field of one entry changed behind the log's back: exit 1, with
	// the first bad sequence number and the kind of break.
	f.tamper("UPDATE audit_entries SET actor = 'mallory' WHERE stream = 'app-1' AND seq = 7")
	r = cli(t, f.env, "", "audit", "verify", "--public-key", f.pubKey)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "app-1: TAMPERED: first bad entry seq 7: "+string(audit.FailAltered))
	require.Contains(t, r.stdout, "app-2: chain holds from seq 1 through 25")

	r = cli(t, f.env, "", "audit", "verify", "--app", "app-1", "--public-key", f.pubKey, "--json")
	require.Equal(t, 1, r.code)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	require.False(t, out.OK)
	require.Equal(t, uint64(7), out.Streams[0].Failure.Seq)

	// The tail cut off: the published checkpoint file catches it even
	// though what is left links up.
	f.tamper("DELETE FROM audit_entries WHERE stream = 'app-2' AND seq > 15")
	f.tamper("DELETE FROM audit_checkpoints WHERE stream = 'app-2' AND seq > 15")
	f.tamper("UPDATE audit_heads SET seq = 15, hash = (SELECT hash FROM audit_entries WHERE stream = 'app-2' AND seq = 15) WHERE stream = 'app-2'")
	r = cli(t, f.env, "", "audit", "verify", "--app", "app-2", "--public-key", f.pubKey, "--checkpoint", f.cpFile)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, string(audit.FailTruncated))

	// With --json even an error is one JSON document on standard output.
	r = cli(t, f.env, "", "audit", "verify", "--json")
	require.Equal(t, 2, r.code)
	var failed struct {
		Error string `json:"error"`
		Exit  int    `json:"exit"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &failed))
	require.Equal(t, 2, failed.Exit)
	require.Contains(t, failed.Error, "no audit public key")

	// A wrong public key is a usage error, not a finding.
	r = cli(t, f.env, "", "audit", "verify", "--public-key", filepath.Join(f.dir, "config.json"))
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "not a Tink public keyset")
}

func TestAuditExport(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	start := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	f.record(25, start, "app-1")
	ctx := context.Background()

	// The whole stream: verifies offline with no database in reach.
	whole := filepath.Join(f.dir, "whole.jsonl")
	r := cli(t, f.env, "", "audit", "export", "--app", "app-1", "--out", whole)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "app-1: wrote 25 entries with their checkpoints")
	r = cli(t, nil, "", "audit", "verify-export", whole, "--public-key", f.pubKey)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "app-1: chain holds from seq 1 through 25 (25 entries, 2 checkpoints checked)")

	// A window, anchored by the checkpoint just before it.
	window := filepath.Join(f.dir, "window.jsonl")
	r = cli(t, f.env, "", "audit", "export", "--app", "app-1", "--out", window,
		"--since", start.Add(10500*time.Millisecond).Format(time.RFC3339Nano), "--until", start.Add(20500*time.Millisecond).Format(time.RFC3339Nano))
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "app-1: wrote 10 entries with their checkpoints")
	r = cli(t, nil, "", "audit", "verify-export", window, "--public-key", f.pubKey, "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var res verifyExportResult
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
	require.True(t, res.OK)
	require.True(t, res.Anchored)
	require.Equal(t, uint64(20), res.Through)

	// One byte changed in an actor: exit 1, the entry named.
	data, err := os.ReadFile(window)
	require.NoError(t, err)
	i := bytes.Index(data, []byte(`"actor":"user-`))
	require.Positive(t, i)
	tampered := bytes.Clone(data)
	tampered[i+len(`"actor":"user-`)] ^= 0x03
	bad := filepath.Join(f.dir, "tampered.jsonl")
	require.NoError(t, os.WriteFile(bad, tampered, 0o600))
	r = cli(t, nil, "", "audit", "verify-export", bad, "--public-key", f.pubKey)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stdout, "TAMPERED: first bad entry seq 11: "+string(audit.FailAltered))

	// And any other single byte changed: every position of the first
	// checkpoint, the first entry and the last entry (the other lines are
	// of the same shapes), checked in process for speed.
	v, err := signature.NewVerifier(mustPublic(t, f.signer))
	require.NoError(t, err)
	lines := bytes.SplitAfter(data, []byte("\n"))
	lines = lines[:len(lines)-1] // after the last newline
	require.True(t, bytes.HasPrefix(lines[0], []byte(`{"checkpoint"`)))
	var positions []int
	offset := 0
	for n, line := range lines {
		firstEntry := bytes.HasPrefix(line, []byte(`{"entry"`)) && !bytes.HasPrefix(lines[n-1], []byte(`{"entry"`))
		if n == 0 || firstEntry || n == len(lines)-1 {
			for i := range line {
				positions = append(positions, offset+i)
			}
		}
		offset += len(line)
	}
	for _, pos := range positions {
		mod := bytes.Clone(data)
		mod[pos] ^= 0x01
		src, err := readExport(bytes.NewReader(mod))
		if err != nil {
			continue
		}
		_, err = audit.Verify(ctx, src, audit.VerifyOptions{Stream: src.Stream, Verifier: v, From: src.From})
		require.Error(t, err, "byte %d (%q) changed and the export still verifies", pos, data[pos])
	}

	// An export to an existing file is refused rather than overwritten.
	r = cli(t, f.env, "", "audit", "export", "--app", "app-1", "--out", whole)
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "must not exist")
}

func mustPublic(t *testing.T, h *keyset.Handle) *keyset.Handle {
	t.Helper()
	pub, err := h.Public()
	require.NoError(t, err)
	return pub
}

// TestProgressOnTerminal runs a verification under a pseudo-terminal (with
// util-linux's script) and checks that the bar shows a rate; off a
// terminal the other tests check that stderr stays quiet.
func TestProgressOnTerminal(t *testing.T) {
	t.Parallel()
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script(1) is not installed: no pseudo-terminal to draw a progress bar on")
	}
	f := newFixture(t)
	f.record(30, time.Now().Add(-time.Hour), "app-1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	line := strings.Join([]string{binary, "audit", "verify", "--app", "app-1", "--public-key", f.pubKey}, " ")
	cmd := exec.CommandContext(ctx, script, "-qfec", line, "/dev/null")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TERM=xterm"}, f.env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "entries/s")
	require.Contains(t, string(out), "app-1: chain holds from seq 1 through 30")
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	env := []string{"DATABASE_URL=" + db.URL}

	// Two operators at once: each package's advisory lock serialises them.
	results := make(chan result, 2)
	for range 2 {
		go func() { results <- cli(t, env, "", "migrate", "--schema", db.Schema, "--json") }()
	}
	for range 2 {
		r := <-results
		require.Equal(t, 0, r.code, r.stderr)
		var out struct {
			Migrated []migrateResult `json:"migrated"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
		require.Len(t, out.Migrated, len(migrations))
	}
	var n int
	require.NoError(t, db.Pool.QueryRow(context.Background(),
		"SELECT count(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name IN ('audit_entries', 'retention_holds', 'integrity_tags', 'fieldcrypt_keysets', 'session_sessions', 'lockout_counter')", db.Schema).Scan(&n))
	require.Equal(t, 6, n)

	r := cli(t, env, "", "migrate", "--schema", db.Schema, "--only", "audit,nosuch")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, `unknown package "nosuch"`)
}

// TestDatabaseURLPasswordStaysOutOfErrors gives a URL that does not parse
// and one whose server is not there; neither message may echo the password.
func TestDatabaseURLPasswordStaysOutOfErrors(t *testing.T) {
	const password = "pw-7f3a9c-never-printed"
	for _, url := range []string{
		"postgres://admin:" + password + "@127.0.0.1:notaport/db",
		"postgres://admin:" + password + "@127.0.0.1:1/db?sslmode=disable&connect_timeout=2",
	} {
		r := cli(t, []string{"DATABASE_URL=" + url, "COMPLIANCECTL_CONFIG=" + filepath.Join(t.TempDir(), "config.json")}, "", "migrate")
		require.NotZero(t, r.code, url)
		require.NotEmpty(t, r.stderr, url)
		require.NotContains(t, r.stdout+r.stderr, password, url)
	}
}
