package auditpg_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/audittest"
	"github.com/chatsdk/compliance/internal/pgtest"
)

type acceptAll struct{}

func (acceptAll) Verify(_, _ []byte) error { return nil }

// BenchmarkVerify reports verification throughput over entries read from
// Postgres; b.N is the number of passes over a 50,000-entry stream.
func BenchmarkVerify(b *testing.B) {
	db := pgtest.New(b)
	s := newStore(b, db, db.Pool)
	ctx := context.Background()
	const n, batch = 50000, 2000
	for i := 0; i < n; i += batch {
		_, err := s.Append(ctx, "t1", audittest.Events("t1", i, batch))
		require.NoError(b, err)
	}
	for _, parallel := range []int{1, 2} {
		b.Run(fmt.Sprintf("parallel=%d", parallel), func(b *testing.B) {
			for range b.N {
				rep, err := audit.Verify(ctx, s, audit.VerifyOptions{Stream: "t1", Verifier: acceptAll{}, Parallel: parallel})
				require.NoError(b, err)
				require.Equal(b, n, rep.Entries)
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
