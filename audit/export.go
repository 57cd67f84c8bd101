package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"time"
)

// ExportOptions selects what [Export] writes.
type ExportOptions struct {
	// Stream is the chain to export. Required.
	Stream string
	// Since and Until bound the period by entry time (Since <= Time <
	// Until; zero is unbounded). The export covers the sequence range from
	// the first to the last entry in the period, widened back to the
	// nearest checkpoint before it and forward to the nearest checkpoint
	// after it, so a verifier can anchor both ends with signatures alone.
	Since, Until time.Time
}

// exportLine is one line of an export: a checkpoint, an entry, a signed
// tree head or the tree frontier, exactly one of them.
type exportLine struct {
	Checkpoint *Checkpoint     `json:"checkpoint,omitempty"`
	Entry      *Entry          `json:"entry,omitempty"`
	TreeHead   *SignedTreeHead `json:"tree_head,omitempty"`
	Frontier   *exportFrontier `json:"tree_frontier,omitempty"`
}

// Export writes the period's entries of a stream, with the checkpoints that
// cover them, as JSON Lines: first the checkpoints, then the entries in
// sequence order. [ReadExport] and [Verify] check it offline with only the
// public key. It returns the number of entries written.
func Export(ctx context.Context, w io.Writer, src Source, opts ExportOptions) (int, error) {
	if opts.Stream == "" {
		return 0, fmt.Errorf("%w: ExportOptions.Stream is empty", ErrConfig)
	}

	// Pass 1: the sequence range of the period.
	lo, hi := uint64(math.MaxUint64), uint64(0)
	err := src.Scan(ctx, opts.Stream, 0, func(e *Entry) error {
		if (opts.Since.IsZero() || !e.Time.Before(truncate(opts.Since))) && (opts.Until.IsZero() || e.Time.Before(truncate(opts.Until))) {
			lo, hi = min(lo, e.Seq), max(hi, e.Seq)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("audit: export: %w", err)
	}
	cps, err := src.Checkpoints(ctx, opts.Stream)
	if err != nil {
		return 0, fmt.Errorf("audit: export: %w", err)
	}
	if hi == 0 {
		return 0, nil
	}

	// Widen to the checkpoints around the range.
	from, to := uint64(1), hi
	var keep []Checkpoint
	for _, c := range cps {
		if c.Seq < lo && c.Seq+1 > from {
			from = c.Seq + 1
		}
	}
	next := uint64(math.MaxUint64)
	for _, c := range cps {
		if c.Seq >= hi && c.Seq < next {
			next = c.Seq
		}
	}
	if next != math.MaxUint64 {
		to = next
	}
	for _, c := range cps {
		if c.Seq+1 >= from && c.Seq <= to {
			keep = append(keep, c)
		}
	}
	sort.Slice(keep, func(i, j int) bool { return keep[i].Seq < keep[j].Seq })

	// Pass 2: write.
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for i := range keep {
		if err := enc.Encode(exportLine{Checkpoint: &keep[i]}); err != nil {
			return 0, fmt.Errorf("audit: export: %w", err)
		}
	}
	if err := exportTree(ctx, enc, src, opts.Stream, from, to); err != nil {
		return 0, err
	}
	n := 0
	err = src.Scan(ctx, opts.Stream, from, func(e *Entry) error {
		if e.Seq > to {
			return errStop
		}
		n++
		return enc.Encode(exportLine{Entry: e})
	})
	if err != nil && err != errStop {
		return n, fmt.Errorf("audit: export: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("audit: export: %w", err)
	}
	return n, nil
}

// ExportSource is an export read back into memory, a [Source] for
// [Verify]. From is the first entry's sequence number, to pass as
// VerifyOptions.From.
type ExportSource struct {
	Stream      string
	From        uint64
	entries     []Entry
	checkpoints []Checkpoint
	treeHeads   []SignedTreeHead
	frontier    *exportFrontier
}

var _ Source = (*ExportSource)(nil)

// MaxExportLine bounds one line of an export.
const MaxExportLine = 1 << 20

// ReadExport parses an export written by [Export]. It checks the format,
// not the chain: pass the result to [Verify].
func ReadExport(r io.Reader) (*ExportSource, error) {
	src := &ExportSource{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), MaxExportLine)
	line := 0
	for sc.Scan() {
		line++
		if len(sc.Bytes()) == 0 {
			continue
		}
		var l exportLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("%w: line %d is not JSON", ErrBadExport, line)
		}
		switch {
		case l.Checkpoint != nil && l.Entry == nil && l.TreeHead == nil && l.Frontier == nil:
			if err := src.setStream(l.Checkpoint.Stream, line); err != nil {
				return nil, err
			}
			src.checkpoints = append(src.checkpoints, *l.Checkpoint)
		case l.Entry != nil && l.Checkpoint == nil && l.TreeHead == nil && l.Frontier == nil:
			if err := src.setStream(l.Entry.Stream, line); err != nil {
				return nil, err
			}
			if len(src.entries) == 0 {
				src.From = l.Entry.Seq
			}
			src.entries = append(src.entries, *l.Entry)
		case l.TreeHead != nil && l.Entry == nil && l.Checkpoint == nil && l.Frontier == nil:
			if err := src.setStream(l.TreeHead.Stream, line); err != nil {
				return nil, err
			}
			src.treeHeads = append(src.treeHeads, *l.TreeHead)
		case l.Frontier != nil && l.Entry == nil && l.Checkpoint == nil && l.TreeHead == nil && src.frontier == nil:
			src.frontier = l.Frontier
		default:
			return nil, fmt.Errorf("%w: line %d is not one entry, checkpoint, tree head or tree frontier", ErrBadExport, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadExport, err)
	}
	return src, nil
}

func (x *ExportSource) setStream(stream string, line int) error {
	if x.Stream == "" {
		x.Stream = stream
	}
	if stream != x.Stream || stream == "" {
		return fmt.Errorf("%w: line %d belongs to another stream", ErrBadExport, line)
	}
	return nil
}

// Scan implements [Source], in the order the export holds the entries.
func (x *ExportSource) Scan(ctx context.Context, stream string, from uint64, fn func(*Entry) error) error {
	if stream != x.Stream {
		return nil
	}
	for i := range x.entries {
		if x.entries[i].Seq < from {
			continue
		}
		if err := fn(&x.entries[i]); err != nil {
			return err
		}
	}
	return nil
}

// Checkpoints implements [Source].
func (x *ExportSource) Checkpoints(_ context.Context, stream string) ([]Checkpoint, error) {
	if stream != x.Stream {
		return nil, nil
	}
	return append([]Checkpoint(nil), x.checkpoints...), nil
}
