package retention

import (
	"testing"
	"time"
)

func TestAdapt(t *testing.T) {
	s := &Sweeper{cfg: SweeperConfig{MinBatch: 100, MaxBatch: 1000, BatchTime: time.Second}}
	for _, c := range []struct {
		name    string
		limit   int
		scanned int
		elapsed time.Duration
		want    int
	}{
		{"fast full batch grows", 400, 400, 100 * time.Millisecond, 600},
		{"growth stops at MaxBatch", 900, 900, 100 * time.Millisecond, 1000},
		{"slow batch shrinks", 600, 600, 2 * time.Second, 400},
		{"shrink stops at MinBatch", 120, 120, 2 * time.Second, 100},
		{"short last batch says nothing", 400, 10, 100 * time.Millisecond, 400},
		{"on target stays", 400, 400, 700 * time.Millisecond, 400},
	} {
		if got := s.adapt(c.limit, c.scanned, c.elapsed); got != c.want {
			t.Errorf("%s: adapt(%d, %d, %v) = %d, want %d", c.name, c.limit, c.scanned, c.elapsed, got, c.want)
		}
	}
}
