package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/chatsdk/compliance/fieldcrypt"
	"github.com/chatsdk/compliance/fieldcrypt/fieldcryptpg"
	"github.com/stretchr/testify/require"
)

func TestKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s := f.withKeys()
	f.messages(s, 12, "app-1")
	f.writeConfig(map[string]any{"fieldcrypt": map[string]any{"columns": []any{map[string]any{
		"table": "message", "column": "body", "ciphertext": "body_enc", "id_type": "bigint",
	}}}})
	ctx := context.Background()
	newKeyring := func() *fieldcrypt.Keyring {
		kek, err := fieldcrypt.InsecureKEKFromCleartextFile(filepath.Join(f.dir, "kek.bin"))
		require.NoError(t, err)
		kr, err := fieldcrypt.New(fieldcrypt.Config{Store: fieldcryptpg.New(f.db.Pool, fieldcryptpg.Config{Schema: f.db.Schema}), KEK: kek})
		require.NoError(t, err)
		return kr
	}
	kr := newKeyring()
	loc := func(id int) fieldcrypt.Location {
		return fieldcrypt.Location{Tenant: "app-1", Table: "message", Column: "body", Row: fmt.Sprint(id)}
	}
	for id := 1; id <= 12; id++ {
		ct, err := kr.Encrypt(ctx, loc(id), []byte(fmt.Sprintf("message %d", id)))
		require.NoError(t, err)
		_, err = f.db.Pool.Exec(ctx, "UPDATE message SET body_enc = $1 WHERE id = $2", ct, id)
		require.NoError(t, err)
	}

	r := cli(t, f.env, "", "keys", "rotate", "--scope", "app-1", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var rot struct {
		Primary uint32    `json:"primary"`
		Keys    []keyJSON `json:"keys"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rot))
	require.Len(t, rot.Keys, 2)
	require.Equal(t, 1, f.count("SELECT count(*) FROM audit_entries WHERE type = 'security.key_rotated' AND tenant = 'app-1'"))

	// Without --scope: every configured tenant (app-2 has no rows).
	r = cli(t, f.env, "", "keys", "rewrap", "--table", "message", "--column", "body", "--batch", "5")
	require.Equal(t, 0, r.code, r.stderr)
	require.Contains(t, r.stdout, fmt.Sprintf("app-1 message.body: 12 rows rewrapped to key %d", rot.Primary))
	require.Contains(t, r.stdout, "app-2 message.body: skipped: no keyset")
	r = cli(t, f.env, "", "keys", "rewrap", "--scope", "app-1", "--table", "message", "--column", "body", "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var again rewrapJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &again))
	require.True(t, again.Done)
	require.Zero(t, again.Rewrapped, "a second run finds nothing left")
	rows, err := f.db.Pool.Query(ctx, "SELECT id, body_enc FROM message ORDER BY id")
	require.NoError(t, err)
	for rows.Next() {
		var id int
		var ct []byte
		require.NoError(t, rows.Scan(&id, &ct))
		kid, ok := fieldcrypt.KeyID(ct)
		require.True(t, ok)
		require.Equal(t, rot.Primary, kid, "row %d", id)
		pt, err := newKeyring().Decrypt(ctx, loc(id), ct)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("message %d", id), string(pt))
	}
	require.NoError(t, rows.Err())

	r = cli(t, f.env, "", "keys", "rewrap", "--scope", "app-1", "--table", "message", "--column", "nosuch")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "declares message.body")

	// Shredding wants the scope typed back, or --yes.
	r = cli(t, f.env, "no\n", "keys", "shred", "--scope", "app-1")
	require.Equal(t, 2, r.code)
	require.Contains(t, r.stderr, "nothing shredded")
	var ct []byte
	require.NoError(t, f.db.Pool.QueryRow(ctx, "SELECT body_enc FROM message WHERE id = 1").Scan(&ct))
	_, err = newKeyring().Decrypt(ctx, loc(1), ct)
	require.NoError(t, err)

	r = cli(t, f.env, "app-1\n", "keys", "shred", "--scope", "app-1")
	require.Equal(t, 0, r.code, r.stderr)
	_, err = newKeyring().Decrypt(ctx, loc(1), ct)
	require.ErrorIs(t, err, fieldcrypt.ErrShredded)
	require.Equal(t, 1, f.count("SELECT count(*) FROM audit_entries WHERE type = 'security.key_shredded'"))

	r = cli(t, f.env, "", "keys", "shred", "--scope", "app-2", "--yes")
	require.Equal(t, 0, r.code, r.stderr)
}
