package audit

import (
	"crypto/sha256"
	"crypto/subtle"
	"time"

	"github.com/chatsdk/compliance/internal/canon"
)

// HashSize is the length of an entry hash (SHA-256).
const HashSize = sha256.Size

// entryDomain is the canonical-encoding domain of an entry. A change to the
// fields hashed, or their order, must change it.
const entryDomain = "audit.entry.v1"

// Entry is an event as it sits in a stream's chain: its place (Stream and
// Seq), the hash of the entry before it, and its own hash over all of that.
type Entry struct {
	Event
	// Stream is the chain the entry belongs to (by default the tenant).
	Stream string `json:"stream"`
	// Seq is the entry's place in its stream, from 1, without gaps.
	Seq uint64 `json:"seq"`
	// PrevHash is the Hash of entry Seq-1; for Seq 1 it is [GenesisHash].
	PrevHash []byte `json:"prev_hash"`
	// Hash is [EntryHash] of the entry.
	Hash []byte `json:"hash"`
}

// Head is the end of a stream's chain: the sequence number and hash of its
// last entry. The Head of an empty stream has Seq 0 and [GenesisHash].
type Head struct {
	Stream string
	Seq    uint64
	Hash   []byte
}

// GenesisHash returns the PrevHash of a stream's first entry: 32 zero bytes.
func GenesisHash() []byte { return make([]byte, HashSize) }

// EntryHash returns the SHA-256 of the canonical encoding of every field of
// e: stream, sequence number, previous hash, then the event's fields in
// declaration order, times in UTC microseconds and metadata as a count and
// sorted pairs. e.Hash itself is not hashed. It is the leaf a future Merkle
// tree over a stream would commit to.
func EntryHash(e *Entry) []byte {
	var enc canon.Encoder
	sum := sha256.Sum256(appendEntry(&enc, e))
	return sum[:]
}

// appendEntry writes e's encoding into enc and returns it; enc is reset.
func appendEntry(enc *canon.Encoder, e *Entry) []byte {
	enc.Reset(entryDomain)
	enc.String(e.Stream)
	enc.Uint(e.Seq)
	enc.BytesField(e.PrevHash)
	enc.String(e.Tenant)
	enc.Time(e.Time)
	enc.String(e.Actor)
	enc.String(e.SessionID)
	enc.String(e.IP)
	enc.String(e.UserAgent)
	enc.String(e.Type)
	enc.String(string(e.Category))
	enc.String(e.Action)
	enc.String(e.ResourceType)
	enc.String(e.ResourceID)
	enc.String(e.Subject)
	enc.Bool(e.Success)
	enc.String(e.FailureReason)
	enc.Uint(uint64(len(e.Metadata)))
	for _, k := range sortedKeys(e.Metadata) {
		enc.String(k)
		enc.String(e.Metadata[k])
	}
	enc.Time(e.RetainUntil)
	return enc.Bytes()
}

// Link chains events onto head: it returns one entry per event with the
// next sequence numbers, each entry's PrevHash the hash before it, and its
// Hash computed. Times are truncated to microseconds in UTC, so an entry
// hashes the same before and after a trip through a database. A store
// calls Link while it holds the stream's head lock. Events are validated
// first; Link returns [ErrInvalidEvent] for the first bad one.
func Link(head Head, events []Event) ([]Entry, error) {
	entries := make([]Entry, len(events))
	prev := head.Hash
	if len(prev) == 0 {
		prev = GenesisHash()
	}
	var enc canon.Encoder
	for i := range events {
		if err := events[i].validate(); err != nil {
			return nil, err
		}
		e := &entries[i]
		e.Event = events[i]
		e.Time = canon.TruncateTime(e.Time)
		e.RetainUntil = canon.TruncateTime(e.RetainUntil)
		e.Stream = head.Stream
		e.Seq = head.Seq + uint64(i) + 1
		e.PrevHash = prev
		sum := sha256.Sum256(appendEntry(&enc, e))
		e.Hash = sum[:]
		prev = e.Hash
	}
	return entries, nil
}

// hashEqual compares two hashes in constant time.
func hashEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// truncate is canon.TruncateTime for callers in this package.
func truncate(t time.Time) time.Time { return canon.TruncateTime(t) }
