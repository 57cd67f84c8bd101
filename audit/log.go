package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrQueueFull means Record could not queue an event before its context
// ended: the log is taking events faster than the store makes them
// durable. The event was not recorded.
var ErrQueueFull = errors.New("audit: queue full")

// Config configures a [Log]. Only Store is required.
type Config struct {
	// Store keeps the chain. Required.
	Store Store
	// Now is the clock for event times and checkpoint intervals. Defaults
	// to time.Now.
	Now func() time.Time
	// StreamOf names the chain an event joins. Defaults to the event's
	// tenant, one chain per tenant.
	StreamOf func(*Event) string
	// Retention is how long an entry is kept when its event has no
	// RetainUntil. Zero means six years (§164.316(b)(2)(i)).
	Retention time.Duration
	// MaxBatch bounds the events of one stream written in one transaction.
	// Defaults to 512.
	MaxBatch int
	// MaxDelay is how long a stream's writer waits for a batch to fill
	// before writing what it has. Zero (the default) writes at once; events
	// that arrive during a write form the next batch, which already groups
	// concurrent callers, and right after a write the writer waits for the
	// callers it answered to record again, at most an eighth of that
	// write's duration (20µs to 2ms), so they share one batch.
	MaxDelay time.Duration
	// MaxInFlight bounds the batches of one stream being written at once.
	// Defaults to 1, one batch at a time, which is right for stores whose
	// head lock is held until the batch is durable (auditpg, the memory
	// store): a second batch would only wait for the lock. A store that
	// can pipeline one stream's batches may gain from more.
	MaxInFlight int
	// QueueSize bounds the events waiting across all streams; a Record
	// that finds it full waits, up to its context. Defaults to 8192.
	QueueSize int
	// WriteTimeout bounds one batch's write. Defaults to 10 seconds.
	WriteTimeout time.Duration
	// Signer signs checkpoints. Nil means the Log makes none.
	Signer Signer
	// CheckpointEvery makes a checkpoint once a stream has grown by this
	// many entries since the last one this Log made. Defaults to 1000.
	CheckpointEvery int
	// CheckpointInterval makes a checkpoint after a write when this much
	// time (by Now) has passed since the stream's last one. Defaults to a
	// minute.
	CheckpointInterval time.Duration
	// Publisher, if not nil, receives each checkpoint after the store has
	// saved it.
	Publisher Publisher
	// OnError, if not nil, is told of failures that no caller sees: a
	// checkpoint that could not be signed, saved or published. It gets the
	// stream name and the error, never event contents.
	OnError func(stream string, err error)
}

// Defaults of [Config].
const (
	DefaultMaxBatch           = 512
	DefaultMaxInFlight        = 1
	DefaultQueueSize          = 8192
	DefaultWriteTimeout       = 10 * time.Second
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = time.Minute
)

// Log records events, batching concurrent calls per stream into one
// transaction (group commit), and makes signed checkpoints. It is safe for
// concurrent use. Several Logs, in one process or many, may share a Store:
// the store's head lock keeps each stream one chain.
type Log struct {
	cfg Config
	sem chan struct{}
	// lingerMin and lingerMax bound the wait for released callers; see
	// [Log.linger].
	lingerMin, lingerMax time.Duration

	mu     sync.Mutex
	queues map[string]*queue
	closed bool
	wg     sync.WaitGroup

	cpMu sync.Mutex
	cps  map[string]cpState
}

type request struct {
	ev   Event
	done chan result
}

type result struct {
	entry Entry
	err   error
}

type queue struct {
	pending  []*request
	inflight int           // batches being committed
	released int           // callers answered since the last batch was taken
	rejoin   int           // events expected once they are back: see commit
	took     time.Duration // how long the last batch took to commit
	full     chan struct{} // signalled when pending reaches MaxBatch
	wake     chan struct{} // signalled on a new event or a finished batch
}

type cpState struct {
	seq  uint64
	time time.Time
}

// New returns a Log on cfg.Store.
func New(cfg Config) (*Log, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: Store is nil", ErrConfig)
	}
	if cfg.MaxBatch < 0 || cfg.MaxInFlight < 0 || cfg.QueueSize < 0 || cfg.CheckpointEvery < 0 || cfg.MaxDelay < 0 {
		return nil, fmt.Errorf("%w: negative MaxBatch, MaxInFlight, QueueSize, CheckpointEvery or MaxDelay", ErrConfig)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.StreamOf == nil {
		cfg.StreamOf = func(e *Event) string { return e.Tenant }
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.CheckpointEvery == 0 {
		cfg.CheckpointEvery = DefaultCheckpointEvery
	}
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = DefaultCheckpointInterval
	}
	return &Log{
		cfg:       cfg,
		lingerMin: 20 * time.Microsecond,
		lingerMax: 2 * time.Millisecond,
		sem:       make(chan struct{}, cfg.QueueSize),
		queues:    map[string]*queue{},
		cps:       map[string]cpState{},
	}, nil
}

// Store returns the Log's store.
func (l *Log) Store() Store { return l.cfg.Store }

// Prepare fills in what Record would: Time from the clock when zero, and
// RetainUntil from the retention when zero; then it validates e. Callers
// that append inside their own transaction use it so their entries look
// like recorded ones.
func (l *Log) Prepare(e *Event) error {
	if e.Time.IsZero() {
		e.Time = l.cfg.Now()
	}
	e.Time = truncate(e.Time)
	if e.RetainUntil.IsZero() {
		if l.cfg.Retention > 0 {
			e.RetainUntil = e.Time.Add(l.cfg.Retention)
		} else {
			e.RetainUntil = e.Time.AddDate(6, 0, 0)
		}
	}
	return e.validate()
}

// Record appends e to its stream and returns the entry once it is durable.
// Concurrent calls for one stream share a transaction. When the queue is
// full Record waits until ctx ends and then returns [ErrQueueFull]; when ctx
// ends after the event was queued it returns [ErrNotDurable], and the entry
// may still be written. Any error means the caller must not assume the
// event is recorded.
func (l *Log) Record(ctx context.Context, e Event) (Entry, error) {
	if err := l.Prepare(&e); err != nil {
		return Entry{}, err
	}
	stream := l.cfg.StreamOf(&e)
	if stream == "" {
		return Entry{}, fmt.Errorf("%w: empty stream", ErrInvalidEvent)
	}

	// Take a queue slot when there is one, even if ctx has ended: a select
	// on both would pick at random and refuse an event the queue had room
	// for. Only a full queue waits on ctx.
	select {
	case l.sem <- struct{}{}:
	default:
		select {
		case l.sem <- struct{}{}:
		case <-ctx.Done():
			return Entry{}, fmt.Errorf("%w: %w", ErrQueueFull, ctx.Err())
		}
	}

	req := &request{ev: e, done: make(chan result, 1)}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.sem
		return Entry{}, ErrClosed
	}
	q, running := l.queues[stream]
	if !running {
		q = &queue{full: make(chan struct{}, 1), wake: make(chan struct{}, 1)}
		l.queues[stream] = q
	}
	q.pending = append(q.pending, req)
	if len(q.pending) >= l.cfg.MaxBatch {
		select {
		case q.full <- struct{}{}:
		default:
		}
	}
	if !running {
		l.wg.Add(1)
		go l.write(stream, q)
	}
	l.mu.Unlock()
	wake(q)

	select {
	case r := <-req.done:
		return r.entry, r.err
	case <-ctx.Done():
		return Entry{}, fmt.Errorf("%w: %w", ErrNotDurable, ctx.Err())
	}
}

// write is a stream's writer. It takes batches off the queue and commits
// up to MaxInFlight of them at once; while every slot is busy, arriving
// events gather into the next batch. It exits when the queue is empty and
// nothing is in flight. At most one runs per stream per Log.
func (l *Log) write(stream string, q *queue) {
	defer l.wg.Done()
	for {
		l.mu.Lock()
		idle := len(q.pending) == 0 && q.inflight == 0
		if idle && q.released == 0 {
			delete(l.queues, stream)
			l.mu.Unlock()
			return
		}
		if !idle && (len(q.pending) == 0 || q.inflight >= l.cfg.MaxInFlight) {
			l.mu.Unlock()
			<-q.wake
			continue
		}
		if q.released > 0 && l.cfg.MaxDelay == 0 && len(q.pending) < l.cfg.MaxBatch {
			// Callers were just answered: give those that record again a
			// moment to join the next batch (see linger). Idle, the writer
			// also stays for them, rather than exit and leave the first to
			// return to a batch of its own.
			want := min(max(q.rejoin, len(q.pending)), l.cfg.MaxBatch)
			wait := min(max(q.took/8, l.lingerMin), l.lingerMax)
			q.released, q.rejoin = 0, 0
			l.mu.Unlock()
			l.linger(q, want, wait)
			continue
		}
		q.released, q.rejoin = 0, 0
		if len(q.pending) == 0 {
			l.mu.Unlock()
			continue
		}
		batch := l.takeLocked(q, l.cfg.MaxBatch)
		q.inflight++
		l.mu.Unlock()

		if l.cfg.MaxDelay > 0 && len(batch) < l.cfg.MaxBatch {
			t := time.NewTimer(l.cfg.MaxDelay)
			select {
			case <-t.C:
			case <-q.full:
			}
			t.Stop()
			batch = append(batch, l.takeN(q, l.cfg.MaxBatch-len(batch))...)
		}
		go func() {
			start := time.Now()
			l.commit(stream, q, batch)
			l.mu.Lock()
			q.inflight--
			q.released += len(batch)
			q.took = time.Since(start)
			l.mu.Unlock()
			wake(q)
		}()
	}
}

// linger waits, at most wait, until q holds want events. It runs when a
// batch has just answered its callers while others are queued: callers
// in a loop record again at once, and without the wait the writer would
// take the queued events a moment before they arrive, so a stream's
// callers would split into two groups committing in turn, each batch half
// the size it could be. wait is an eighth of the last commit's duration,
// so the cost is bounded by a fraction of a commit.
func (l *Log) linger(q *queue, want int, wait time.Duration) {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		l.mu.Lock()
		n := len(q.pending)
		l.mu.Unlock()
		if n >= want {
			return
		}
		select {
		case <-q.wake:
		case <-t.C:
			return
		}
	}
}

// wake tells q's writer that something changed.
func wake(q *queue) {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (l *Log) takeN(q *queue, n int) []*request {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.takeLocked(q, n)
}

func (l *Log) takeLocked(q *queue, n int) []*request {
	n = min(n, len(q.pending))
	batch := make([]*request, n)
	copy(batch, q.pending)
	rest := copy(q.pending, q.pending[n:])
	clear(q.pending[rest:])
	q.pending = q.pending[:rest]
	select {
	case <-q.full:
	default:
	}
	return batch
}

// commit writes one batch and tells its callers.
func (l *Log) commit(stream string, q *queue, batch []*request) {
	events := make([]Event, len(batch))
	for i, r := range batch {
		events[i] = r.ev
	}

	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.WriteTimeout)
	entries, err := l.cfg.Store.Append(ctx, stream, events)
	cancel()
	if err == nil && len(entries) != len(events) {
		err = fmt.Errorf("audit: store returned %d entries for %d events", len(entries), len(events))
	}

	// A due checkpoint is made before the callers hear back, so a caller
	// that saw its Record return also sees the checkpoint it triggered.
	if err == nil {
		l.maybeCheckpoint(stream, &entries[len(entries)-1])
	}
	// What the writer may expect once the callers about to be answered
	// are back: those already queued, and them. Counted before answering,
	// since the quickest of them queue again at once.
	l.mu.Lock()
	q.rejoin = max(q.rejoin, len(q.pending)+len(batch))
	l.mu.Unlock()
	for i, r := range batch {
		<-l.sem
		if err != nil {
			r.done <- result{err: fmt.Errorf("%w: %w", ErrNotDurable, err)}
			continue
		}
		r.done <- result{entry: entries[i]}
	}
}

// maybeCheckpoint signs a checkpoint at last when the stream has grown
// enough or enough time has passed since this Log's previous one.
func (l *Log) maybeCheckpoint(stream string, last *Entry) {
	if l.cfg.Signer == nil {
		return
	}
	now := l.cfg.Now()
	l.cpMu.Lock()
	st, seen := l.cps[stream]
	if !seen {
		// First write of this Log to the stream: count from here.
		l.cps[stream] = cpState{seq: last.Seq - 1, time: now}
		st = l.cps[stream]
	}
	due := last.Seq >= st.seq+uint64(l.cfg.CheckpointEvery) || now.Sub(st.time) >= l.cfg.CheckpointInterval
	if due {
		l.cps[stream] = cpState{seq: last.Seq, time: now}
	}
	l.cpMu.Unlock()
	if !due {
		return
	}

	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.WriteTimeout)
	defer cancel()
	c := Checkpoint{Stream: stream, Seq: last.Seq, Head: last.Hash, Time: now, Kind: KindHead}
	if err := l.publish(ctx, &c); err != nil && l.cfg.OnError != nil {
		l.cfg.OnError(stream, err)
	}
}

// Checkpoint signs, saves and publishes a checkpoint at the stream's
// current head, and returns it. It needs a Signer.
func (l *Log) Checkpoint(ctx context.Context, stream string) (Checkpoint, error) {
	if l.cfg.Signer == nil {
		return Checkpoint{}, fmt.Errorf("%w: Signer is nil", ErrConfig)
	}
	head, err := l.cfg.Store.Head(ctx, stream)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: read head: %w", err)
	}
	c := Checkpoint{Stream: stream, Seq: head.Seq, Head: head.Hash, Time: l.cfg.Now(), Kind: KindHead}
	if err := l.publish(ctx, &c); err != nil {
		return Checkpoint{}, err
	}
	return c, nil
}

func (l *Log) publish(ctx context.Context, c *Checkpoint) error {
	if err := SignCheckpoint(l.cfg.Signer, c); err != nil {
		return err
	}
	if err := l.cfg.Store.SaveCheckpoint(ctx, *c); err != nil {
		return fmt.Errorf("audit: save checkpoint: %w", err)
	}
	if l.cfg.Publisher != nil {
		if err := l.cfg.Publisher.Publish(ctx, *c); err != nil {
			return fmt.Errorf("audit: publish checkpoint: %w", err)
		}
	}
	return nil
}

// Close stops taking events and waits, up to ctx, for queued ones to be
// written. Record after Close returns [ErrClosed].
func (l *Log) Close(ctx context.Context) error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()

	done := make(chan struct{})
	go func() {
		l.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("audit: close: %w", ctx.Err())
	}
}
