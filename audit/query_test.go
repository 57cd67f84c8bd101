package audit_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/audittest"
)

func seeded(t *testing.T) *audit.MemoryStore {
	t.Helper()
	s := audit.NewMemoryStore()
	evs := audittest.Events("t1", 0, 40)
	evs[5].Category, evs[5].Type = audit.CategoryAuthentication, audit.TypeLogin // not a disclosure
	_, err := s.Append(context.Background(), "t1", evs)
	require.NoError(t, err)
	_, err = s.Append(context.Background(), "t2", audittest.Events("t2", 0, 10))
	require.NoError(t, err)
	return s
}

func TestDisclosures(t *testing.T) {
	s := seeded(t)
	got, err := audit.Disclosures(context.Background(), s, audit.DisclosureQuery{Tenant: "t1", Subject: "patient-1"})
	require.NoError(t, err)
	require.Len(t, got, 9, "events 1, 5(login, excluded), 9, …, 37 minus the login")
	for i, e := range got {
		require.Equal(t, "patient-1", e.Subject)
		require.Equal(t, "t1", e.Tenant)
		if i > 0 {
			require.False(t, e.Time.After(got[i-1].Time), "newest first")
		}
	}

	// Subject or resource: the union, without duplicates.
	got, err = audit.Disclosures(context.Background(), s, audit.DisclosureQuery{Tenant: "t1", Subject: "patient-1", ResourceType: "message", ResourceID: "msg-2"})
	require.NoError(t, err)
	require.Len(t, got, 10)

	// A period.
	base := audittest.Event("t1", 0).Time
	got, err = audit.Disclosures(context.Background(), s, audit.DisclosureQuery{Tenant: "t1", Subject: "patient-1", Since: base.Add(10 * time.Second), Until: base.Add(20 * time.Second)})
	require.NoError(t, err)
	require.Len(t, got, 2) // 13 and 17

	_, err = audit.Disclosures(context.Background(), s, audit.DisclosureQuery{Tenant: "t1"})
	require.ErrorIs(t, err, audit.ErrInvalidEvent)
}

func TestBreachScope(t *testing.T) {
	s := seeded(t)
	got, err := audit.BreachScope(context.Background(), s, "t1", "user-2", time.Time{}, time.Time{})
	require.NoError(t, err)
	require.Len(t, got, 8) // events 2, 7, 12, …, 37
	for _, touch := range got {
		require.Equal(t, 1, touch.Count)
	}
	require.Equal(t, "msg-12", got[0].ResourceID, "sorted by resource")
}

func TestExportVerifiesOffline(t *testing.T) {
	ctx := context.Background()
	keys := audittest.NewKeys(t)
	s := audit.NewMemoryStore()
	log, err := audit.New(audit.Config{Store: s, Signer: keys.Signer, CheckpointEvery: 10, CheckpointInterval: time.Hour})
	require.NoError(t, err)
	for i := range 35 {
		_, err := log.Record(ctx, audittest.Event("t1", i))
		require.NoError(t, err)
	}
	base := audittest.Event("t1", 0).Time

	var buf bytes.Buffer
	n, err := audit.Export(ctx, &buf, s, audit.ExportOptions{Stream: "t1", Since: base.Add(12 * time.Second), Until: base.Add(18 * time.Second)})
	require.NoError(t, err)
	require.Equal(t, 10, n, "widened to the checkpoints at 10 and 20")

	x, err := audit.ReadExport(bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	rep, err := audit.Verify(ctx, x, audit.VerifyOptions{Stream: x.Stream, Verifier: keys.Verifier, From: x.From})
	require.NoError(t, err)
	require.True(t, rep.Anchored)
	require.Equal(t, 10, rep.Entries)

	// An edited export fails.
	edited := strings.Replace(buf.String(), `"actor":"user-4"`, `"actor":"user-9"`, 1)
	x, err = audit.ReadExport(strings.NewReader(edited))
	require.NoError(t, err)
	_, err = audit.Verify(ctx, x, audit.VerifyOptions{Stream: x.Stream, Verifier: keys.Verifier, From: x.From})
	require.ErrorIs(t, err, audit.ErrTampered)

	_, err = audit.ReadExport(strings.NewReader("{\"nope\":1}\n"))
	require.ErrorIs(t, err, audit.ErrBadExport)
}

func FuzzReadExport(f *testing.F) {
	f.Add([]byte(`{"checkpoint":{"stream":"t1","seq":1,"head":"AA==","time":"2026-01-01T00:00:00Z","kind":"head","signature":"AA=="}}` + "\n"))
	f.Add([]byte(`{"entry":{"stream":"t1","seq":1,"tenant":"t1","time":"2026-01-01T00:00:00Z","type":"x","category":"system","action":"a","success":true,"retain_until":"2026-01-01T00:00:00Z","prev_hash":"","hash":""}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		x, err := audit.ReadExport(bytes.NewReader(data))
		if err != nil {
			return
		}
		// Whatever parses must verify or fail cleanly, never panic.
		_, _ = audit.Verify(context.Background(), x, audit.VerifyOptions{Stream: x.Stream + "x", Verifier: rejectAll{}})
		if x.Stream != "" {
			_, _ = audit.Verify(context.Background(), x, audit.VerifyOptions{Stream: x.Stream, Verifier: rejectAll{}, From: x.From})
		}
	})
}

func FuzzParseCursor(f *testing.F) {
	f.Add(audit.Cursor{Time: time.Unix(1, 0), Stream: "s", Seq: 3}.String())
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := audit.ParseCursor(s)
		if err != nil {
			return
		}
		c2, err := audit.ParseCursor(c.String())
		require.NoError(t, err)
		require.Equal(t, c.Seq, c2.Seq)
		require.Equal(t, c.Stream, c2.Stream)
	})
}

type rejectAll struct{}

func (rejectAll) Verify(_, _ []byte) error { return audit.ErrBadSignature }

// A break-glass access to a patient's record is an access to their data
// and belongs in the accounting, although it is a security event.
func TestDisclosuresIncludeEmergencyAccess(t *testing.T) {
	ctx := context.Background()
	s := audit.NewMemoryStore()
	e := audittest.Event("t1", 0)
	e.Type, e.Category, e.Action, e.Subject = audit.TypeEmergencyAccess, audit.CategorySecurity, audit.ActionRead, "patient-9"
	login := audittest.Event("t1", 1)
	login.Type, login.Category, login.Action, login.Subject = audit.TypeLogin, audit.CategoryAuthentication, audit.ActionLogin, "patient-9"
	_, err := s.Append(ctx, "t1", []audit.Event{e, login})
	require.NoError(t, err)

	got, err := audit.Disclosures(ctx, s, audit.DisclosureQuery{Tenant: "t1", Subject: "patient-9"})
	require.NoError(t, err)
	require.Len(t, got, 1, "the emergency access, not the login")
	require.Equal(t, audit.TypeEmergencyAccess, got[0].Type)
}

// An export stripped of its checkpoint lines still links up, so Verify
// passes it; Report.Vouched says that no signature covers it.
func TestVerifyReportsWhatCheckpointsVouchFor(t *testing.T) {
	ctx := context.Background()
	keys := audittest.NewKeys(t)
	s := audit.NewMemoryStore()
	log, err := audit.New(audit.Config{Store: s, Signer: keys.Signer, CheckpointEvery: 10, CheckpointInterval: time.Hour})
	require.NoError(t, err)
	for i := range 25 {
		_, err := log.Record(ctx, audittest.Event("t1", i))
		require.NoError(t, err)
	}
	rep, err := audit.Verify(ctx, s, audit.VerifyOptions{Stream: "t1", Verifier: keys.Verifier})
	require.NoError(t, err)
	require.Equal(t, uint64(20), rep.Vouched, "checkpoints at 10 and 20; 21-25 not yet vouched for")

	var buf bytes.Buffer
	_, err = audit.Export(ctx, &buf, s, audit.ExportOptions{Stream: "t1"})
	require.NoError(t, err)
	var stripped strings.Builder
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		if !strings.HasPrefix(line, `{"checkpoint"`) {
			stripped.WriteString(line)
		}
	}
	x, err := audit.ReadExport(strings.NewReader(stripped.String()))
	require.NoError(t, err)
	rep, err = audit.Verify(ctx, x, audit.VerifyOptions{Stream: x.Stream, Verifier: keys.Verifier, From: x.From})
	require.NoError(t, err)
	require.Zero(t, rep.Checkpoints)
	require.Zero(t, rep.Vouched, "nothing signed vouches for a stripped export")
}
