package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/retention"
	"github.com/chatsdk/compliance/retention/retentionpg"
	"github.com/stretchr/testify/require"
)

// withRetention declares the message table as a sweep target, sets app-1's
// period to 5.5 days (in force since yesterday) and holds message 2.
func (f *fixture) withRetention() {
	t := f.t
	t.Helper()
	ctx := context.Background()
	f.writeConfig(map[string]any{"retention": map[string]any{"targets": []any{map[string]any{
		"table": "message", "id": "id", "time": "created_at", "channel": "channel_id", "integrity_domain": "message",
	}}}})
	store, err := retentionpg.New(f.db.Pool, retentionpg.Config{Schema: f.db.Schema})
	require.NoError(t, err)
	twoDaysAgo := time.Now().Add(-48 * time.Hour)
	p, err := retention.NewPolicies(store, retention.PoliciesConfig{Now: func() time.Time { return twoDaysAgo }})
	require.NoError(t, err)
	_, err = p.SetPeriod(ctx, "app-1", "", 132*time.Hour, "privacy officer")
	require.NoError(t, err)
	_, err = p.PlaceHold(ctx, "app-1", retention.Resource("2"), "litigation", "counsel")
	require.NoError(t, err)
}

func (f *fixture) count(sql string) int {
	f.t.Helper()
	var n int
	require.NoError(f.t, f.db.Pool.QueryRow(context.Background(), sql).Scan(&n))
	return n
}

func TestRetentionSweep(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.withKeys()
	f.messages(s, 12, "app-1") // ages 11 days down to 0
	f.withRetention()

	// A dry run counts and deletes nothing.
	r := cli(t, f.env, "", "retention", "sweep", "--dry-run", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var res sweepResult
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
	require.True(t, res.DryRun)
	require.Len(t, res.Scopes, 2) // app-2 is configured and has no rows
	require.Equal(t, scopeCount{Target: "message", Tenant: "app-1", Scope: "tenant", PolicyVersion: 1, PeriodDays: 5.5, Cutoff: res.Scopes[0].Cutoff, Due: 6, Held: 1}, res.Scopes[0])
	require.Equal(t, "app-2", res.Scopes[1].Tenant)
	require.Zero(t, res.Scopes[1].Due)
	require.Len(t, res.Holds, 1)
	require.Equal(t, "resource:2", res.Holds[0].Scope)
	require.Equal(t, 12, f.count("SELECT count(*) FROM message"))
	require.Equal(t, 0, f.count("SELECT count(*) FROM audit_entries WHERE type = 'system.retention_sweep'"))

	// A dry run as of a later time sees more; a real sweep may not.
	r = cli(t, f.env, "", "retention", "sweep", "--dry-run", "--as-of", time.Now().Add(72*time.Hour).Format(time.RFC3339))
	require.Equal(t, 0, r.code, r.stderr)
	require.Regexp(t, `message +app-1 +tenant +6d +9 +1 +0\n`, r.stdout)
	r = cli(t, f.env, "", "retention", "sweep", "--as-of", time.Now().Add(72*time.Hour).Format(time.RFC3339))
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "in the future")

	r = cli(t, f.env, "", "retention", "forecast", "--days", "3")
	require.Equal(t, 0, r.code, r.stderr)
	require.Regexp(t, `message +app-1 +tenant +6d +9 +1 +0\n`, r.stdout)
	require.Contains(t, r.stdout, "resource:2")
	require.Equal(t, 12, f.count("SELECT count(*) FROM message"))

	// The sweep deletes the five due rows not held, audits the batch in
	// its transaction and forgets their integrity tags.
	r = cli(t, f.env, "", "retention", "sweep")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "5 rows deleted")
	require.Regexp(t, `message +app-1 +tenant +6d +6 +1 +5\n`, r.stdout)
	require.Equal(t, 7, f.count("SELECT count(*) FROM message"))
	require.Equal(t, 1, f.count("SELECT count(*) FROM message WHERE id = 2"))
	require.Equal(t, 1, f.count("SELECT count(*) FROM audit_entries WHERE type = 'system.retention_sweep' AND metadata->>'deleted' = '5'"))

	r = cli(t, f.env, "", "integrity", "verify", "--target", "message")
	require.Equal(t, 0, r.code, r.stdout)
	r = cli(t, f.env, "", "audit", "verify", "--app", "app-1", "--public-key", f.pubKey)
	require.Equal(t, 0, r.code, r.stdout)

	// Nothing left to do the second time.
	r = cli(t, f.env, "", "retention", "sweep", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &res))
	require.Zero(t, res.Deleted)
	require.Equal(t, 1, f.count("SELECT count(*) FROM audit_entries WHERE type = '"+audit.TypeRetentionSweep+"'"))
}
