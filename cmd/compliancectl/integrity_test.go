package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chatsdk/compliance/fieldcrypt"
	"github.com/chatsdk/compliance/integrity"
	"github.com/chatsdk/compliance/integrity/integritypg"
	"github.com/chatsdk/compliance/internal/canon"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/mac"
)

// withKeys writes a development KEK and an integrity MAC keyset encrypted
// under it, names both in the configuration, and returns the sealer.
func (f *fixture) withKeys() *integrity.Sealer {
	t := f.t
	t.Helper()
	kekFile := filepath.Join(f.dir, "kek.bin")
	require.NoError(t, fieldcrypt.InsecureWriteCleartextKEK(kekFile))
	kek, err := fieldcrypt.InsecureKEKFromCleartextFile(kekFile)
	require.NoError(t, err)
	h, err := keyset.NewHandle(mac.HMACSHA256Tag256KeyTemplate())
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, h.Write(keyset.NewBinaryWriter(&buf), kek))
	macFile := filepath.Join(f.dir, "integrity.bin")
	require.NoError(t, os.WriteFile(macFile, buf.Bytes(), 0o600))
	f.writeConfig(map[string]any{"keys": map[string]any{
		"insecure_kek_file": kekFile, "integrity_keyset": macFile, "audit_public_keyset": f.pubKey,
	}})
	keys, err := integrity.NewKeys(h)
	require.NoError(t, err)
	s, err := integrity.New(integrity.Config{Keys: keys, Store: integritypg.New(f.db.Pool, integritypg.Config{Schema: f.db.Schema})})
	require.NoError(t, err)
	return s
}

// messages creates the application's message table with n sealed rows per
// tenant, created days apart ending today, and declares it.
func (f *fixture) messages(s *integrity.Sealer, n int, tenants ...string) {
	t := f.t
	t.Helper()
	ctx := context.Background()
	_, err := f.db.Pool.Exec(ctx, `CREATE TABLE message (
		app_id text NOT NULL, id bigint NOT NULL, channel_id text NOT NULL,
		body text NOT NULL, body_enc bytea, created_at timestamptz NOT NULL, PRIMARY KEY (app_id, id))`)
	require.NoError(t, err)
	_, err = f.db.Pool.Exec(ctx, `CREATE INDEX ON message (app_id, created_at, id)`)
	require.NoError(t, err)
	store := integritypg.New(f.db.Pool, integritypg.Config{Schema: f.db.Schema})
	now := canon.TruncateTime(time.Now())
	for _, tenant := range tenants {
		for i := 1; i <= n; i++ {
			at := now.Add(-time.Duration(n-i) * 24 * time.Hour)
			body := fmt.Sprintf("message %d", i)
			err := pgx.BeginFunc(ctx, f.db.Pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, "INSERT INTO message (app_id, id, channel_id, body, created_at) VALUES ($1, $2, 'general', $3, $4)", tenant, i, body, at); err != nil {
					return err
				}
				return s.WithStore(store.With(tx)).Seal(ctx, integrity.Record{
					Domain: "message", Tenant: tenant, ID: fmt.Sprint(i), Scope: integrity.DayScope("general", at),
					Fields: []canon.Value{canon.String("general"), canon.String(body), canon.Time(at)},
				})
			})
			require.NoError(t, err)
		}
	}
	f.writeConfig(map[string]any{"integrity": map[string]any{"tables": []any{map[string]any{
		"domain": "message",
		"columns": []any{
			map[string]any{"name": "channel_id", "kind": "string"},
			map[string]any{"name": "body", "kind": "string"},
			map[string]any{"name": "created_at", "kind": "time"},
		},
	}}}})
}

func TestIntegrityVerify(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.withKeys()
	f.messages(s, 12, "app-1")

	// The schema through --schema this time, not the URL.
	env := []string{"DATABASE_URL=" + f.db.URL, f.env[1]}
	r := cli(t, env, "", "integrity", "verify", "--target", "message", "--schema", f.db.Schema)
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, "message: 12 rows, 12 tags")

	ctx := context.Background()
	_, err := f.db.Pool.Exec(ctx, "UPDATE message SET body = 'edited' WHERE id = 3")
	require.NoError(t, err)
	_, err = f.db.Pool.Exec(ctx, "DELETE FROM message WHERE id = 5")
	require.NoError(t, err)
	r = cli(t, env, "", "integrity", "verify", "--target", "message", "--schema", f.db.Schema)
	require.Equal(t, 1, r.code, r.stderr)
	require.Regexp(t, integrity.Altered.String()+` +tenant app-1 id 3\n`, r.stdout)
	require.Regexp(t, integrity.Missing.String()+` +tenant app-1 id 5\n`, r.stdout)

	r = cli(t, env, "", "integrity", "verify", "--target", "nosuch", "--schema", f.db.Schema)
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "declares message")
}
