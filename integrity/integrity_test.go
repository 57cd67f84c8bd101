package integrity_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chatsdk/compliance/integrity"
	"github.com/chatsdk/compliance/integrity/integritytest"
	"github.com/chatsdk/compliance/internal/canon"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/mac"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json")

func TestMemoryStoreConformance(t *testing.T) {
	integritytest.Run(t, func(t *testing.T) integritytest.Harness {
		s := integrity.NewMemoryStore()
		return integritytest.Harness{Store: s, Tamper: s}
	})
}

// plainStore hides the memory store's BatchReader, so the suite runs
// CheckAll's one-read-per-record path.
type plainStore struct{ integrity.Store }

func TestConformanceWithoutBatchReader(t *testing.T) {
	integritytest.Run(t, func(t *testing.T) integritytest.Harness {
		s := integrity.NewMemoryStore()
		return integritytest.Harness{Store: plainStore{s}, Tamper: s}
	})
}

type vectorField struct {
	Kind  string `json:"kind"`
	Value string `json:"value,omitempty"`
}

type vector struct {
	Name    string        `json:"name"`
	Domain  string        `json:"domain"`
	Tenant  string        `json:"tenant"`
	ID      string        `json:"id"`
	Scope   string        `json:"scope"`
	Fields  []vectorField `json:"fields"`
	Message string        `json:"message_hex"`
	Tag     string        `json:"tag_hex"`
	Element string        `json:"element_hex"`
}

type vectorFile struct {
	Note    string   `json:"note"`
	Vectors []vector `json:"vectors"`
}

func (f vectorField) value(t *testing.T) canon.Value {
	switch f.Kind {
	case "null":
		return canon.Null()
	case "string":
		return canon.String(f.Value)
	case "bytes":
		b, err := hex.DecodeString(f.Value)
		if err != nil {
			t.Fatal(err)
		}
		return canon.Bytes(b)
	case "time":
		ts, err := time.Parse(time.RFC3339Nano, f.Value)
		if err != nil {
			t.Fatal(err)
		}
		return canon.Time(ts)
	case "bool":
		return canon.Bool(f.Value == "true")
	}
	t.Fatalf("unknown field kind %q", f.Kind)
	return canon.Value{}
}

// testKeys reads the fixed test keyset in testdata. It is a published test
// key and must never protect anything.
func testKeys(t *testing.T) *integrity.Keys {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "keyset.json"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(b)))
	if err != nil {
		t.Fatal(err)
	}
	k, err := integrity.NewKeys(h)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKnownAnswerVectors(t *testing.T) {
	path := filepath.Join("testdata", "vectors.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file vectorFile
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	keys := testKeys(t)

	for i, v := range file.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			r := integrity.Record{Domain: v.Domain, Tenant: v.Tenant, ID: v.ID, Scope: v.Scope}
			for _, f := range v.Fields {
				r.Fields = append(r.Fields, f.value(t))
			}
			msg := integrity.AppendMessage(nil, r.Domain, r.Tenant, r.ID, r.Fields)
			if *update {
				tag, err := keys.Tag(r)
				if err != nil {
					t.Fatal(err)
				}
				el := integrity.Element(r.Scope, tag)
				file.Vectors[i].Message, file.Vectors[i].Tag, file.Vectors[i].Element = hex.EncodeToString(msg), hex.EncodeToString(tag), hex.EncodeToString(el[:])
				return
			}
			if got := hex.EncodeToString(msg); got != v.Message {
				t.Fatalf("message\n got %s\nwant %s", got, v.Message)
			}
			tag, err := hex.DecodeString(v.Tag)
			if err != nil {
				t.Fatal(err)
			}
			// HMAC is deterministic, so a fresh tag must equal the vector.
			got, err := keys.Tag(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tag) {
				t.Fatalf("tag\n got %x\nwant %x", got, tag)
			}
			if err := keys.Check(r, tag); err != nil {
				t.Fatalf("Check: %v", err)
			}
			if id, ok := integrity.KeyID(tag); !ok || id != keys.Primary() || len(tag) != 37 {
				t.Fatalf("tag of %d bytes names key %d, want 37 bytes naming %d", len(tag), id, keys.Primary())
			}
			if el := integrity.Element(r.Scope, tag); hex.EncodeToString(el[:]) != v.Element {
				t.Fatalf("element %x, want %s", el, v.Element)
			}
		})
	}
	if *update {
		out, err := json.MarshalIndent(file, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestNullAndEmptyTagDifferently(t *testing.T) {
	_, keys := integritytest.NewKeyset(t)
	base := integrity.Record{Domain: "message", Tenant: "t", ID: "1"}
	variants := map[string][]canon.Value{
		"null":        {canon.Null()},
		"empty text":  {canon.String("")},
		"empty bytes": {canon.Bytes(nil)},
		"no field":    nil,
		"ab,c":        {canon.String("ab"), canon.String("c")},
		"a,bc":        {canon.String("a"), canon.String("bc")},
	}
	tags := map[string]string{}
	for name, fields := range variants {
		r := base
		r.Fields = fields
		tag, err := keys.Tag(r)
		if err != nil {
			t.Fatal(err)
		}
		for other, fs := range variants {
			if other == name {
				continue
			}
			o := base
			o.Fields = fs
			if err := keys.Check(o, tag); !errors.Is(err, integrity.ErrMismatch) {
				t.Fatalf("tag of %s checks %s: %v", name, other, err)
			}
		}
		tags[string(tag)] = name
	}
	if len(tags) != len(variants) {
		t.Fatalf("%d distinct tags for %d variants", len(tags), len(variants))
	}
}

func TestTagBindsIdentity(t *testing.T) {
	_, keys := integritytest.NewKeyset(t)
	r := integrity.Record{Domain: "message", Tenant: "t1", ID: "1", Fields: []canon.Value{canon.String("x")}}
	tag, err := keys.Tag(r)
	if err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]integrity.Record{
		"other domain": {Domain: "note", Tenant: "t1", ID: "1", Fields: r.Fields},
		"other tenant": {Domain: "message", Tenant: "t2", ID: "1", Fields: r.Fields},
		"other id":     {Domain: "message", Tenant: "t1", ID: "2", Fields: r.Fields},
	} {
		if err := keys.Check(o, tag); !errors.Is(err, integrity.ErrMismatch) {
			t.Errorf("%s: Check = %v, want ErrMismatch", name, err)
		}
	}
	if _, err := keys.Tag(integrity.Record{Domain: "message", Tenant: "t1"}); !errors.Is(err, integrity.ErrInvalidRecord) {
		t.Fatalf("Tag without id = %v, want ErrInvalidRecord", err)
	}
}

func TestOtherKeysetCannotVerify(t *testing.T) {
	_, a := integritytest.NewKeyset(t)
	_, b := integritytest.NewKeyset(t)
	r := integrity.Record{Domain: "message", Tenant: "t1", ID: "1"}
	tag, err := a.Tag(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Check(r, tag); !errors.Is(err, integrity.ErrMismatch) {
		t.Fatalf("foreign keyset: %v", err)
	}
	for _, short := range [][]byte{nil, {1}, tag[:5], tag[:20]} {
		if err := a.Check(r, short); !errors.Is(err, integrity.ErrMismatch) {
			t.Fatalf("short tag %x: %v", short, err)
		}
	}
}

func TestNewKeysRejectsRawPrefix(t *testing.T) {
	h, err := keyset.NewHandle(mac.HMACSHA256Tag256KeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := integrity.NewKeys(h); err != nil {
		t.Fatalf("TINK-prefixed keyset refused: %v", err)
	}
	tmpl := mac.HMACSHA256Tag256KeyTemplate()
	tmpl.OutputPrefixType = 3 // RAW: the tag would not name its key
	h, err = keyset.NewHandle(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := integrity.NewKeys(h); !errors.Is(err, integrity.ErrConfig) {
		t.Fatalf("RAW keyset: %v, want ErrConfig", err)
	}
	if _, err := integrity.NewKeys(nil); !errors.Is(err, integrity.ErrConfig) {
		t.Fatalf("nil handle: %v", err)
	}
	if _, err := integrity.New(integrity.Config{}); !errors.Is(err, integrity.ErrConfig) {
		t.Fatalf("empty Config: %v", err)
	}
}

func TestSumIsModularAddition(t *testing.T) {
	var max integrity.Sum
	for i := range max {
		max[i] = 0xff
	}
	one := integrity.Sum{31: 1}

	s := max
	s.Add(one)
	if s != (integrity.Sum{}) {
		t.Fatalf("max+1 = %x, want 0", s)
	}
	s.Sub(one)
	if s != max {
		t.Fatalf("0-1 = %x, want max", s)
	}

	a := integrity.Element("s", []byte("a"))
	b := integrity.Element("s", []byte("b"))
	x, y := a, b
	x.Add(b)
	y.Add(a)
	if x != y {
		t.Fatal("addition is not commutative")
	}
	x.Sub(b)
	if x != a {
		t.Fatal("subtraction does not undo addition")
	}
	twice := a
	twice.Add(a)
	if twice == (integrity.Sum{}) {
		t.Fatal("an element added twice cancels out")
	}
}

func TestKeyIDParse(t *testing.T) {
	if _, ok := integrity.KeyID([]byte{1, 0, 0, 0, 7}); ok {
		t.Fatal("prefix without a MAC accepted")
	}
	if id, ok := integrity.KeyID([]byte{1, 0, 0, 1, 7, 9}); !ok || id != 263 {
		t.Fatalf("KeyID = %d, %v", id, ok)
	}
	if _, ok := integrity.KeyID([]byte{0, 0, 0, 1, 7, 9}); ok {
		t.Fatal("legacy prefix read as TINK")
	}
}

func TestDayScopeUsesUTC(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no tz database")
	}
	at := time.Date(2026, 12, 3, 21, 0, 0, 0, ny) // 02:00 UTC on the 4th
	if got := integrity.DayScope("c1", at); got != "c1/2026-12-04" {
		t.Fatalf("DayScope = %q", got)
	}
}

func TestVerifyReportsContextError(t *testing.T) {
	_, keys := integritytest.NewKeyset(t)
	s, err := integrity.New(integrity.Config{Keys: keys, Store: integrity.NewMemoryStore()})
	if err != nil {
		t.Fatal(err)
	}
	tb := integritytest.NewTable()
	tb.Set(integritytest.Message("t", "1", "c", "x", time.Unix(0, 0)))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Verify(ctx, "message", tb.Rows("message"), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Verify = %v, want context.Canceled", err)
	}
}

func FuzzKeyID(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 1, 2})
	f.Fuzz(func(t *testing.T, tag []byte) {
		id, ok := integrity.KeyID(tag)
		if ok && (len(tag) <= 5 || tag[0] != 1) {
			t.Fatalf("KeyID(%x) = %d, true", tag, id)
		}
	})
}

func TestFastPathMatchesTink(t *testing.T) {
	m, _ := integritytest.NewKeyset(t)
	keys := integritytest.Rotate(t, m) // two keys, the fast path for both
	if integrity.FastKeyCount(keys) != 2 {
		t.Fatalf("%d keys on the fast path, want 2", integrity.FastKeyCount(keys))
	}
	tinkOnly := integrity.TinkOnly(keys)
	for i := range 200 {
		r := integrity.Record{Domain: "d", Tenant: "t", ID: string(rune('a' + i%26)), Fields: []canon.Value{canon.Int(int64(i)), canon.String(string(make([]byte, i)))}}
		fast, err := keys.Tag(r)
		if err != nil {
			t.Fatal(err)
		}
		slow, err := tinkOnly.Tag(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fast, slow) {
			t.Fatalf("fast tag %x, Tink tag %x", fast, slow)
		}
		if err := tinkOnly.Check(r, fast); err != nil {
			t.Fatal(err)
		}
		bad := bytes.Clone(fast)
		bad[len(bad)-1] ^= 1
		if err := keys.Check(r, bad); !errors.Is(err, integrity.ErrMismatch) {
			t.Fatalf("flipped bit accepted: %v", err)
		}
	}

	// A key type the fast path does not know still works through Tink.
	h, err := keyset.NewHandle(mac.HMACSHA512Tag256KeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	k512, err := integrity.NewKeys(h)
	if err != nil {
		t.Fatal(err)
	}
	if integrity.FastKeyCount(k512) != 0 {
		t.Fatal("HMAC-SHA512 on the SHA-256 fast path")
	}
	r := integrity.Record{Domain: "d", Tenant: "t", ID: "1"}
	tag, err := k512.Tag(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := k512.Check(r, tag); err != nil {
		t.Fatal(err)
	}
}

// failingStore fails every read of a tag, one at a time or in a batch.
type failingStore struct{ integrity.Store }

var errRead = errors.New("read failed")

func (failingStore) Sealed(context.Context, integrity.Key) (integrity.Sealed, error) {
	return integrity.Sealed{}, errRead
}

func (failingStore) SealedMany(context.Context, []integrity.Key) (map[integrity.Key]integrity.Sealed, error) {
	return nil, errRead
}

// A tag read that fails is CheckAll's error, not a verdict on the records:
// no record may come back as genuine, unsealed or altered when its tag
// could not be read.
func TestCheckAllReadFailure(t *testing.T) {
	_, keys := integritytest.NewKeyset(t)
	for _, c := range []struct {
		name  string
		store integrity.Store
	}{
		{"batch", failingStore{integrity.NewMemoryStore()}},
		{"one by one", plainStore{failingStore{integrity.NewMemoryStore()}}},
	} {
		s, err := integrity.New(integrity.Config{Keys: keys, Store: c.store})
		if err != nil {
			t.Fatal(err)
		}
		recs := []integrity.Record{integritytest.Message("t1", "m1", "c1", "hi", time.Unix(0, 0))}
		results, err := s.CheckAll(context.Background(), recs)
		if !errors.Is(err, errRead) || results != nil {
			t.Errorf("%s: CheckAll = %v, %v; want nil, the read error", c.name, results, err)
		}
	}
}
