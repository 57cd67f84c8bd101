// Package audit is a tamper-evident, insert-only audit log for the audit
// controls of HIPAA §164.312(b): who did what to which record, when, from
// where, and whether it worked.
//
// # The chain
//
// Entries belong to a stream (by default one per tenant). Each entry carries
// a gapless sequence number and the hash of the entry before it, and its own
// hash is SHA-256 over the canonical encoding (internal/canon) of every
// field: stream, sequence number, previous hash, tenant, time at microsecond
// precision, actor, session, client address, user agent, type, category,
// action, resource, subject, outcome, failure reason, metadata and
// retain-until. Editing, removing, inserting or reordering an entry breaks
// the chain at that point, and [Verify] names the kind of break.
//
// # Group commit and many writers
//
// [Log.Record] queues an event and returns once it is durable. Concurrent
// calls for one stream are written as one batch in one transaction, bounded
// by [Config.MaxBatch] and [Config.MaxDelay]. A full queue pushes back
// through the caller's context; an event is never dropped silently. The
// store locks the stream's head where the data lives (the database, for
// auditpg) for each batch, so several processes appending to one stream
// keep one gapless, unforked chain. Sequence numbers and times are not
// positions a writer chooses: the head decides.
//
// Callers whose audit entry must commit atomically with their own change
// append inside their transaction with auditpg's AppendTx instead.
//
// # Checkpoints
//
// An unkeyed chain can be recomputed by whoever can rewrite the whole table.
// Signed checkpoints close that gap: every [Config.CheckpointEvery] entries
// or [Config.CheckpointInterval], the Log signs the stream's head (stream,
// sequence number, hash, time) with an Ed25519 key the application holds
// and the database never sees, saves it, and hands it to a [Publisher] that
// keeps a copy elsewhere ([FilePublisher], [HTTPPublisher]). Tink's
// signature.NewSigner and signature.NewVerifier satisfy [Signer] and
// [SignatureVerifier]; rotating the keyset rotates the key, and a verifier
// keyset that keeps the old public key accepts older checkpoints.
//
// # Verification
//
// [Verify] streams a stream's entries from any point, recomputes each hash
// and link, checks every checkpoint's signature (from the store, from a
// publisher's copy, and the last one the verifier trusted) and that the
// chain passes through each, and returns the first [*Failure] with its
// [FailureKind]. Sources that implement [RangeScanner] (auditpg does) can
// be read in parallel ranges with [VerifyOptions.Parallel]. [Export] writes
// a period with its covering checkpoints as JSON Lines that [ReadExport]
// and Verify check offline with only the public key.
//
// # What it does not protect
//
// Entries after the newest published checkpoint are only as trustworthy as
// the database: an attacker who can write the table can append convincing
// entries there, or remove them, until the next checkpoint is published. A
// verifier given the last checkpoint it trusted ([VerifyOptions.Trusted])
// refuses a chain that ends before it. The log must not hold PHI: events
// carry identifiers, never message text.
//
// # Queries and middleware
//
// [Store.Query] serves an admin screen with filters and cursor paging;
// [Disclosures] is the accounting of disclosures of §164.528 and
// [BreachScope] lists what one actor touched. [Middleware] records each
// classified HTTP request and, by default, does not send a response until
// its entry is durable.
package audit
