package pgmigrate_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/chatsdk/compliance/internal/pgmigrate"
	"github.com/chatsdk/compliance/internal/pgtest"
)

func set(files fstest.MapFS) pgmigrate.Set {
	return pgmigrate.Set{Name: "testpg", Table: "test_migrations", FS: files, Dir: "migrations"}
}

var twoFiles = fstest.MapFS{
	"migrations/0001_init.sql": {Data: []byte("CREATE TABLE t (id int PRIMARY KEY)")},
	"migrations/0002_more.sql": {Data: []byte("INSERT INTO t VALUES (1)")},
}

func TestApplyOnceInOrder(t *testing.T) {
	db := pgtest.New(t)
	ctx := t.Context()
	for range 2 {
		if err := pgmigrate.Apply(ctx, db.Pool, set(twoFiles), db.Schema); err != nil {
			t.Fatal(err)
		}
	}
	var rows, versions int
	if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM test_migrations").Scan(&versions); err != nil {
		t.Fatal(err)
	}
	if rows != 1 || versions != 2 {
		t.Fatalf("after two runs: %d rows, %d versions; want 1 and 2", rows, versions)
	}
}

func TestConcurrentInstancesApplyOnce(t *testing.T) {
	db := pgtest.New(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		pool := db.NewPool(t, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- pgmigrate.Apply(t.Context(), pool, set(twoFiles), db.Schema)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	var rows int
	if err := db.Pool.QueryRow(t.Context(), "SELECT count(*) FROM t").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 1 {
		t.Fatalf("%d rows, want 1: a migration ran twice", rows)
	}
}

func TestFailedMigrationLeavesNothing(t *testing.T) {
	db := pgtest.New(t)
	ctx := t.Context()
	bad := fstest.MapFS{
		"migrations/0001_init.sql": {Data: []byte("CREATE TABLE t (id int)")},
		"migrations/0002_bad.sql":  {Data: []byte("SELECT no_such_function()")},
	}
	if err := pgmigrate.Apply(ctx, db.Pool, set(bad), db.Schema); err == nil {
		t.Fatal("a failing migration reported success")
	}
	var n int
	if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1", db.Schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d tables left after a failed run, want 0", n)
	}
}

func TestUnnumberedFileRefused(t *testing.T) {
	db := pgtest.New(t)
	files := fstest.MapFS{"migrations/init.sql": {Data: []byte("SELECT 1")}}
	if err := pgmigrate.Apply(t.Context(), db.Pool, set(files), db.Schema); !errors.Is(err, pgmigrate.ErrName) {
		t.Fatalf("error %v, want ErrName", err)
	}
}

func TestCreateSchema(t *testing.T) {
	db := pgtest.New(t)
	ctx := t.Context()
	schema := db.Schema + "_new"
	t.Cleanup(func() { _, _ = db.Pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })

	s := set(twoFiles)
	if err := pgmigrate.Apply(ctx, db.Pool, s, schema); err == nil {
		t.Fatal("a missing schema was accepted without CreateSchema")
	}
	s.CreateSchema = true
	if err := pgmigrate.Apply(ctx, db.Pool, s, schema); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+schema+".t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d rows in the created schema, want 1", n)
	}
}
