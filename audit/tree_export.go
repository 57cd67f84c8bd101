package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/chatsdk/compliance/audit/tlog"
)

// exportFrontier is an export's tree frontier line: the roots of the
// complete subtrees of the stream's tree just before the export's first
// entry, which [VerifyTree] needs to recompute the tree from there.
type exportFrontier struct {
	Size   uint64      `json:"size"`
	Hashes []tlog.Hash `json:"hashes"`
}

// TreeHashSource is a [Source] that also reads stored tree hashes: every
// [TreeStore]. [Export] needs it, besides [TreeHeadSource], to write the
// tree frontier of an export that starts past the first entry; a wrapper
// around a store (one that counts entries, say) passes both on to keep the
// tree in its exports.
type TreeHashSource interface {
	ReadTreeHashes(ctx context.Context, stream string, indexes []int64) ([]tlog.Hash, error)
}

// exportTree writes the signed tree heads of sizes from-1 through to and,
// when the export starts past the first entry, the tree's frontier at
// from-1, if src keeps them.
func exportTree(ctx context.Context, enc *json.Encoder, src Source, stream string, from, to uint64) error {
	hs, ok := src.(TreeHeadSource)
	if !ok {
		return nil
	}
	heads, err := hs.TreeHeads(ctx, stream)
	if err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	for i := range heads {
		if heads[i].Size+1 >= from && heads[i].Size <= to {
			if err := enc.Encode(exportLine{TreeHead: &heads[i]}); err != nil {
				return fmt.Errorf("audit: export: %w", err)
			}
		}
	}
	ts, ok := src.(TreeHashSource)
	if !ok || from <= 1 {
		return nil
	}
	front, err := ts.ReadTreeHashes(ctx, stream, tlog.FrontierIndexes(from-1))
	if errors.Is(err, ErrNoTree) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	return enc.Encode(exportLine{Frontier: &exportFrontier{Size: from - 1, Hashes: front}})
}

// TreeHeads implements [TreeHeadSource]: the signed tree heads the export
// carries.
func (x *ExportSource) TreeHeads(_ context.Context, stream string) ([]SignedTreeHead, error) {
	if stream != x.Stream {
		return nil, nil
	}
	return append([]SignedTreeHead(nil), x.treeHeads...), nil
}

// TreeFrontier returns the tree frontier the export carries, the size of
// the tree it is the frontier of, and false if it carries none. Pass it
// to [VerifyTree] as TreeVerifyOptions.Frontier with From at size+1.
func (x *ExportSource) TreeFrontier() (uint64, []tlog.Hash, bool) {
	if x.frontier == nil {
		return 0, nil, false
	}
	return x.frontier.Size, append([]tlog.Hash(nil), x.frontier.Hashes...), true
}
