package fieldcrypt

import (
	"container/list"
	"sync"
	"time"
)

type cacheKey struct {
	scope   Scope
	purpose Purpose
}

type cacheEntry struct {
	key        cacheKey
	value      *loaded
	expires    time.Time
	lastReload time.Time // last reload forced by an unknown key ID
}

// cache is a least-recently-used cache of unwrapped keysets with a bound on
// both size and age. It is safe for concurrent use.
type cache struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	order *list.List // front is most recently used; values are *cacheEntry
	items map[cacheKey]*list.Element
}

func newCache(max int, ttl time.Duration) *cache {
	return &cache{max: max, ttl: ttl, order: list.New(), items: map[cacheKey]*list.Element{}}
}

// get returns the cached keyset, or nil when there is none or it expired.
func (c *cache) get(key cacheKey, now time.Time) *loaded {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.order.Remove(el)
		delete(c.items, key)
		return nil
	}
	c.order.MoveToFront(el)
	return e.value
}

// put caches l, replacing an older version and evicting the least recently
// used entry beyond the size bound. A keyset older than the cached one is
// ignored, so a slow load cannot undo a rotation; a shredded one always
// wins.
func (c *cache) put(key cacheKey, l *loaded, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		e := el.Value.(*cacheEntry)
		if e.value.shredded || (!l.shredded && l.version < e.value.version) {
			return
		}
		e.value = l
		e.expires = now.Add(c.ttl)
		c.order.MoveToFront(el)
		return
	}
	c.items[key] = c.order.PushFront(&cacheEntry{key: key, value: l, expires: now.Add(c.ttl)})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*cacheEntry).key)
	}
}

// remove drops a key from the cache.
func (c *cache) remove(key cacheKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.order.Remove(el)
		delete(c.items, key)
	}
}

// allowReload reports whether a reload of key forced by an unknown key ID
// may happen now, and records it if so: at most one per interval.
func (c *cache) allowReload(key cacheKey, now time.Time, interval time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return true
	}
	e := el.Value.(*cacheEntry)
	if !e.lastReload.IsZero() && now.Sub(e.lastReload) < interval {
		return false
	}
	e.lastReload = now
	return true
}

// len returns the number of cached keysets.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// flight makes concurrent loads of one keyset share a single store read and
// KEK call.
type flight struct {
	mu    sync.Mutex
	calls map[cacheKey]*flightCall
}

type flightCall struct {
	done chan struct{}
	val  *loaded
	err  error
}

func (f *flight) do(key cacheKey, fn func() (*loaded, error)) (*loaded, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[cacheKey]*flightCall{}
	}
	if c, ok := f.calls[key]; ok {
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
