package lockout_test

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/chatsdk/compliance/lockout"
)

func benchGuard(b *testing.B) *lockout.Guard {
	b.Helper()
	g, err := lockout.New(lockout.Config{Store: lockout.NewMemoryStore(nil), Policy: lockout.Policy{IPMaxFailures: -1}})
	if err != nil {
		b.Fatal(err)
	}
	return g
}

// BenchmarkMemoryCheck is the cost of one attempt (reserve, a verify that
// does nothing, settle and history record) on the memory store, over
// 10,000 accounts from 1,000 addresses.
func BenchmarkMemoryCheck(b *testing.B) {
	for _, tc := range []struct {
		name string
		ok   bool
		ip   bool
	}{{"success", true, false}, {"success+ip", true, true}, {"failure+ip", false, true}} {
		b.Run(tc.name, func(b *testing.B) {
			g, err := lockout.New(lockout.Config{Store: lockout.NewMemoryStore(nil),
				Policy: lockout.Policy{IPMaxFailures: 1 << 30, MaxFailures: 1 << 30, HardCap: -1}})
			if err != nil {
				b.Fatal(err)
			}
			attempts := make([]lockout.Attempt, 10_000)
			for i := range attempts {
				attempts[i] = lockout.Attempt{AppID: "bench", Account: fmt.Sprintf("user%05d", i)}
				if tc.ip {
					attempts[i].IP = netip.AddrFrom4([4]byte{10, 0, byte(i / 250 % 4), byte(i % 250)})
				}
			}
			verify := func(context.Context) (bool, error) { return tc.ok, nil }
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				_ = g.Check(ctx, attempts[i%len(attempts)], verify)
			}
		})
	}
}

// BenchmarkMemoryCheckParallel is BenchmarkMemoryCheck with GOMAXPROCS
// callers contending for the store's one mutex.
func BenchmarkMemoryCheckParallel(b *testing.B) {
	g := benchGuard(b)
	var next atomic.Int64
	verify := func(context.Context) (bool, error) { return true, nil }
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			n := next.Add(1)
			_ = g.Check(ctx, lockout.Attempt{AppID: "bench", Account: fmt.Sprintf("user%05d", n%10_000)}, verify)
		}
	})
}
