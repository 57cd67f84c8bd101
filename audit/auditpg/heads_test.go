package auditpg_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/auditpg"
	"github.com/chatsdk/compliance/audit/audittest"
	"github.com/chatsdk/compliance/internal/pgtest"
)

// The application role may move a head, but never back: a head set back
// would make the next batches reuse sequence numbers and fork the chain.
func TestHeadOnlyMovesForward(t *testing.T) {
	db := pgtest.New(t)
	s := newStore(t, db, db.Pool)
	ctx := context.Background()
	_, err := s.Append(ctx, "t1", audittest.Events("t1", 0, 5))
	require.NoError(t, err)

	for _, stmt := range []string{
		`UPDATE audit_heads SET seq = 2`,
		`UPDATE audit_heads SET seq = 5, hash = '\x00'::bytea || substring(hash from 2)`,
		`UPDATE audit_heads SET stream = 't2'`,
		`DELETE FROM audit_heads`,
		`TRUNCATE audit_heads`,
	} {
		_, err := db.Pool.Exec(ctx, stmt)
		require.Error(t, err, stmt)
	}

	// The store itself still moves it, through either path.
	got, err := s.Append(ctx, "t1", audittest.Events("t1", 5, 2))
	require.NoError(t, err)
	require.Equal(t, uint64(7), got[1].Seq)
	other, err := auditpg.New(db.Pool, auditpg.Config{})
	require.NoError(t, err)
	got, err = other.Append(ctx, "t1", audittest.Events("t1", 7, 1))
	require.NoError(t, err)
	require.Equal(t, uint64(8), got[0].Seq)
	keys := audittest.NewKeys(t)
	_, err = audit.Verify(ctx, s, audit.VerifyOptions{Stream: "t1", Verifier: keys.Verifier})
	require.NoError(t, err)
}
