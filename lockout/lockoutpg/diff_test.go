package lockoutpg_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chatsdk/compliance/internal/pgtest"
	"github.com/chatsdk/compliance/lockout"
	"github.com/chatsdk/compliance/lockout/lockoutpg"
	"github.com/chatsdk/compliance/lockout/lockouttest"
)

// TestMatchesMemoryStore drives the memory store and the Postgres store
// with the same random sequence of reservations, settlements, unlocks and
// clock moves, and requires the same decisions, locks and states at every
// step: the two rules (Go and SQL) must not drift apart where the
// conformance suite does not look.
func TestMatchesMemoryStore(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	require.NoError(t, lockoutpg.Migrate(ctx, db.Pool, lockoutpg.Options{}))
	pg := newStore(t, db.Pool)
	clock := lockouttest.NewClock()
	mem := lockout.NewMemoryStore(clock.Now)

	keys := []lockout.CounterKey{
		{AppID: "a", Kind: lockout.KindAccount, Factor: lockout.FactorPassword, Account: "alice"},
		{AppID: "a", Kind: lockout.KindAccountIP, Factor: lockout.FactorPassword, Account: "alice", IP: "192.0.2.1"},
		{AppID: "a", Kind: lockout.KindIP, IP: "192.0.2.1"},
	}
	limits := []lockout.Limit{
		{MaxFailures: 3, Window: 10 * time.Minute, LockDurations: []time.Duration{5 * time.Minute, 20 * time.Minute},
			HardCap: 6, ResetOnSuccess: true, NotifyInterval: 30 * time.Minute},
		{MaxFailures: 2, Window: 10 * time.Minute, LockDurations: []time.Duration{5 * time.Minute}, ResetOnSuccess: true},
		{MaxFailures: 4, Window: 10 * time.Minute, LockDurations: []time.Duration{5 * time.Minute}},
	}
	// Whole minutes only, and never a move that lands within a second of a
	// boundary on one store and past it on the other: the Postgres clock
	// runs on between steps, so boundaries are hit from above on both.
	moves := []time.Duration{0, 0, 0, time.Minute, 4 * time.Minute, 11 * time.Minute, 25 * time.Minute}
	outcomes := []lockout.Outcome{lockout.OutcomeFailure, lockout.OutcomeFailure, lockout.OutcomeFailure,
		lockout.OutcomeFailure, lockout.OutcomeFailure, lockout.OutcomeSuccess, lockout.OutcomeCancelled}

	type pending struct {
		tickets []lockout.Ticket
	}
	var open []pending
	var grants, refusals, locks, hard int
	rng := rand.New(rand.NewPCG(7, 11))
	for step := 0; step < 400; step++ {
		where := fmt.Sprintf("step %d", step)
		switch op := rng.IntN(10); {
		case op < 5: // reserve a random subset, in the guard's order
			var reqs []lockout.ReserveRequest
			for i, k := range keys {
				if i == 0 || rng.IntN(2) == 0 {
					reqs = append(reqs, lockout.ReserveRequest{Key: k, Limit: limits[i]})
				}
			}
			mr, err := mem.Reserve(ctx, reqs)
			require.NoError(t, err)
			pr, err := pg.Reserve(ctx, reqs)
			require.NoError(t, err)
			var p pending
			for i := range reqs {
				m, g := mr.Decisions[i], pr.Decisions[i]
				require.Equal(t, m.Granted, g.Granted, "%s: granted of %s", where, m.Key.Kind)
				require.Equal(t, m.Failures, g.Failures, "%s: failures of %s", where, m.Key.Kind)
				require.Equal(t, m.Consecutive, g.Consecutive, "%s: consecutive of %s", where, m.Key.Kind)
				require.Equal(t, m.Epoch, g.Epoch, "%s: epoch of %s", where, m.Key.Kind)
				require.Equal(t, m.Hard, g.Hard, "%s: hard of %s", where, m.Key.Kind)
				require.Equal(t, m.LockedUntil.IsZero(), g.LockedUntil.IsZero(), "%s: lock of %s", where, m.Key.Kind)
				if !m.Granted {
					refusals++
				}
				if m.Granted {
					grants++
					p.tickets = append(p.tickets, lockout.Ticket{Key: m.Key, Limit: reqs[i].Limit, Epoch: m.Epoch})
				}
			}
			if len(p.tickets) > 0 {
				open = append(open, p)
			}
		case op < 8 && len(open) > 0: // settle a random open reservation
			i := rng.IntN(len(open))
			p := open[i]
			open = append(open[:i], open[i+1:]...)
			sp := lockout.SettleParams{Outcome: outcomes[rng.IntN(len(outcomes))], Tickets: p.tickets}
			ms, err := mem.Settle(ctx, sp)
			require.NoError(t, err)
			ps, err := pg.Settle(ctx, sp)
			require.NoError(t, err)
			require.Equal(t, len(ms.Locks), len(ps.Locks), "%s: locks after %s", where, sp.Outcome)
			for j := range ms.Locks {
				m, g := ms.Locks[j], ps.Locks[j]
				locks++
				if m.Hard {
					hard++
				}
				require.Equal(t, m.Key, g.Key, where)
				require.Equal(t, m.Hard, g.Hard, "%s: hard lock", where)
				require.Equal(t, m.Notify, g.Notify, "%s: notify", where)
				require.Equal(t, m.Consecutive, g.Consecutive, "%s: consecutive", where)
			}
		case op == 8: // move the clock
			d := moves[rng.IntN(len(moves))]
			clock.Advance(d)
			advance(t, db.Pool, d)
		default: // an occasional unlock
			if rng.IntN(4) == 0 {
				up := lockout.UnlockParams{AppID: "a", Account: "alice"}
				mu, err := mem.Unlock(ctx, up)
				require.NoError(t, err)
				pu, err := pg.Unlock(ctx, up)
				require.NoError(t, err)
				require.Equal(t, mu.Unlocked, pu.Unlocked, "%s: unlocked", where)
			}
		}

		ms, err := mem.Status(ctx, keys)
		require.NoError(t, err)
		ps, err := pg.Status(ctx, keys)
		require.NoError(t, err)
		require.Equal(t, len(ms.Counters), len(ps.Counters), where)
		for i := range ms.Counters {
			m, g := ms.Counters[i], ps.Counters[i]
			require.Equal(t, m.Key, g.Key, where)
			require.Equal(t, [4]int{m.Failures, m.Consecutive, int(m.Epoch), m.LockCount},
				[4]int{g.Failures, g.Consecutive, int(g.Epoch), g.LockCount}, "%s: %s counter (failures, consecutive, epoch, locks)", where, m.Key.Kind)
			require.Equal(t, m.Hard, g.Hard, where)
			require.Equal(t, ms.Now.Before(m.LockedUntil), ps.Now.Before(g.LockedUntil), "%s: %s locked", where, m.Key.Kind)
		}
	}
	t.Logf("%d grants, %d refusals, %d locks (%d hard)", grants, refusals, locks, hard)
	require.Positive(t, refusals, "the sequence never reached a limit")
	require.Positive(t, locks, "the sequence never locked")
	require.Positive(t, hard, "the sequence never reached the hard cap")
}
