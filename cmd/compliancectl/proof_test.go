package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tink-crypto/tink-go/v2/signature"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/tlog"
)

// recordWithTree appends n events to app-1 through a Log whose checkpoints
// (every 10 entries) also get signed tree heads.
func (f *fixture) recordWithTree(n int) {
	f.t.Helper()
	ctx := context.Background()
	s, err := signature.NewSigner(f.signer)
	require.NoError(f.t, err)
	ts, err := tlog.NewSigner("", f.signer)
	require.NoError(f.t, err)
	log, err := audit.New(audit.Config{Store: f.audit, Signer: s, CheckpointEvery: 10, CheckpointInterval: time.Hour,
		Publisher: &audit.TreePublisher{Store: f.audit, Signer: ts}})
	require.NoError(f.t, err)
	for i := range n {
		_, err := log.Record(ctx, audit.Event{Tenant: "app-1", Actor: "user-1", Type: audit.TypeDataRead,
			Category: audit.CategoryDataAccess, Action: audit.ActionRead, ResourceType: "message", ResourceID: strings.Repeat("m", 1+i%3), Success: true})
		require.NoError(f.t, err)
	}
	require.NoError(f.t, log.Close(ctx))
}

func TestAuditProofs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.recordWithTree(35)

	incl := filepath.Join(f.dir, "incl.json")
	r := cli(t, f.env, "", "audit", "prove-inclusion", "--app", "app-1", "--seq", "7", "--out", incl)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "app-1: entry 7 proved under the tree head of size 30")

	// Offline: no database, only the public key.
	r = cli(t, nil, "", "audit", "verify-proof", incl, "--public-key", f.pubKey)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "app-1: entry 7 is in the log under the signed tree head of size 30")

	cons := filepath.Join(f.dir, "cons.json")
	r = cli(t, f.env, "", "audit", "prove-consistency", "--app", "app-1", "--old-size", "10", "--out", cons)
	require.Equal(t, 0, r.code, r.stderr)
	r = cli(t, nil, "", "audit", "verify-proof", cons, "--public-key", f.pubKey, "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
	require.Equal(t, true, res["ok"])
	require.Equal(t, float64(30), res["new_size"])

	// A changed entry field: exit 1.
	data, err := os.ReadFile(incl)
	require.NoError(t, err)
	bad := filepath.Join(f.dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(strings.Replace(string(data), `"user-1"`, `"user-2"`, 1)), 0o600))
	r = cli(t, nil, "", "audit", "verify-proof", bad, "--public-key", f.pubKey)
	require.Equal(t, 1, r.code, r.stdout)
	require.Contains(t, r.stdout, "PROOF FAILS")

	// A quorum the heads do not have: exit 1.
	_, wkey, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	w, err := tlog.NewCosigner("witness-a", wkey, nil)
	require.NoError(t, err)
	r = cli(t, nil, "", "audit", "verify-proof", incl, "--public-key", f.pubKey, "--quorum", "1",
		"--witness", w.Verifier().(*tlog.CosignatureVerifier).VerifierKey())
	require.Equal(t, 1, r.code, r.stderr)
	require.Contains(t, r.stdout, "not enough witness cosignatures")

	// No head covers a seq past the last checkpoint.
	r = cli(t, f.env, "", "audit", "prove-inclusion", "--app", "app-1", "--seq", "33", "--out", filepath.Join(f.dir, "x.json"))
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "no signed tree head covering seq 33")
}

// TestVerifyExportChecksTreeHeads exports a stream whose checkpoints have
// signed tree heads: verify-export accepts the tree lines, recomputes the
// tree and checks every head, the whole stream and a window (from the
// frontier the export carries); a damaged head fails.
func TestVerifyExportChecksTreeHeads(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.recordWithTree(35)

	whole := filepath.Join(f.dir, "whole.jsonl")
	r := cli(t, f.env, "", "audit", "export", "--app", "app-1", "--out", whole)
	require.Equal(t, 0, r.code, r.stderr)
	data, err := os.ReadFile(whole)
	require.NoError(t, err)
	require.Contains(t, string(data), `{"tree_head":`)
	r = cli(t, nil, "", "audit", "verify-export", whole, "--public-key", f.pubKey)
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stdout, "Merkle tree matches 3 signed tree heads, up to size 30")

	// A window starting after seq 1 carries the frontier.
	var times []time.Time
	require.NoError(t, f.audit.Scan(context.Background(), "app-1", 0, func(e *audit.Entry) error {
		times = append(times, e.Time)
		return nil
	}))
	window := filepath.Join(f.dir, "window.jsonl")
	r = cli(t, f.env, "", "audit", "export", "--app", "app-1", "--out", window,
		"--since", times[14].Format(time.RFC3339Nano), "--until", times[16].Format(time.RFC3339Nano))
	require.Equal(t, 0, r.code, r.stderr)
	wdata, err := os.ReadFile(window)
	require.NoError(t, err)
	require.Contains(t, string(wdata), `{"tree_frontier":`)
	r = cli(t, nil, "", "audit", "verify-export", window, "--public-key", f.pubKey, "--json")
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	var res verifyExportResult
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
	require.True(t, res.OK)
	require.NotNil(t, res.Tree)
	require.True(t, res.Tree.Anchored)
	require.Equal(t, uint64(20), res.Tree.Size)

	// A tree head whose root was changed: its signature fails.
	lines := strings.SplitAfter(string(data), "\n")
	var bad []byte
	changed := false
	for _, l := range lines {
		if !changed && strings.HasPrefix(l, `{"tree_head":`) {
			var tl struct {
				TreeHead *audit.SignedTreeHead `json:"tree_head"`
			}
			require.NoError(t, json.Unmarshal([]byte(l), &tl))
			nl := strings.Split(tl.TreeHead.Note, "\n")
			root := []byte(nl[2])
			root[0] ^= 0x01 // another base64 letter
			nl[2] = string(root)
			tl.TreeHead.Note = strings.Join(nl, "\n")
			b, err := json.Marshal(tl)
			require.NoError(t, err)
			l, changed = string(b)+"\n", true
		}
		bad = append(bad, l...)
	}
	require.True(t, changed)
	badPath := filepath.Join(f.dir, "bad.jsonl")
	require.NoError(t, os.WriteFile(badPath, bad, 0o600))
	r = cli(t, nil, "", "audit", "verify-export", badPath, "--public-key", f.pubKey)
	require.Equal(t, 1, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stdout, string(audit.FailForgedTreeHead))
}

// TestVerifyProofAgainstHeldHead checks verify-proof --held-head: an
// auditor holding the head of size 30 refuses a proof under the head of
// size 10 (an old head replayed), and a consistency proof that does not
// start from the head it holds.
func TestVerifyProofAgainstHeldHead(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.recordWithTree(35)
	heads, err := f.audit.TreeHeads(context.Background(), "app-1")
	require.NoError(t, err)
	require.Len(t, heads, 3)
	held := func(i int) string {
		path := filepath.Join(f.dir, fmt.Sprintf("held-%d.note", heads[i].Size))
		require.NoError(t, os.WriteFile(path, []byte(heads[i].Note), 0o600))
		return path
	}

	latest := filepath.Join(f.dir, "latest.json")
	r := cli(t, f.env, "", "audit", "prove-inclusion", "--app", "app-1", "--seq", "7", "--out", latest)
	require.Equal(t, 0, r.code, r.stderr)
	r = cli(t, nil, "", "audit", "verify-proof", latest, "--public-key", f.pubKey, "--held-head", held(2))
	require.Equal(t, 0, r.code, r.stdout+r.stderr)

	old := filepath.Join(f.dir, "old.json")
	r = cli(t, f.env, "", "audit", "prove-inclusion", "--app", "app-1", "--seq", "7", "--tree-size", "10", "--out", old)
	require.Equal(t, 0, r.code, r.stderr)
	r = cli(t, nil, "", "audit", "verify-proof", old, "--public-key", f.pubKey)
	require.Equal(t, 0, r.code, "alone, the old head's proof holds")
	r = cli(t, nil, "", "audit", "verify-proof", old, "--public-key", f.pubKey, "--held-head", held(2))
	require.Equal(t, 1, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stdout, "older than the held head of size 30")

	cons := filepath.Join(f.dir, "cons.json")
	r = cli(t, f.env, "", "audit", "prove-consistency", "--app", "app-1", "--old-size", "10", "--out", cons)
	require.Equal(t, 0, r.code, r.stderr)
	r = cli(t, nil, "", "audit", "verify-proof", cons, "--public-key", f.pubKey, "--held-head", held(0))
	require.Equal(t, 0, r.code, r.stdout+r.stderr)
	r = cli(t, nil, "", "audit", "verify-proof", cons, "--public-key", f.pubKey, "--held-head", held(1))
	require.Equal(t, 1, r.code, r.stdout+r.stderr)
	require.Contains(t, r.stdout, "not from the held head's size 20")
}
