package retention_test

import (
	"slices"
	"testing"

	"github.com/chatsdk/compliance/retention"
	"github.com/chatsdk/compliance/retention/retentiontest"
)

func TestMemoryStore(t *testing.T) {
	retentiontest.Run(t, func(t *testing.T) retentiontest.Harness {
		m := retention.NewMemoryStore()
		const table = "message"
		return retentiontest.Harness{
			Store:  m,
			Target: retention.Target{Table: table, ID: "id", Time: "created_at", Channel: "channel_id", User: "user_id"},
			Insert: func(_ testing.TB, rows ...retention.Row) { m.Insert(table, rows...) },
			IDs: func(testing.TB) []string {
				var ids []string
				for _, r := range m.Rows(table) {
					ids = append(ids, r.ID)
				}
				slices.Sort(ids)
				return ids
			},
		}
	})
}
