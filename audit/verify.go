package audit

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	"github.com/chatsdk/compliance/internal/canon"
)

// Source is what verification reads: a stream's stored entries and
// checkpoints. Every [Store] is a Source; so is an export being verified
// offline.
type Source interface {
	Scan(ctx context.Context, stream string, from uint64, fn func(*Entry) error) error
	Checkpoints(ctx context.Context, stream string) ([]Checkpoint, error)
}

// RangeScanner is a [Source] that can also scan a closed range of sequence
// numbers and report a stream's last one, which [Verify] uses to read
// ranges in parallel (VerifyOptions.Parallel). auditpg's Store is one.
type RangeScanner interface {
	Source
	// ScanRange is Scan limited to from <= Seq <= to.
	ScanRange(ctx context.Context, stream string, from, to uint64, fn func(*Entry) error) error
	// LastSeq returns the largest stored Seq of the stream, 0 if none.
	LastSeq(ctx context.Context, stream string) (uint64, error)
}

// FailureKind names what a verification found wrong.
type FailureKind string

// The kinds of [Failure].
const (
	// FailAltered: an entry's fields no longer match its hash, or an entry
	// was replaced by one that does not link to its successor.
	FailAltered FailureKind = "altered entry"
	// FailMissing: an entry was removed from the middle of the chain.
	FailMissing FailureKind = "missing entry"
	// FailInserted: an entry that was never appended sits in the chain.
	FailInserted FailureKind = "inserted entry"
	// FailReordered: two entries exchanged places.
	FailReordered FailureKind = "reordered entries"
	// FailTruncated: the chain ends before a signed checkpoint, or before
	// the checkpoint the verifier trusted: entries were cut off the tail
	// or the database was rolled back.
	FailTruncated FailureKind = "tail truncated"
	// FailRewritten: the chain is internally consistent but differs from a
	// signed checkpoint, so it was recomputed after the checkpoint.
	FailRewritten FailureKind = "chain rewritten"
	// FailForgedCheckpoint: a checkpoint's signature does not verify.
	FailForgedCheckpoint FailureKind = "forged checkpoint"
)

// Failure is the first problem a verification found. It matches
// [ErrTampered] with errors.Is. Detail names positions, never contents.
type Failure struct {
	Stream string
	Kind   FailureKind
	// Seq is the sequence number where the problem starts.
	Seq    uint64
	Detail string
}

// Error describes the failure by stream, kind and position.
func (f *Failure) Error() string {
	msg := fmt.Sprintf("audit: stream %q: %s at seq %d", f.Stream, f.Kind, f.Seq)
	if f.Detail != "" {
		msg += ": " + f.Detail
	}
	return msg
}

// Is makes a Failure match [ErrTampered].
func (f *Failure) Is(target error) bool { return target == ErrTampered }

// VerifyOptions says what to verify and what to trust.
type VerifyOptions struct {
	// Stream is the chain to verify. Required.
	Stream string
	// Verifier checks checkpoint signatures with the public key. Required.
	Verifier SignatureVerifier
	// From is the first sequence number to check. Zero or 1 means from the
	// start, or from the latest horizon checkpoint if entries were pruned.
	// A later From is anchored by a checkpoint at From-1 when there is one;
	// otherwise the first entry's PrevHash is taken on trust, and
	// Report.Anchored is false.
	From uint64
	// Checkpoints are checkpoints from outside the source (a publisher's
	// copy), checked alongside the source's own.
	Checkpoints []Checkpoint
	// Trusted is the latest checkpoint the verifier already trusted; a
	// chain that ends before it, or disagrees with it, fails. It must be
	// of Stream ([ErrConfig] otherwise).
	Trusted *Checkpoint
	// Parallel, when above 1 and the source is a [RangeScanner], reads that
	// many ranges of the chain at once and stitches them together. Any
	// problem makes Verify start over sequentially, so the failure it
	// reports is the same. Entries appended after the scan began are not
	// covered. Zero or 1 reads sequentially.
	Parallel int
}

// Report is what a verification covered.
type Report struct {
	Stream string
	// From is the first sequence number checked.
	From uint64
	// Anchored is whether From's previous hash came from the genesis or a
	// signed checkpoint rather than from the first entry itself.
	Anchored bool
	// Head is the last entry verified.
	Head Head
	// Entries is how many entries were checked.
	Entries int
	// Checkpoints is how many signed checkpoints were checked.
	Checkpoints int
	// Vouched is the highest sequence number checked that a signed
	// checkpoint vouches for; 0 if none. Entries after it link to the
	// chain but no signature covers them yet: whoever can write the
	// source could have cut or rewritten them (an export stripped of its
	// checkpoint lines verifies with Vouched 0). A verifier that must
	// rule that out requires Vouched to reach the entries it cares about,
	// or passes published checkpoints.
	Vouched uint64
}

// errStop ends a scan once a failure is known.
var errStop = errors.New("audit: stop scan")

// Verify streams the stream's entries from src, recomputes the chain, checks
// every checkpoint's signature and that the chain passes through each, and
// returns the first [*Failure], or another error when src cannot be read.
// When src also has a Head method (every [Store] does), a chain that ends
// before the stored head fails as truncated too.
func Verify(ctx context.Context, src Source, opts VerifyOptions) (Report, error) {
	if opts.Stream == "" {
		return Report{}, fmt.Errorf("%w: VerifyOptions.Stream is empty", ErrConfig)
	}
	if opts.Verifier == nil {
		return Report{}, fmt.Errorf("%w: VerifyOptions.Verifier is nil", ErrConfig)
	}
	if opts.Trusted != nil && opts.Trusted.Stream != opts.Stream {
		return Report{}, fmt.Errorf("%w: VerifyOptions.Trusted is a checkpoint of another stream", ErrConfig)
	}
	stored, err := src.Checkpoints(ctx, opts.Stream)
	if err != nil {
		return Report{}, fmt.Errorf("audit: read checkpoints: %w", err)
	}
	all := append(stored, opts.Checkpoints...)
	if opts.Trusted != nil {
		all = append(all, *opts.Trusted)
	}

	v := &verifier{stream: opts.Stream, heads: map[uint64][]byte{}}
	var horizon *Checkpoint
	for i := range all {
		c := &all[i]
		if c.Stream != opts.Stream {
			continue
		}
		if err := VerifyCheckpoint(opts.Verifier, c); err != nil {
			return Report{Stream: opts.Stream}, &Failure{Stream: opts.Stream, Kind: FailForgedCheckpoint, Seq: c.Seq, Detail: "signature does not verify"}
		}
		v.checked++
		if c.Kind == KindHorizon {
			if horizon == nil || c.Seq > horizon.Seq {
				horizon = c
			}
		}
		if old, ok := v.heads[c.Seq]; ok && !hashEqual(old, c.Head) {
			return Report{Stream: opts.Stream}, &Failure{Stream: opts.Stream, Kind: FailForgedCheckpoint, Seq: c.Seq, Detail: "two signed checkpoints disagree"}
		}
		v.heads[c.Seq] = c.Head
		v.maxCP = max(v.maxCP, c.Seq)
	}

	// Choose the starting point and its previous hash.
	v.n, v.anchored = 1, true
	copy(v.prev[:], GenesisHash())
	if horizon != nil && opts.From <= horizon.Seq+1 {
		v.n = horizon.Seq + 1
		copy(v.prev[:], horizon.Head)
	}
	if opts.From > v.n {
		v.n = opts.From
		if h, ok := v.heads[opts.From-1]; ok {
			copy(v.prev[:], h)
		} else {
			v.anchored = false
		}
	}
	from := v.n

	// A source that keeps its own head (every Store) must hold at least
	// the entries up to it; it is read first, so later appends are fine.
	if hr, ok := src.(interface {
		Head(ctx context.Context, stream string) (Head, error)
	}); ok {
		h, err := hr.Head(ctx, opts.Stream)
		if err != nil {
			return Report{Stream: opts.Stream}, fmt.Errorf("audit: read head: %w", err)
		}
		v.storedHead = h.Seq
	}

	if rs, ok := src.(RangeScanner); ok && opts.Parallel > 1 {
		if rep, done, err := verifyParallel(ctx, rs, opts, v); done {
			return rep, err
		}
		// Something did not verify, or did not stitch: redo it in order
		// so the first failure is reported exactly.
	}

	err = src.Scan(ctx, opts.Stream, from, v.step)
	if err != nil && !errors.Is(err, errStop) {
		return v.report(from), fmt.Errorf("audit: read entries: %w", err)
	}
	if v.fail == nil {
		v.finish()
	}
	if v.fail != nil {
		return v.report(from), v.fail
	}
	return v.report(from), nil
}

type verifier struct {
	stream   string
	heads    map[uint64][]byte // signed head hash by seq
	maxCP    uint64
	checked  int
	anchored bool

	n        uint64 // next expected seq
	prev     [HashSize]byte
	lastPrev [HashSize]byte
	count    int
	enc      canon.Encoder

	suspect    *suspect
	rewritten  uint64 // seq whose hash disagrees with a checkpoint, 0 if none
	storedHead uint64 // the source's own head seq, read before the scan
	vouched    uint64 // highest seq that matched a signed checkpoint
	fail       *Failure
}

// suspect is an entry whose hash failed in a way its successor explains.
type suspect struct {
	seq        uint64
	prev, hash []byte
	kind       FailureKind
}

func (v *verifier) failAt(kind FailureKind, seq uint64, detail string) error {
	v.fail = &Failure{Stream: v.stream, Kind: kind, Seq: seq, Detail: detail}
	return errStop
}

func (v *verifier) step(e *Entry) error {
	if s := v.suspect; s != nil {
		// The entry before failed its hash; it and this one exchanged
		// places if this one links to the expected predecessor and the
		// suspect links to this one.
		if hashEqual(e.PrevHash, v.prev[:]) && hashEqual(s.prev, e.Hash) {
			return v.failAt(FailReordered, s.seq, fmt.Sprintf("entries %d and %d exchanged", s.seq, s.seq+1))
		}
		return v.failAt(s.kind, s.seq, "")
	}
	if e.Seq < v.n {
		return v.failAt(FailInserted, e.Seq, "sequence number repeats or goes back")
	}

	v.enc.Reset(entryDomain)
	sum := sha256.Sum256(appendEntry(&v.enc, e))
	if !hashEqual(sum[:], e.Hash) {
		switch {
		case e.Seq == v.n && hashEqual(e.PrevHash, v.prev[:]):
			return v.failAt(FailAltered, v.n, "fields do not match the entry's hash")
		case v.count > 0 && hashEqual(e.PrevHash, v.lastPrev[:]):
			return v.failAt(FailInserted, v.n-1, "the entry before links to this entry's predecessor")
		}
		// Neither its fields nor its link match: unless its successor shows
		// the two exchanged places, the entry was renumbered to close the
		// gap left by removed ones.
		v.suspect = &suspect{seq: v.n, prev: append([]byte(nil), e.PrevHash...), hash: append([]byte(nil), e.Hash...), kind: FailMissing}
		return nil
	}

	if e.Seq > v.n {
		return v.failAt(FailMissing, v.n, fmt.Sprintf("%d entries absent before seq %d", e.Seq-v.n, e.Seq))
	}
	if !hashEqual(e.PrevHash, v.prev[:]) {
		if v.count == 0 && !v.anchored {
			copy(v.prev[:], e.PrevHash) // unanchored start: take the link on trust
		} else if v.count == 0 {
			return v.failAt(FailAltered, e.Seq, "first entry does not link to its anchor")
		} else {
			return v.failAt(FailAltered, v.n-1, "entry's hash does not match its successor's link")
		}
	}
	if v.rewritten != 0 {
		return v.failAt(FailRewritten, v.rewritten, "hash differs from a signed checkpoint")
	}
	if h, ok := v.heads[e.Seq]; ok {
		if hashEqual(h, e.Hash) {
			v.vouched = e.Seq
		} else {
			v.rewritten = e.Seq // reported at the next step, unless that finds worse
		}
	}

	v.lastPrev = v.prev
	copy(v.prev[:], e.Hash)
	v.n++
	v.count++
	return nil
}

// finish decides what is pending once the entries end.
func (v *verifier) finish() {
	switch {
	case v.suspect != nil:
		v.fail = &Failure{Stream: v.stream, Kind: v.suspect.kind, Seq: v.suspect.seq}
	case v.rewritten != 0:
		v.fail = &Failure{Stream: v.stream, Kind: FailRewritten, Seq: v.rewritten, Detail: "hash differs from a signed checkpoint"}
	case v.maxCP > v.n-1:
		v.fail = &Failure{Stream: v.stream, Kind: FailTruncated, Seq: v.n,
			Detail: fmt.Sprintf("chain ends at seq %d but a signed checkpoint covers seq %d", v.n-1, v.maxCP)}
	case v.storedHead > v.n-1:
		// Weaker evidence than a checkpoint, since whoever cut the tail
		// could have moved the head too, but evidence all the same.
		v.fail = &Failure{Stream: v.stream, Kind: FailTruncated, Seq: v.n,
			Detail: fmt.Sprintf("chain ends at seq %d but the store's head is at seq %d", v.n-1, v.storedHead)}
	}
}

func (v *verifier) report(from uint64) Report {
	r := Report{Stream: v.stream, From: from, Anchored: v.anchored, Entries: v.count, Checkpoints: v.checked, Vouched: v.vouched}
	if v.count > 0 {
		r.Head = Head{Stream: v.stream, Seq: v.n - 1, Hash: append([]byte(nil), v.prev[:]...)}
	}
	return r
}

// minParallelRange is the smallest range worth a scan of its own.
var minParallelRange uint64 = 20000

// verifyParallel checks the chain from base's start to the stream's last
// entry in opts.Parallel ranges at once. done is false when the caller must
// verify sequentially instead: a range failed, or the ranges do not join.
func verifyParallel(ctx context.Context, rs RangeScanner, opts VerifyOptions, base *verifier) (Report, bool, error) {
	from := base.n
	last, err := rs.LastSeq(ctx, opts.Stream)
	if err != nil {
		return Report{}, true, fmt.Errorf("audit: read last seq: %w", err)
	}
	if last < from || last-from+1 < 2*minParallelRange {
		return Report{}, false, nil
	}
	parts := min(uint64(opts.Parallel), (last-from+1)/minParallelRange)
	size := (last - from + 1 + parts - 1) / parts

	type part struct {
		v         *verifier
		lo, hi    uint64
		firstSeq  uint64
		firstPrev []byte
		err       error
	}
	ps := make([]*part, parts)
	var wg sync.WaitGroup
	for i := range ps {
		lo := from + uint64(i)*size
		hi := min(lo+size-1, last)
		v := &verifier{stream: base.stream, heads: base.heads, n: lo, anchored: i == 0}
		if i == 0 {
			v.prev = base.prev
			v.anchored = base.anchored
		}
		p := &part{v: v, lo: lo, hi: hi}
		ps[i] = p
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.err = rs.ScanRange(ctx, opts.Stream, lo, hi, func(e *Entry) error {
				if p.v.count == 0 {
					p.firstSeq, p.firstPrev = e.Seq, append([]byte(nil), e.PrevHash...)
				}
				return p.v.step(e)
			})
		}()
	}
	wg.Wait()

	for i, p := range ps {
		switch {
		case p.err != nil && !errors.Is(p.err, errStop):
			return Report{}, true, fmt.Errorf("audit: read entries: %w", p.err)
		case p.v.fail != nil || p.v.suspect != nil || p.v.rewritten != 0:
			return Report{}, false, nil
		case p.v.n != p.hi+1 || p.firstSeq != p.lo:
			return Report{}, false, nil // a gap at an edge
		case i > 0 && !hashEqual(p.firstPrev, ps[i-1].v.prev[:]):
			return Report{}, false, nil
		}
	}

	v := ps[len(ps)-1].v
	v.checked = base.checked
	v.maxCP = base.maxCP
	v.storedHead = base.storedHead
	v.anchored = base.anchored
	for _, p := range ps[:len(ps)-1] {
		v.count += p.v.count
		v.vouched = max(v.vouched, p.v.vouched)
	}
	v.finish()
	if v.fail != nil {
		return v.report(from), true, v.fail
	}
	return v.report(from), true, nil
}
