package fieldcrypt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
)

// Row is one encrypted field as a [Rows] returns it.
type Row struct {
	// ID is the row's id as bound in its Location, and the scan cursor.
	ID         string
	Ciphertext []byte
}

// StaleParams selects rows for a rewrap.
type StaleParams struct {
	// Scope selects the rows whose field the scope's keyset encrypts.
	Scope Scope
	// After is a row ID; only rows after it, in the order of Rows, are
	// returned. Empty means from the start.
	After string
	// Limit is the most rows to return.
	Limit int
	// Prefix is [KeyPrefix] of the target key: rows whose ciphertext starts
	// with it are current and must not be returned. Rows with a NULL
	// ciphertext are never returned.
	Prefix []byte
}

// SwapParams replaces one row's ciphertext.
type SwapParams struct {
	Scope Scope
	ID    string
	// Old is the ciphertext the caller read; the row is changed only if it
	// still holds exactly these bytes, so a concurrent edit wins.
	Old []byte
	New []byte
}

// Rows is an encrypted column, as a [Rewrap] reads and updates it. The
// fieldcryptpg package implements it for a Postgres table; [MemoryColumn]
// in memory. It selects stale rows by their key prefix, without decrypting.
type Rows interface {
	// Stale returns up to p.Limit rows of p.Scope after p.After, in a fixed
	// order of row IDs, whose ciphertext does not start with p.Prefix.
	Stale(ctx context.Context, p StaleParams) ([]Row, error)
	// Swap sets a row's ciphertext to p.New if it is still p.Old, and
	// reports whether it did.
	Swap(ctx context.Context, p SwapParams) (bool, error)
}

// BatchSwapper is an optional interface of [Rows]: it applies a batch of
// swaps at once, for example in one transaction, each still conditional on
// its row's old value. A Rewrap uses it when Rows has it.
type BatchSwapper interface {
	// SwapBatch applies every swap and reports, for each, whether it did.
	SwapBatch(ctx context.Context, swaps []SwapParams) ([]bool, error)
}

// Rewrap re-encrypts one scope's rows of one column under the scope's
// primary key, after a [Keyring.Rotate]. It works in batches, updates a row
// only if it still holds the ciphertext it read, keeps no state but the
// database's (a killed run is restarted from the start and skips rows
// already done), and is safe to run twice at once.
type Rewrap struct {
	// Keyring decrypts and encrypts. Required.
	Keyring *Keyring
	// Rows is the column to rewrap. Required.
	Rows Rows
	// Scope is the scope whose rows are rewrapped. Required.
	Scope Scope
	// Table and Column are the names bound into the rows' Locations.
	// Required.
	Table  string
	Column string
	// BatchSize is the number of rows read at a time. Defaults to 500.
	BatchSize int
	// After resumes the first pass after this row ID, from a progress
	// report. Defaults to the start, which is always correct.
	After string
	// MaxPasses bounds the passes over the column; each pass after the
	// first picks up rows that concurrent writers or conflicts left stale.
	// Defaults to 3.
	MaxPasses int
	// OnProgress, when not nil, is called after every batch.
	OnProgress func(RewrapReport)
}

// RewrapReport is the progress and result of a [Rewrap]. It names rows only
// by ID.
type RewrapReport struct {
	Scope  Scope
	Table  string
	Column string
	// KeyID is the key rows were moved to.
	KeyID uint32
	// After is the last row ID handled: resume from it.
	After string
	// Scanned counts stale rows read; Rewrapped those re-encrypted;
	// Conflicts those changed by someone else between read and write;
	// Undecryptable those that did not decrypt (tampered or under a
	// disabled key) and were left as they are.
	Scanned, Rewrapped, Conflicts, Undecryptable int64
	// Passes is the number of passes made.
	Passes int
	// Done reports that the last pass found no stale row: every row of the
	// scope in the column is under KeyID.
	Done bool
	// Settled reports that the run started at least Config.CacheTTL after
	// the primary key changed, and that it did not change during the run,
	// so no instance could still be encrypting with an older key. Only a Done and Settled report lets
	// [Keyring.DisableKey] retire a key.
	Settled bool
	// Started and Finished bound the run.
	Started, Finished time.Time
}

// Run rewraps until a pass finds no stale row, MaxPasses is reached, or a
// pass makes no progress. It returns the report so far with any error.
func (r *Rewrap) Run(ctx context.Context) (RewrapReport, error) {
	if r.Keyring == nil || r.Rows == nil || r.Table == "" || r.Column == "" {
		return RewrapReport{}, fmt.Errorf("%w: Rewrap needs Keyring, Rows, Table and Column", ErrConfig)
	}
	if err := r.Scope.validate(); err != nil {
		return RewrapReport{}, err
	}
	k := r.Keyring
	batch := r.BatchSize
	if batch <= 0 {
		batch = 500
	}
	passes := r.MaxPasses
	if passes <= 0 {
		passes = 3
	}
	rep := RewrapReport{Scope: r.Scope, Table: r.Table, Column: r.Column, Started: k.now()}

	// Read the keyset from the store, not the cache, so a rotation by
	// another instance is seen.
	ks, err := k.load(ctx, r.Scope, PurposeAEAD, false)
	if err != nil {
		return rep, fmt.Errorf("fieldcrypt: rewrap %s: %w", r.Scope, err)
	}
	if ks.shredded {
		return rep, ErrShredded
	}
	rep.Settled = !rep.Started.Before(ks.primarySince.Add(k.ttl))

	after := r.After
	for rep.Passes < passes {
		rep.Passes++
		found, progressed, err := r.pass(ctx, &rep, after, batch)
		rep.Finished = k.now()
		if err != nil {
			return rep, err
		}
		if found == 0 {
			rep.Done = true
			return rep, nil
		}
		if !progressed {
			return rep, nil
		}
		after = ""
	}
	return rep, nil
}

// pass makes one pass over the column from after. It returns how many stale
// rows it found and whether it changed any row or lost any race.
func (r *Rewrap) pass(ctx context.Context, rep *RewrapReport, after string, batch int) (found int64, progressed bool, err error) {
	k := r.Keyring
	for {
		ks, err := k.keyset(ctx, r.Scope, PurposeAEAD, false)
		if err != nil {
			return found, progressed, fmt.Errorf("fieldcrypt: rewrap %s: %w", r.Scope, err)
		}
		rep.KeyID = ks.primary
		// A rotation during the run (here or seen from another instance)
		// starts a new CacheTTL in which instances may still encrypt with
		// the key it replaced.
		if rep.Started.Before(ks.primarySince.Add(k.ttl)) {
			rep.Settled = false
		}
		prefix := KeyPrefix(ks.primary)

		rows, err := r.Rows.Stale(ctx, StaleParams{Scope: r.Scope, After: after, Limit: batch, Prefix: prefix})
		if err != nil {
			return found, progressed, fmt.Errorf("fieldcrypt: rewrap %s.%s: %w", r.Table, r.Column, err)
		}
		if len(rows) == 0 {
			return found, progressed, nil
		}

		swaps := make([]SwapParams, 0, len(rows))
		for _, row := range rows {
			if bytes.HasPrefix(row.Ciphertext, prefix) {
				continue
			}
			found++
			rep.Scanned++
			loc := Location{Tenant: r.Scope.Tenant, Table: r.Table, Column: r.Column, Row: row.ID, Scope: r.Scope.Name}
			pt, err := k.Decrypt(ctx, loc, row.Ciphertext)
			if errors.Is(err, ErrDecrypt) {
				rep.Undecryptable++
				continue
			}
			if err != nil {
				return found, progressed, fmt.Errorf("fieldcrypt: rewrap row %s: %w", row.ID, err)
			}
			ct, err := k.Encrypt(ctx, loc, pt)
			if err != nil {
				return found, progressed, fmt.Errorf("fieldcrypt: rewrap row %s: %w", row.ID, err)
			}
			swaps = append(swaps, SwapParams{Scope: r.Scope, ID: row.ID, Old: row.Ciphertext, New: ct})
		}
		done, err := r.swap(ctx, swaps)
		if err != nil {
			return found, progressed, fmt.Errorf("fieldcrypt: rewrap %s.%s: %w", r.Table, r.Column, err)
		}
		for _, ok := range done {
			progressed = true
			if ok {
				rep.Rewrapped++
			} else {
				rep.Conflicts++
			}
		}
		after = rows[len(rows)-1].ID
		rep.After = after
		rep.Finished = k.now()
		if r.OnProgress != nil {
			r.OnProgress(*rep)
		}
		if err := ctx.Err(); err != nil {
			return found, progressed, err
		}
	}
}

// swap applies a batch of swaps, at once when Rows is a BatchSwapper.
func (r *Rewrap) swap(ctx context.Context, swaps []SwapParams) ([]bool, error) {
	if len(swaps) == 0 {
		return nil, nil
	}
	if b, ok := r.Rows.(BatchSwapper); ok {
		done, err := b.SwapBatch(ctx, swaps)
		if err == nil && len(done) != len(swaps) {
			err = fmt.Errorf("SwapBatch returned %d results for %d swaps", len(done), len(swaps))
		}
		return done, err
	}
	done := make([]bool, len(swaps))
	for i, sw := range swaps {
		ok, err := r.Rows.Swap(ctx, sw)
		if err != nil {
			return nil, fmt.Errorf("row %s: %w", sw.ID, err)
		}
		done[i] = ok
	}
	return done, nil
}
