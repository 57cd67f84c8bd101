package audit

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// gatedStore records batch sizes and holds each Append until released.
type gatedStore struct {
	*MemoryStore
	entered chan int
	release chan struct{}
	fail    error
	mu      sync.Mutex
	sizes   []int
}

func newGatedStore() *gatedStore {
	return &gatedStore{MemoryStore: NewMemoryStore(), entered: make(chan int, 100), release: make(chan struct{}, 100)}
}

func (g *gatedStore) Append(ctx context.Context, stream string, events []Event) ([]Entry, error) {
	g.mu.Lock()
	g.sizes = append(g.sizes, len(events))
	g.mu.Unlock()
	g.entered <- len(events)
	<-g.release
	if g.fail != nil {
		return nil, g.fail
	}
	return g.MemoryStore.Append(ctx, stream, events)
}

func waitPending(t *testing.T, l *Log, stream string, n int) {
	t.Helper()
	for {
		l.mu.Lock()
		q := l.queues[stream]
		got := 0
		if q != nil {
			got = len(q.pending)
		}
		l.mu.Unlock()
		if got >= n {
			return
		}
		runtime.Gosched()
	}
}

func TestLogGroupsConcurrentRecords(t *testing.T) {
	g := newGatedStore()
	l, err := New(Config{Store: g, MaxInFlight: 1})
	require.NoError(t, err)

	var wg sync.WaitGroup
	record := func(i int) {
		defer wg.Done()
		if _, err := l.Record(context.Background(), testEvent(i)); err != nil {
			t.Error(err)
		}
	}
	wg.Add(1)
	go record(0)
	require.Equal(t, 1, <-g.entered)

	// While the first batch is being written, nine more queue up...
	for i := 1; i < 10; i++ {
		wg.Add(1)
		go record(i)
	}
	waitPending(t, l, "t1", 9)
	g.release <- struct{}{}
	// ...and are written together.
	require.Equal(t, 9, <-g.entered)
	g.release <- struct{}{}
	wg.Wait()
	require.NoError(t, l.Close(context.Background()))
	require.Equal(t, []int{1, 9}, g.sizes)
}

func TestLogBatchIsBoundedBySize(t *testing.T) {
	g := newGatedStore()
	l, err := New(Config{Store: g, MaxBatch: 4, MaxInFlight: 1})
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _, _ = l.Record(context.Background(), testEvent(0)) }()
	<-g.entered
	for i := 1; i <= 10; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = l.Record(context.Background(), testEvent(i)) }()
	}
	waitPending(t, l, "t1", 10)
	for range 4 {
		g.release <- struct{}{}
	}
	wg.Wait()
	require.Equal(t, []int{1, 4, 4, 2}, g.sizes)
}

func TestLogFullQueuePushesBack(t *testing.T) {
	g := newGatedStore()
	l, err := New(Config{Store: g, QueueSize: 2, MaxInFlight: 1})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = l.Record(context.Background(), testEvent(i)) }()
		if i == 0 {
			<-g.entered
		}
	}
	waitPending(t, l, "t1", 1)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = l.Record(ctx, testEvent(3))
	require.ErrorIs(t, err, ErrQueueFull)
	require.ErrorIs(t, err, context.Canceled)

	g.release <- struct{}{}
	g.release <- struct{}{}
	wg.Wait()
	require.Len(t, g.MemoryStore.streams["t1"], 2, "the refused event was not written")
}

func TestLogStoreFailureIsReported(t *testing.T) {
	g := newGatedStore()
	g.fail = errors.New("database is down")
	g.release <- struct{}{}
	l, err := New(Config{Store: g, MaxInFlight: 1})
	require.NoError(t, err)
	_, err = l.Record(context.Background(), testEvent(0))
	require.ErrorIs(t, err, ErrNotDurable)
	require.ErrorContains(t, err, "database is down")
}

func TestLogClosed(t *testing.T) {
	l, err := New(Config{Store: NewMemoryStore()})
	require.NoError(t, err)
	require.NoError(t, l.Close(context.Background()))
	_, err = l.Record(context.Background(), testEvent(0))
	require.ErrorIs(t, err, ErrClosed)
}

func TestLogRejectsInvalidEvents(t *testing.T) {
	l, err := New(Config{Store: NewMemoryStore()})
	require.NoError(t, err)
	cases := map[string]func(e *Event){
		"no tenant":    func(e *Event) { e.Tenant = "" },
		"no type":      func(e *Event) { e.Type = "" },
		"no action":    func(e *Event) { e.Action = "" },
		"bad category": func(e *Event) { e.Category = "gossip" },
		"long field":   func(e *Event) { e.ResourceID = string(make([]byte, MaxFieldLen+1)) },
		"bad utf-8":    func(e *Event) { e.Actor = "\xff" },
		"nul byte":     func(e *Event) { e.ResourceID = "a\x00b" },
		"empty meta":   func(e *Event) { e.Metadata = map[string]string{"": "v"} },
		"big metadata": func(e *Event) { e.Metadata = map[string]string{"k": string(make([]byte, MaxMetadataLen))} },
	}
	for name, edit := range cases {
		e := testEvent(0)
		edit(&e)
		_, err := l.Record(context.Background(), e)
		require.ErrorIs(t, err, ErrInvalidEvent, name)
	}
	_, err = New(Config{})
	require.ErrorIs(t, err, ErrConfig)
}

func TestLogFillsTimesFromClock(t *testing.T) {
	now := time.Date(2026, 7, 1, 12, 0, 0, 123456789, time.UTC)
	l, err := New(Config{Store: NewMemoryStore(), Now: func() time.Time { return now }})
	require.NoError(t, err)
	e := testEvent(0)
	e.Time, e.RetainUntil = time.Time{}, time.Time{}
	got, err := l.Record(context.Background(), e)
	require.NoError(t, err)
	require.Equal(t, now.Truncate(time.Microsecond), got.Time)
	require.Equal(t, now.Truncate(time.Microsecond).AddDate(6, 0, 0), got.RetainUntil)
}

func TestLogCheckpointsEveryNAndPublishes(t *testing.T) {
	k := newEdKeys(t)
	m := NewMemoryStore()
	pub := &FilePublisher{Path: filepath.Join(t.TempDir(), "checkpoints.jsonl")}
	var clock time.Time = time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	l, err := New(Config{Store: m, Signer: k, CheckpointEvery: 5, CheckpointInterval: time.Hour,
		Publisher: pub, Now: func() time.Time { return clock }})
	require.NoError(t, err)
	for i := range 12 {
		_, err := l.Record(context.Background(), testEvent(i))
		require.NoError(t, err)
	}
	cps, err := m.Checkpoints(context.Background(), "t1")
	require.NoError(t, err)
	var seqs []uint64
	for _, c := range cps {
		seqs = append(seqs, c.Seq)
	}
	require.Equal(t, []uint64{5, 10}, seqs)

	// An hour later the next write checkpoints whatever the count.
	clock = clock.Add(time.Hour)
	_, err = l.Record(context.Background(), testEvent(12))
	require.NoError(t, err)

	published, err := ReadCheckpointFile(pub.Path)
	require.NoError(t, err)
	require.Len(t, published, 3)
	require.Equal(t, uint64(13), published[2].Seq)
	for i := range published {
		require.NoError(t, VerifyCheckpoint(k, &published[i]))
	}

	// The published copy catches a database rolled back with its own
	// checkpoints.
	m.streams["t1"] = m.streams["t1"][:8]
	m.checkpoints["t1"] = m.checkpoints["t1"][:1]
	_, err = Verify(context.Background(), m, VerifyOptions{Stream: "t1", Verifier: k, Checkpoints: published})
	var f *Failure
	require.ErrorAs(t, err, &f)
	require.Equal(t, FailTruncated, f.Kind)
}

func TestLogCommitsUpToMaxInFlightBatches(t *testing.T) {
	g := newGatedStore()
	l, err := New(Config{Store: g, MaxInFlight: 2})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = l.Record(context.Background(), testEvent(i)) }()
		if i < 2 {
			require.Equal(t, 1, <-g.entered, "batch %d starts while the first is still being written", i+1)
		}
	}
	waitPending(t, l, "t1", 1) // the third waits for a free slot
	g.release <- struct{}{}
	require.Equal(t, 1, <-g.entered)
	g.release <- struct{}{}
	g.release <- struct{}{}
	wg.Wait()
	require.NoError(t, l.Close(context.Background()))
	require.Len(t, g.MemoryStore.streams["t1"], 3)
}

// ErrQueueFull says the event was not recorded, so Record must not return
// it while the queue has room, whatever the state of ctx.
func TestLogQueuesWhileThereIsRoomEvenIfCtxEnded(t *testing.T) {
	store := NewMemoryStore()
	l, err := New(Config{Store: store})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	const n = 40
	for i := range n {
		_, err := l.Record(ctx, testEvent(i))
		if err != nil {
			require.ErrorIs(t, err, ErrNotDurable, "record %d", i)
			require.NotErrorIs(t, err, ErrQueueFull, "record %d", i)
		}
	}
	require.NoError(t, l.Close(context.Background()))
	require.Len(t, store.streams["t1"], n, "every queued event is written")
}

// Callers that record again as soon as they are answered join the next
// batch instead of splitting the stream into two groups that commit in
// turn, whether or not other events were queued meanwhile.
func TestLogWaitsForAnsweredCallersToRejoin(t *testing.T) {
	g := newGatedStore()
	l, err := New(Config{Store: g, MaxInFlight: 1})
	require.NoError(t, err)
	// Long bounds make the test deterministic: the wait ends as soon as
	// the callers are back. The final wait, after the last batch, runs out
	// in the background (no Close).
	l.lingerMin, l.lingerMax = 5*time.Second, 5*time.Second

	var wg sync.WaitGroup
	loop := func(first, n int) {
		defer wg.Done()
		for i := range n {
			if _, err := l.Record(context.Background(), testEvent(first+i)); err != nil {
				t.Error(err)
			}
		}
	}
	wg.Add(1)
	go loop(0, 3)
	require.Equal(t, 1, <-g.entered)
	for c := 1; c <= 3; c++ {
		wg.Add(1)
		go loop(10*c, 2)
	}
	waitPending(t, l, "t1", 3)

	g.release <- struct{}{}
	require.Equal(t, 4, <-g.entered, "the answered caller joins the three queued ones")
	g.release <- struct{}{}
	require.Equal(t, 4, <-g.entered, "all four rejoin after an idle moment")
	g.release <- struct{}{}
	wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	require.Equal(t, []int{1, 4, 4}, g.sizes)
}
