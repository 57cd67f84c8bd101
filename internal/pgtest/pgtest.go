// Package pgtest gives tests a real Postgres database: a pool on a fresh
// schema of its own, dropped when the test ends.
//
// The server comes from the COMPLIANCE_TEST_DATABASE_URL environment
// variable, a pgx connection string such as
//
//	postgres://postgres@127.0.0.1:5432/test?sslmode=disable
//
// Without it a test that asks for a database is skipped with a message that
// names the variable; when CI is set as well, the test fails instead, so a
// CI run can never pass with its Postgres tests silently skipped.
//
// Each schema is named test_<random hex>, and every connection of the pools
// that [DB.NewPool] makes has its search_path set to it, so adapters under
// test can use unqualified table names or be told the schema explicitly.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// EnvURL is the environment variable that holds the test database URL.
const EnvURL = "COMPLIANCE_TEST_DATABASE_URL"

// EnvCI is the environment variable whose presence turns a missing
// database from a skip into a failure.
const EnvCI = "CI"

// URL returns the test database URL. When it is unset it skips t, or fails
// t when CI is set.
func URL(t testing.TB) string {
	t.Helper()
	url, msg, fail := decide(os.Getenv(EnvURL), os.Getenv(EnvCI))
	switch {
	case fail:
		t.Fatal(msg)
	case msg != "":
		t.Skip(msg)
	}
	return url
}

// decide is URL's policy, apart from the environment so it can be tested.
func decide(url, ci string) (string, string, bool) {
	if url != "" {
		return url, "", false
	}
	if ci != "" {
		return "", fmt.Sprintf("%s is not set and CI is: the Postgres tests must run in CI", EnvURL), true
	}
	return "", fmt.Sprintf("Postgres test skipped: set %s (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run it", EnvURL), false
}

// DB is a test's own schema on the test server.
type DB struct {
	// Pool is a pool whose connections use Schema as their search_path.
	Pool *pgxpool.Pool
	// Schema is the name of the test's schema.
	Schema string
	// URL is the server's connection string, without the schema.
	URL string
}

// New creates a schema for t and returns a pool on it. The schema and every
// pool made from it are dropped and closed when t ends. New skips or fails t
// as [URL] does when no database is configured.
func New(t testing.TB) *DB {
	t.Helper()
	url := URL(t)

	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	db := &DB{Schema: "test_" + hex.EncodeToString(b[:]), URL: url}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", EnvURL, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{db.Schema}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create schema: %v", err)
	}

	// Registered before the pool's own cleanup, so it runs after the pool
	// is closed: cleanups run last in, first out.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("pgtest: connect to drop schema %s: %v", db.Schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{db.Schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", db.Schema, err)
		}
	})

	db.Pool = db.NewPool(t, nil)
	return db
}

// NewPool returns another pool on the test's schema, closed when t ends:
// tests of several app instances give each its own pool. configure, when
// not nil, may change the pool's configuration before it connects (pool
// size, connection hooks).
func (db *DB) NewPool(t testing.TB, configure func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatalf("pgtest: parse %s: %v", EnvURL, err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = db.Schema
	if configure != nil {
		configure(cfg)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("pgtest: open pool: %v", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		t.Fatalf("pgtest: ping: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}
