// Package tlog turns an audit stream's hash chain into a transparency log
// (RFC 6962 / RFC 9162): a Merkle tree over the stream's entries, signed
// tree heads, inclusion and consistency proofs, and witnesses that cosign
// each head after checking it extends the last one they saw.
//
// A chain proves a whole history but needs all of it. The tree lets an
// auditor check one event against a signed head with about log2(n) hashes,
// and check that a later head extends an earlier one, so that a database
// owner who shows two auditors two different histories is caught by
// whichever witness or auditor holds both heads.
//
// # Leaves
//
// Leaf i of a stream's tree (from 0) is entry Seq i+1. The leaf's data is
// the entry's chain hash (audit.EntryHash: SHA-256 over the canonical
// encoding of every field and the previous entry's hash), and its leaf hash
// is SHA-256(0x00 || entry hash); interior nodes are
// SHA-256(0x01 || left || right). A tree of size n therefore commits to
// entries 1..n, and its size equals the chain head's Seq. See [LeafHash].
//
// # Formats
//
// A signed tree head is a C2SP signed note (c2sp.org/signed-note) whose
// text is a C2SP checkpoint (c2sp.org/tlog-checkpoint):
//
//	chatsdk-compliance/audit/v1/app-1
//	48210
//	2Zf3tT0xqZ3m0b7a3S6Ph4mJ2zNnBvQH5cCk2JzW9lA=
//
//	— chatsdk-compliance/audit Az3k1w...base64...
//
// The origin line names the format version and the stream ([Origin]); the
// second line is the tree size in decimal; the third is the root hash in
// standard base64. The log's signature is an Ed25519 note signature made
// with the same Tink keyset as the audit checkpoints ([NewSigner]); any
// standard verifier given the verifier key [Signer.VerifierKey] checks it.
// Witness cosignatures are C2SP tlog-cosignature/v1 lines
// (c2sp.org/tlog-cosignature) appended to the note.
//
// # Crypto
//
// Nothing here is hand-rolled. Hashing, proofs and their checks are
// golang.org/x/mod/sumdb/tlog (the Go checksum database's RFC 6962 code);
// notes are parsed and signed by golang.org/x/mod/sumdb/note; signatures
// come from Tink (the log) and crypto/ed25519 (cosignatures, whose format
// x/mod does not implement). This package adds the formats, the checks a
// witness and a quorum verifier make, and the wiring.
//
// # What it does not do
//
// A witness run by the same people as the database proves nothing: point
// witnesses at parties the database's administrators do not control.
// [FileWitness] trusts the first head it sees for a stream (trust on first
// use) and guards its state file with flock(2), which does not hold across
// machines sharing a network file system.
package tlog
