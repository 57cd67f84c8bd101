package fieldcryptpg

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5"

	"github.com/chatsdk/compliance/fieldcrypt"
)

// ColumnConfig names an application table's encrypted column, and its
// plaintext predecessor for a backfill.
type ColumnConfig struct {
	// Schema of the table. Defaults to the search_path.
	Schema string
	// Table is the table's name. Required.
	Table string
	// ID is the primary key column, which must be unique within a tenant.
	// Defaults to "id".
	ID string
	// IDType is the SQL type of ID, used to read a cursor back ("bigint",
	// "uuid", …). Defaults to "text".
	IDType string
	// Tenant is the tenant column. Defaults to "app_id".
	Tenant string
	// Scope is the column holding the scope name of each row, for keysets
	// narrower than the tenant; the tenant scope's rows hold ''. Empty
	// means every row is in its tenant's scope.
	Scope string
	// Ciphertext is the bytea column of ciphertexts. Required.
	Ciphertext string
	// Plaintext is the text column a backfill reads and clears. Required
	// for a backfill only.
	//
	// TODO: a legacy bytea column needs Plain and Seal without the text
	// conversion.
	Plaintext string
}

// Column is an encrypted column of an application table: a
// fieldcrypt.Rows for rewraps and a fieldcrypt.PlainRows for backfills.
// Every update is conditional on the value read; a batch of them is sent
// in one round trip and committed in one transaction (a savepoint when DB
// is a caller's pgx.Tx). It is safe for concurrent use when its DB is.
//
// Stale rows are found by the first five bytes of the ciphertext, the key
// prefix; on a large table an index on (tenant, id) keeps each batch an
// index range scan.
type Column struct {
	db       DB
	hasScope bool
	hasPlain bool
	q        columnQueries
}

type columnQueries struct {
	staleFirst, staleAfter, swap, plainFirst, plainAfter, seal, count string
}

var (
	_ fieldcrypt.Rows         = (*Column)(nil)
	_ fieldcrypt.PlainRows    = (*Column)(nil)
	_ fieldcrypt.BatchSwapper = (*Column)(nil)
	_ fieldcrypt.BatchSealer  = (*Column)(nil)
)

// ErrNoScopeColumn means a Column without a Scope column was asked for the
// rows of a narrower scope.
var ErrNoScopeColumn = errors.New("fieldcryptpg: column has no scope column")

var typeName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_ ]*$`)

// NewColumn returns a Column on db, or an error naming a missing field.
func NewColumn(db DB, cfg ColumnConfig) (*Column, error) {
	if cfg.Table == "" {
		return nil, fmt.Errorf("%w: ColumnConfig.Table is empty", fieldcrypt.ErrConfig)
	}
	if cfg.Ciphertext == "" {
		return nil, fmt.Errorf("%w: ColumnConfig.Ciphertext is empty", fieldcrypt.ErrConfig)
	}
	if cfg.ID == "" {
		cfg.ID = "id"
	}
	if cfg.IDType == "" {
		cfg.IDType = "text"
	}
	if cfg.Tenant == "" {
		cfg.Tenant = "app_id"
	}
	ident := func(s string) string { return pgx.Identifier{s}.Sanitize() }
	table := ident(cfg.Table)
	if cfg.Schema != "" {
		table = pgx.Identifier{cfg.Schema, cfg.Table}.Sanitize()
	}
	id, ct, tenant := ident(cfg.ID), ident(cfg.Ciphertext), ident(cfg.Tenant)
	// IDType is a type name, which quoting would break ("bigint" is a
	// keyword): it may hold only letters, digits, underscores and spaces.
	if !typeName.MatchString(cfg.IDType) {
		return nil, fmt.Errorf("%w: ColumnConfig.IDType %q is not a plain type name", fieldcrypt.ErrConfig, cfg.IDType)
	}
	cast := "::" + cfg.IDType

	// $1 tenant, $2 scope name (ignored without a scope column).
	where := tenant + ` = $1`
	if cfg.Scope != "" {
		where += ` AND ` + ident(cfg.Scope) + ` = $2`
	} else {
		where += ` AND $2::text = ''`
	}
	c := &Column{db: db, hasScope: cfg.Scope != "", hasPlain: cfg.Plaintext != ""}
	stale := `SELECT ` + id + `::text AS fieldcrypt_row_id, ` + ct + ` FROM ` + table + ` WHERE ` + where +
		` AND ` + ct + ` IS NOT NULL AND substring(` + ct + ` from 1 for 5) <> $3`
	c.q.staleFirst = stale + ` ORDER BY ` + id + ` LIMIT $4`
	c.q.staleAfter = stale + ` AND ` + id + ` > $5` + cast + ` ORDER BY ` + id + ` LIMIT $4`
	c.q.swap = `UPDATE ` + table + ` SET ` + ct + ` = $5 WHERE ` + where + ` AND ` + id + ` = $3` + cast + ` AND ` + ct + ` = $4`
	if c.hasPlain {
		pt := ident(cfg.Plaintext)
		plain := `SELECT ` + id + `::text AS fieldcrypt_row_id, ` + pt + ` FROM ` + table + ` WHERE ` + where + ` AND ` + pt + ` IS NOT NULL`
		c.q.plainFirst = plain + ` ORDER BY ` + id + ` LIMIT $3`
		c.q.plainAfter = plain + ` AND ` + id + ` > $4` + cast + ` ORDER BY ` + id + ` LIMIT $3`
		c.q.seal = `UPDATE ` + table + ` SET ` + ct + ` = $5, ` + pt + ` = NULL WHERE ` + where + ` AND ` + id + ` = $3` + cast + ` AND ` + pt + ` = $4`
		c.q.count = `SELECT count(*) FROM ` + table + ` WHERE ` + where + ` AND ` + pt + ` IS NOT NULL`
	}
	return c, nil
}

func (c *Column) scope(s fieldcrypt.Scope) error {
	if s.Name != "" && !c.hasScope {
		return ErrNoScopeColumn
	}
	return nil
}

// Stale implements fieldcrypt.Rows.
func (c *Column) Stale(ctx context.Context, p fieldcrypt.StaleParams) ([]fieldcrypt.Row, error) {
	if err := c.scope(p.Scope); err != nil {
		return nil, err
	}
	var (
		rows pgx.Rows
		err  error
	)
	if p.After == "" {
		rows, err = c.db.Query(ctx, c.q.staleFirst, p.Scope.Tenant, p.Scope.Name, p.Prefix, p.Limit)
	} else {
		rows, err = c.db.Query(ctx, c.q.staleAfter, p.Scope.Tenant, p.Scope.Name, p.Prefix, p.Limit, p.After)
	}
	if err != nil {
		return nil, fmt.Errorf("fieldcryptpg: stale rows: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (fieldcrypt.Row, error) {
		var row fieldcrypt.Row
		err := r.Scan(&row.ID, &row.Ciphertext)
		return row, err
	})
	if err != nil {
		return nil, fmt.Errorf("fieldcryptpg: stale rows: %w", err)
	}
	return out, nil
}

// Swap implements fieldcrypt.Rows.
func (c *Column) Swap(ctx context.Context, p fieldcrypt.SwapParams) (bool, error) {
	if err := c.scope(p.Scope); err != nil {
		return false, err
	}
	tag, err := c.db.Exec(ctx, c.q.swap, p.Scope.Tenant, p.Scope.Name, p.ID, p.Old, p.New)
	if err != nil {
		return false, fmt.Errorf("fieldcryptpg: swap row: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

func (c *Column) plain(s fieldcrypt.Scope) error {
	if !c.hasPlain {
		return fmt.Errorf("%w: ColumnConfig.Plaintext is empty", fieldcrypt.ErrConfig)
	}
	return c.scope(s)
}

// Plain implements fieldcrypt.PlainRows.
func (c *Column) Plain(ctx context.Context, p fieldcrypt.PlainParams) ([]fieldcrypt.PlainRow, error) {
	if err := c.plain(p.Scope); err != nil {
		return nil, err
	}
	var (
		rows pgx.Rows
		err  error
	)
	if p.After == "" {
		rows, err = c.db.Query(ctx, c.q.plainFirst, p.Scope.Tenant, p.Scope.Name, p.Limit)
	} else {
		rows, err = c.db.Query(ctx, c.q.plainAfter, p.Scope.Tenant, p.Scope.Name, p.Limit, p.After)
	}
	if err != nil {
		return nil, fmt.Errorf("fieldcryptpg: plaintext rows: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (fieldcrypt.PlainRow, error) {
		var (
			row fieldcrypt.PlainRow
			pt  string
		)
		err := r.Scan(&row.ID, &pt)
		row.Plaintext = []byte(pt)
		return row, err
	})
	if err != nil {
		return nil, fmt.Errorf("fieldcryptpg: plaintext rows: %w", err)
	}
	return out, nil
}

// Seal implements fieldcrypt.PlainRows.
func (c *Column) Seal(ctx context.Context, p fieldcrypt.SealParams) (bool, error) {
	if err := c.plain(p.Scope); err != nil {
		return false, err
	}
	tag, err := c.db.Exec(ctx, c.q.seal, p.Scope.Tenant, p.Scope.Name, p.ID, string(p.Plaintext), p.Ciphertext)
	if err != nil {
		return false, fmt.Errorf("fieldcryptpg: seal row: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// CountPlain implements fieldcrypt.PlainRows.
func (c *Column) CountPlain(ctx context.Context, s fieldcrypt.Scope) (int64, error) {
	if err := c.plain(s); err != nil {
		return 0, err
	}
	var n int64
	if err := c.db.QueryRow(ctx, c.q.count, s.Tenant, s.Name).Scan(&n); err != nil {
		return 0, fmt.Errorf("fieldcryptpg: count plaintext: %w", err)
	}
	return n, nil
}

// SwapBatch implements fieldcrypt.BatchSwapper.
func (c *Column) SwapBatch(ctx context.Context, swaps []fieldcrypt.SwapParams) ([]bool, error) {
	b := &pgx.Batch{}
	for _, p := range swaps {
		if err := c.scope(p.Scope); err != nil {
			return nil, err
		}
		b.Queue(c.q.swap, p.Scope.Tenant, p.Scope.Name, p.ID, p.Old, p.New)
	}
	done, err := c.batch(ctx, b, len(swaps))
	if err != nil {
		return nil, fmt.Errorf("fieldcryptpg: swap rows: %w", err)
	}
	return done, nil
}

// SealBatch implements fieldcrypt.BatchSealer.
func (c *Column) SealBatch(ctx context.Context, seals []fieldcrypt.SealParams) ([]bool, error) {
	b := &pgx.Batch{}
	for _, p := range seals {
		if err := c.plain(p.Scope); err != nil {
			return nil, err
		}
		b.Queue(c.q.seal, p.Scope.Tenant, p.Scope.Name, p.ID, string(p.Plaintext), p.Ciphertext)
	}
	done, err := c.batch(ctx, b, len(seals))
	if err != nil {
		return nil, fmt.Errorf("fieldcryptpg: seal rows: %w", err)
	}
	return done, nil
}

// batch runs n conditional updates in one transaction and reports which
// changed a row.
func (c *Column) batch(ctx context.Context, b *pgx.Batch, n int) ([]bool, error) {
	if n == 0 {
		return nil, nil
	}
	tx, err := c.db.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit

	br := tx.SendBatch(ctx, b)
	done := make([]bool, n)
	for i := range n {
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return nil, err
		}
		done[i] = tag.RowsAffected() == 1
	}
	if err := br.Close(); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return done, nil
}
