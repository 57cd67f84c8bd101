package tlog

import (
	"fmt"
	"math"
	"math/bits"

	xtlog "golang.org/x/mod/sumdb/tlog"
)

// HashReader reads stored hashes by storage index (see [StoredHashIndex]).
type HashReader = xtlog.HashReader

// HashReaderFunc is a function that is a [HashReader].
type HashReaderFunc = xtlog.HashReaderFunc

// LeafHash returns the leaf hash of an entry whose chain hash is
// entryHash: SHA-256(0x00 || entryHash), RFC 6962's leaf hash of the
// 32-byte leaf data entryHash.
func LeafHash(entryHash []byte) Hash { return xtlog.RecordHash(entryHash) }

// NodeHash returns SHA-256(0x01 || left || right), RFC 6962's interior
// node hash.
func NodeHash(left, right Hash) Hash { return xtlog.NodeHash(left, right) }

// StoredHashIndex returns the storage index of the hash of the complete
// subtree at level (0 for leaves) whose leaves are n<<level through
// (n+1)<<level - 1. A store keeps hashes in this order, which is the
// order they are made in: the hashes written for leaves a..b-1 occupy
// indexes StoredHashIndex(0, a) up to StoredHashIndex(0, b).
func StoredHashIndex(level int, n uint64) int64 { return xtlog.StoredHashIndex(level, int64(n)) }

// StoredHashCount returns how many hashes a tree of size leaves stores.
func StoredHashCount(size uint64) int64 { return xtlog.StoredHashCount(int64(size)) }

// FrontierIndexes returns the storage indexes of the complete subtrees a
// tree of size leaves ends with, largest first: what appending leaf size
// and after it reads of hashes stored before. A store reads these once
// per batch.
func FrontierIndexes(size uint64) []int64 {
	var idx []int64
	for l := 63; l >= 0; l-- {
		if size>>uint(l)&1 == 1 {
			idx = append(idx, xtlog.StoredHashIndex(l, int64(size>>uint(l))-1))
		}
	}
	return idx
}

// AppendLeaves returns the hashes to store when leaves are appended to a
// tree of size start: leaf and interior hashes, in storage order from
// StoredHashIndex(0, start). It reads from r only hashes stored before
// start, and only those FrontierIndexes(start) names.
func AppendLeaves(start uint64, leaves []Hash, r HashReader) ([]Hash, error) {
	if start+uint64(len(leaves)) > math.MaxInt64/2 {
		return nil, fmt.Errorf("%w: tree too large", ErrMalformed)
	}
	base := xtlog.StoredHashIndex(0, int64(start))
	out := make([]Hash, 0, 2*len(leaves)+bits.Len64(start))
	overlay := HashReaderFunc(func(indexes []int64) ([]Hash, error) {
		res := make([]Hash, len(indexes))
		var old []int64
		for _, x := range indexes {
			if x < base {
				old = append(old, x)
			}
		}
		var got []Hash
		if len(old) > 0 {
			var err error
			if got, err = r.ReadHashes(old); err != nil {
				return nil, err
			}
			if len(got) != len(old) {
				return nil, fmt.Errorf("tlog: read %d hashes, want %d", len(got), len(old))
			}
		}
		for i, x := range indexes {
			if x < base {
				res[i], got = got[0], got[1:]
				continue
			}
			if x-base >= int64(len(out)) {
				return nil, fmt.Errorf("tlog: hash %d read before it was made", x)
			}
			res[i] = out[x-base]
		}
		return res, nil
	})
	for i, leaf := range leaves {
		hs, err := xtlog.StoredHashesForRecordHash(int64(start)+int64(i), leaf, overlay)
		if err != nil {
			return nil, err
		}
		out = append(out, hs...)
	}
	return out, nil
}

// TreeRoot returns the root of the tree of size leaves from its stored
// hashes.
func TreeRoot(size uint64, r HashReader) (Hash, error) {
	if size > math.MaxInt64/2 {
		return Hash{}, fmt.Errorf("%w: tree too large", ErrMalformed)
	}
	return xtlog.TreeHash(int64(size), r)
}

// ProveInclusion returns the RFC 6962 audit path of leaf index in the tree
// of size leaves: the sibling hashes from the leaf up.
func ProveInclusion(size, index uint64, r HashReader) ([]Hash, error) {
	if index >= size || size > math.MaxInt64/2 {
		return nil, fmt.Errorf("%w: leaf %d is not in a tree of size %d", ErrMalformed, index, size)
	}
	return xtlog.ProveRecord(int64(size), int64(index), r)
}

// ProveConsistency returns the RFC 6962 consistency proof that the tree of
// size newSize extends the tree of size oldSize. It is empty when the
// sizes are equal or oldSize is 0.
func ProveConsistency(oldSize, newSize uint64, r HashReader) ([]Hash, error) {
	if oldSize > newSize || newSize > math.MaxInt64/2 {
		return nil, fmt.Errorf("%w: no consistency proof from size %d to %d", ErrMalformed, oldSize, newSize)
	}
	if oldSize == 0 || oldSize == newSize {
		return nil, nil
	}
	return xtlog.ProveTree(int64(newSize), int64(oldSize), r)
}

// VerifyInclusion checks that leaf is leaf index of the tree head with
// the audit path proof. It needs nothing but the head, which the caller
// has checked the signature of ([OpenHead]).
func VerifyInclusion(head TreeHead, index uint64, leaf Hash, proof []Hash) error {
	if index >= head.Size || head.Size > math.MaxInt64 {
		return fmt.Errorf("%w: leaf %d is outside a tree of size %d", ErrBadProof, index, head.Size)
	}
	if err := xtlog.CheckRecord(proof, int64(head.Size), head.Root, int64(index), leaf); err != nil {
		return ErrBadProof
	}
	return nil
}

// VerifyConsistency checks that newer extends older with proof. It
// returns [ErrRollback] when newer is smaller, [ErrFork] for equal sizes
// with different roots, and [ErrBadProof] for a proof that does not
// connect the two (a fork, or a damaged proof).
func VerifyConsistency(older, newer TreeHead, proof []Hash) error {
	switch {
	case older.Origin != newer.Origin:
		return fmt.Errorf("%w: heads of different logs", ErrBadProof)
	case older.Size > newer.Size:
		return fmt.Errorf("%w: size %d after size %d", ErrRollback, newer.Size, older.Size)
	case newer.Size > math.MaxInt64:
		return fmt.Errorf("%w: size", ErrBadProof)
	case older.Size == newer.Size:
		if older.Root != newer.Root {
			return fmt.Errorf("%w: two roots for size %d", ErrFork, older.Size)
		}
		if len(proof) != 0 {
			return ErrBadProof
		}
		return nil
	case older.Size == 0:
		if older.Root != EmptyRoot() || len(proof) != 0 {
			return ErrBadProof
		}
		return nil
	}
	if err := xtlog.CheckTree(proof, int64(newer.Size), newer.Root, int64(older.Size), older.Root); err != nil {
		return ErrBadProof
	}
	return nil
}

// Frontier is the right edge of a tree: the roots of its complete
// subtrees, largest first, enough to append leaves and compute the root
// without the rest. A verifier streaming a stream's entries uses one. The
// zero Frontier is the empty tree. It is not safe for concurrent use.
type Frontier struct {
	size   uint64
	hashes []Hash
}

// NewFrontier returns the frontier of a tree of size leaves whose complete
// subtree roots, largest first, are hashes (as read at
// FrontierIndexes(size)).
func NewFrontier(size uint64, hashes []Hash) (*Frontier, error) {
	if len(hashes) != bits.OnesCount64(size) {
		return nil, fmt.Errorf("%w: a tree of size %d has %d frontier hashes, not %d", ErrMalformed, size, bits.OnesCount64(size), len(hashes))
	}
	return &Frontier{size: size, hashes: append([]Hash(nil), hashes...)}, nil
}

// Size returns the number of leaves.
func (f *Frontier) Size() uint64 { return f.size }

// Hashes returns the complete subtree roots, largest first.
func (f *Frontier) Hashes() []Hash { return append([]Hash(nil), f.hashes...) }

// Append adds a leaf hash.
func (f *Frontier) Append(leaf Hash) {
	f.hashes = append(f.hashes, leaf)
	for s := f.size; s&1 == 1; s >>= 1 {
		n := len(f.hashes)
		f.hashes[n-2] = xtlog.NodeHash(f.hashes[n-2], f.hashes[n-1])
		f.hashes = f.hashes[:n-1]
	}
	f.size++
}

// Root returns the tree's root.
func (f *Frontier) Root() Hash {
	if f.size == 0 {
		return EmptyRoot()
	}
	h := f.hashes[len(f.hashes)-1]
	for i := len(f.hashes) - 2; i >= 0; i-- {
		h = xtlog.NodeHash(f.hashes[i], h)
	}
	return h
}
