// Package canon is the one canonical encoding of the module. Whatever a
// package hashes, MACs or binds as associated data (an audit entry, an
// integrity tag, a fieldcrypt ciphertext's location) is first encoded here,
// so that two different inputs can never produce the same bytes.
//
// # Format
//
// An encoding is a version byte, a domain tag, then the fields in the order
// the caller gives them:
//
//	encoding = version domain field*
//	version  = 0x01
//	domain   = u32(len) bytes          ; UTF-8 by convention, e.g. "audit.entry.v1"
//	field    = kind payload
//	kind     = 0x00 NULL               ; no payload
//	         | 0x01 BYTES  u32(len) bytes
//	         | 0x02 STRING u32(len) bytes
//	         | 0x03 INT    i64         ; two's complement
//	         | 0x04 UINT   u64
//	         | 0x05 BOOL   0x00 | 0x01
//	         | 0x06 TIME   i64         ; microseconds since the Unix epoch, UTC
//
// Every integer is big-endian and fixed width (u32 lengths, 8-byte values).
// Because every field starts with its kind and every variable-length payload
// with its length, the encoding is prefix-free: it can be parsed without
// knowing the schema, and two encodings are equal only when the domain, the
// number of fields, and each field's kind and value are equal. NULL is a
// kind of its own, so it never equals an empty string or empty bytes; a
// string never equals the same bytes.
//
// Times are encoded at microsecond precision in UTC (the precision of a
// Postgres timestamptz), so a value that travelled through a database and a
// session time zone encodes the same as the original. Encoding truncates any
// nanoseconds toward the past; callers that compare a decoded time with an
// original must truncate the original too (see [TruncateTime]).
//
// The order and meaning of the fields is the caller's schema. A caller that
// changes its schema must change its domain tag (by convention the tag ends
// in a version, "….v2"), so an old encoding can never be read as a new one.
package canon

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// Version is the format version, the first byte of every encoding.
const Version byte = 0x01

// Kind identifies the type of an encoded field.
type Kind uint8

// The field kinds, with the byte that introduces each in an encoding.
const (
	KindNull   Kind = 0x00
	KindBytes  Kind = 0x01
	KindString Kind = 0x02
	KindInt    Kind = 0x03
	KindUint   Kind = 0x04
	KindBool   Kind = 0x05
	KindTime   Kind = 0x06
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case KindNull:
		return "null"
	case KindBytes:
		return "bytes"
	case KindString:
		return "string"
	case KindInt:
		return "int"
	case KindUint:
		return "uint"
	case KindBool:
		return "bool"
	case KindTime:
		return "time"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Errors returned by [Decode]. Each is wrapped with the offset at which the
// input went wrong.
var (
	// ErrVersion means the first byte is not a version this package reads.
	ErrVersion = errors.New("canon: unknown version")
	// ErrTruncated means the input ended inside a field.
	ErrTruncated = errors.New("canon: truncated input")
	// ErrKind means a field starts with an unknown kind byte.
	ErrKind = errors.New("canon: unknown field kind")
	// ErrNonCanonical means a value has more than one possible spelling
	// and this one is not the canonical one (a bool other than 0 or 1).
	ErrNonCanonical = errors.New("canon: non-canonical value")
)

// Value is one field of an encoding. The zero Value is NULL. Values are
// built with [Null], [Bytes], [String], [Int], [Uint], [Bool], [Time] and
// the Opt… helpers; the accessors return the zero value of their type for a
// Value of another kind.
type Value struct {
	kind Kind
	b    []byte // BYTES payload
	s    string // STRING payload
	n    uint64 // INT, UINT, BOOL and TIME payloads
}

// Null returns a NULL field.
func Null() Value { return Value{kind: KindNull} }

// Bytes returns a BYTES field. A nil slice is empty bytes, not NULL; use
// [OptBytes] or [Null] for NULL. The slice is not copied.
func Bytes(b []byte) Value { return Value{kind: KindBytes, b: b} }

// String returns a STRING field.
func String(s string) Value { return Value{kind: KindString, s: s} }

// Int returns an INT field.
func Int(i int64) Value { return Value{kind: KindInt, n: uint64(i)} }

// Uint returns a UINT field.
func Uint(u uint64) Value { return Value{kind: KindUint, n: u} }

// Bool returns a BOOL field.
func Bool(b bool) Value {
	v := Value{kind: KindBool}
	if b {
		v.n = 1
	}
	return v
}

// Time returns a TIME field holding t as UTC microseconds since the Unix
// epoch; nanoseconds are truncated toward the past.
func Time(t time.Time) Value { return Value{kind: KindTime, n: uint64(t.UnixMicro())} }

// OptString returns a STRING field for a non-nil s and NULL for nil.
func OptString(s *string) Value {
	if s == nil {
		return Null()
	}
	return String(*s)
}

// OptBytes returns a BYTES field for a non-nil b and NULL for nil. Use it
// where a nil slice means "absent" in the caller's data model.
func OptBytes(b []byte) Value {
	if b == nil {
		return Null()
	}
	return Bytes(b)
}

// OptTime returns a TIME field for a non-nil t and NULL for nil.
func OptTime(t *time.Time) Value {
	if t == nil {
		return Null()
	}
	return Time(*t)
}

// Kind returns the field's kind.
func (v Value) Kind() Kind { return v.kind }

// IsNull reports whether the field is NULL.
func (v Value) IsNull() bool { return v.kind == KindNull }

// BytesValue returns the payload of a BYTES field.
func (v Value) BytesValue() []byte { return v.b }

// StringValue returns the payload of a STRING field.
func (v Value) StringValue() string { return v.s }

// IntValue returns the payload of an INT field.
func (v Value) IntValue() int64 {
	if v.kind != KindInt {
		return 0
	}
	return int64(v.n)
}

// UintValue returns the payload of a UINT field.
func (v Value) UintValue() uint64 {
	if v.kind != KindUint {
		return 0
	}
	return v.n
}

// BoolValue returns the payload of a BOOL field.
func (v Value) BoolValue() bool { return v.kind == KindBool && v.n == 1 }

// TimeValue returns the payload of a TIME field, in UTC.
func (v Value) TimeValue() time.Time {
	if v.kind != KindTime {
		return time.Time{}
	}
	return time.UnixMicro(int64(v.n)).UTC()
}

// Equal reports whether v and w encode to the same bytes.
func (v Value) Equal(w Value) bool {
	if v.kind != w.kind {
		return false
	}
	switch v.kind {
	case KindBytes:
		return string(v.b) == string(w.b)
	case KindString:
		return v.s == w.s
	}
	return v.n == w.n
}

// TruncateTime returns t in UTC at the precision the encoding keeps, so it
// compares equal to a decoded TIME field.
func TruncateTime(t time.Time) time.Time { return time.UnixMicro(t.UnixMicro()).UTC() }

// Encode returns the encoding of domain and fields. It panics if the domain
// or a payload is longer than 4 GiB - 1 bytes, which is a programming error.
func Encode(domain string, fields ...Value) []byte {
	size := 1 + 4 + len(domain)
	for _, f := range fields {
		size += f.encodedLen()
	}
	return Append(make([]byte, 0, size), domain, fields...)
}

// Append appends the encoding of domain and fields to dst and returns the
// extended slice. It panics like [Encode].
func Append(dst []byte, domain string, fields ...Value) []byte {
	dst = AppendHeader(dst, domain)
	for _, f := range fields {
		dst = AppendValue(dst, f)
	}
	return dst
}

func (v Value) encodedLen() int {
	switch v.kind {
	case KindNull:
		return 1
	case KindBytes:
		return 1 + 4 + len(v.b)
	case KindString:
		return 1 + 4 + len(v.s)
	case KindBool:
		return 2
	}
	return 1 + 8
}

// Encoder builds an encoding field by field without allocating a Value per
// field, for hot paths that encode many records. Reset it for each record
// and reuse it; the zero Encoder must be Reset before use. An Encoder is not
// safe for concurrent use.
type Encoder struct {
	buf []byte
}

// NewEncoder returns an Encoder that has begun an encoding in domain.
func NewEncoder(domain string) *Encoder {
	e := &Encoder{}
	e.Reset(domain)
	return e
}

// Reset discards what the Encoder holds, keeping its buffer, and begins a
// new encoding in domain.
func (e *Encoder) Reset(domain string) {
	e.buf = e.buf[:0]
	e.begin(domain)
}

func (e *Encoder) begin(domain string) { e.buf = AppendHeader(e.buf, domain) }

// Bytes returns the encoding so far. It aliases the Encoder's buffer, which
// the next Reset overwrites.
func (e *Encoder) Bytes() []byte { return e.buf }

// Value appends a field.
func (e *Encoder) Value(v Value) { e.buf = AppendValue(e.buf, v) }

// Null appends a NULL field.
func (e *Encoder) Null() { e.buf = AppendNull(e.buf) }

// BytesField appends a BYTES field; a nil b is empty bytes.
func (e *Encoder) BytesField(b []byte) { e.buf = AppendBytes(e.buf, b) }

// String appends a STRING field.
func (e *Encoder) String(s string) { e.buf = AppendString(e.buf, s) }

// OptString appends a STRING field, or NULL when s is nil.
func (e *Encoder) OptString(s *string) { e.buf = AppendValue(e.buf, OptString(s)) }

// Int appends an INT field.
func (e *Encoder) Int(i int64) { e.buf = AppendInt(e.buf, i) }

// Uint appends a UINT field.
func (e *Encoder) Uint(u uint64) { e.buf = AppendUint(e.buf, u) }

// Bool appends a BOOL field.
func (e *Encoder) Bool(b bool) { e.buf = AppendBool(e.buf, b) }

// Time appends a TIME field at microsecond precision.
func (e *Encoder) Time(t time.Time) { e.buf = AppendTime(e.buf, t) }

// OptTime appends a TIME field, or NULL when t is nil.
func (e *Encoder) OptTime(t *time.Time) { e.buf = AppendValue(e.buf, OptTime(t)) }

// The Append… functions are the encoder without state: each appends one
// part of an encoding to dst and returns the extended slice, keeping no
// reference to dst, so a hot path can build an encoding in a stack buffer
// without an allocation. An encoding is AppendHeader followed by one
// Append… call per field.

// AppendHeader appends the version byte and the domain tag that begin
// every encoding.
func AppendHeader(dst []byte, domain string) []byte {
	dst = append(dst, Version)
	dst = appendLen(dst, len(domain))
	return append(dst, domain...)
}

// AppendValue appends the field v.
func AppendValue(dst []byte, v Value) []byte {
	switch v.kind {
	case KindNull:
		return AppendNull(dst)
	case KindBytes:
		return AppendBytes(dst, v.b)
	case KindString:
		return AppendString(dst, v.s)
	case KindBool:
		return AppendBool(dst, v.n == 1)
	}
	dst = append(dst, byte(v.kind))
	return binary.BigEndian.AppendUint64(dst, v.n)
}

// AppendNull appends a NULL field.
func AppendNull(dst []byte) []byte { return append(dst, byte(KindNull)) }

// AppendBytes appends a BYTES field; a nil b is empty bytes.
func AppendBytes(dst, b []byte) []byte {
	dst = append(dst, byte(KindBytes))
	dst = appendLen(dst, len(b))
	return append(dst, b...)
}

// AppendString appends a STRING field.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, byte(KindString))
	dst = appendLen(dst, len(s))
	return append(dst, s...)
}

// AppendInt appends an INT field.
func AppendInt(dst []byte, i int64) []byte {
	dst = append(dst, byte(KindInt))
	return binary.BigEndian.AppendUint64(dst, uint64(i))
}

// AppendUint appends a UINT field.
func AppendUint(dst []byte, u uint64) []byte {
	dst = append(dst, byte(KindUint))
	return binary.BigEndian.AppendUint64(dst, u)
}

// AppendBool appends a BOOL field.
func AppendBool(dst []byte, b bool) []byte {
	var x byte
	if b {
		x = 1
	}
	return append(dst, byte(KindBool), x)
}

// AppendTime appends a TIME field at microsecond precision.
func AppendTime(dst []byte, t time.Time) []byte {
	dst = append(dst, byte(KindTime))
	return binary.BigEndian.AppendUint64(dst, uint64(t.UnixMicro()))
}

func appendLen(dst []byte, n int) []byte {
	if uint64(n) > math.MaxUint32 {
		panic("canon: field longer than 4 GiB - 1 bytes")
	}
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

// Decode parses an encoding into its domain and fields. It rejects unknown
// versions and kinds, truncated input, trailing bytes and non-canonical
// values, so Encode(Decode(b)) == b for every b it accepts. BYTES payloads
// alias data.
func Decode(data []byte) (domain string, fields []Value, err error) {
	d := decoder{data: data}
	if len(data) == 0 {
		return "", nil, fmt.Errorf("%w at offset 0", ErrTruncated)
	}
	if data[0] != Version {
		return "", nil, fmt.Errorf("%w %d at offset 0", ErrVersion, data[0])
	}
	d.off = 1

	dom, err := d.lenPrefixed()
	if err != nil {
		return "", nil, err
	}
	domain = string(dom)

	for d.off < len(d.data) {
		start := d.off
		kind := Kind(d.data[d.off])
		d.off++
		var v Value
		switch kind {
		case KindNull:
			v = Null()
		case KindBytes:
			b, err := d.lenPrefixed()
			if err != nil {
				return "", nil, err
			}
			v = Bytes(b)
		case KindString:
			b, err := d.lenPrefixed()
			if err != nil {
				return "", nil, err
			}
			v = String(string(b))
		case KindInt, KindUint, KindTime:
			n, err := d.uint64()
			if err != nil {
				return "", nil, err
			}
			v = Value{kind: kind, n: n}
		case KindBool:
			if d.off >= len(d.data) {
				return "", nil, fmt.Errorf("%w at offset %d", ErrTruncated, d.off)
			}
			b := d.data[d.off]
			if b > 1 {
				return "", nil, fmt.Errorf("%w: bool %d at offset %d", ErrNonCanonical, b, d.off)
			}
			d.off++
			v = Bool(b == 1)
		default:
			return "", nil, fmt.Errorf("%w %d at offset %d", ErrKind, uint8(kind), start)
		}
		fields = append(fields, v)
	}
	return domain, fields, nil
}

type decoder struct {
	data []byte
	off  int
}

func (d *decoder) lenPrefixed() ([]byte, error) {
	if len(d.data)-d.off < 4 {
		return nil, fmt.Errorf("%w at offset %d", ErrTruncated, d.off)
	}
	n := binary.BigEndian.Uint32(d.data[d.off:])
	d.off += 4
	if uint64(len(d.data)-d.off) < uint64(n) {
		return nil, fmt.Errorf("%w: length %d at offset %d", ErrTruncated, n, d.off-4)
	}
	b := d.data[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return b, nil
}

func (d *decoder) uint64() (uint64, error) {
	if len(d.data)-d.off < 8 {
		return 0, fmt.Errorf("%w at offset %d", ErrTruncated, d.off)
	}
	n := binary.BigEndian.Uint64(d.data[d.off:])
	d.off += 8
	return n, nil
}
