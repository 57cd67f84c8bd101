package auditpg_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/chatsdk/compliance/audit/auditpg"
	"github.com/chatsdk/compliance/audit/audittest"
	"github.com/chatsdk/compliance/internal/pgtest"
)

// A pool tuned with synchronous_commit = off must not turn a recorded
// entry into one a crash can lose: the append makes its transaction's
// commit wait for the flush.
func TestAppendCommitsDurablyUnderSynchronousCommitOff(t *testing.T) {
	db := pgtest.New(t)
	newStore(t, db, db.Pool)
	pool := db.NewPool(t, func(c *pgxpool.Config) { c.ConnConfig.RuntimeParams["synchronous_commit"] = "off" })
	s, err := auditpg.New(pool, auditpg.Config{})
	require.NoError(t, err)
	ctx := context.Background()

	for _, path := range []string{"AppendTx", "Append in a transaction"} {
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		defer tx.Rollback(ctx)
		var before, after string
		require.NoError(t, tx.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&before))
		require.Equal(t, "off", before)
		if path == "AppendTx" {
			_, err = s.AppendTx(ctx, tx, "t1", audittest.Events("t1", 0, 2))
		} else {
			other, nerr := auditpg.New(tx, auditpg.Config{})
			require.NoError(t, nerr)
			_, err = other.Append(ctx, "t1", audittest.Events("t1", 0, 2))
		}
		require.NoError(t, err, path)
		require.NoError(t, tx.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&after))
		require.Equal(t, "on", after, "%s: the commit waits for the flush", path)
		require.NoError(t, tx.Commit(ctx))
	}

	// A stricter setting is left alone.
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, `SET LOCAL synchronous_commit = remote_apply`)
	require.NoError(t, err)
	_, err = s.AppendTx(ctx, tx, "t1", audittest.Events("t1", 4, 1))
	require.NoError(t, err)
	var got string
	require.NoError(t, tx.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&got))
	require.Equal(t, "remote_apply", got)
}
