// Package integrity detects rows altered, inserted or deleted behind an
// application's back (HIPAA §164.312(c)(1), "protect ePHI from improper
// alteration or destruction").
//
// # What it protects against
//
// Someone who can write to the database but does not hold the MAC keys: an
// operator with SQL access, a leaked database credential, a restored or
// hand-edited backup. For each protected row the package keeps a tag, a
// Tink MAC (HMAC-SHA256 by default) over the canonical encoding
// (internal/canon) of the row's domain, tenant, id and protected fields,
// so that:
//
//   - editing any protected field, or copying or swapping a tag from
//     another row, makes the tag fail ([Altered]);
//   - a row without a tag was inserted behind the package's back
//     ([Unsealed]);
//   - a tag without its row means the row was deleted ([Missing]);
//   - a row deleted together with its tag, or a deleted row put back with
//     its old tag, shows in the signed digest of its scope
//     ([DigestMismatch]): each scope (a tenant's channel-day, say) keeps a
//     count and an order-independent sum of its rows' elements, MACed as a
//     whole, updated by every seal and by every legitimate deletion.
//
// NULL and the empty string encode differently, fields cannot run into
// each other, and times are UTC microseconds, so neither a session time
// zone nor a date style can make a genuine row look altered.
//
// # What it does not protect against
//
// Anyone holding the MAC keyset can forge tags and digests; keep it in a
// KMS. A rollback of the whole store (rows, tags and digests together) to
// an earlier consistent state, or the removal of a whole scope together
// with its digest, is not visible from inside the database.
//
// TODO: anchor scope digests outside the database (the audit log's chain,
// say) to detect whole-scope removal and rollbacks.
//
// # Wiring
//
// Build [Keys] from a Tink MAC keyset handle, and a [Sealer] from the keys
// and a [Store] ([NewMemoryStore], or integritypg's Postgres store bound to
// the transaction that writes the row). Call [Sealer.Seal] whenever a
// protected row is written, [Sealer.Forget] from a retention sweep's
// deletion hook, [Sealer.Check] before showing a record that must be
// genuine, and [Sealer.Verify] (or integritypg's streaming verifier) on a
// schedule. To rotate, add a new primary key to the keyset; old tags keep
// verifying, and [Sealer.Reseal] moves rows to the new key and says when
// an old key is no longer used.
package integrity
