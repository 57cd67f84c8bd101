package fieldcrypt

import (
	"sync"
	"sync/atomic"
	"time"
	"weak"
)

type cacheKey struct {
	scope   Scope
	purpose Purpose
}

type cacheEntry struct {
	key        cacheKey
	value      atomic.Pointer[loaded]
	expires    atomic.Int64 // on the cache clock, in nanoseconds
	lastUsed   atomic.Int64 // the cache's tick at the last hit, for eviction
	lastReload int64        // last reload forced by an unknown key ID; under mu
	stale      atomic.Bool  // set by timer when the entry's TTL has passed; timed caches only
	timer      *time.Timer  // fires at the TTL; under mu, timed caches only
}

// cache is a least-recently-used cache of unwrapped keysets with a bound on
// both size and age. Times are nanoseconds on the Keyring's cache clock.
//
// The per-field path is a hit, so hits are cheap: the entry used last is
// checked first without a lock, other hits take a read lock, and a hit
// stamps the entry instead of reordering a list. Eviction, on insert only,
// scans for the stalest entry. It is safe for concurrent use.
//
// A timed cache (after is set) does not read a clock on a hit at all: a
// timer per entry marks it stale when its TTL has passed, and [cache.hit]
// checks only that mark. Reading the monotonic clock costs as much as a
// third of a 200-byte field's AES-GCM on some virtual machines, and a hit
// is every field. Caches on a test clock compare times instead, so tests
// never sleep.
type cache struct {
	mu    sync.RWMutex
	max   int
	ttl   int64
	items map[cacheKey]*cacheEntry
	hot   atomic.Pointer[cacheEntry] // the entry of the last hit
	tick  atomic.Int64               // orders uses; a clock could tie
	// after, when not nil, makes the cache timed; it is time.AfterFunc
	// except in tests.
	after func(time.Duration, func()) *time.Timer
	// forgets counts removals, so that a load that read the store before
	// a removal does not cache what it read (see putLoaded).
	forgets atomic.Int64
}

func newCache(max int, ttl time.Duration) *cache {
	return &cache{max: max, ttl: int64(ttl), items: map[cacheKey]*cacheEntry{}}
}

// hit returns the cached keyset, or nil when there is none or it expired.
// A timed cache never calls now.
func (c *cache) hit(key cacheKey, now func() int64) *loaded {
	if c.after == nil {
		return c.get(key, now())
	}
	if e := c.hot.Load(); e != nil && e.key == key {
		if e.stale.Load() {
			return nil
		}
		return e.value.Load()
	}
	c.mu.RLock()
	e, ok := c.items[key]
	c.mu.RUnlock()
	if !ok || e.stale.Load() {
		return nil
	}
	e.lastUsed.Store(c.tick.Add(1))
	c.hot.Store(e)
	return e.value.Load()
}

// get returns the cached keyset, or nil when there is none or it expired
// by now. On a timed cache an entry also expires when its timer fires.
func (c *cache) get(key cacheKey, now int64) *loaded {
	if e := c.hot.Load(); e != nil && e.key == key {
		if now >= e.expires.Load() || e.stale.Load() {
			return nil
		}
		return e.value.Load()
	}

	c.mu.RLock()
	e, ok := c.items[key]
	c.mu.RUnlock()
	if !ok || now >= e.expires.Load() || e.stale.Load() {
		return nil
	}
	e.lastUsed.Store(c.tick.Add(1))
	c.hot.Store(e)
	return e.value.Load()
}

// refresh starts e's lifetime anew at now; the caller holds mu. A timer
// of the previous lifetime that has already begun to run may still mark
// e stale, which costs one early reload and is otherwise harmless.
func (c *cache) refresh(e *cacheEntry, now int64) {
	e.expires.Store(now + c.ttl)
	if c.after == nil {
		return
	}
	if e.timer != nil {
		e.timer.Stop()
	}
	e.stale.Store(false)
	// The timer holds the entry weakly, so a dropped Keyring's keysets are
	// not kept in memory until their timers fire.
	w := weak.Make(e)
	e.timer = c.after(time.Duration(c.ttl), func() {
		if e := w.Value(); e != nil {
			e.stale.Store(true)
		}
	})
}

// put caches l, replacing an older version and evicting the least recently
// used entry beyond the size bound. While the cached keyset is fresh, an
// older one is ignored, so a slow load cannot undo a rotation; once it has
// expired, what the store holds now wins, even an older version (a
// restored backup), so the entry cannot stay expired and force a load per
// field. A shredded scope's tombstone is never replaced.
func (c *cache) put(key cacheKey, l *loaded, now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(key, l, now)
}

// generation returns the removal count, to pass to putLoaded.
func (c *cache) generation() int64 { return c.forgets.Load() }

// putLoaded caches l, read from the store after generation returned gen,
// unless a removal happened since: the application forgot the key because
// the store changed (another instance shredded or rotated), and what this
// load read may predate that change. The caller still uses l once.
func (c *cache) putLoaded(key cacheKey, l *loaded, now, gen int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.forgets.Load() != gen {
		return
	}
	c.putLocked(key, l, now)
}

// putLocked is put; the caller holds mu.
func (c *cache) putLocked(key cacheKey, l *loaded, now int64) {
	if e, ok := c.items[key]; ok {
		cur := e.value.Load()
		if cur.shredded {
			if l.shredded {
				c.refresh(e, now)
			}
			return
		}
		if fresh := now < e.expires.Load() && !e.stale.Load(); fresh && !l.shredded && l.version < cur.version {
			return
		}
		e.value.Store(l)
		c.refresh(e, now)
		e.lastUsed.Store(c.tick.Add(1))
		return
	}
	e := &cacheEntry{key: key}
	e.value.Store(l)
	c.refresh(e, now)
	e.lastUsed.Store(c.tick.Add(1))
	c.items[key] = e
	for len(c.items) > c.max {
		var victim *cacheEntry
		for _, x := range c.items {
			if x != e && (victim == nil || x.lastUsed.Load() < victim.lastUsed.Load()) {
				victim = x
			}
		}
		c.drop(victim)
	}
}

// drop removes e; the caller holds mu.
func (c *cache) drop(e *cacheEntry) {
	delete(c.items, e.key)
	c.hot.CompareAndSwap(e, nil)
	if e.timer != nil {
		e.timer.Stop()
	}
}

// remove drops a key from the cache.
func (c *cache) remove(key cacheKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgets.Add(1)
	if e, ok := c.items[key]; ok {
		c.drop(e)
	}
}

// allowReload reports whether a reload of key forced by an unknown key ID
// may happen now, and records it if so: at most one per interval.
func (c *cache) allowReload(key cacheKey, now int64, interval time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok {
		return true
	}
	if e.lastReload != 0 && now-e.lastReload < int64(interval) {
		return false
	}
	e.lastReload = now
	return true
}

// len returns the number of cached keysets.
func (c *cache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.items)
}

// flight makes concurrent loads of one keyset share a single store read and
// KEK call.
type flight struct {
	mu    sync.Mutex
	calls map[cacheKey]*flightCall
}

type flightCall struct {
	done    chan struct{}
	val     *loaded
	err     error
	waiters int // callers sharing the load; under flight.mu
}

// TODO: a load runs under the first caller's context; when that is
// cancelled, the callers waiting on it fail too (and load again on their
// next call).
func (f *flight) do(key cacheKey, fn func() (*loaded, error)) (*loaded, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[cacheKey]*flightCall{}
	}
	if c, ok := f.calls[key]; ok {
		c.waiters++
		f.mu.Unlock()
		<-c.done
		return c.val, c.err
	}
	c := &flightCall{done: make(chan struct{})}
	f.calls[key] = c
	f.mu.Unlock()

	c.val, c.err = fn()
	close(c.done)

	f.mu.Lock()
	delete(f.calls, key)
	f.mu.Unlock()
	return c.val, c.err
}
