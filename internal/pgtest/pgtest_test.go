package pgtest

import (
	"context"
	"strings"
	"sync"
	"testing"
)

func TestDecide(t *testing.T) {
	cases := []struct {
		name, url, ci string
		wantMsg       string
		wantFail      bool
	}{
		{name: "url set", url: "postgres://x", ci: "true"},
		{name: "unset, not CI", wantMsg: EnvURL},
		{name: "unset, CI", ci: "true", wantMsg: EnvURL, wantFail: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			url, msg, fail := decide(c.url, c.ci)
			if url != c.url || fail != c.wantFail {
				t.Fatalf("decide = %q, %q, %v; want url %q, fail %v", url, msg, fail, c.url, c.wantFail)
			}
			if c.wantMsg == "" && msg != "" || !strings.Contains(msg, c.wantMsg) {
				t.Fatalf("message %q does not name %q", msg, c.wantMsg)
			}
		})
	}
}

func TestNewGivesAnIsolatedSchema(t *testing.T) {
	ctx := context.Background()
	var schema string

	t.Run("inner", func(t *testing.T) {
		db := New(t)
		schema = db.Schema

		if _, err := db.Pool.Exec(ctx, "CREATE TABLE t (id int)"); err != nil {
			t.Fatal(err)
		}
		var got string
		if err := db.Pool.QueryRow(ctx, "SELECT table_schema FROM information_schema.tables WHERE table_name = 't' AND table_schema = current_schema()").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != db.Schema {
			t.Fatalf("unqualified table landed in %q, want %q", got, db.Schema)
		}

		other := db.NewPool(t, nil)
		if _, err := other.Exec(ctx, "INSERT INTO t VALUES (1)"); err != nil {
			t.Fatalf("second pool does not see the schema: %v", err)
		}
	})
	if t.Skipped() || schema == "" {
		return
	}

	// After the inner test's cleanups, the schema is gone.
	db := New(t)
	var n int
	if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("schema %s still exists after its test ended", schema)
	}
}

func TestSchemasDoNotCollide(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	for i := 0; i < 5; i++ {
		db := New(t)
		mu.Lock()
		if seen[db.Schema] {
			t.Fatalf("schema %s handed out twice", db.Schema)
		}
		seen[db.Schema] = true
		mu.Unlock()
	}
}
