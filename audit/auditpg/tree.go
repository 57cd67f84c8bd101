package auditpg

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/tlog"
)

var _ audit.TreeStore = (*Store)(nil)

// treeCache remembers, per stream, the tree's frontier at the head this
// Store last wrote, so that the tree hashes of the next batch cost no
// read. An entry is used only for the exact head (seq and hash) it was
// made at: the head hash commits to every entry before it, and so to the
// whole tree.
type treeCache struct {
	mu sync.Mutex
	m  map[string]treeFrontier
}

type treeFrontier struct {
	seq    uint64
	head   []byte
	hashes []tlog.Hash
}

func (c *treeCache) get(head audit.Head) ([]tlog.Hash, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.m[head.Stream]
	if !ok || f.seq != head.Seq || string(f.head) != string(head.Hash) {
		return nil, false
	}
	return f.hashes, true
}

func (c *treeCache) set(stream string, f treeFrontier) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) > 10000 {
		c.m = map[string]treeFrontier{} // a cache: bound it crudely
	}
	c.m[stream] = f
}

// treeBatch is the tree part of one append: appendSQL's two tree
// arguments, and the frontier after the batch, to cache once it commits.
type treeBatch struct {
	first  any // int64 storage index, or nil when the stream has no tree
	hashes any // []byte, or nil
	next   treeFrontier
}

// treeFor computes the tree hashes of entries, appended at head. It reads
// the frontier through q when it is not cached. A stream whose tree does
// not reach the head (it predates migration 3) gets no tree hashes: its
// proofs report audit.ErrNoTree.
func (s *Store) treeFor(ctx context.Context, q Querier, head audit.Head, entries []audit.Entry) (treeBatch, error) {
	if s.noTree {
		return treeBatch{}, nil
	}
	front, ok := s.tree.get(head)
	if !ok {
		var err error
		front, err = readTreeHashes(ctx, q, s, head.Stream, tlog.FrontierIndexes(head.Seq))
		if errors.Is(err, audit.ErrNoTree) {
			// The stream predates the tree (or was appended to with it
			// off): BackfillTree builds it; until then no proofs.
			return treeBatch{}, nil
		}
		if err != nil {
			return treeBatch{}, err
		}
	}
	idx := tlog.FrontierIndexes(head.Seq)
	known := make(map[int64]tlog.Hash, len(idx))
	for i, x := range idx {
		known[x] = front[i]
	}
	hs, err := audit.TreeHashes(head.Seq, entries, tlog.HashReaderFunc(func(want []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(want))
		for i, x := range want {
			h, ok := known[x]
			if !ok {
				return nil, fmt.Errorf("auditpg: tree hash %d is not in the frontier", x)
			}
			out[i] = h
		}
		return out, nil
	}))
	if err != nil {
		return treeBatch{}, err
	}
	f, err := tlog.NewFrontier(head.Seq, front)
	if err != nil {
		return treeBatch{}, err
	}
	for i := range entries {
		f.Append(tlog.LeafHash(entries[i].Hash))
	}
	last := entries[len(entries)-1]
	raw := make([]byte, 0, len(hs)*tlog.HashSize)
	for i := range hs {
		raw = append(raw, hs[i][:]...)
	}
	return treeBatch{
		first:  tlog.StoredHashIndex(0, head.Seq),
		hashes: raw,
		next:   treeFrontier{seq: last.Seq, head: last.Hash, hashes: f.Hashes()},
	}, nil
}

// committed caches the frontier of a batch that is now durable.
func (s *Store) committed(stream string, b treeBatch) {
	if b.hashes != nil {
		s.tree.set(stream, b.next)
	}
}

// TODO: audit_tree_hashes keeps every hash forever, 64 bytes an entry,
// also for entries whose partition was dropped; the proofs of what remains
// need only the complete subtrees covering the dropped range, so the rest
// could be compacted after a drop.

// readHashesSQL reads the hashes at the given storage indexes, each from
// the batch row that holds it, in the order asked.
const readHashesSQL = `SELECT substring(r.hashes FROM ((i.idx - r.first_index) * 32 + 1)::int FOR 32)
FROM unnest($2::bigint[]) WITH ORDINALITY AS i(idx, ord)
CROSS JOIN LATERAL (
	SELECT h.first_index, h.hashes FROM {{schema}}audit_tree_hashes h
	WHERE h.stream = $1 AND h.first_index <= i.idx
	ORDER BY h.first_index DESC LIMIT 1
) r
WHERE i.idx < r.first_index + length(r.hashes) / 32
ORDER BY i.ord`

func readTreeHashes(ctx context.Context, q Querier, s *Store, stream string, indexes []int64) ([]tlog.Hash, error) {
	if len(indexes) == 0 {
		return nil, nil
	}
	rows, err := q.Query(ctx, s.sql(readHashesSQL), stream, indexes)
	if err != nil {
		return nil, fmt.Errorf("auditpg: read tree hashes: %w", err)
	}
	out := make([]tlog.Hash, 0, len(indexes))
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			rows.Close()
			return nil, fmt.Errorf("auditpg: read tree hashes: %w", err)
		}
		if len(b) != tlog.HashSize {
			rows.Close()
			return nil, fmt.Errorf("auditpg: read tree hashes: a hash of %d bytes", len(b))
		}
		out = append(out, tlog.Hash(b))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auditpg: read tree hashes: %w", err)
	}
	if len(out) != len(indexes) {
		return nil, fmt.Errorf("%w: %d of %d tree hashes of stream %q are stored", audit.ErrNoTree, len(out), len(indexes), stream)
	}
	return out, nil
}

// ReadTreeHashes implements [audit.TreeStore].
func (s *Store) ReadTreeHashes(ctx context.Context, stream string, indexes []int64) ([]tlog.Hash, error) {
	return readTreeHashes(ctx, s.db, s, stream, indexes)
}

// SaveTreeHead implements [audit.TreeStore].
func (s *Store) SaveTreeHead(ctx context.Context, h audit.SignedTreeHead) error {
	_, err := s.db.Exec(ctx, s.sql(`INSERT INTO {{schema}}audit_tree_heads (stream, size, note) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`),
		h.Stream, int64(h.Size), h.Note)
	if err != nil {
		return fmt.Errorf("auditpg: save tree head: %w", err)
	}
	return nil
}

// TreeHeads implements [audit.TreeStore].
func (s *Store) TreeHeads(ctx context.Context, stream string) ([]audit.SignedTreeHead, error) {
	rows, err := s.db.Query(ctx, s.sql(`SELECT size, note FROM {{schema}}audit_tree_heads WHERE stream = $1 ORDER BY size`), stream)
	if err != nil {
		return nil, fmt.Errorf("auditpg: tree heads: %w", err)
	}
	heads, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (audit.SignedTreeHead, error) {
		h := audit.SignedTreeHead{Stream: stream}
		var size int64
		err := r.Scan(&size, &h.Note)
		h.Size = uint64(size)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("auditpg: tree heads: %w", err)
	}
	return heads, nil
}

// ErrTreeGap means a stream's tree cannot be built: it has tree hashes for
// part of its entries only, or entries are missing (a partition was
// dropped before the tree existed).
var ErrTreeGap = errors.New("auditpg: the stream's tree cannot be built")

// BackfillTree builds the Merkle tree of a stream whose entries predate
// migration 3 (or were appended with DisableTree), from its stored
// entries, under the stream's head lock, in one transaction. It returns
// the tree's size; a stream whose tree is complete is left alone. Every
// entry from seq 1 must still be stored ([ErrTreeGap] otherwise).
//
// TODO: an Append that computed its (empty) tree part before the backfill
// committed still commits after it, without tree hashes, since the head
// lock does not change the head its compare-and-set expects; the tree
// then stops at the backfilled size and a second BackfillTree reports
// ErrTreeGap. Run it while no instance appends to the stream, until the
// store can extend a partial tree from its entries.
func (s *Store) BackfillTree(ctx context.Context, stream string) (uint64, error) {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("auditpg: backfill tree: %w", err)
	}
	defer tx.Rollback(ctx)
	head, err := s.loadHead(ctx, tx, stream, true)
	if err != nil {
		return 0, err
	}
	if _, err := readTreeHashes(ctx, tx, s, stream, tlog.FrontierIndexes(head.Seq)); err == nil {
		return head.Seq, nil
	} else if !errors.Is(err, audit.ErrNoTree) {
		return 0, err
	}
	var rows int64
	if err := tx.QueryRow(ctx, s.sql(`SELECT count(*) FROM {{schema}}audit_tree_hashes WHERE stream = $1`), stream).Scan(&rows); err != nil {
		return 0, fmt.Errorf("auditpg: backfill tree: %w", err)
	}
	if rows > 0 {
		return 0, fmt.Errorf("%w: it holds tree hashes for part of its entries", ErrTreeGap)
	}

	// Read the entries' hashes in order and write the tree in chunks.
	const chunk = 4096
	var (
		size    uint64
		front   tlog.Frontier
		pending []audit.Entry
	)
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		known := map[int64]tlog.Hash{}
		for i, x := range tlog.FrontierIndexes(size) {
			known[x] = front.Hashes()[i]
		}
		hs, err := audit.TreeHashes(size, pending, tlog.HashReaderFunc(func(want []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(want))
			for i, x := range want {
				out[i] = known[x]
			}
			return out, nil
		}))
		if err != nil {
			return err
		}
		raw := make([]byte, 0, len(hs)*tlog.HashSize)
		for i := range hs {
			raw = append(raw, hs[i][:]...)
		}
		if _, err := tx.Exec(ctx, s.sql(`INSERT INTO {{schema}}audit_tree_hashes (stream, first_index, hashes) VALUES ($1, $2, $3)`),
			stream, tlog.StoredHashIndex(0, size), raw); err != nil {
			return fmt.Errorf("auditpg: backfill tree: %w", err)
		}
		for i := range pending {
			front.Append(tlog.LeafHash(pending[i].Hash))
		}
		size += uint64(len(pending))
		pending = pending[:0]
		return nil
	}
	r, err := tx.Query(ctx, s.sql(`SELECT seq, hash FROM {{schema}}audit_entries WHERE stream = $1 AND seq <= $2 ORDER BY seq`), stream, int64(head.Seq))
	if err != nil {
		return 0, fmt.Errorf("auditpg: backfill tree: %w", err)
	}
	var all []audit.Entry
	for r.Next() {
		var e audit.Entry
		var seq int64
		if err := r.Scan(&seq, &e.Hash); err != nil {
			r.Close()
			return 0, fmt.Errorf("auditpg: backfill tree: %w", err)
		}
		e.Seq = uint64(seq)
		all = append(all, e)
	}
	r.Close()
	if err := r.Err(); err != nil {
		return 0, fmt.Errorf("auditpg: backfill tree: %w", err)
	}
	for i := range all {
		if all[i].Seq != uint64(i)+1 {
			return 0, fmt.Errorf("%w: entry %d is not stored", ErrTreeGap, i+1)
		}
		pending = append(pending, all[i])
		if len(pending) == chunk {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	if uint64(len(all)) != head.Seq {
		return 0, fmt.Errorf("%w: %d of %d entries are stored", ErrTreeGap, len(all), head.Seq)
	}
	if err := flush(); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("auditpg: backfill tree: %w", err)
	}
	return size, nil
}
