package tlog_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"

	"github.com/chatsdk/compliance/audit/tlog"
)

// The reference below follows RFC 6962 section 2.1 word for word, on leaf
// data, with no code shared with the package: MTH, PATH and PROOF.

func refLeaf(d []byte) [32]byte { return sha256.Sum256(append([]byte{0x00}, d...)) }

func refNode(l, r [32]byte) [32]byte {
	return sha256.Sum256(append(append([]byte{0x01}, l[:]...), r[:]...))
}

// refSplit is the largest power of two smaller than n.
func refSplit(n int) int {
	k := 1
	for k<<1 < n {
		k <<= 1
	}
	return k
}

func refMTH(d [][]byte) [32]byte {
	switch n := len(d); n {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return refLeaf(d[0])
	default:
		k := refSplit(n)
		return refNode(refMTH(d[:k]), refMTH(d[k:]))
	}
}

func refPath(m int, d [][]byte) [][32]byte {
	n := len(d)
	if n <= 1 {
		return nil
	}
	k := refSplit(n)
	if m < k {
		return append(refPath(m, d[:k]), refMTH(d[k:]))
	}
	return append(refPath(m-k, d[k:]), refMTH(d[:k]))
}

func refProof(m int, d [][]byte) [][32]byte { return refSubproof(m, d, true) }

func refSubproof(m int, d [][]byte, b bool) [][32]byte {
	n := len(d)
	if m == n {
		if b {
			return nil
		}
		return [][32]byte{refMTH(d)}
	}
	k := refSplit(n)
	if m <= k {
		return append(refSubproof(m, d[:k], b), refMTH(d[k:]))
	}
	return append(refSubproof(m-k, d[k:], false), refMTH(d[:k]))
}

// memTree is a stored-hash slice with a HashReader, as a store keeps it.
type memTree struct{ hashes []tlog.Hash }

func (m *memTree) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(m.hashes)) {
			return nil, fmt.Errorf("no hash %d", x)
		}
		out[i] = m.hashes[x]
	}
	return out, nil
}

func (m *memTree) append(t testing.TB, size uint64, leaves []tlog.Hash) {
	t.Helper()
	hs, err := tlog.AppendLeaves(size, leaves, m)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(m.hashes)) != tlog.StoredHashIndex(0, size) {
		t.Fatalf("store holds %d hashes before leaf %d, want %d", len(m.hashes), size, tlog.StoredHashIndex(0, size))
	}
	m.hashes = append(m.hashes, hs...)
}

func leafData(i int) []byte {
	s := sha256.Sum256(fmt.Appendf(nil, "entry %d", i))
	return s[:]
}

func toHashes(in [][32]byte) []tlog.Hash {
	out := make([]tlog.Hash, len(in))
	for i := range in {
		out[i] = in[i]
	}
	return out
}

// TestRFC6962EverySize checks roots, every inclusion path and every
// consistency proof for trees of 1 to 64 leaves against the reference,
// and that each proof verifies. Leaves are appended in uneven batches, as
// group commit writes them.
func TestRFC6962EverySize(t *testing.T) {
	const max = 64
	data := make([][]byte, max)
	leaves := make([]tlog.Hash, max)
	for i := range data {
		data[i] = leafData(i)
		leaves[i] = tlog.LeafHash(data[i])
	}
	var tree memTree
	var front tlog.Frontier
	for size := 0; size < max; {
		step := min(1+size%5, max-size)
		tree.append(t, uint64(size), leaves[size:size+step])
		for _, l := range leaves[size : size+step] {
			front.Append(l)
		}
		size += step
	}
	if int64(len(tree.hashes)) != tlog.StoredHashCount(max) {
		t.Fatalf("stored %d hashes for %d leaves, want %d", len(tree.hashes), max, tlog.StoredHashCount(max))
	}

	for n := 1; n <= max; n++ {
		want := tlog.Hash(refMTH(data[:n]))
		root, err := tlog.TreeRoot(uint64(n), &tree)
		if err != nil {
			t.Fatal(err)
		}
		if root != want {
			t.Fatalf("size %d: root %x, RFC 6962 MTH %x", n, root, want)
		}
		f, err := tlog.NewFrontier(uint64(n), mustRead(t, &tree, tlog.FrontierIndexes(uint64(n))))
		if err != nil {
			t.Fatal(err)
		}
		if f.Root() != want {
			t.Fatalf("size %d: frontier root differs from MTH", n)
		}
		head := tlog.TreeHead{Origin: "o", Size: uint64(n), Root: root}

		for m := 0; m < n; m++ {
			p, err := tlog.ProveInclusion(uint64(n), uint64(m), &tree)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p, toHashes(refPath(m, data[:n]))) {
				t.Fatalf("size %d leaf %d: path differs from RFC 6962 PATH", n, m)
			}
			if err := tlog.VerifyInclusion(head, uint64(m), leaves[m], p); err != nil {
				t.Fatalf("size %d leaf %d: %v", n, m, err)
			}
			if m+1 < n {
				if err := tlog.VerifyInclusion(head, uint64(m), leaves[m+1], p); err == nil {
					t.Fatalf("size %d leaf %d: another leaf's hash verified", n, m)
				}
			}
		}
		for m := 1; m <= n; m++ {
			p, err := tlog.ProveConsistency(uint64(m), uint64(n), &tree)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p, toHashes(refProof(m, data[:n]))) {
				t.Fatalf("sizes %d→%d: proof differs from RFC 6962 PROOF", m, n)
			}
			old := tlog.TreeHead{Origin: "o", Size: uint64(m), Root: refMTH(data[:m])}
			if err := tlog.VerifyConsistency(old, head, p); err != nil {
				t.Fatalf("sizes %d→%d: %v", m, n, err)
			}
		}
	}
	if front.Root() != tlog.Hash(refMTH(data)) {
		t.Fatal("streamed frontier root differs from MTH")
	}
}

func mustRead(t testing.TB, r tlog.HashReader, idx []int64) []tlog.Hash {
	t.Helper()
	hs, err := r.ReadHashes(idx)
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

// TestCertificateTransparencyVectors pins the roots of the leaf data the
// Certificate Transparency reference tests use, so that a change of
// prefix or order breaks a known answer and not only a comparison.
func TestCertificateTransparencyVectors(t *testing.T) {
	inputs := []string{"", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"}
	want := map[int]string{
		1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
		8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
	}
	var tree memTree
	for i, in := range inputs {
		d, _ := hex.DecodeString(in)
		tree.append(t, uint64(i), []tlog.Hash{tlog.LeafHash(d)})
	}
	for n, w := range want {
		root, err := tlog.TreeRoot(uint64(n), &tree)
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(root[:]); got != w {
			t.Errorf("size %d: root %s, want %s", n, got, w)
		}
	}
}

// TestEmptyTree checks the root of no leaves and that it is consistent
// with every later head.
func TestEmptyTree(t *testing.T) {
	if tlog.EmptyRoot() != tlog.Hash(sha256.Sum256(nil)) {
		t.Fatal("empty root is not SHA-256 of nothing")
	}
	empty := tlog.TreeHead{Origin: "o", Root: tlog.EmptyRoot()}
	one := tlog.TreeHead{Origin: "o", Size: 1, Root: refLeaf([]byte("x"))}
	if err := tlog.VerifyConsistency(empty, one, nil); err != nil {
		t.Fatal(err)
	}
	bad := empty
	bad.Root[0] ^= 1
	if err := tlog.VerifyConsistency(bad, one, nil); err == nil {
		t.Fatal("an empty head with a wrong root was accepted")
	}
}
