package audit

import (
	"context"
	"errors"
	"time"
)

// Errors of the package. Each is wrapped with detail that carries no PHI.
var (
	// ErrInvalidEvent means an event lacks a required field or breaks a
	// limit; the message names the field.
	ErrInvalidEvent = errors.New("audit: invalid event")
	// ErrClosed means the Log was closed before the event was taken.
	ErrClosed = errors.New("audit: log closed")
	// ErrNotDurable means Record gave up (its context ended or the store
	// failed) without knowing the entry is durable. The entry may or may
	// not have been written; it was never silently dropped.
	ErrNotDurable = errors.New("audit: entry not known to be durable")
	// ErrHeadMoved means a store found the stream's head changed under it;
	// stores retry internally and return it only when they give up.
	ErrHeadMoved = errors.New("audit: stream head moved")
	// ErrTampered is matched by every [*Failure] a verification reports.
	ErrTampered = errors.New("audit: chain verification failed")
	// ErrBadSignature means a checkpoint's signature does not verify.
	ErrBadSignature = errors.New("audit: bad checkpoint signature")
	// ErrBadCursor means a query cursor was not made by this package.
	ErrBadCursor = errors.New("audit: bad cursor")
	// ErrBadExport means an export stream could not be parsed.
	ErrBadExport = errors.New("audit: malformed export")
	// ErrConfig means a constructor was given an unusable configuration;
	// the message names the field.
	ErrConfig = errors.New("audit: bad configuration")
)

// Store keeps the chained entries and checkpoints of every stream. All
// methods take a context first and are safe for concurrent use, including
// by several processes sharing one database.
type Store interface {
	// Append chains events onto the stream's current head and makes them
	// durable atomically: all of them or none. It locks the head where the
	// data lives, so concurrent appenders in any process never fork the
	// chain, and it uses [Link] to assign sequence numbers and hashes.
	Append(ctx context.Context, stream string, events []Event) ([]Entry, error)
	// Head returns the stream's head; an unknown stream has Seq 0.
	Head(ctx context.Context, stream string) (Head, error)
	// Scan calls fn for every stored entry of stream with Seq >= from, in
	// ascending Seq order, as stored (a verifier must see what is there,
	// gaps and duplicates included). fn's Entry is only valid during the
	// call. An error from fn stops the scan and is returned.
	Scan(ctx context.Context, stream string, from uint64, fn func(*Entry) error) error
	// Query returns one page of entries matching q, newest first.
	Query(ctx context.Context, q Query) (Page, error)
	// SaveCheckpoint stores a signed checkpoint. Saving one that is
	// already stored (same stream and seq and kind) is not an error.
	SaveCheckpoint(ctx context.Context, c Checkpoint) error
	// Checkpoints returns the stream's stored checkpoints in ascending Seq.
	Checkpoints(ctx context.Context, stream string) ([]Checkpoint, error)
}

// Query selects entries for an admin screen or an auditor. Zero fields do
// not filter, except Tenant, which is required: a query never crosses
// tenants.
type Query struct {
	Tenant       string
	Actor        string
	ResourceType string
	ResourceID   string
	Subject      string
	Type         string
	Category     Category
	// Success, when not nil, selects successes (true) or failures (false).
	Success *bool
	// Since and Until bound Time: Since <= Time < Until, each truncated
	// to the microsecond as entry times are. Zero is unbounded.
	Since, Until time.Time
	// Limit is the page size; zero means 100, and more than 1000 is 1000.
	Limit int
	// Cursor is the Next of the previous page; empty for the first.
	Cursor string
}

// Page is one page of a query's results, newest first.
type Page struct {
	Entries []Entry
	// Next is the cursor of the following page; empty on the last page.
	Next string
}

// Page size limits of [Query].
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// PageSize returns q.Limit clamped to the documented bounds.
func (q Query) PageSize() int {
	switch {
	case q.Limit <= 0:
		return DefaultPageSize
	case q.Limit > MaxPageSize:
		return MaxPageSize
	}
	return q.Limit
}

// Matches reports whether e passes q's filters (not its cursor). Stores
// that filter in memory use it.
func (q Query) Matches(e *Entry) bool {
	switch {
	case e.Tenant != q.Tenant:
		return false
	case q.Actor != "" && e.Actor != q.Actor:
		return false
	case q.ResourceType != "" && e.ResourceType != q.ResourceType:
		return false
	case q.ResourceID != "" && e.ResourceID != q.ResourceID:
		return false
	case q.Subject != "" && e.Subject != q.Subject:
		return false
	case q.Type != "" && e.Type != q.Type:
		return false
	case q.Category != "" && e.Category != q.Category:
		return false
	case q.Success != nil && e.Success != *q.Success:
		return false
	case !q.Since.IsZero() && e.Time.Before(truncate(q.Since)):
		return false
	case !q.Until.IsZero() && !e.Time.Before(truncate(q.Until)):
		return false
	}
	return true
}
