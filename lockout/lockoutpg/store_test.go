package lockoutpg_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/chatsdk/compliance/internal/pgtest"
	"github.com/chatsdk/compliance/lockout"
	"github.com/chatsdk/compliance/lockout/lockoutpg"
	"github.com/chatsdk/compliance/lockout/lockouttest"
)

func newStore(t *testing.T, pool *pgxpool.Pool) *lockoutpg.Store {
	t.Helper()
	s, err := lockoutpg.New(pool, lockoutpg.Options{})
	require.NoError(t, err)
	return s
}

// advance moves the database clock forward for the adapter's rows by
// moving every stored time back: the adapter reads only now(), so this is
// indistinguishable from time passing.
func advance(t *testing.T, pool *pgxpool.Pool, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	_, err := pool.Exec(ctx, `UPDATE lockout_counter SET window_start = window_start - $1::bigint * interval '1 microsecond',
		locked_until = locked_until - $1::bigint * interval '1 microsecond',
		notified_at = notified_at - $1::bigint * interval '1 microsecond',
		updated_at = updated_at - $1::bigint * interval '1 microsecond'`, d.Microseconds())
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE lockout_attempt SET at = at - $1::bigint * interval '1 microsecond'`, d.Microseconds())
	require.NoError(t, err)
}

func TestConformance(t *testing.T) {
	lockouttest.Run(t, func(t *testing.T) lockouttest.Harness {
		db := pgtest.New(t)
		require.NoError(t, lockoutpg.Migrate(context.Background(), db.Pool, lockoutpg.Options{}))
		return lockouttest.Harness{
			Store:   newStore(t, db.Pool),
			Advance: func(t *testing.T, d time.Duration) { advance(t, db.Pool, d) },
			Instances: func(t *testing.T, n int) []lockout.Store {
				out := make([]lockout.Store, n)
				for i := range out {
					out[i] = newStore(t, db.NewPool(t, nil))
				}
				return out
			},
		}
	})
}
