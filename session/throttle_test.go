package session_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/chatsdk/compliance/session"
)

// barrierStore holds every Session read, once made, until n callers have
// made theirs, so concurrent requests all see the same stale state,
// whatever the scheduler does.
type barrierStore struct {
	*countingStore
	mu      sync.Mutex
	waiting int
	n       int
	release chan struct{}
}

func (s *barrierStore) Session(ctx context.Context, id string) (session.Session, error) {
	got, err := s.countingStore.Session(ctx, id)
	s.mu.Lock()
	s.waiting++
	if s.waiting == s.n {
		close(s.release)
	}
	s.mu.Unlock()
	<-s.release
	return got, err
}

// TestConcurrentStaleReadsWriteActivityOnce: twenty requests that all read
// the session before any has recorded activity still write it once.
func TestConcurrentStaleReadsWriteActivityOnce(t *testing.T) {
	const n = 20
	ctx := context.Background()
	var bs *barrierStore
	b := setup(t, func(c *session.Config) {
		bs = &barrierStore{countingStore: c.Store.(*countingStore), n: n, release: make(chan struct{})}
		c.Store = bs
	})
	tok := b.login(t)
	b.clock.Advance(2 * time.Minute)

	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.m.Authenticate(ctx, tok.AccessToken); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := b.store.touchCount(); got != 1 {
		t.Errorf("%d requests with one stale read wrote activity %d times, want 1", n, got)
	}
}
