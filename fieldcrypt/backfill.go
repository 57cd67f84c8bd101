package fieldcrypt

import (
	"context"
	"fmt"
	"time"
)

// PlainRow is one row of a plaintext column awaiting encryption.
type PlainRow struct {
	ID        string
	Plaintext []byte
}

// PlainParams selects rows for a backfill.
type PlainParams struct {
	Scope Scope
	// After is a row ID; only rows after it are returned. Empty means from
	// the start.
	After string
	// Limit is the most rows to return.
	Limit int
}

// SealParams encrypts one row.
type SealParams struct {
	Scope Scope
	ID    string
	// Plaintext is the value read; the row is changed only if it still
	// holds exactly this value.
	Plaintext  []byte
	Ciphertext []byte
}

// PlainRows is a table with a plaintext column and its encrypted
// replacement, as a [Backfill] reads and updates it.
type PlainRows interface {
	// Plain returns up to p.Limit rows of p.Scope after p.After, in a fixed
	// order of row IDs, whose plaintext column is not NULL.
	Plain(ctx context.Context, p PlainParams) ([]PlainRow, error)
	// Seal, in one statement, stores p.Ciphertext and sets the plaintext
	// to NULL if the plaintext is still p.Plaintext, and reports whether it
	// did.
	Seal(ctx context.Context, p SealParams) (bool, error)
	// CountPlain counts rows of the scope whose plaintext is not NULL.
	CountPlain(ctx context.Context, s Scope) (int64, error)
}

// BatchSealer is an optional interface of [PlainRows]: it applies a batch
// of seals at once, each still conditional on its row's plaintext. A
// Backfill uses it when PlainRows has it.
type BatchSealer interface {
	// SealBatch applies every seal and reports, for each, whether it did.
	SealBatch(ctx context.Context, seals []SealParams) ([]bool, error)
}

// Backfill encrypts an existing plaintext column into its encrypted column
// and clears the plaintext, in batches. Like [Rewrap] it keeps no state
// outside the database, so a killed run is simply started again, and it
// ends by counting the plaintext left.
type Backfill struct {
	// Keyring encrypts. Required.
	Keyring *Keyring
	// Rows is the table. Required.
	Rows PlainRows
	// Scope, Table and Column are as in [Rewrap]. Required.
	Scope  Scope
	Table  string
	Column string
	// BatchSize defaults to 500; MaxPasses to 3.
	BatchSize int
	MaxPasses int
	// OnProgress, when not nil, is called after every batch.
	OnProgress func(BackfillReport)
}

// BackfillReport is the progress and result of a [Backfill].
type BackfillReport struct {
	Scope  Scope
	Table  string
	Column string
	// After is the last row ID handled.
	After string
	// Scanned counts plaintext rows read, Sealed those encrypted and
	// cleared, Conflicts those changed by someone else meanwhile.
	Scanned, Sealed, Conflicts int64
	Passes                     int
	// Remaining is the count of rows that still hold plaintext at the end;
	// Done reports that it is zero.
	Remaining int64
	Done      bool
	// Started and Finished bound the run.
	Started, Finished time.Time
}

// Run backfills until no plaintext is found or MaxPasses is reached, then
// counts the plaintext left.
func (b *Backfill) Run(ctx context.Context) (BackfillReport, error) {
	if b.Keyring == nil || b.Rows == nil || b.Table == "" || b.Column == "" {
		return BackfillReport{}, fmt.Errorf("%w: Backfill needs Keyring, Rows, Table and Column", ErrConfig)
	}
	if err := b.Scope.validate(); err != nil {
		return BackfillReport{}, err
	}
	k := b.Keyring
	batch := b.BatchSize
	if batch <= 0 {
		batch = 500
	}
	passes := b.MaxPasses
	if passes <= 0 {
		passes = 3
	}
	rep := BackfillReport{Scope: b.Scope, Table: b.Table, Column: b.Column, Started: k.now()}

	for rep.Passes < passes {
		rep.Passes++
		found, err := b.pass(ctx, &rep, batch)
		if err != nil {
			rep.Finished = k.now()
			return rep, err
		}
		if found == 0 {
			break
		}
	}

	n, err := b.Rows.CountPlain(ctx, b.Scope)
	rep.Finished = k.now()
	if err != nil {
		return rep, fmt.Errorf("fieldcrypt: backfill %s.%s: count plaintext: %w", b.Table, b.Column, err)
	}
	rep.Remaining = n
	rep.Done = n == 0
	return rep, nil
}

func (b *Backfill) pass(ctx context.Context, rep *BackfillReport, batch int) (int64, error) {
	k := b.Keyring
	var found int64
	after := ""
	for {
		rows, err := b.Rows.Plain(ctx, PlainParams{Scope: b.Scope, After: after, Limit: batch})
		if err != nil {
			return found, fmt.Errorf("fieldcrypt: backfill %s.%s: %w", b.Table, b.Column, err)
		}
		if len(rows) == 0 {
			return found, nil
		}

		seals := make([]SealParams, 0, len(rows))
		for _, row := range rows {
			found++
			rep.Scanned++
			loc := Location{Tenant: b.Scope.Tenant, Table: b.Table, Column: b.Column, Row: row.ID, Scope: b.Scope.Name}
			ct, err := k.Encrypt(ctx, loc, row.Plaintext)
			if err != nil {
				return found, fmt.Errorf("fieldcrypt: backfill row %s: %w", row.ID, err)
			}
			seals = append(seals, SealParams{Scope: b.Scope, ID: row.ID, Plaintext: row.Plaintext, Ciphertext: ct})
		}
		done, err := b.seal(ctx, seals)
		if err != nil {
			return found, fmt.Errorf("fieldcrypt: backfill %s.%s: %w", b.Table, b.Column, err)
		}
		for _, ok := range done {
			if ok {
				rep.Sealed++
			} else {
				rep.Conflicts++
			}
		}
		after = rows[len(rows)-1].ID
		rep.After = after
		rep.Finished = k.now()
		if b.OnProgress != nil {
			b.OnProgress(*rep)
		}
		if err := ctx.Err(); err != nil {
			return found, err
		}
	}
}

// seal applies a batch of seals, at once when Rows is a BatchSealer.
func (b *Backfill) seal(ctx context.Context, seals []SealParams) ([]bool, error) {
	if bs, ok := b.Rows.(BatchSealer); ok {
		done, err := bs.SealBatch(ctx, seals)
		if err == nil && len(done) != len(seals) {
			err = fmt.Errorf("SealBatch returned %d results for %d seals", len(done), len(seals))
		}
		return done, err
	}
	done := make([]bool, len(seals))
	for i, sl := range seals {
		ok, err := b.Rows.Seal(ctx, sl)
		if err != nil {
			return nil, fmt.Errorf("row %s: %w", sl.ID, err)
		}
		done[i] = ok
	}
	return done, nil
}
