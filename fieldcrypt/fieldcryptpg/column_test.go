package fieldcryptpg_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/chatsdk/compliance/fieldcrypt"
	"github.com/chatsdk/compliance/fieldcrypt/fieldcryptpg"
	"github.com/chatsdk/compliance/fieldcrypt/fieldcrypttest"
	"github.com/chatsdk/compliance/internal/pgtest"
)

const messageDDL = `CREATE TABLE message (
	app_id     text   NOT NULL,
	id         bigint NOT NULL,
	scope      text   NOT NULL DEFAULT '',
	text       text,
	text_enc   bytea,
	PRIMARY KEY (app_id, id)
)`

func newMessageTable(t *testing.T) (*pgtest.DB, *fieldcryptpg.Column) {
	t.Helper()
	db := pgtest.New(t)
	if _, err := db.Pool.Exec(context.Background(), messageDDL); err != nil {
		t.Fatal(err)
	}
	col, err := fieldcryptpg.NewColumn(db.Pool, fieldcryptpg.ColumnConfig{
		Table: "message", IDType: "bigint", Scope: "scope", Ciphertext: "text_enc", Plaintext: "text",
	})
	if err != nil {
		t.Fatal(err)
	}
	return db, col
}

func TestColumnConformance(t *testing.T) {
	fieldcrypttest.RunRows(t, func(t *testing.T) fieldcrypttest.Table {
		db, col := newMessageTable(t)
		ctx := context.Background()
		return fieldcrypttest.Table{
			Rows:  col,
			Plain: col,
			Put: func(t *testing.T, s fieldcrypt.Scope, id string, ct, pt []byte) {
				var plain *string
				if pt != nil {
					p := string(pt)
					plain = &p
				}
				_, err := db.Pool.Exec(ctx, `INSERT INTO message (app_id, id, scope, text, text_enc) VALUES ($1, $2, $3, $4, $5)
					ON CONFLICT (app_id, id) DO UPDATE SET scope = EXCLUDED.scope, text = EXCLUDED.text, text_enc = EXCLUDED.text_enc`,
					s.Tenant, mustInt(t, id), s.Name, plain, ct)
				if err != nil {
					t.Fatal(err)
				}
			},
			Get: func(t *testing.T, s fieldcrypt.Scope, id string) ([]byte, []byte) {
				var (
					ct    []byte
					plain *string
				)
				err := db.Pool.QueryRow(ctx, `SELECT text_enc, text FROM message WHERE app_id = $1 AND scope = $2 AND id = $3`,
					s.Tenant, s.Name, mustInt(t, id)).Scan(&ct, &plain)
				if err != nil {
					t.Fatal(err)
				}
				if plain == nil {
					return ct, nil
				}
				return ct, []byte(*plain)
			},
		}
	})
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestColumnWithoutScopeColumn(t *testing.T) {
	db, _ := newMessageTable(t)
	col, err := fieldcryptpg.NewColumn(db.Pool, fieldcryptpg.ColumnConfig{Table: "message", IDType: "bigint", Ciphertext: "text_enc"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = col.Stale(context.Background(), fieldcrypt.StaleParams{Scope: fieldcrypt.Scope{Tenant: "a", Name: "p"}, Limit: 1, Prefix: fieldcrypt.KeyPrefix(1)})
	if !errors.Is(err, fieldcryptpg.ErrNoScopeColumn) {
		t.Fatalf("got %v, want ErrNoScopeColumn", err)
	}
	if _, err := col.CountPlain(context.Background(), fieldcrypt.Scope{Tenant: "a"}); !errors.Is(err, fieldcrypt.ErrConfig) {
		t.Fatalf("backfill without a plaintext column: got %v, want ErrConfig", err)
	}
	if _, err := fieldcryptpg.NewColumn(db.Pool, fieldcryptpg.ColumnConfig{Table: "message", Ciphertext: "c", IDType: "int; DROP TABLE x"}); !errors.Is(err, fieldcrypt.ErrConfig) {
		t.Fatalf("IDType with punctuation: got %v, want ErrConfig", err)
	}
	if _, err := fieldcryptpg.NewColumn(db.Pool, fieldcryptpg.ColumnConfig{Table: "message"}); !errors.Is(err, fieldcrypt.ErrConfig) {
		t.Fatalf("no ciphertext column: got %v, want ErrConfig", err)
	}
}

// Integer ids whose text order differs from their numeric order must page
// in numeric order, or a pass skips rows.
func TestColumnPagesIntegerIDsNumerically(t *testing.T) {
	db, col := newMessageTable(t)
	ctx := context.Background()
	for _, id := range []int64{9, 10, 100, 2} {
		_, err := db.Pool.Exec(ctx, `INSERT INTO message (app_id, id, text, text_enc) VALUES ('a', $1, 'p', $2)`, id, fieldcrypt.KeyPrefix(8))
		if err != nil {
			t.Fatal(err)
		}
	}
	var got, gotPlain []string
	after, afterPlain := "", ""
	for range 6 {
		rows, err := col.Stale(ctx, fieldcrypt.StaleParams{Scope: fieldcrypt.Scope{Tenant: "a"}, After: after, Limit: 1, Prefix: fieldcrypt.KeyPrefix(7)})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 1 {
			got = append(got, rows[0].ID)
			after = rows[0].ID
		}
		plain, err := col.Plain(ctx, fieldcrypt.PlainParams{Scope: fieldcrypt.Scope{Tenant: "a"}, After: afterPlain, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(plain) == 1 {
			gotPlain = append(gotPlain, plain[0].ID)
			afterPlain = plain[0].ID
		}
	}
	want := "[2 9 10 100]"
	if fmt.Sprint(got) != want || fmt.Sprint(gotPlain) != want {
		t.Fatalf("paged ids %v and %v, want %s", got, gotPlain, want)
	}
}
