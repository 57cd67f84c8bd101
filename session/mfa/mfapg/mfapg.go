package mfapg

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/chatsdk/compliance/internal/pgmigrate"
	"github.com/chatsdk/compliance/session/mfa"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is what the adapter needs of a connection: *pgxpool.Pool, *pgx.Conn
// and pgx.Tx all satisfy it, so a Store on a pgx.Tx joins the caller's
// transaction (its own transactions become savepoints).
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Options configure a Store and Migrate.
type Options struct {
	// Schema holds the tables. Empty means the connection's search_path.
	Schema string
}

func (o Options) table(name string) string {
	if o.Schema == "" {
		return pgx.Identifier{name}.Sanitize()
	}
	return pgx.Identifier{o.Schema, name}.Sanitize()
}

// Store is an mfa.Store and mfa.PolicyStore on Postgres. It is safe for
// concurrent use, also by several processes on one database.
type Store struct {
	db                    DB
	totp, codes, policies string
}

var (
	_ mfa.Store       = (*Store)(nil)
	_ mfa.PolicyStore = (*Store)(nil)
)

// New returns a Store on db. Run [Migrate] first.
func New(db DB, opts Options) *Store {
	return &Store{
		db:       db,
		totp:     opts.table("mfa_totp"),
		codes:    opts.table("mfa_recovery_codes"),
		policies: opts.table("mfa_policies"),
	}
}

// WithDB returns a Store like s on another connection, for example a
// pgx.Tx, so the caller's own writes and the store's commit together.
func (s *Store) WithDB(db DB) *Store {
	c := *s
	c.db = db
	return &c
}

// Migrate applies the embedded migrations that have not been applied yet,
// in order, in one transaction under a transaction-scoped advisory lock,
// so several instances starting at once apply each migration once. It is
// idempotent. The schema, when set, must exist.
func Migrate(ctx context.Context, db DB, opts Options) error {
	return pgmigrate.Apply(ctx, db, pgmigrate.Set{Name: "mfapg", Table: "mfa_schema_migrations", FS: migrations, Dir: "migrations"}, opts.Schema)
}

// SavePending implements mfa.Store.
func (s *Store) SavePending(ctx context.Context, e mfa.Enrolment) error {
	if e.State != mfa.StatePending {
		return fmt.Errorf("mfapg: SavePending with state %q", e.State)
	}
	tag, err := s.db.Exec(ctx, `INSERT INTO `+s.totp+` AS t
		(app_id, account_id, enrolment_id, state, sealed_secret, algorithm, digits, period_seconds, created_at)
		VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8)
		ON CONFLICT (app_id, account_id) DO UPDATE SET
			enrolment_id = EXCLUDED.enrolment_id, state = 'pending', sealed_secret = EXCLUDED.sealed_secret,
			algorithm = EXCLUDED.algorithm, digits = EXCLUDED.digits, period_seconds = EXCLUDED.period_seconds,
			created_at = EXCLUDED.created_at, activated_at = NULL, last_step = -1, last_used_at = NULL
		WHERE t.state = 'pending'`,
		e.TenantID, e.AccountID, e.ID, e.SealedSecret, string(e.Algorithm), e.Digits, e.PeriodSeconds, e.CreatedAt)
	if err != nil {
		return fmt.Errorf("mfapg: save enrolment: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return mfa.ErrAlreadyEnrolled
	}
	return nil
}

// Enrolment implements mfa.Store.
func (s *Store) Enrolment(ctx context.Context, tenantID, accountID string) (mfa.Enrolment, error) {
	e := mfa.Enrolment{TenantID: tenantID, AccountID: accountID}
	var state, alg string
	var activated *time.Time
	err := s.db.QueryRow(ctx, `SELECT enrolment_id, state, sealed_secret, algorithm, digits, period_seconds,
			created_at, activated_at, last_step
		FROM `+s.totp+` WHERE app_id = $1 AND account_id = $2`, tenantID, accountID).
		Scan(&e.ID, &state, &e.SealedSecret, &alg, &e.Digits, &e.PeriodSeconds, &e.CreatedAt, &activated, &e.LastStep)
	if errors.Is(err, pgx.ErrNoRows) {
		return mfa.Enrolment{}, mfa.ErrNotEnrolled
	}
	if err != nil {
		return mfa.Enrolment{}, fmt.Errorf("mfapg: load enrolment: %w", err)
	}
	e.State, e.Algorithm = mfa.State(state), mfa.Algorithm(alg)
	e.CreatedAt = e.CreatedAt.UTC()
	if activated != nil {
		e.ActivatedAt = activated.UTC()
	}
	return e, nil
}

// Activate implements mfa.Store, in one transaction.
func (s *Store) Activate(ctx context.Context, p mfa.ActivateParams) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE `+s.totp+` SET state = 'active', activated_at = $4, last_step = $5
			WHERE app_id = $1 AND account_id = $2 AND enrolment_id = $3 AND state = 'pending'`,
			p.TenantID, p.AccountID, p.EnrolmentID, p.At, p.Step)
		if err != nil {
			return fmt.Errorf("mfapg: activate enrolment: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return mfa.ErrNotEnrolled
		}
		return s.replaceCodes(ctx, tx, p.TenantID, p.AccountID, p.RecoveryHashes)
	})
}

func (s *Store) replaceCodes(ctx context.Context, tx pgx.Tx, tenantID, accountID string, hashes [][]byte) error {
	if _, err := tx.Exec(ctx, `DELETE FROM `+s.codes+` WHERE app_id = $1 AND account_id = $2`, tenantID, accountID); err != nil {
		return fmt.Errorf("mfapg: delete recovery codes: %w", err)
	}
	if len(hashes) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO `+s.codes+` (app_id, account_id, code_hash)
		SELECT $1, $2, h FROM unnest($3::bytea[]) AS h`, tenantID, accountID, hashes)
	if err != nil {
		return fmt.Errorf("mfapg: insert recovery codes: %w", err)
	}
	return nil
}

// AdvanceStep implements mfa.Store with one conditional UPDATE: under
// concurrent calls with one step, Postgres's row lock lets the first
// update through and re-checks the condition for the others, which then
// match no row.
func (s *Store) AdvanceStep(ctx context.Context, p mfa.AdvanceParams) error {
	tag, err := s.db.Exec(ctx, `UPDATE `+s.totp+` SET last_step = $4, last_used_at = $5
		WHERE app_id = $1 AND account_id = $2 AND enrolment_id = $3 AND state = 'active' AND last_step < $4`,
		p.TenantID, p.AccountID, p.EnrolmentID, p.Step, p.At)
	if err != nil {
		return fmt.Errorf("mfapg: advance time step: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}

	var active bool
	err = s.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+s.totp+`
		WHERE app_id = $1 AND account_id = $2 AND enrolment_id = $3 AND state = 'active')`,
		p.TenantID, p.AccountID, p.EnrolmentID).Scan(&active)
	if err != nil {
		return fmt.Errorf("mfapg: check enrolment: %w", err)
	}
	if !active {
		return mfa.ErrNotEnrolled
	}
	return mfa.ErrReplayed
}

// ReplaceRecoveryCodes implements mfa.Store, in one transaction that
// locks the enrolment row.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, p mfa.RecoveryCodesParams) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM `+s.totp+`
			WHERE app_id = $1 AND account_id = $2 AND enrolment_id = $3 AND state = 'active' FOR UPDATE`,
			p.TenantID, p.AccountID, p.EnrolmentID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return mfa.ErrNotEnrolled
		}
		if err != nil {
			return fmt.Errorf("mfapg: lock enrolment: %w", err)
		}
		return s.replaceCodes(ctx, tx, p.TenantID, p.AccountID, p.Hashes)
	})
}

// UseRecoveryCode implements mfa.Store: the code is spent by an UPDATE
// that matches only while used_at is NULL.
func (s *Store) UseRecoveryCode(ctx context.Context, p mfa.UseRecoveryCodeParams) (int, error) {
	tag, err := s.db.Exec(ctx, `UPDATE `+s.codes+` SET used_at = $4
		WHERE app_id = $1 AND account_id = $2 AND code_hash = $3 AND used_at IS NULL`,
		p.TenantID, p.AccountID, p.Hash, p.At)
	if err != nil {
		return 0, fmt.Errorf("mfapg: use recovery code: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return 0, mfa.ErrInvalidCode
	}
	return s.RecoveryCodesLeft(ctx, p.TenantID, p.AccountID)
}

// RecoveryCodesLeft implements mfa.Store.
func (s *Store) RecoveryCodesLeft(ctx context.Context, tenantID, accountID string) (int, error) {
	var n int
	err := s.db.QueryRow(ctx, `SELECT count(*) FROM `+s.codes+`
		WHERE app_id = $1 AND account_id = $2 AND used_at IS NULL`, tenantID, accountID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("mfapg: count recovery codes: %w", err)
	}
	return n, nil
}

// Delete implements mfa.Store, in one transaction.
func (s *Store) Delete(ctx context.Context, tenantID, accountID string) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM `+s.totp+` WHERE app_id = $1 AND account_id = $2`, tenantID, accountID); err != nil {
			return fmt.Errorf("mfapg: delete enrolment: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM `+s.codes+` WHERE app_id = $1 AND account_id = $2`, tenantID, accountID); err != nil {
			return fmt.Errorf("mfapg: delete recovery codes: %w", err)
		}
		return nil
	})
}

// SetPolicy implements mfa.PolicyStore. The grace period is kept to the
// microsecond.
func (s *Store) SetPolicy(ctx context.Context, tenantID string, p mfa.Policy) error {
	_, err := s.db.Exec(ctx, `INSERT INTO `+s.policies+` (app_id, required, grace_period_us, updated_at)
		VALUES ($1, $2, $3, now())
		ON CONFLICT (app_id) DO UPDATE SET required = EXCLUDED.required,
			grace_period_us = EXCLUDED.grace_period_us, updated_at = now()`,
		tenantID, p.Required, p.GracePeriod.Microseconds())
	if err != nil {
		return fmt.Errorf("mfapg: save policy: %w", err)
	}
	return nil
}

// Policy implements mfa.PolicyStore.
func (s *Store) Policy(ctx context.Context, tenantID string) (mfa.Policy, error) {
	var p mfa.Policy
	var us int64
	err := s.db.QueryRow(ctx, `SELECT required, grace_period_us FROM `+s.policies+` WHERE app_id = $1`, tenantID).
		Scan(&p.Required, &us)
	if errors.Is(err, pgx.ErrNoRows) {
		return mfa.Policy{}, mfa.ErrNoPolicy
	}
	if err != nil {
		return mfa.Policy{}, fmt.Errorf("mfapg: load policy: %w", err)
	}
	p.GracePeriod = time.Duration(us) * time.Microsecond
	return p, nil
}
