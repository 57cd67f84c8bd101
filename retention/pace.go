package retention

import (
	"math"
	"time"
)

// pacer decides each batch's size and the pause after it, so that a sweep
// takes at most a share of the database's time and leaves the rest to live
// traffic. It is told how each batch went; it never reads a clock itself,
// so its decisions can be tested with made-up durations.
//
// The size follows the measured rate: a full batch that took elapsed for
// scanned rows predicts that target rows take target/elapsed times as long,
// and the next size is that, changed by at most a factor of two per batch
// so that one odd batch cannot swing it far. A batch that overran its
// target shrinks the next at once. A busier server makes every row slower,
// so the batches shrink and, since the pause is proportional to the time a
// batch took, the sweep's share of time stays the same: throughput is what
// gives way.
//
// The pause after a batch is the longest of: the fixed floor (Pause); the
// time that keeps the share of time spent in batches at duty (a batch of d
// is followed by d*(1-duty)/duty); and the time that keeps the rate at or
// under maxRate rows a second.
//
// TODO: the pacer sees only the sweep's own batches, so it pauses for its
// share whether or not live traffic is waiting. A signal from that traffic
// (commit latency, or backends waiting on WAL in pg_stat_activity) would
// let it sweep flat out on an idle database; left out because the core
// package cannot read Postgres and the Store interface has no such probe.
type pacer struct {
	target   time.Duration // batch duration aimed at
	duty     float64       // share of time in batches, (0, 1]
	maxRate  float64       // rows a second at most; 0: no ceiling
	floor    time.Duration // pause at least this long
	min, max int           // batch size bounds
}

// next returns the size of the batch after one of limit rows that scanned
// scanned rows in elapsed, and how long to wait before it.
func (p pacer) next(limit, scanned int, elapsed time.Duration) (int, time.Duration) {
	return p.size(limit, scanned, elapsed), p.pause(scanned, elapsed)
}

func (p pacer) size(limit, scanned int, elapsed time.Duration) int {
	next := limit
	switch {
	case elapsed > p.target:
		// Overran: down to the measured rate, by at most half.
		next = int(float64(limit) * float64(p.target) / float64(elapsed))
		next = max(next, limit/2)
	case scanned < limit:
		// The scope's last batch, shorter than asked: it says nothing
		// about how long a full one takes.
	case elapsed <= 0:
		next = limit * 2
	default:
		ratio := math.Min(float64(p.target)/float64(elapsed), 2)
		// Inside a tenth of the target is close enough: no need to
		// chase noise.
		if ratio > 1.1 {
			next = int(float64(limit) * ratio)
		}
	}
	return min(max(next, p.min), p.max)
}

func (p pacer) pause(scanned int, elapsed time.Duration) time.Duration {
	d := p.floor
	if p.duty > 0 && p.duty < 1 {
		d = max(d, time.Duration(float64(elapsed)*(1-p.duty)/p.duty))
	}
	if p.maxRate > 0 && scanned > 0 {
		d = max(d, time.Duration(float64(scanned)/p.maxRate*float64(time.Second))-elapsed)
	}
	return d
}
