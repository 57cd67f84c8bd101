package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/mod/sumdb/note"

	"github.com/chatsdk/compliance/audit/tlog"
)

// ErrNoTree means a store keeps no Merkle tree for the stream (or not as
// far as asked), or no signed tree head covers what was asked.
var ErrNoTree = errors.New("audit: no tree for that")

// The kinds of [Failure] a tree verification reports.
const (
	// FailTreeMismatch: a signed tree head's root is not the root of the
	// stream's entries: the tree or the entries were changed after it was
	// signed.
	FailTreeMismatch FailureKind = "tree head mismatch"
	// FailForgedTreeHead: a tree head's signature does not verify.
	FailForgedTreeHead FailureKind = "forged tree head"
)

// TreeStore is a [Store] that also keeps a Merkle tree (RFC 6962) over each
// stream's entries, leaf Seq-1 being entry Seq (see package audit/tlog for
// the leaf definition), and the stream's signed tree heads. Its Append
// writes the tree hashes of a batch in the batch's own transaction, so the
// tree always covers exactly the stream's head. The memory store and
// auditpg implement it; [Log] needs nothing else, and proofs, tree heads
// and witnesses work on any TreeStore.
type TreeStore interface {
	Store
	// ReadTreeHashes returns the stream's stored tree hashes at the given
	// storage indexes ([tlog.StoredHashIndex]), in order. An index not
	// stored is [ErrNoTree].
	ReadTreeHashes(ctx context.Context, stream string, indexes []int64) ([]tlog.Hash, error)
	// SaveTreeHead stores a signed tree head. Saving one of a size already
	// stored keeps the first and is not an error.
	SaveTreeHead(ctx context.Context, h SignedTreeHead) error
	// TreeHeads returns the stream's signed tree heads, ascending by Size.
	TreeHeads(ctx context.Context, stream string) ([]SignedTreeHead, error)
}

// SignedTreeHead is a tree head of a stream as stored and exported: the
// signed note (a C2SP checkpoint, with any witness cosignatures), and the
// stream and size it states, for lookups. The note is what counts; Stream
// and Size are checked against it whenever it is opened.
type SignedTreeHead struct {
	Stream string `json:"stream"`
	Size   uint64 `json:"size"`
	Note   string `json:"note"`
}

// Open checks the head's signature with the log's verifiers and that it
// states Stream and Size, and returns the tree head.
func (h *SignedTreeHead) Open(log []note.Verifier) (tlog.TreeHead, error) {
	th, _, err := tlog.OpenHead([]byte(h.Note), log)
	if err != nil {
		return tlog.TreeHead{}, err
	}
	if err := h.matches(th); err != nil {
		return tlog.TreeHead{}, err
	}
	return th, nil
}

func (h *SignedTreeHead) matches(th tlog.TreeHead) error {
	if stream, ok := tlog.Stream(th.Origin); !ok || stream != h.Stream || th.Size != h.Size {
		return fmt.Errorf("%w: tree head is not of stream %q size %d", tlog.ErrBadSignature, h.Stream, h.Size)
	}
	return nil
}

// TreeHashes returns the tree hashes a store writes when it appends
// entries to a stream whose tree has start leaves: the leaf hash of each
// entry (tlog.LeafHash of its Hash) and the interior hashes they complete,
// in storage order from tlog.StoredHashIndex(0, start). It reads from r
// only the hashes at tlog.FrontierIndexes(start).
func TreeHashes(start uint64, entries []Entry, r tlog.HashReader) ([]tlog.Hash, error) {
	leaves := make([]tlog.Hash, len(entries))
	for i := range entries {
		if entries[i].Seq != start+uint64(i)+1 {
			return nil, fmt.Errorf("audit: entry seq %d is not leaf %d", entries[i].Seq, start+uint64(i))
		}
		leaves[i] = tlog.LeafHash(entries[i].Hash)
	}
	return tlog.AppendLeaves(start, leaves, r)
}

// treeReader reads one stream's hashes from a TreeStore.
func treeReader(ctx context.Context, ts TreeStore, stream string) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		return ts.ReadTreeHashes(ctx, stream, idx)
	})
}

// TreeRoot returns the root of the stream's tree at size leaves, from the
// store's hashes.
func TreeRoot(ctx context.Context, ts TreeStore, stream string, size uint64) (tlog.Hash, error) {
	return tlog.TreeRoot(size, treeReader(ctx, ts, stream))
}

// SignTreeHead signs the tree head of stream at size with s and saves it.
// size must not pass the stream's head.
func SignTreeHead(ctx context.Context, ts TreeStore, s note.Signer, stream string, size uint64) (SignedTreeHead, error) {
	origin, err := tlog.Origin(stream)
	if err != nil {
		return SignedTreeHead{}, err
	}
	head, err := ts.Head(ctx, stream)
	if err != nil {
		return SignedTreeHead{}, fmt.Errorf("audit: read head: %w", err)
	}
	if size > head.Seq {
		return SignedTreeHead{}, fmt.Errorf("%w: size %d is past the head %d", ErrNoTree, size, head.Seq)
	}
	root, err := TreeRoot(ctx, ts, stream, size)
	if err != nil {
		return SignedTreeHead{}, fmt.Errorf("audit: tree root: %w", err)
	}
	signed, err := tlog.SignHead(s, tlog.TreeHead{Origin: origin, Size: size, Root: root})
	if err != nil {
		return SignedTreeHead{}, err
	}
	h := SignedTreeHead{Stream: stream, Size: size, Note: string(signed)}
	if err := ts.SaveTreeHead(ctx, h); err != nil {
		return SignedTreeHead{}, fmt.Errorf("audit: save tree head: %w", err)
	}
	return h, nil
}

// LatestTreeHead returns the stream's stored tree head of the largest
// size, or [ErrNoTree] if there is none of at least size atLeast.
func LatestTreeHead(ctx context.Context, ts TreeStore, stream string, atLeast uint64) (SignedTreeHead, error) {
	heads, err := ts.TreeHeads(ctx, stream)
	if err != nil {
		return SignedTreeHead{}, fmt.Errorf("audit: tree heads: %w", err)
	}
	if len(heads) == 0 || heads[len(heads)-1].Size < atLeast {
		return SignedTreeHead{}, fmt.Errorf("%w: no signed tree head of size %d or more", ErrNoTree, atLeast)
	}
	return heads[len(heads)-1], nil
}

// InclusionProof shows an auditor that one entry is in a stream's log as
// of a signed tree head. It holds the entry itself (so it carries the
// event's fields: hand it only to whoever may see them), the signed head
// and the audit path. [InclusionProof.Verify] checks it offline with the
// public key alone.
type InclusionProof struct {
	Entry Entry       `json:"entry"`
	Head  string      `json:"tree_head"`
	Proof []tlog.Hash `json:"proof"`
}

// ConsistencyProof shows that a stream's later signed tree head extends an
// earlier one: nothing the earlier head covered was changed or removed.
type ConsistencyProof struct {
	Old   string      `json:"old_tree_head"`
	New   string      `json:"new_tree_head"`
	Proof []tlog.Hash `json:"proof"`
}

// ProveInclusion returns the proof that entry seq of stream is in the tree
// of head, which must be one of the stream's signed heads covering seq.
func ProveInclusion(ctx context.Context, ts TreeStore, stream string, seq uint64, head SignedTreeHead) (InclusionProof, error) {
	if seq == 0 || seq > head.Size || head.Stream != stream {
		return InclusionProof{}, fmt.Errorf("%w: entry %d is not under tree head %d of %q", ErrNoTree, seq, head.Size, head.Stream)
	}
	var entry *Entry
	take := func(e *Entry) error {
		if e.Seq == seq {
			c := cloneEntry(e)
			entry = &c
		}
		return errStop
	}
	var err error
	if rs, ok := ts.(RangeScanner); ok {
		err = rs.ScanRange(ctx, stream, seq, seq, take) // one row, not the rest of the stream
	} else {
		err = ts.Scan(ctx, stream, seq, take)
	}
	if err != nil && !errors.Is(err, errStop) {
		return InclusionProof{}, fmt.Errorf("audit: read entry: %w", err)
	}
	if entry == nil {
		return InclusionProof{}, fmt.Errorf("%w: entry %d is not stored", ErrNoTree, seq)
	}
	p, err := tlog.ProveInclusion(head.Size, seq-1, treeReader(ctx, ts, stream))
	if err != nil {
		return InclusionProof{}, fmt.Errorf("audit: prove inclusion: %w", err)
	}
	return InclusionProof{Entry: *entry, Head: head.Note, Proof: p}, nil
}

// ProveConsistency returns the proof that head newer extends head older,
// two signed heads of stream.
func ProveConsistency(ctx context.Context, ts TreeStore, stream string, older, newer SignedTreeHead) (ConsistencyProof, error) {
	if older.Stream != stream || newer.Stream != stream || older.Size > newer.Size {
		return ConsistencyProof{}, fmt.Errorf("%w: no consistency proof from size %d to %d", ErrNoTree, older.Size, newer.Size)
	}
	p, err := tlog.ProveConsistency(older.Size, newer.Size, treeReader(ctx, ts, stream))
	if err != nil {
		return ConsistencyProof{}, fmt.Errorf("audit: prove consistency: %w", err)
	}
	return ConsistencyProof{Old: older.Note, New: newer.Note, Proof: p}, nil
}

// Verify checks the proof with the log's verifiers only: the head's
// signature, the entry's own hash, and the audit path from its leaf to the
// head's root. It returns the head the entry is proved under.
// [tlog.ErrBadSignature], [tlog.ErrBadProof] and [ErrTampered] report what
// failed.
func (p *InclusionProof) Verify(log []note.Verifier) (tlog.TreeHead, error) {
	head, _, err := tlog.OpenHead([]byte(p.Head), log)
	if err != nil {
		return tlog.TreeHead{}, err
	}
	return head, p.check(head)
}

// VerifyQuorum is Verify with a head that must also carry q's witness
// cosignatures.
func (p *InclusionProof) VerifyQuorum(q *tlog.Quorum) (tlog.TreeHead, error) {
	head, err := q.Verify([]byte(p.Head))
	if err != nil {
		return tlog.TreeHead{}, err
	}
	return head, p.check(head)
}

func (p *InclusionProof) check(head tlog.TreeHead) error {
	if stream, ok := tlog.Stream(head.Origin); !ok || stream != p.Entry.Stream {
		return fmt.Errorf("%w: the tree head is of another stream", tlog.ErrBadProof)
	}
	if p.Entry.Seq == 0 || !hashEqual(EntryHash(&p.Entry), p.Entry.Hash) {
		return &Failure{Stream: p.Entry.Stream, Kind: FailAltered, Seq: p.Entry.Seq, Detail: "fields do not match the entry's hash"}
	}
	return tlog.VerifyInclusion(head, p.Entry.Seq-1, tlog.LeafHash(p.Entry.Hash), p.Proof)
}

// Verify checks both heads' signatures and that the newer extends the
// older, and returns the two heads.
func (p *ConsistencyProof) Verify(log []note.Verifier) (older, newer tlog.TreeHead, err error) {
	if older, _, err = tlog.OpenHead([]byte(p.Old), log); err != nil {
		return tlog.TreeHead{}, tlog.TreeHead{}, err
	}
	if newer, _, err = tlog.OpenHead([]byte(p.New), log); err != nil {
		return tlog.TreeHead{}, tlog.TreeHead{}, err
	}
	return older, newer, tlog.VerifyConsistency(older, newer, p.Proof)
}

// TreePublisher makes a signed tree head at every head checkpoint a [Log]
// publishes, has the witnesses cosign it, saves it, and passes the
// checkpoint on to Next. Set it as Config.Publisher. A witness that
// refuses a head is an error (the Log reports it to OnError): a refusal
// means a rollback or a fork. The Log publishes before it answers the
// callers of the batch that made the checkpoint, so a slow witness delays
// them: give remote witnesses a context-honouring client with a timeout.
// It is safe for concurrent use.
type TreePublisher struct {
	// Store is the Log's store. Required.
	Store TreeStore
	// Signer signs the tree heads: a [tlog.Signer] on the checkpoint
	// keyset. Required.
	Signer note.Signer
	// Witnesses cosign each head, in order. Empty means none.
	Witnesses []tlog.Witness
	// Next, if not nil, receives each checkpoint after its tree head.
	Next Publisher

	mu   sync.Mutex
	seen map[int]map[string]uint64 // witness → stream → last size it cosigned
}

// Publish implements [Publisher].
func (p *TreePublisher) Publish(ctx context.Context, c Checkpoint) error {
	if c.Kind == KindHead && c.Seq > 0 {
		if _, err := p.SignHead(ctx, c.Stream, c.Seq); err != nil {
			return err
		}
	}
	if p.Next != nil {
		return p.Next.Publish(ctx, c)
	}
	return nil
}

// SignHead signs the tree head of stream at size, collects the
// witnesses' cosignatures, saves it and returns it.
func (p *TreePublisher) SignHead(ctx context.Context, stream string, size uint64) (SignedTreeHead, error) {
	if p.Store == nil || p.Signer == nil {
		return SignedTreeHead{}, fmt.Errorf("%w: TreePublisher needs a Store and a Signer", ErrConfig)
	}
	origin, err := tlog.Origin(stream)
	if err != nil {
		return SignedTreeHead{}, err
	}
	root, err := TreeRoot(ctx, p.Store, stream, size)
	if err != nil {
		return SignedTreeHead{}, fmt.Errorf("audit: tree root: %w", err)
	}
	signed, err := tlog.SignHead(p.Signer, tlog.TreeHead{Origin: origin, Size: size, Root: root})
	if err != nil {
		return SignedTreeHead{}, err
	}
	r := treeReader(ctx, p.Store, stream)
	for i, w := range p.Witnesses {
		last := p.lastSeen(i, stream)
		if last > size {
			last = 0 // another Log made a later head: let the witness say
		}
		cosigned, err := tlog.Cosign(ctx, w, signed, last, func(old uint64) ([]tlog.Hash, error) {
			if old > size {
				return nil, fmt.Errorf("%w: witness %d has seen size %d, past %d", tlog.ErrRollback, i, old, size)
			}
			return tlog.ProveConsistency(old, size, r)
		})
		if err != nil {
			return SignedTreeHead{}, fmt.Errorf("audit: witness %d: %w", i, err)
		}
		signed = cosigned
		p.setSeen(i, stream, size)
	}
	h := SignedTreeHead{Stream: stream, Size: size, Note: string(signed)}
	if err := p.Store.SaveTreeHead(ctx, h); err != nil {
		return SignedTreeHead{}, fmt.Errorf("audit: save tree head: %w", err)
	}
	return h, nil
}

func (p *TreePublisher) lastSeen(w int, stream string) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen[w][stream]
}

func (p *TreePublisher) setSeen(w int, stream string, size uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen == nil {
		p.seen = map[int]map[string]uint64{}
	}
	if p.seen[w] == nil {
		p.seen[w] = map[string]uint64{}
	}
	p.seen[w][stream] = max(p.seen[w][stream], size)
}
