package audit

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"golang.org/x/mod/sumdb/note"

	"github.com/chatsdk/compliance/audit/tlog"
)

// TreeHeadSource is a [Source] that also holds signed tree heads: every
// [TreeStore], and an export that carries them.
type TreeHeadSource interface {
	TreeHeads(ctx context.Context, stream string) ([]SignedTreeHead, error)
}

// TreeVerifyOptions says what [VerifyTree] checks.
type TreeVerifyOptions struct {
	// Stream is the stream. Required.
	Stream string
	// Log verifies the tree heads' signatures ([tlog.Verifiers] of the
	// checkpoint keyset). Required.
	Log []note.Verifier
	// Heads are signed heads from outside the source (a witness's or a
	// publisher's copy), checked alongside the source's own.
	Heads []SignedTreeHead
	// From is the first entry to read. Zero or 1 starts from the empty
	// tree. A later From needs the tree's frontier at From-1: Frontier, or
	// when it is nil the source's stored hashes (a [TreeStore]); a signed
	// head at size From-1 anchors it, otherwise it is taken on trust and
	// TreeReport.Anchored is false.
	From uint64
	// Frontier is the frontier of the tree of size From-1 (see
	// [tlog.FrontierIndexes]), as an export carries it.
	Frontier []tlog.Hash
}

// TreeReport is what a tree verification covered.
type TreeReport struct {
	Stream string
	// Anchored is whether the starting tree was the empty tree or matched
	// a signed head.
	Anchored bool
	// Entries is how many entries were read.
	Entries int
	// Heads is how many signed tree heads were checked against the entries.
	Heads int
	// Size is the largest signed head that matched the entries; 0 if none.
	Size uint64
}

// VerifyTree recomputes the stream's Merkle tree from the entries' hashes
// and checks every signed tree head against it: signature, and root at
// its size. It returns the first [*Failure]: a forged head, a head whose
// root is not the entries' (tree or entries changed after signing, or two
// histories), a gap in the entries, or entries ending before a head.
// It trusts each entry's Hash; [Verify] checks those, so run both.
func VerifyTree(ctx context.Context, src Source, opts TreeVerifyOptions) (TreeReport, error) {
	rep := TreeReport{Stream: opts.Stream}
	if opts.Stream == "" || len(opts.Log) == 0 {
		return rep, fmt.Errorf("%w: TreeVerifyOptions needs a Stream and Log verifiers", ErrConfig)
	}
	fail := func(kind FailureKind, seq uint64, detail string) (TreeReport, error) {
		return rep, &Failure{Stream: opts.Stream, Kind: kind, Seq: seq, Detail: detail}
	}

	heads := append([]SignedTreeHead(nil), opts.Heads...)
	if hs, ok := src.(TreeHeadSource); ok {
		stored, err := hs.TreeHeads(ctx, opts.Stream)
		if err != nil {
			return rep, fmt.Errorf("audit: read tree heads: %w", err)
		}
		heads = append(heads, stored...)
	}
	roots := map[uint64]tlog.Hash{}
	for i := range heads {
		if heads[i].Stream != opts.Stream {
			continue
		}
		th, err := heads[i].Open(opts.Log)
		if err != nil {
			return fail(FailForgedTreeHead, heads[i].Size, "signature does not verify")
		}
		if old, ok := roots[th.Size]; ok && old != th.Root {
			return fail(FailTreeMismatch, th.Size, "two signed tree heads of one size disagree: a forked history")
		}
		roots[th.Size] = th.Root
	}
	sizes := make([]uint64, 0, len(roots))
	for s := range roots {
		sizes = append(sizes, s)
	}
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })

	// The starting tree.
	front := &tlog.Frontier{}
	rep.Anchored = true
	if opts.From > 1 {
		start := opts.From - 1
		hashes := opts.Frontier
		if hashes == nil {
			ts, ok := src.(TreeStore)
			if !ok {
				return rep, fmt.Errorf("%w: From %d needs a Frontier or a TreeStore", ErrConfig, opts.From)
			}
			var err error
			if hashes, err = ts.ReadTreeHashes(ctx, opts.Stream, tlog.FrontierIndexes(start)); err != nil {
				return rep, fmt.Errorf("audit: read tree frontier: %w", err)
			}
		}
		f, err := tlog.NewFrontier(start, hashes)
		if err != nil {
			return rep, err
		}
		front = f
		if root, ok := roots[start]; ok {
			if root != front.Root() {
				return fail(FailTreeMismatch, start, "the starting frontier does not match the signed head")
			}
			rep.Heads++
			rep.Size = start
		} else {
			rep.Anchored = false
		}
	}
	next := sort.Search(len(sizes), func(i int) bool { return sizes[i] > front.Size() })

	err := src.Scan(ctx, opts.Stream, front.Size()+1, func(e *Entry) error {
		if e.Seq != front.Size()+1 {
			return &Failure{Stream: opts.Stream, Kind: FailMissing, Seq: front.Size() + 1, Detail: "the tree cannot be computed across a gap"}
		}
		front.Append(tlog.LeafHash(e.Hash))
		rep.Entries++
		if next < len(sizes) && sizes[next] == e.Seq {
			if roots[e.Seq] != front.Root() {
				return &Failure{Stream: opts.Stream, Kind: FailTreeMismatch, Seq: e.Seq, Detail: "the signed root is not the root of the entries"}
			}
			rep.Heads++
			rep.Size = e.Seq
			next++
		}
		return nil
	})
	var f *Failure
	if errors.As(err, &f) {
		return rep, f
	}
	if err != nil {
		return rep, fmt.Errorf("audit: read entries: %w", err)
	}
	if next < len(sizes) {
		return fail(FailTruncated, front.Size()+1, fmt.Sprintf("entries end at seq %d but a signed tree head has size %d", front.Size(), sizes[len(sizes)-1]))
	}
	return rep, nil
}
