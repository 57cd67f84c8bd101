package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"testing"
	"time"

	"github.com/chatsdk/compliance/audit"
	"github.com/stretchr/testify/require"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/signature"
)

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		pos     []string
		key     string
		verbose bool
	}{
		{args: []string{"f.jsonl", "--key", "k"}, pos: []string{"f.jsonl"}, key: "k"},
		{args: []string{"--key", "k", "f.jsonl"}, pos: []string{"f.jsonl"}, key: "k"},
		{args: []string{"a", "-v", "b", "--key=k"}, pos: []string{"a", "b"}, key: "k", verbose: true},
		{args: []string{"-v", "--", "--key", "x"}, pos: []string{"--key", "x"}, verbose: true},
		{args: nil, pos: nil},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		key := fs.String("key", "", "")
		verbose := fs.Bool("v", false, "")
		pos, err := parseInterspersed(fs, tc.args)
		require.NoError(t, err, tc.args)
		require.Equal(t, tc.pos, pos, tc.args)
		require.Equal(t, tc.key, *key, tc.args)
		require.Equal(t, tc.verbose, *verbose, tc.args)
	}
}

func TestHoistFlags(t *testing.T) {
	cmds := commands()
	require.Equal(t, []string{"audit", "verify", "--json", "--app", "a"}, hoistFlags(cmds, []string{"--json", "audit", "verify", "--app", "a"}))
	require.Equal(t, []string{"migrate", "--schema", "s", "--only", "audit"}, hoistFlags(cmds, []string{"--schema", "s", "migrate", "--only", "audit"}))
	require.Equal(t, []string{"audit", "verify"}, hoistFlags(cmds, []string{"audit", "verify"}))
	require.Equal(t, []string{"--json", "nosuch"}, hoistFlags(cmds, []string{"--json", "nosuch"}))
}

func TestParseScopeAndRedact(t *testing.T) {
	s, err := parseScope("app-1/patient:42")
	require.NoError(t, err)
	require.Equal(t, "app-1", s.Tenant)
	require.Equal(t, "patient:42", s.Name)
	_, err = parseScope("/x")
	require.Error(t, err)
	_, err = parseScope("")
	require.Error(t, err)

	require.Equal(t, "aws-kms://arn/…", redactURI("aws-kms://arn:aws:kms:eu-west-1:1111:key/abc"))
	require.Equal(t, "hcvault://vault.internal/…", redactURI("hcvault://vault.internal:8200/transit/keys/k"))
}

// exportFixture is a small export made by audit.Export from a memory store.
func exportFixture(t testing.TB) ([]byte, *keyset.Handle) {
	t.Helper()
	ctx := context.Background()
	h, err := keyset.NewHandle(signature.ED25519KeyTemplate())
	require.NoError(t, err)
	signer, err := signature.NewSigner(h)
	require.NoError(t, err)
	store := audit.NewMemoryStore()
	l, err := audit.New(audit.Config{Store: store, Signer: signer, CheckpointEvery: 2, CheckpointInterval: time.Hour})
	require.NoError(t, err)
	for i := range 4 {
		_, err := l.Record(ctx, audit.Event{Tenant: "t", Actor: "a", Type: audit.TypeDataRead, Category: audit.CategoryDataAccess,
			Action: audit.ActionRead, ResourceID: string(rune('a' + i)), Success: true, Metadata: map[string]string{"k": "v"}})
		require.NoError(t, err)
	}
	require.NoError(t, l.Close(ctx))
	var buf bytes.Buffer
	_, err = audit.Export(ctx, &buf, store, audit.ExportOptions{Stream: "t"})
	require.NoError(t, err)
	pub, err := h.Public()
	require.NoError(t, err)
	return buf.Bytes(), pub
}

func TestCheckCanonical(t *testing.T) {
	data, _ := exportFixture(t)
	require.NoError(t, checkCanonical(data))

	// A JSON field name in another case: encoding/json would read the
	// same value, so only the byte check notices.
	i := bytes.Index(data, []byte(`"actor"`))
	require.Positive(t, i)
	mod := bytes.Clone(data)
	mod[i+1] = 'A'
	var l strictLine
	line, _, _ := bytes.Cut(mod[bytes.LastIndexByte(mod[:i], '\n')+1:], []byte("\n"))
	require.NoError(t, json.Unmarshal(line, &l), "encoding/json reads the changed name")
	require.ErrorIs(t, checkCanonical(mod), audit.ErrBadExport)

	require.ErrorIs(t, checkCanonical(data[:len(data)-1]), audit.ErrBadExport, "no final newline")
	require.ErrorIs(t, checkCanonical(append(bytes.Clone(data), '\n')), audit.ErrBadExport, "blank line")
}

// FuzzReadExport: whatever the bytes, readExport returns a Source or an
// error, and a Source that verifies holds exactly the bytes audit.Export
// wrote for its values.
func FuzzReadExport(f *testing.F) {
	data, pub := exportFixture(f)
	v, err := signature.NewVerifier(pub)
	require.NoError(f, err)
	f.Add(data)
	f.Add([]byte("{}\n"))
	f.Add([]byte(`{"entry":{"stream":"t","seq":1}}` + "\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		src, err := readExport(bytes.NewReader(in))
		if err != nil || src.Stream == "" {
			return
		}
		if _, err := audit.Verify(context.Background(), src, audit.VerifyOptions{Stream: src.Stream, Verifier: v, From: src.From}); err != nil {
			return
		}
		// It verified: it must be the genuine export or a prefix-free
		// part of it made of whole genuine lines.
		for _, line := range bytes.SplitAfter(in, []byte("\n")) {
			if len(line) > 0 && !bytes.Contains(data, line) {
				t.Fatalf("a line that audit.Export never wrote verified: %q", line)
			}
		}
	})
}
