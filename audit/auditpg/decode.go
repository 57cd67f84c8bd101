package auditpg

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/chatsdk/compliance/audit"
)

// errRaw means a row could not be decoded from its raw binary values.
var errRaw = errors.New("auditpg: undecodable entry row")

// pgEpoch is the zero of Postgres's binary timestamps.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// rawScanner decodes entry rows straight from the wire format, skipping
// pgx's per-column scan plans, for the verifier's hot loop. Its Entry's
// hashes alias the row buffer and are valid until the next row; strings are
// copied, and low-cardinality ones are interned.
type rawScanner struct {
	intern      map[string]string
	jsonbBinary bool              // metadata arrives in jsonb's binary format
	meta        map[string]string // reused for every row's metadata
}

// Columns of entryColumns that rawScanner needs in binary format: seq,
// prev_hash, hash, at, success, retain_until. Text columns read the same in
// either format.
var binaryNeeded = []int{0, 1, 2, 4, 15, 18}

// newRawScanner returns a rawScanner for rows, or false when their formats
// are not ones it decodes.
func newRawScanner(rows pgx.Rows) (*rawScanner, bool) {
	fds := rows.FieldDescriptions()
	if len(fds) != 19 {
		return nil, false
	}
	for _, i := range binaryNeeded {
		if fds[i].Format != pgx.BinaryFormatCode {
			return nil, false
		}
	}
	return &rawScanner{intern: map[string]string{}, jsonbBinary: fds[17].Format == pgx.BinaryFormatCode}, true
}

func (r *rawScanner) str(b []byte) string {
	if len(b) > 64 {
		return string(b)
	}
	if s, ok := r.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(r.intern) < 4096 {
		r.intern[s] = s
	}
	return s
}

// scan decodes one row in entryColumns order into e.
func (r *rawScanner) scan(vals [][]byte, e *audit.Entry) error {
	if len(vals) != 19 {
		return errRaw
	}
	for i, v := range vals {
		if v == nil && i != 17 { // only metadata may be NULL
			return errRaw
		}
	}
	if len(vals[0]) != 8 || len(vals[15]) != 1 {
		return errRaw
	}
	e.Seq = binary.BigEndian.Uint64(vals[0])
	e.PrevHash, e.Hash = vals[1], vals[2]
	e.Tenant = r.str(vals[3])
	t, err := pgTime(vals[4])
	if err != nil {
		return err
	}
	e.Time = t
	e.Actor = r.str(vals[5])
	e.SessionID = r.str(vals[6])
	e.IP = r.str(vals[7])
	e.UserAgent = r.str(vals[8])
	e.Type = r.str(vals[9])
	e.Category = audit.Category(r.str(vals[10]))
	e.Action = r.str(vals[11])
	e.ResourceType = r.str(vals[12])
	e.ResourceID = string(vals[13])
	e.Subject = r.str(vals[14])
	e.Success = vals[15][0] == 1
	e.FailureReason = r.str(vals[16])
	e.Metadata = nil
	if m := vals[17]; m != nil {
		if r.jsonbBinary {
			if len(m) < 1 || m[0] != 1 { // jsonb binary: version 1, then text
				return errRaw
			}
			m = m[1:]
		}
		if r.meta == nil {
			r.meta = map[string]string{}
		}
		clear(r.meta)
		if err := parseFlatJSON(m, r.meta); err != nil {
			return fmt.Errorf("auditpg: read entry metadata at seq %d: %w", e.Seq, err)
		}
		e.Metadata = r.meta
	}
	ru, err := pgTime(vals[18])
	if err != nil {
		return err
	}
	e.RetainUntil = ru
	return nil
}

func pgTime(b []byte) (time.Time, error) {
	if len(b) != 8 {
		return time.Time{}, errRaw
	}
	us := int64(binary.BigEndian.Uint64(b))
	if us == 1<<63-1 || us == -1<<63 { // ±infinity
		return time.Time{}, errRaw
	}
	return pgEpoch.Add(time.Duration(us) * time.Microsecond), nil
}

// parseFlatJSON parses a JSON object whose values are all strings, as
// jsonb prints the metadata column. Strings without escapes are read
// directly; anything else goes through encoding/json, which also rejects
// what is not such an object.
func parseFlatJSON(b []byte, into map[string]string) error {
	p := flatParser{b: b}
	if p.object(into) {
		return nil
	}
	clear(into)
	var slow map[string]string
	if err := json.Unmarshal(b, &slow); err != nil {
		return err
	}
	if slow == nil {
		return errors.New("metadata is not an object")
	}
	for k, v := range slow {
		into[k] = v
	}
	return nil
}

type flatParser struct {
	b []byte
	i int
}

func (p *flatParser) ws() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

func (p *flatParser) next(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a string without escapes or control characters; false means
// "use the slow path", not necessarily invalid.
func (p *flatParser) str() (string, bool) {
	p.ws()
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return "", false
	}
	start := p.i + 1
	for j := start; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			p.i = j + 1
			return string(p.b[start:j]), true
		case c == '\\' || c < 0x20:
			return "", false
		}
	}
	return "", false
}

func (p *flatParser) object(m map[string]string) bool {
	if !p.next('{') {
		return false
	}
	if p.next('}') {
		p.ws()
		return p.i == len(p.b)
	}
	for {
		k, ok := p.str()
		if !ok || !p.next(':') {
			return false
		}
		v, ok := p.str()
		if !ok {
			return false
		}
		if _, dup := m[k]; dup {
			return false // let encoding/json decide what a duplicate means
		}
		m[k] = v
		if p.next('}') {
			p.ws()
			return p.i == len(p.b) && utf8Valid(m)
		}
		if !p.next(',') {
			return false
		}
	}
}

func utf8Valid(m map[string]string) bool {
	for k, v := range m {
		if !validUTF8(k) || !validUTF8(v) {
			return false
		}
	}
	return true
}

func validUTF8(s string) bool { return utf8.ValidString(s) }
