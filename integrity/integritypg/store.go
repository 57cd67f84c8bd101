package integritypg

import (
	"context"
	"embed"
	"errors"
	"fmt"

	"github.com/chatsdk/compliance/integrity"
	"github.com/chatsdk/compliance/internal/pgmigrate"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Querier is what the store needs of a database handle. A *pgxpool.Pool, a
// *pgx.Conn and a pgx.Tx all satisfy it, so the store can join the
// caller's transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Config configures a [Store] and [Migrate].
type Config struct {
	// Schema holds the integrity_… tables. Defaults to the connection's
	// search_path.
	Schema string
}

// ErrSchema means a declared table does not match the database, such as
// a protected column whose type does not fit its declared kind.
var ErrSchema = errors.New("integritypg: table does not match its declaration")

// Store is an integrity.Store on Postgres: tags in integrity_tags, one row
// per protected row, and digests in integrity_digests. It is safe for
// concurrent use by as many instances as share the database: an update
// locks the tag rows it touches and the digests it changes, each in key
// order; row locks live in the tuples, so a batch of any size can seal
// without exhausting the server's lock table.
type Store struct {
	q       Querier
	tags    string
	digests string
	finds   string
	runs    string
}

var (
	_ integrity.Store       = (*Store)(nil)
	_ integrity.BatchReader = (*Store)(nil)
)

// New returns a Store on q. Run [Migrate] first.
func New(q Querier, cfg Config) *Store {
	name := func(t string) string {
		if cfg.Schema == "" {
			return pgx.Identifier{t}.Sanitize()
		}
		return pgx.Identifier{cfg.Schema, t}.Sanitize()
	}
	return &Store{q: q, tags: name("integrity_tags"), digests: name("integrity_digests"),
		finds: name("integrity_findings"), runs: name("integrity_runs")}
}

// With returns a copy of the store that runs its statements on q, such as
// the transaction that writes the protected row, so that the tag and the
// digest update commit or roll back with it.
func (s *Store) With(q Querier) *Store {
	c := *s
	c.q = q
	return &c
}

// Migrate creates or updates the integrity tables in cfg.Schema. It is
// idempotent and safe to call from several instances at once: the
// migrations run in one transaction under an advisory lock.
func Migrate(ctx context.Context, q Querier, cfg Config) error {
	return pgmigrate.Apply(ctx, q, pgmigrate.Set{Name: "integritypg", Table: "integrity_migrations", FS: migrations, Dir: "migrations"}, cfg.Schema)
}

// Update runs fn in a transaction (a savepoint when the store is bound to
// the caller's transaction).
func (s *Store) Update(ctx context.Context, fn func(ctx context.Context, tx integrity.Tx) error) error {
	tx, err := s.q.Begin(ctx)
	if err != nil {
		return fmt.Errorf("integritypg: begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit

	if err := fn(ctx, &storeTx{s: s, tx: tx}); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("integritypg: commit: %w", err)
	}
	return nil
}

type storeTx struct {
	s  *Store
	tx pgx.Tx
}

func keyArrays(keys []integrity.Key) (d, t, i []string) {
	d, t, i = make([]string, len(keys)), make([]string, len(keys)), make([]string, len(keys))
	for n, k := range keys {
		d[n], t[n], i[n] = k.Domain, k.Tenant, k.ID
	}
	return d, t, i
}

func (t *storeTx) Lock(ctx context.Context, keys []integrity.Key) ([]integrity.Sealed, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	d, tn, id := keyArrays(keys)
	rows, err := t.tx.Query(ctx, `SELECT domain, app_id, row_id, scope, key_id, tag FROM `+t.s.tags+`
		WHERE (domain, app_id, row_id) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))
		ORDER BY domain, app_id, row_id FOR UPDATE`, d, tn, id)
	if err != nil {
		return nil, fmt.Errorf("integritypg: lock tags: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanSealed)
	if err != nil {
		return nil, fmt.Errorf("integritypg: lock tags: %w", err)
	}
	return out, nil
}

func scanSealed(row pgx.CollectableRow) (integrity.Sealed, error) {
	var s integrity.Sealed
	var keyID int64
	err := row.Scan(&s.Domain, &s.Tenant, &s.ID, &s.Scope, &keyID, &s.Tag)
	s.KeyID = uint32(keyID)
	return s, err
}

// Put inserts the rows that are new and locks, then updates, the ones
// that exist, so each new row is written once. A key that a concurrent
// update deletes between the two steps is tried again.
func (t *storeTx) Put(ctx context.Context, rows []integrity.Sealed) ([]integrity.Sealed, error) {
	byKey := make(map[integrity.Key]integrity.Sealed, len(rows))
	for _, r := range rows {
		byKey[r.Key] = r
	}
	var old []integrity.Sealed
	pending := rows
	for len(pending) > 0 {
		inserted, err := t.insertNew(ctx, pending)
		if err != nil {
			return nil, err
		}
		var rest []integrity.Key
		for _, r := range pending {
			if !inserted[r.Key] {
				rest = append(rest, r.Key)
			}
		}
		locked, err := t.Lock(ctx, rest)
		if err != nil {
			return nil, err
		}
		old = append(old, locked...)
		have := make(map[integrity.Key]bool, len(locked))
		for _, l := range locked {
			have[l.Key] = true
		}
		pending = pending[:0:0]
		for _, k := range rest {
			if !have[k] {
				pending = append(pending, byKey[k]) // deleted meanwhile
			}
		}
	}
	if len(old) == 0 {
		return nil, nil
	}

	n := len(old)
	d, tn, id, sc := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	kid, tags := make([]int64, n), make([][]byte, n)
	for i, o := range old {
		r := byKey[o.Key]
		d[i], tn[i], id[i], sc[i], kid[i], tags[i] = r.Domain, r.Tenant, r.ID, r.Scope, int64(r.KeyID), r.Tag
	}
	_, err := t.tx.Exec(ctx, `UPDATE `+t.s.tags+` AS x SET scope = u.s, key_id = u.k, tag = u.g
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::bytea[]) AS u(d, t, i, s, k, g)
		WHERE x.domain = u.d AND x.app_id = u.t AND x.row_id = u.i`, d, tn, id, sc, kid, tags)
	if err != nil {
		return nil, fmt.Errorf("integritypg: update tags: %w", err)
	}
	return old, nil
}

// insertNew inserts the rows whose keys are not taken and returns their
// keys. A key another update is inserting waits for that update's end.
func (t *storeTx) insertNew(ctx context.Context, rows []integrity.Sealed) (map[integrity.Key]bool, error) {
	n := len(rows)
	d, tn, id, sc := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	kid, tags := make([]int64, n), make([][]byte, n)
	for i, r := range rows {
		d[i], tn[i], id[i], sc[i], kid[i], tags[i] = r.Domain, r.Tenant, r.ID, r.Scope, int64(r.KeyID), r.Tag
	}
	res, err := t.tx.Query(ctx, `INSERT INTO `+t.s.tags+` (domain, app_id, row_id, scope, key_id, tag)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::bytea[])
		ON CONFLICT DO NOTHING RETURNING domain, app_id, row_id`, d, tn, id, sc, kid, tags)
	if err != nil {
		return nil, fmt.Errorf("integritypg: insert tags: %w", err)
	}
	keys, err := pgx.CollectRows(res, func(row pgx.CollectableRow) (integrity.Key, error) {
		var k integrity.Key
		err := row.Scan(&k.Domain, &k.Tenant, &k.ID)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("integritypg: insert tags: %w", err)
	}
	out := make(map[integrity.Key]bool, len(keys))
	for _, k := range keys {
		out[k] = true
	}
	return out, nil
}

func (t *storeTx) Delete(ctx context.Context, keys []integrity.Key) error {
	if len(keys) == 0 {
		return nil
	}
	d, tn, id := keyArrays(keys)
	_, err := t.tx.Exec(ctx, `DELETE FROM `+t.s.tags+`
		WHERE (domain, app_id, row_id) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))`, d, tn, id)
	if err != nil {
		return fmt.Errorf("integritypg: delete tags: %w", err)
	}
	return nil
}

func (t *storeTx) Digest(ctx context.Context, k integrity.ScopeKey) (integrity.Digest, error) {
	// A placeholder row makes a new scope lockable; a concurrent creator
	// waits on it, then reads the committed digest.
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO `+t.s.digests+` (domain, app_id, scope, row_count, sum, key_id, tag)
		VALUES ($1, $2, $3, 0, $4, 0, '') ON CONFLICT DO NOTHING`, k.Domain, k.Tenant, k.Scope, make([]byte, 32))
	b.Queue(`SELECT row_count, sum, key_id, tag FROM `+t.s.digests+`
		WHERE domain = $1 AND app_id = $2 AND scope = $3 FOR UPDATE`, k.Domain, k.Tenant, k.Scope)
	br := t.tx.SendBatch(ctx, b)
	defer br.Close()

	if _, err := br.Exec(); err != nil {
		return integrity.Digest{}, fmt.Errorf("integritypg: lock digest: %w", err)
	}
	d := integrity.Digest{ScopeKey: k}
	if err := scanDigestTail(br.QueryRow(), &d); err != nil {
		return integrity.Digest{}, fmt.Errorf("integritypg: read digest: %w", err)
	}
	return d, br.Close()
}

func scanDigestTail(row pgx.Row, d *integrity.Digest) error {
	var count, keyID int64
	var sum []byte
	if err := row.Scan(&count, &sum, &keyID, &d.Tag); err != nil {
		return err
	}
	d.Count, d.KeyID = uint64(count), uint32(keyID)
	copy(d.Sum[:], sum)
	if len(sum) != len(d.Sum) {
		// A sum of the wrong length is tampering; make sure it cannot
		// verify by spoiling the tag.
		d.Tag = nil
		d.Count = ^uint64(0)
	}
	return nil
}

func (t *storeTx) PutDigest(ctx context.Context, d integrity.Digest) error {
	if d.Tag == nil {
		d.Tag = []byte{}
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO `+t.s.digests+` (domain, app_id, scope, row_count, sum, key_id, tag)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (domain, app_id, scope) DO UPDATE
		SET row_count = EXCLUDED.row_count, sum = EXCLUDED.sum, key_id = EXCLUDED.key_id, tag = EXCLUDED.tag`,
		d.Domain, d.Tenant, d.Scope, int64(d.Count), d.Sum[:], int64(d.KeyID), d.Tag)
	if err != nil {
		return fmt.Errorf("integritypg: put digest: %w", err)
	}
	return nil
}

// Sealed returns a row's tag, or integrity.ErrNotSealed.
func (s *Store) Sealed(ctx context.Context, k integrity.Key) (integrity.Sealed, error) {
	rows, err := s.q.Query(ctx, `SELECT domain, app_id, row_id, scope, key_id, tag FROM `+s.tags+`
		WHERE domain = $1 AND app_id = $2 AND row_id = $3`, k.Domain, k.Tenant, k.ID)
	if err != nil {
		return integrity.Sealed{}, fmt.Errorf("integritypg: read tag: %w", err)
	}
	out, err := pgx.CollectExactlyOneRow(rows, scanSealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return integrity.Sealed{}, integrity.ErrNotSealed
	}
	if err != nil {
		return integrity.Sealed{}, fmt.Errorf("integritypg: read tag: %w", err)
	}
	return out, nil
}

// SealedMany returns the tags held for keys in one statement; see
// [integrity.BatchReader].
func (s *Store) SealedMany(ctx context.Context, keys []integrity.Key) (map[integrity.Key]integrity.Sealed, error) {
	out := make(map[integrity.Key]integrity.Sealed, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	domains := make([]string, len(keys))
	tenants := make([]string, len(keys))
	ids := make([]string, len(keys))
	for i, k := range keys {
		domains[i], tenants[i], ids[i] = k.Domain, k.Tenant, k.ID
	}
	rows, err := s.q.Query(ctx, `SELECT t.domain, t.app_id, t.row_id, t.scope, t.key_id, t.tag
		FROM `+s.tags+` t
		JOIN (SELECT DISTINCT d, a, r FROM unnest($1::text[], $2::text[], $3::text[]) AS k(d, a, r)) k
		  ON t.domain = k.d AND t.app_id = k.a AND t.row_id = k.r`, domains, tenants, ids)
	if err != nil {
		return nil, fmt.Errorf("integritypg: read tags: %w", err)
	}
	got, err := pgx.CollectRows(rows, scanSealed)
	if err != nil {
		return nil, fmt.Errorf("integritypg: read tags: %w", err)
	}
	for _, g := range got {
		out[g.Key] = g
	}
	return out, nil
}

// List returns a page of a domain's tags, ordered by tenant and id.
func (s *Store) List(ctx context.Context, p integrity.ListParams) ([]integrity.Sealed, error) {
	if p.Limit <= 0 {
		p.Limit = 1000
	}
	rows, err := s.q.Query(ctx, `SELECT domain, app_id, row_id, scope, key_id, tag FROM `+s.tags+`
		WHERE domain = $1 AND (app_id, row_id) > ($2, $3) AND ($4::int8 = 0 OR key_id <> $4::int8)
		ORDER BY app_id, row_id LIMIT $5`, p.Domain, p.AfterTenant, p.AfterID, int64(p.ExceptKeyID), p.Limit)
	if err != nil {
		return nil, fmt.Errorf("integritypg: list tags: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanSealed)
	if err != nil {
		return nil, fmt.Errorf("integritypg: list tags: %w", err)
	}
	return out, nil
}

// Digests returns every digest of a domain, ordered by tenant and scope.
func (s *Store) Digests(ctx context.Context, domain string) ([]integrity.Digest, error) {
	rows, err := s.q.Query(ctx, `SELECT app_id, scope, row_count, sum, key_id, tag FROM `+s.digests+`
		WHERE domain = $1 ORDER BY app_id, scope`, domain)
	if err != nil {
		return nil, fmt.Errorf("integritypg: list digests: %w", err)
	}
	defer rows.Close()
	var out []integrity.Digest
	for rows.Next() {
		d := integrity.Digest{ScopeKey: integrity.ScopeKey{Domain: domain}}
		var count, keyID int64
		var sum []byte
		if err := rows.Scan(&d.Tenant, &d.Scope, &count, &sum, &keyID, &d.Tag); err != nil {
			return nil, fmt.Errorf("integritypg: list digests: %w", err)
		}
		d.Count, d.KeyID = uint64(count), uint32(keyID)
		copy(d.Sum[:], sum)
		if len(sum) != len(d.Sum) {
			d.Tag, d.Count = nil, ^uint64(0)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("integritypg: list digests: %w", err)
	}
	return out, nil
}

// KeyUsage counts tags and signed digests per key id, over all domains.
func (s *Store) KeyUsage(ctx context.Context) (map[uint32]int64, error) {
	rows, err := s.q.Query(ctx, `SELECT key_id, count(*) FROM `+s.tags+` GROUP BY key_id
		UNION ALL SELECT key_id, count(*) FROM `+s.digests+` WHERE tag <> '' GROUP BY key_id`)
	if err != nil {
		return nil, fmt.Errorf("integritypg: key usage: %w", err)
	}
	defer rows.Close()
	use := map[uint32]int64{}
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("integritypg: key usage: %w", err)
		}
		use[uint32(id)] += n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("integritypg: key usage: %w", err)
	}
	return use, nil
}

// ForgetHook returns the function a retention sweep's per-batch hook
// calls with its transaction q, the tenant, the table (the domain) and
// the ids it deleted: it forgets the rows through sealer on this store
// bound to q, so the digests change in the same transaction as the
// delete. It is idempotent.
func (s *Store) ForgetHook(sealer *integrity.Sealer) func(ctx context.Context, q Querier, tenant, table string, ids []string) error {
	return func(ctx context.Context, q Querier, tenant, table string, ids []string) error {
		_, err := sealer.WithStore(s.With(q)).Forget(ctx, table, tenant, ids)
		return err
	}
}
