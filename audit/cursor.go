package audit

import (
	"encoding/base64"
	"fmt"
	"time"

	"github.com/chatsdk/compliance/internal/canon"
)

const cursorDomain = "audit.cursor.v1"

// Cursor is a position in the newest-first order of query results: Time
// descending, then Stream descending, then Seq descending. A page's Next
// encodes the position of its last entry; the next page starts strictly
// after it. Stores decode it with [ParseCursor].
type Cursor struct {
	Time   time.Time
	Stream string
	Seq    uint64
}

// CursorAt returns the cursor positioned at e.
func CursorAt(e *Entry) Cursor {
	return Cursor{Time: truncate(e.Time), Stream: e.Stream, Seq: e.Seq}
}

// String encodes the cursor as an opaque URL-safe token.
func (c Cursor) String() string {
	b := canon.Encode(cursorDomain, canon.Time(c.Time), canon.String(c.Stream), canon.Uint(c.Seq))
	return base64.RawURLEncoding.EncodeToString(b)
}

// ParseCursor decodes a token made by [Cursor.String]. It returns
// [ErrBadCursor] for anything else.
func ParseCursor(s string) (Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, fmt.Errorf("%w: not base64", ErrBadCursor)
	}
	dom, f, err := canon.Decode(b)
	if err != nil {
		return Cursor{}, fmt.Errorf("%w: %w", ErrBadCursor, err)
	}
	if dom != cursorDomain || len(f) != 3 || f[0].Kind() != canon.KindTime ||
		f[1].Kind() != canon.KindString || f[2].Kind() != canon.KindUint {
		return Cursor{}, fmt.Errorf("%w: wrong fields", ErrBadCursor)
	}
	return Cursor{Time: f[0].TimeValue(), Stream: f[1].StringValue(), Seq: f[2].UintValue()}, nil
}

// After reports whether e comes strictly after the cursor in the
// newest-first order, that is, belongs to a later page.
func (c Cursor) After(e *Entry) bool {
	t := truncate(e.Time)
	if !t.Equal(c.Time) {
		return t.Before(c.Time)
	}
	if e.Stream != c.Stream {
		return e.Stream < c.Stream
	}
	return e.Seq < c.Seq
}

// newerFirst reports whether a sorts before b in the newest-first order.
func newerFirst(a, b *Entry) bool {
	if !a.Time.Equal(b.Time) {
		return a.Time.After(b.Time)
	}
	if a.Stream != b.Stream {
		return a.Stream > b.Stream
	}
	return a.Seq > b.Seq
}
