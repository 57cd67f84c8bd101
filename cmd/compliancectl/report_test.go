package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/fieldcrypt"
	"github.com/chatsdk/compliance/fieldcrypt/fieldcryptpg"
	"github.com/stretchr/testify/require"
)

// events records n events of one type for a tenant.
func (f *fixture) events(tenant, typ string, category audit.Category, n int) {
	f.t.Helper()
	ctx := context.Background()
	l, err := audit.New(audit.Config{Store: f.audit})
	require.NoError(f.t, err)
	for i := range n {
		_, err := l.Record(ctx, audit.Event{Tenant: tenant, Actor: fmt.Sprintf("user-%d", i), Type: typ, Category: category, Action: "lock", Success: true})
		require.NoError(f.t, err)
	}
	require.NoError(f.t, l.Close(ctx))
}

func TestReportEvidence(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.withKeys()
	f.messages(s, 12, "app-1")
	f.withRetention()
	f.record(25, time.Now().Add(-time.Hour), "app-1", "app-2")
	f.events("app-1", audit.TypeAccountLocked, audit.CategorySecurity, 3)
	f.events("app-1", "security.refresh_reused", audit.CategorySecurity, 2)
	r := cli(t, f.env, "", "retention", "sweep")
	require.Equal(t, 0, r.code, r.stderr)
	r = cli(t, f.env, "", "keys", "rotate", "--scope", "app-1")
	require.Equal(t, 0, r.code, r.stderr)

	md := filepath.Join(f.dir, "evidence.md")
	r = cli(t, f.env, "", "report", "evidence", "--out", md, "--json", "--checkpoint", f.cpFile)
	require.Equal(t, 0, r.code, r.stderr)
	var ev Evidence
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &ev))
	require.True(t, ev.OK)

	// Every figure against the database.
	require.Len(t, ev.Audit, 2)
	for _, a := range ev.Audit {
		require.True(t, a.OK)
		require.Equal(t, f.count("SELECT max(seq) FROM audit_entries WHERE stream = '"+a.Stream+"'"), int(a.Through), a.Stream)
		require.Equal(t, f.count("SELECT count(*) FROM audit_entries WHERE stream = '"+a.Stream+"'"), a.Entries, a.Stream)
		require.Equal(t, f.count("SELECT max(seq) FROM audit_checkpoints WHERE stream = '"+a.Stream+"' AND kind = 'head'"), int(a.LatestCheckpoint.Seq), a.Stream)
	}
	require.Equal(t, "app-1", ev.Retention[0].Tenant)
	require.Equal(t, int64(12-f.count("SELECT count(*) FROM message")), ev.Retention[0].Deleted)
	require.Equal(t, f.count("SELECT count(*) FROM audit_entries WHERE tenant = 'app-1' AND type = 'system.retention_sweep'"), ev.Retention[0].Sweeps)
	require.Equal(t, 5.5, ev.Retention[0].PeriodDays)
	require.Equal(t, f.count("SELECT count(*) FROM retention_holds WHERE released_at IS NULL"), len(ev.Holds))
	require.Len(t, ev.Integrity, 1)
	require.True(t, ev.Integrity[0].OK)
	require.Equal(t, int64(f.count("SELECT count(*) FROM message")), ev.Integrity[0].Rows)
	require.Equal(t, f.count("SELECT count(*) FROM audit_entries WHERE tenant = 'app-1' AND type = 'security.account_locked'"), ev.Events[0].AccountLocks)
	require.Equal(t, 3, ev.Events[0].AccountLocks)
	require.Equal(t, 2, ev.Events[0].TokenReuses)
	ks, err := fieldcryptpg.New(f.db.Pool, fieldcryptpg.Config{Schema: f.db.Schema}).Get(context.Background(), fieldcrypt.Scope{Tenant: "app-1"}, fieldcrypt.PurposeAEAD)
	require.NoError(t, err)
	require.Equal(t, keyAge{Scope: "app-1", Status: "active", Version: ks.Version, PrimarySince: ks.PrimarySince.UTC(), AgeDays: 0, Rotations: 1}, ev.Keys[0])
	require.Equal(t, "no keyset", ev.Keys[1].Status)

	// The Markdown shows the same figures.
	data, err := os.ReadFile(md)
	require.NoError(t, err)
	text := string(data)
	require.Contains(t, text, fmt.Sprintf("| app-1 | yes | %d | %d |", ev.Audit[0].Through, ev.Audit[0].Entries))
	require.Contains(t, text, "| app-1 | 1 | 5.5 | 0 | 1 | 5 | 1 |")
	require.Contains(t, text, "| message | yes | 7 | 7 |")
	require.Contains(t, text, "| app-1 | 3 | 2 | 0 | 0 |")
	require.Contains(t, text, "Active legal holds: 1")
	require.Contains(t, text, "| absolute session lifetime | 24h0m0s | §4.2.3 (AAL2), §4.3.3 (AAL3): reauthenticate at least every 12 hours | NO | deviates: set session.Config.Lifetime to 12 hours or less |")

	html := filepath.Join(f.dir, "evidence.html")
	r = cli(t, f.env, "", "report", "evidence", "--format", "html", "--out", html)
	require.Equal(t, 0, r.code, r.stderr)
	data, err = os.ReadFile(html)
	require.NoError(t, err)
	require.Contains(t, string(data), "<h2>Audit controls, §164.312(b)</h2>")
	require.Contains(t, string(data), "<td>app-1</td><td>1</td><td>5.5</td>")

	// A tampered row: the report is still written, and says so; exit 1.
	_, err = f.db.Pool.Exec(context.Background(), "UPDATE message SET body = 'edited' WHERE id = 9")
	require.NoError(t, err)
	r = cli(t, f.env, "", "report", "evidence", "--out", md)
	require.Equal(t, 1, r.code, r.stderr)
	data, err = os.ReadFile(md)
	require.NoError(t, err)
	require.Contains(t, string(data), "| message | NO | 7 | 7 |")
}

func TestReportBreachScopeAndDisclosures(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	start := time.Now().Add(-time.Hour)
	f.record(25, start, "app-1", "app-2")
	since := start.Add(-time.Minute).Format(time.RFC3339)

	r := cli(t, f.env, "", "report", "breach-scope", "--app", "app-1", "--actor", "user-1", "--since", since, "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var scope breachScopeResult
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &scope))
	require.Len(t, scope.Resources, f.count("SELECT count(DISTINCT resource_id) FROM audit_entries WHERE tenant = 'app-1' AND actor = 'user-1'"))
	require.Len(t, scope.Subjects, f.count("SELECT count(DISTINCT subject) FROM audit_entries WHERE tenant = 'app-1' AND actor = 'user-1'"))
	require.Len(t, scope.Resources, 8)

	r = cli(t, f.env, "", "report", "disclosures", "--subject", "patient-2", "--since", since)
	require.Equal(t, 0, r.code, r.stderr)
	n := f.count("SELECT count(*) FROM audit_entries WHERE subject = 'patient-2'")
	require.Equal(t, 12, n) // six per tenant
	require.Contains(t, r.stdout, fmt.Sprintf("%d accesses to the records of patient-2 by 3 actors", n))

	r = cli(t, f.env, "", "report", "disclosures", "--subject", "patient-2")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "--since is required")
}
