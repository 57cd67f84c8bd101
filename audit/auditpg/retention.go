package auditpg

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chatsdk/compliance/audit"
)

// ErrNotPrefix means a partition cannot be dropped because some stream has
// entries at or before the partition's last sequence number in a later
// partition (writers' clocks disagreed across the month boundary):
// dropping it would cut a hole in the chain rather than its start.
var ErrNotPrefix = errors.New("auditpg: partition is not a prefix of its streams")

// ErrPartitionChanged means entries reached a partition while DropExpired
// was dropping it (a writer appended a backdated event). The partition is
// kept; a later run looks at it again.
var ErrPartitionChanged = errors.New("auditpg: partition changed while being dropped")

// DropOptions configures [Store.DropExpired].
type DropOptions struct {
	// Signer signs the horizon checkpoints. Required.
	Signer audit.Signer
	// Publisher, if not nil, receives each horizon checkpoint before any
	// partition is dropped.
	Publisher audit.Publisher
	// Now is the current time: partitions whose every entry's
	// retain-until is before it may go. Zero means time.Now().
	Now time.Time
}

// Dropped describes one dropped partition.
type Dropped struct {
	Partition string
	Entries   int64
	// Horizons are the checkpoints signed for the streams it held.
	Horizons []audit.Checkpoint
}

// DropExpired drops, oldest first, the monthly partitions whose entries have
// all passed their retain-until date, and stops at the first that has not.
// Before dropping one it signs, saves and publishes a horizon checkpoint
// for every stream in it, at the stream's last entry there, so that
// verification starts after it. A run killed between the checkpoint and
// the drop leaves the partition in place; the next run drops it. A
// partition that gained entries meanwhile is kept, with
// [ErrPartitionChanged].
func (s *Store) DropExpired(ctx context.Context, opts DropOptions) ([]Dropped, error) {
	if opts.Signer == nil {
		return nil, fmt.Errorf("%w: DropOptions.Signer is nil", audit.ErrConfig)
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}

	rows, err := s.db.Query(ctx, s.sql(`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = '{{schema}}audit_entries'::regclass ORDER BY c.relname`))
	if err != nil {
		return nil, fmt.Errorf("auditpg: list partitions: %w", err)
	}
	var parts []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return nil, fmt.Errorf("auditpg: list partitions: %w", err)
		}
		parts = append(parts, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("auditpg: list partitions: %w", err)
	}

	var dropped []Dropped
	for _, part := range parts {
		d, ok, err := s.dropOne(ctx, part, now, opts)
		if err != nil {
			return dropped, err
		}
		if !ok {
			break
		}
		dropped = append(dropped, d)
	}
	return dropped, nil
}

func (s *Store) dropOne(ctx context.Context, part string, now time.Time, opts DropOptions) (Dropped, bool, error) {
	table := s.schema + pgx.Identifier{part}.Sanitize()
	d := Dropped{Partition: part}

	month, err := time.Parse("200601", strings.TrimPrefix(part, "audit_entries_"))
	if err != nil || !strings.HasPrefix(part, "audit_entries_") {
		return d, false, nil // not one of ours: stop rather than guess
	}
	hi := month.AddDate(0, 1, 0)
	if hi.After(now) {
		return d, false, nil // the month is not over
	}
	var latest *time.Time
	if err := s.db.QueryRow(ctx, `SELECT max(retain_until), count(*) FROM `+table).Scan(&latest, &d.Entries); err != nil {
		return d, false, fmt.Errorf("auditpg: read partition %s: %w", part, err)
	}
	if latest != nil && !latest.Before(now) {
		return d, false, nil // still retained
	}

	// The last entry of each stream in the partition, and proof that
	// nothing before it lives later.
	rows, err := s.db.Query(ctx, `SELECT DISTINCT ON (stream) stream, seq, hash FROM `+table+` ORDER BY stream, seq DESC`)
	if err != nil {
		return d, false, fmt.Errorf("auditpg: read partition %s: %w", part, err)
	}
	var heads []audit.Head
	for rows.Next() {
		var h audit.Head
		var seq int64
		if err := rows.Scan(&h.Stream, &seq, &h.Hash); err != nil {
			rows.Close()
			return d, false, fmt.Errorf("auditpg: read partition %s: %w", part, err)
		}
		h.Seq = uint64(seq)
		heads = append(heads, h)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return d, false, fmt.Errorf("auditpg: read partition %s: %w", part, err)
	}
	for _, h := range heads {
		var later bool
		if err := s.db.QueryRow(ctx, s.sql(`SELECT EXISTS (SELECT 1 FROM {{schema}}audit_entries WHERE stream = $1 AND seq <= $2 AND at >= $3)`),
			h.Stream, int64(h.Seq), hi).Scan(&later); err != nil {
			return d, false, fmt.Errorf("auditpg: check partition %s: %w", part, err)
		}
		if later {
			return d, false, fmt.Errorf("%w: %s", ErrNotPrefix, part)
		}
	}

	// Horizon checkpoints first, durable and published, then the drop.
	for _, h := range heads {
		c := audit.Checkpoint{Stream: h.Stream, Seq: h.Seq, Head: h.Hash, Time: now, Kind: audit.KindHorizon}
		if err := audit.SignCheckpoint(opts.Signer, &c); err != nil {
			return d, false, err
		}
		if err := s.SaveCheckpoint(ctx, c); err != nil {
			return d, false, err
		}
		if opts.Publisher != nil {
			if err := opts.Publisher.Publish(ctx, c); err != nil {
				return d, false, fmt.Errorf("auditpg: publish horizon: %w", err)
			}
		}
		d.Horizons = append(d.Horizons, c)
	}
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return d, false, fmt.Errorf("auditpg: drop partition %s: %w", part, err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, s.sql(`ALTER TABLE {{schema}}audit_entries DETACH PARTITION `)+table); err != nil {
		return d, false, fmt.Errorf("auditpg: detach partition %s: %w", part, err)
	}
	// Detached under an exclusive lock, the partition can no longer
	// change: it must hold exactly what the horizons cover, or an entry
	// appended since (and already reported durable) would go with it.
	var left int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&left); err != nil {
		return d, false, fmt.Errorf("auditpg: recount partition %s: %w", part, err)
	}
	if left != d.Entries {
		return d, false, fmt.Errorf("%w: %s", ErrPartitionChanged, part)
	}
	if _, err := tx.Exec(ctx, `DROP TABLE `+table); err != nil {
		return d, false, fmt.Errorf("auditpg: drop partition %s: %w", part, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return d, false, fmt.Errorf("auditpg: drop partition %s: %w", part, err)
	}
	s.forgetMonths()
	return d, true, nil
}
