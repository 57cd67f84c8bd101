package main

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// connect opens the pool on --database-url or DATABASE_URL, with --schema
// as the search_path, and checks that the server answers.
func (e *env) connect() (*pgxpool.Pool, error) {
	if e.pool != nil {
		return e.pool, nil
	}
	url := e.databaseURL
	if url == "" {
		url = e.getenv(envDatabaseURL)
	}
	if url == "" {
		return nil, usagef("no database given: pass --database-url postgres://user@host:5432/db or set %s", envDatabaseURL)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may echo the URL, password included: say only where.
		return nil, usagef("the database URL does not parse: write it as postgres://user:password@host:5432/dbname?sslmode=require")
	}
	if e.schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = e.schema
	}
	cfg.MaxConns = 8

	ctx, cancel := context.WithTimeout(e.ctx, 15*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err == nil {
		err = pool.Ping(ctx)
		if err != nil {
			pool.Close()
		}
	}
	if err != nil {
		return nil, usagef("cannot reach the database at %s:%d as %q: %v; check --database-url or %s and that the server is up", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.User, err, envDatabaseURL)
	}
	e.pool = pool
	return pool, nil
}
