package auditpg_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/audittest"
	"github.com/chatsdk/compliance/internal/pgtest"
)

// asSuperuser runs f in a transaction with triggers disabled, as an attacker
// with superuser rights (or a restored, edited backup) would.
func asSuperuser(t *testing.T, db *pgtest.DB, f func(tx pgx.Tx)) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, `SET LOCAL session_replication_role = replica`)
	require.NoError(t, err)
	f(tx)
	require.NoError(t, tx.Commit(ctx))
}

func exec(t *testing.T, tx pgx.Tx, sql string, args ...any) {
	t.Helper()
	_, err := tx.Exec(context.Background(), sql, args...)
	require.NoError(t, err, sql)
}

func insertRaw(t *testing.T, tx pgx.Tx, e *audit.Entry) {
	t.Helper()
	var meta *string
	if len(e.Metadata) > 0 {
		b, _ := json.Marshal(e.Metadata)
		m := string(b)
		meta = &m
	}
	exec(t, tx, `INSERT INTO audit_entries (stream, seq, prev_hash, hash, tenant, at, actor, session_id, ip, user_agent,
		type, category, action, resource_type, resource_id, subject, success, failure_reason, metadata, retain_until)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20)`,
		e.Stream, int64(e.Seq), e.PrevHash, e.Hash, e.Tenant, e.Time, e.Actor, e.SessionID, e.IP, e.UserAgent,
		e.Type, string(e.Category), e.Action, e.ResourceType, e.ResourceID, e.Subject, e.Success, e.FailureReason, meta, e.RetainUntil)
}

func TestTamperingIsDetectedAndNamed(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(t *testing.T, tx pgx.Tx, chain []audit.Entry)
		kind   audit.FailureKind
		seq    uint64
	}{
		{"field edited with triggers disabled", func(t *testing.T, tx pgx.Tx, _ []audit.Entry) {
			exec(t, tx, `UPDATE audit_entries SET actor = 'mallory' WHERE seq = 5`)
		}, audit.FailAltered, 5},
		{"entry deleted", func(t *testing.T, tx pgx.Tx, _ []audit.Entry) {
			exec(t, tx, `DELETE FROM audit_entries WHERE seq = 5`)
		}, audit.FailMissing, 5},
		{"forged entry inserted", func(t *testing.T, tx pgx.Tx, chain []audit.Entry) {
			exec(t, tx, `UPDATE audit_entries SET seq = seq + 1000 WHERE seq >= 4`)
			exec(t, tx, `UPDATE audit_entries SET seq = seq - 999 WHERE seq > 1000`)
			forged := chain[3]
			forged.Actor, forged.ResourceID = "mallory", "msg-forged"
			forged.Hash = audit.EntryHash(&forged)
			insertRaw(t, tx, &forged)
		}, audit.FailInserted, 4},
		{"two entries swapped", func(t *testing.T, tx pgx.Tx, _ []audit.Entry) {
			exec(t, tx, `UPDATE audit_entries SET seq = 1000 WHERE seq = 4`)
			exec(t, tx, `UPDATE audit_entries SET seq = 4 WHERE seq = 5`)
			exec(t, tx, `UPDATE audit_entries SET seq = 5 WHERE seq = 1000`)
		}, audit.FailReordered, 4},
		{"tail truncated", func(t *testing.T, tx pgx.Tx, _ []audit.Entry) {
			exec(t, tx, `DELETE FROM audit_entries WHERE seq > 7`)
			exec(t, tx, `UPDATE audit_heads SET seq = 7, hash = (SELECT hash FROM audit_entries WHERE seq = 7)`)
		}, audit.FailTruncated, 8},
		{"whole chain rewritten with recomputed hashes", func(t *testing.T, tx pgx.Tx, chain []audit.Entry) {
			exec(t, tx, `DELETE FROM audit_entries`)
			chain[2].Actor = "mallory"
			prev := audit.GenesisHash()
			for i := range chain {
				chain[i].PrevHash = prev
				chain[i].Hash = audit.EntryHash(&chain[i])
				prev = chain[i].Hash
				insertRaw(t, tx, &chain[i])
			}
			exec(t, tx, `UPDATE audit_heads SET hash = $1`, prev)
		}, audit.FailRewritten, 10},
	}
	keys := audittest.NewKeys(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := pgtest.New(t)
			s := newStore(t, db, db.Pool)
			ctx := context.Background()
			chain, err := s.Append(ctx, "t1", audittest.Events("t1", 0, 10))
			require.NoError(t, err)
			c := audit.Checkpoint{Stream: "t1", Seq: 10, Head: chain[9].Hash, Time: time.Now()}
			require.NoError(t, audit.SignCheckpoint(keys.Signer, &c))
			require.NoError(t, s.SaveCheckpoint(ctx, c))

			_, err = audit.Verify(ctx, s, audit.VerifyOptions{Stream: "t1", Verifier: keys.Verifier})
			require.NoError(t, err, "the untouched chain verifies")

			asSuperuser(t, db, func(tx pgx.Tx) { tc.tamper(t, tx, chain) })

			_, err = audit.Verify(ctx, s, audit.VerifyOptions{Stream: "t1", Verifier: keys.Verifier})
			var f *audit.Failure
			require.ErrorAs(t, err, &f)
			require.Equal(t, tc.kind, f.Kind, "%v", err)
			require.Equal(t, tc.seq, f.Seq, "%v", err)
		})
	}
}

func TestForgedCheckpointIsDetected(t *testing.T) {
	db := pgtest.New(t)
	s := newStore(t, db, db.Pool)
	ctx := context.Background()
	keys, attacker := audittest.NewKeys(t), audittest.NewKeys(t)
	chain, err := s.Append(ctx, "t1", audittest.Events("t1", 0, 4))
	require.NoError(t, err)
	c := audit.Checkpoint{Stream: "t1", Seq: 4, Head: chain[3].Hash, Time: time.Now()}
	require.NoError(t, audit.SignCheckpoint(attacker.Signer, &c))
	require.NoError(t, s.SaveCheckpoint(ctx, c))

	_, err = audit.Verify(ctx, s, audit.VerifyOptions{Stream: "t1", Verifier: keys.Verifier})
	var f *audit.Failure
	require.ErrorAs(t, err, &f)
	require.Equal(t, audit.FailForgedCheckpoint, f.Kind)
}

func TestTruncationIsCaughtByTheStoredHeadWithoutACheckpoint(t *testing.T) {
	db := pgtest.New(t)
	s := newStore(t, db, db.Pool)
	ctx := context.Background()
	keys := audittest.NewKeys(t)
	_, err := s.Append(ctx, "t1", audittest.Events("t1", 0, 10))
	require.NoError(t, err)

	asSuperuser(t, db, func(tx pgx.Tx) { exec(t, tx, `DELETE FROM audit_entries WHERE seq > 7`) })

	_, err = audit.Verify(ctx, s, audit.VerifyOptions{Stream: "t1", Verifier: keys.Verifier})
	var f *audit.Failure
	require.ErrorAs(t, err, &f)
	require.Equal(t, audit.FailTruncated, f.Kind)
	require.Equal(t, uint64(8), f.Seq)
	require.Contains(t, f.Detail, "head")
}
