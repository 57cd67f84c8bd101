package tlog_test

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"testing"

	"github.com/chatsdk/compliance/audit/tlog"
)

const benchSize = 1 << 20

var (
	benchOnce sync.Once
	benchTree memTree
	benchHead tlog.TreeHead
)

// benchTreeOf builds, once, a tree of about a million leaves.
func benchTreeOf(b *testing.B) (*memTree, tlog.TreeHead) {
	benchOnce.Do(func() {
		leaves := make([]tlog.Hash, 0, 4096)
		for done := uint64(0); done < benchSize; done += uint64(len(leaves)) {
			leaves = leaves[:0]
			for i := range 4096 {
				var d [8]byte
				binary.BigEndian.PutUint64(d[:], done+uint64(i))
				s := sha256.Sum256(d[:])
				leaves = append(leaves, tlog.LeafHash(s[:]))
			}
			benchTree.append(b, done, leaves)
		}
		root, err := tlog.TreeRoot(benchSize, &benchTree)
		if err != nil {
			b.Fatal(err)
		}
		benchHead = tlog.TreeHead{Origin: "bench", Size: benchSize, Root: root}
	})
	return &benchTree, benchHead
}

func BenchmarkProveInclusion(b *testing.B) {
	tree, _ := benchTreeOf(b)
	for i := 0; b.Loop(); i++ {
		if _, err := tlog.ProveInclusion(benchSize, uint64(i*7919)%benchSize, tree); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyInclusion(b *testing.B) {
	tree, head := benchTreeOf(b)
	const idx = 777_777
	p, err := tlog.ProveInclusion(benchSize, idx, tree)
	if err != nil {
		b.Fatal(err)
	}
	leaf := tree.hashes[tlog.StoredHashIndex(0, idx)]
	for b.Loop() {
		if err := tlog.VerifyInclusion(head, idx, leaf, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyConsistency(b *testing.B) {
	tree, head := benchTreeOf(b)
	const old = 600_001
	root, _ := tlog.TreeRoot(old, tree)
	p, err := tlog.ProveConsistency(old, benchSize, tree)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := tlog.VerifyConsistency(tlog.TreeHead{Origin: "bench", Size: old, Root: root}, head, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenHead is the signature check every proof verification
// starts with.
func BenchmarkOpenHead(b *testing.B) {
	f := newFixture(b)
	signed := f.signed(b, f.head(b, 40))
	for b.Loop() {
		if _, _, err := tlog.OpenHead(signed, f.logVs); err != nil {
			b.Fatal(err)
		}
	}
}
