package fieldcrypt

import (
	"runtime"
	"testing"
	"time"
	"weak"
)

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	var now int64 = 1
	c := newCache(2, time.Minute)
	key := func(n string) cacheKey { return cacheKey{Scope{Tenant: n}, PurposeAEAD} }
	tick := func() int64 { now += int64(time.Second); return now }
	c.put(key("a"), &loaded{version: 1}, tick())
	c.put(key("b"), &loaded{version: 1}, tick())
	if c.get(key("a"), tick()) == nil {
		t.Fatal("a missing")
	}
	c.put(key("c"), &loaded{version: 1}, tick())
	if n := c.len(); n != 2 {
		t.Fatalf("cache holds %d keysets, want at most 2", n)
	}
	if c.get(key("b"), now) != nil {
		t.Fatal("b, the least recently used, was not evicted")
	}
	if c.get(key("a"), now) == nil || c.get(key("c"), now) == nil {
		t.Fatal("a or c evicted")
	}
}

func TestCacheKeepsNewerVersionAndShred(t *testing.T) {
	var now int64 = 1
	c := newCache(4, time.Minute)
	k := cacheKey{Scope{Tenant: "a"}, PurposeAEAD}
	c.put(k, &loaded{version: 3}, now)
	c.put(k, &loaded{version: 2}, now)
	if got := c.get(k, now).version; got != 3 {
		t.Fatalf("a slow load replaced version 3 with %d", got)
	}
	c.put(k, &loaded{shredded: true}, now)
	c.put(k, &loaded{version: 9}, now)
	if !c.get(k, now).shredded {
		t.Fatal("a load replaced a shredded scope's tombstone")
	}
	if c.get(k, now+int64(time.Minute)) != nil {
		t.Fatal("entry outlived its TTL")
	}
	later := now + int64(2*time.Minute)
	c.put(k, &loaded{shredded: true}, later)
	if got := c.get(k, later); got == nil || !got.shredded {
		t.Fatal("reloading a shredded scope did not refresh its tombstone")
	}
}

// After a restore the store may hold an older version than the cache
// remembers: once the cached one expires, the older one must be taken, or
// every field would load the keyset again.
func TestCacheTakesOlderVersionAfterExpiry(t *testing.T) {
	var now int64 = 1
	c := newCache(4, time.Minute)
	k := cacheKey{Scope{Tenant: "a"}, PurposeAEAD}
	c.put(k, &loaded{version: 3}, now)
	now += int64(time.Minute)
	if c.get(k, now) != nil {
		t.Fatal("entry outlived its TTL")
	}
	c.put(k, &loaded{version: 2}, now)
	if got := c.get(k, now); got == nil || got.version != 2 {
		t.Fatalf("after expiry, got %v, want version 2", got)
	}
}

// fakeTimers stands in for time.AfterFunc in a timed cache: it records the
// functions so a test fires them instead of sleeping.
type fakeTimers struct{ fns []func() }

func (f *fakeTimers) after(d time.Duration, fn func()) *time.Timer {
	f.fns = append(f.fns, fn)
	return time.NewTimer(time.Hour) // stopped by the cache; never fires in a test
}

// fire runs every recorded timer function, as if the TTL had passed.
func (f *fakeTimers) fire() {
	for _, fn := range f.fns {
		fn()
	}
}

// A timed cache reads no clock on a hit, so the TTL must still hold: the
// timer's mark expires an entry, and a later put starts a fresh lifetime.
func TestTimedCacheExpiresByTimer(t *testing.T) {
	timers := &fakeTimers{}
	c := newCache(4, time.Minute)
	c.after = timers.after
	k := cacheKey{Scope{Tenant: "a"}, PurposeAEAD}
	noClock := func() int64 { t.Fatal("a timed cache read the clock on a hit"); return 0 }
	c.put(k, &loaded{version: 1}, 1)
	for range 2 { // the locked path, then the hot one
		if c.hit(k, noClock) == nil {
			t.Fatal("fresh entry missed")
		}
	}
	timers.fire()
	if c.hit(k, noClock) != nil {
		t.Fatal("entry outlived its TTL on the hot path")
	}
	c.hot.Store(nil)
	if c.hit(k, noClock) != nil {
		t.Fatal("entry outlived its TTL on the locked path")
	}
	// Once stale, what the store holds wins, even an older version.
	c.put(k, &loaded{version: 0}, 2)
	if got := c.hit(k, noClock); got == nil || got.version != 0 {
		t.Fatalf("after expiry, got %v, want version 0", got)
	}
	for _, e := range c.items {
		e.timer.Stop()
	}
}

// A pending TTL timer must not keep a dropped cache's keysets alive.
func TestTimedCacheTimerHoldsEntryWeakly(t *testing.T) {
	var pending []func()
	c := newCache(4, time.Minute)
	c.after = func(d time.Duration, fn func()) *time.Timer {
		pending = append(pending, fn)
		return time.NewTimer(time.Hour)
	}
	k := cacheKey{Scope{Tenant: "a"}, PurposeAEAD}
	c.put(k, &loaded{version: 1}, 1)
	w := weak.Make(c.items[k])
	c.items[k].timer.Stop()
	c = nil
	runtime.GC()
	if w.Value() != nil {
		t.Fatal("a pending timer kept a dropped cache entry alive")
	}
	for _, fn := range pending {
		fn() // firing after the entry is gone is harmless
	}
}
