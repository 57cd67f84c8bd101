// Package fieldcrypt encrypts database fields with Tink keysets, bound to
// the row they live in, and manages those keysets: one per scope (a tenant
// by default, or something narrower such as a patient), created on first
// use, stored only wrapped under a key-encryption key (KEK), rotated
// without downtime and destroyed to crypto-shred a scope. It answers
// 45 CFR §164.312(a)(2)(iv), encryption and decryption of ePHI.
//
// # What it protects against
//
// A ciphertext is Tink AEAD output (AES-256-GCM by default) whose associated
// data is the canonical encoding of the field's [Location]: tenant, table,
// column and row id. Whoever can read the database, its replicas or its
// backups, but not the KEK, learns nothing of the plaintext but its length.
// Whoever can write the database cannot move a ciphertext to another row,
// column or tenant, nor alter one bit of it: [Keyring.Decrypt] fails with
// the opaque [ErrDecrypt]. It does not stop an attacker who runs code in
// the application (who holds the unwrapped keys), nor the replay of a row's
// own older ciphertext into the same row; pair it with the integrity
// package for that.
//
// # Keys
//
// Each scope has a keyset in a [Store] (the in-memory [MemoryStore], or
// fieldcryptpg for Postgres), wrapped with
// keyset.Handle.WriteWithAssociatedData under the KEK with the scope as
// associated data, so a wrapped keyset moved to another scope does not
// unwrap. The KEK is a Tink AEAD: a KMS key through [KEKFromURI] (HashiCorp
// Vault and AWS KMS clients are registered by the small packages under
// fieldcrypt/kms, which keep their SDKs out of this one), or for
// development a cleartext keyset file via [InsecureKEKFromCleartextFile].
// The KEK is called only when a keyset is created, loaded or changed:
// unwrapped keysets live in a cache bounded in size (Config.CacheSize) and
// age (Config.CacheTTL), so the per-field path makes no remote call.
//
// # Rotation
//
// [Keyring.Rotate] adds a key and makes it primary; older keys keep
// decrypting, and an instance that meets a ciphertext under a key it has
// not loaded yet reloads the keyset. Every ciphertext begins with 0x01 and
// its key's four-byte ID ([KeyID], [KeyPrefix]), so a [Rewrap] selects the
// rows still under an old key without decrypting them and re-encrypts them
// in batches, each update conditional on the row still holding what was
// read. [Keyring.DisableKey] and [Keyring.DestroyKey] retire an old key
// only against rewrap reports that show no row uses it. A [Backfill]
// moves a legacy plaintext column into its encrypted column.
//
// Rewrap and Backfill read and write the application's table through the
// small [Rows] and [PlainRows] interfaces (fieldcryptpg.Column for
// Postgres, [MemoryColumn] in memory), writing a batch at a time when the
// table also implements [BatchSwapper] or [BatchSealer].
//
// # Blind indexes
//
// [Keyring.BlindIndex] gives an equality-searchable index of a field: a
// truncated HMAC-SHA256 PRF (Tink prf) over the normalised value, keyed per
// tenant. It leaks equality; see its documentation for the trade-off.
//
// # Crypto-shredding
//
// [Keyring.Shred] destroys a scope's keysets: every ciphertext of the scope
// fails with [ErrShredded] from then on, other scopes are untouched, and
// Config.OnShred reports it. Call it from a retention hook. See its
// documentation for what it takes to reach backups.
//
// # Wiring
//
// Other packages that need to store a secret (session/mfa's TOTP seeds)
// declare a small interface; the application adapts a Keyring to it,
// usually through a [Field], whose Encrypt and Decrypt take a tenant, a row
// id and the bytes.
//
// # Concurrency and several instances
//
// A Keyring is safe for concurrent use. Instances sharing a Store agree
// through it: keysets are created and changed by compare-and-swap, an
// instance meeting a key it lacks reloads, and rotations and shreds by
// others reach its cache within Config.CacheTTL.
package fieldcrypt
