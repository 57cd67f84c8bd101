package chat

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/auditpg"
	"github.com/chatsdk/compliance/fieldcrypt/fieldcryptpg"
	"github.com/chatsdk/compliance/integrity"
	"github.com/chatsdk/compliance/integrity/integritypg"
	"github.com/chatsdk/compliance/internal/canon"
	"github.com/chatsdk/compliance/lockout/lockoutpg"
	"github.com/chatsdk/compliance/retention"
	"github.com/chatsdk/compliance/retention/retentionpg"
	"github.com/chatsdk/compliance/session/mfa/mfapg"
	"github.com/chatsdk/compliance/session/sessionpg"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the server's own schema as numbered SQL files, with
// {{schema}} standing for the schema and a dot, or for nothing.
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrations, "migrations")
	return sub
}

// NewPostgresBackend migrates every package's tables and the server's own
// in schema (empty: the connection's search_path) and returns a Backend
// on pool. Several instances may start at once: every migration runs
// under an advisory lock.
func NewPostgresBackend(ctx context.Context, pool *pgxpool.Pool, schema string) (*Backend, error) {
	if err := migrate(ctx, pool, schema); err != nil {
		return nil, fmt.Errorf("chat: migrate: %w", err)
	}

	as, err := auditpg.New(pool, auditpg.Config{Schema: schema})
	if err != nil {
		return nil, err
	}
	if err := as.Migrate(ctx, pool); err != nil {
		return nil, fmt.Errorf("auditpg: migrate: %w", err)
	}
	if err := fieldcryptpg.Migrate(ctx, pool, fieldcryptpg.Config{Schema: schema}); err != nil {
		return nil, fmt.Errorf("fieldcryptpg: migrate: %w", err)
	}
	icfg := integritypg.Config{Schema: schema}
	if err := integritypg.Migrate(ctx, pool, icfg); err != nil {
		return nil, fmt.Errorf("integritypg: migrate: %w", err)
	}
	if err := retentionpg.Migrate(ctx, pool, retentionpg.Config{Schema: schema}); err != nil {
		return nil, fmt.Errorf("retentionpg: migrate: %w", err)
	}
	rs, err := retentionpg.New(pool, retentionpg.Config{Schema: schema})
	if err != nil {
		return nil, err
	}
	if err := sessionpg.Migrate(ctx, pool, sessionpg.Config{Schema: schema}); err != nil {
		return nil, fmt.Errorf("sessionpg: migrate: %w", err)
	}
	ss, err := sessionpg.New(pool, sessionpg.Config{Schema: schema})
	if err != nil {
		return nil, err
	}
	if err := mfapg.Migrate(ctx, pool, mfapg.Options{Schema: schema}); err != nil {
		return nil, fmt.Errorf("mfapg: migrate: %w", err)
	}
	if err := lockoutpg.Migrate(ctx, pool, lockoutpg.Options{Schema: schema}); err != nil {
		return nil, fmt.Errorf("lockoutpg: migrate: %w", err)
	}
	ls, err := lockoutpg.New(pool, lockoutpg.Options{Schema: schema})
	if err != nil {
		return nil, err
	}

	table := MessagesTable
	if schema != "" {
		table = schema + "." + MessagesTable
	}
	return &Backend{
		Name:      "postgres",
		Chat:      &PGStore{db: pool, schema: schema},
		Audit:     as,
		Keysets:   fieldcryptpg.New(pool, fieldcryptpg.Config{Schema: schema}),
		Integrity: integritypg.New(pool, icfg),
		Retention: rs,
		Sessions:  ss,
		MFA:       mfapg.New(pool, mfapg.Options{Schema: schema}),
		Lockout:   ls,
		Target:    messagesTarget(table),
		Forget: func(ctx context.Context, sealer *integrity.Sealer, d retention.Deleted) error {
			// Forget the tags in the batch's own transaction, so they go
			// exactly when the rows go.
			st := integritypg.New(pool, icfg)
			if tx, ok := retentionpg.Tx(ctx); ok {
				st = st.With(tx)
			}
			_, err := sealer.WithStore(st).Forget(ctx, MessagesTable, d.AppID, d.IDs)
			return err
		},
		AppendInBatch: func(ctx context.Context, stream string, events []audit.Event) (bool, error) {
			tx, ok := retentionpg.Tx(ctx)
			if !ok {
				return false, nil
			}
			_, err := as.AppendTx(ctx, tx, stream, events)
			return true, err
		},
		Verify: func(ctx context.Context, sealer *integrity.Sealer, report func(context.Context, integrity.Finding)) (bool, error) {
			v, err := integritypg.NewVerifier(integritypg.VerifierConfig{
				Store:  integritypg.New(pool, icfg),
				Sealer: sealer,
				Tables: []integritypg.Table{messagesTable(schema)},
				OnFinding: func(ctx context.Context, _ string, f integrity.Finding) {
					report(ctx, f)
				},
			})
			if err != nil {
				return false, err
			}
			res, err := v.Run(ctx)
			return res.OK(), err
		},
		Close: func() {},
	}, nil
}

// messagesTable declares chat_messages to the integrity verifier, with the
// columns in the order messageRecord seals them.
func messagesTable(schema string) integritypg.Table {
	return integritypg.Table{
		Domain: MessagesTable,
		Schema: schema,
		Name:   MessagesTable,
		Columns: []integritypg.Column{
			{Name: "channel_id", Kind: canon.KindString},
			{Name: "user_id", Kind: canon.KindString},
			{Name: "body", Kind: canon.KindBytes},
			{Name: "created_at", Kind: canon.KindTime},
		},
	}
}

func qualify(schema string) string {
	if schema == "" {
		return ""
	}
	return pgx.Identifier{schema}.Sanitize() + "."
}

// migrate applies the server's own migrations in one transaction under an
// advisory lock, recording each in chat_schema_migrations.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	q := qualify(schema)
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()

	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('chatserver.migrate'))`); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+q+`chat_schema_migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return err
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		base := name[strings.LastIndex(name, "/")+1:]
		v, err := strconv.Atoi(base[:strings.IndexByte(base, '_')])
		if err != nil {
			return fmt.Errorf("migration %s: bad number", base)
		}
		var done bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+q+`chat_schema_migrations WHERE version = $1)`, v).Scan(&done); err != nil {
			return err
		}
		if done {
			continue
		}
		sql, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, strings.ReplaceAll(string(sql), "{{schema}}", q)); err != nil {
			return fmt.Errorf("migration %s: %w", base, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+q+`chat_schema_migrations (version) VALUES ($1)`, v); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// PGStore is the Store on Postgres.
type PGStore struct {
	db     *pgxpool.Pool
	schema string
}

var _ Store = (*PGStore)(nil)

func (p *PGStore) t(name string) string { return qualify(p.schema) + name }

// Ping implements Store.
func (p *PGStore) Ping(ctx context.Context) error { return p.db.Ping(ctx) }

func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func isForeignKey(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

// CreateUser implements Store. An advisory lock on the app orders
// concurrent sign-ups, so exactly one first user becomes the owner.
func (p *PGStore) CreateUser(ctx context.Context, u User) (User, error) {
	err := pgx.BeginFunc(ctx, p.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('chatserver.app'), hashtext($1))`, u.AppID); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `
			INSERT INTO `+p.t("chat_users")+` (app_id, id, username, password_hash, role, created_at)
			SELECT $1, $2, $3, $4,
			       CASE WHEN EXISTS (SELECT 1 FROM `+p.t("chat_users")+` WHERE app_id = $1) THEN 'member' ELSE 'owner' END,
			       $5
			RETURNING role`, u.AppID, u.ID, u.Username, u.PasswordHash, u.CreatedAt).Scan(&u.Role)
	})
	if isUnique(err) {
		return User{}, ErrExists
	}
	if err != nil {
		return User{}, err
	}
	return u, nil
}

func (p *PGStore) user(ctx context.Context, where string, app, v string) (User, error) {
	var u User
	err := p.db.QueryRow(ctx, `SELECT app_id, id, username, password_hash, role, created_at FROM `+p.t("chat_users")+` WHERE app_id = $1 AND `+where+` = $2`, app, v).
		Scan(&u.AppID, &u.ID, &u.Username, &u.PasswordHash, &u.Role, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, ErrNotFound
	}
	return u, err
}

// UserByName implements Store.
func (p *PGStore) UserByName(ctx context.Context, app, username string) (User, error) {
	return p.user(ctx, "username", app, username)
}

// UserByID implements Store.
func (p *PGStore) UserByID(ctx context.Context, app, id string) (User, error) {
	return p.user(ctx, "id", app, id)
}

// SetPasswordHash implements Store.
func (p *PGStore) SetPasswordHash(ctx context.Context, app, id, hash string) error {
	tag, err := p.db.Exec(ctx, `UPDATE `+p.t("chat_users")+` SET password_hash = $3 WHERE app_id = $1 AND id = $2`, app, id, hash)
	if err == nil && tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return err
}

// Apps implements Store.
func (p *PGStore) Apps(ctx context.Context) ([]string, error) {
	rows, err := p.db.Query(ctx, `SELECT DISTINCT app_id FROM `+p.t("chat_users")+` ORDER BY app_id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// CreateChannel implements Store.
func (p *PGStore) CreateChannel(ctx context.Context, c Channel) error {
	return pgx.BeginFunc(ctx, p.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO `+p.t("chat_channels")+` (app_id, id, name, created_by, created_at) VALUES ($1, $2, $3, $4, $5)`,
			c.AppID, c.ID, c.Name, c.CreatedBy, c.CreatedAt); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO `+p.t("chat_members")+` (app_id, channel_id, user_id) VALUES ($1, $2, $3)`, c.AppID, c.ID, c.CreatedBy)
		return err
	})
}

// Channel implements Store.
func (p *PGStore) Channel(ctx context.Context, app, id string) (Channel, error) {
	var c Channel
	err := p.db.QueryRow(ctx, `SELECT app_id, id, name, created_by, created_at FROM `+p.t("chat_channels")+` WHERE app_id = $1 AND id = $2`, app, id).
		Scan(&c.AppID, &c.ID, &c.Name, &c.CreatedBy, &c.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Channel{}, ErrNotFound
	}
	return c, err
}

// AddMember implements Store.
func (p *PGStore) AddMember(ctx context.Context, app, channel, user string) error {
	_, err := p.db.Exec(ctx, `INSERT INTO `+p.t("chat_members")+` (app_id, channel_id, user_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, app, channel, user)
	if isForeignKey(err) {
		return ErrNotFound
	}
	return err
}

// IsMember implements Store.
func (p *PGStore) IsMember(ctx context.Context, app, channel, user string) (bool, error) {
	var ok bool
	err := p.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+p.t("chat_members")+` WHERE app_id = $1 AND channel_id = $2 AND user_id = $3)`, app, channel, user).Scan(&ok)
	return ok, err
}

// CreateMessage implements Store: the row and its integrity tag commit in
// one transaction.
func (p *PGStore) CreateMessage(ctx context.Context, m Message, seal SealFunc) error {
	return pgx.BeginFunc(ctx, p.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO `+p.t("chat_messages")+` (id, app_id, channel_id, user_id, body, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			m.ID, m.AppID, m.ChannelID, m.UserID, m.Body, m.CreatedAt); err != nil {
			return err
		}
		return seal(ctx, integritypg.New(tx, integritypg.Config{Schema: p.schema}))
	})
}

// Messages implements Store.
func (p *PGStore) Messages(ctx context.Context, app, channel string, limit int) ([]Message, error) {
	rows, err := p.db.Query(ctx, `
		SELECT id, app_id, channel_id, user_id, body, created_at FROM (
			SELECT * FROM `+p.t("chat_messages")+` WHERE app_id = $1 AND channel_id = $2
			ORDER BY created_at DESC, id DESC LIMIT $3
		) newest ORDER BY created_at, id`, app, channel, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Message, error) {
		var m Message
		err := r.Scan(&m.ID, &m.AppID, &m.ChannelID, &m.UserID, &m.Body, &m.CreatedAt)
		return m, err
	})
}
