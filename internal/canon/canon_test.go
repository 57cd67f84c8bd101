package canon

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json from the current encoder")

// vectorField is a field of a known-answer vector in a form JSON can carry.
type vectorField struct {
	Kind  string `json:"kind"`
	Value string `json:"value,omitempty"` // hex for bytes, text for string, decimal for int/uint, RFC 3339 for time, "true"/"false" for bool
}

type vector struct {
	Name   string        `json:"name"`
	Domain string        `json:"domain"`
	Fields []vectorField `json:"fields"`
	Hex    string        `json:"hex"`
}

func (f vectorField) value(t *testing.T) Value {
	t.Helper()
	switch f.Kind {
	case "null":
		return Null()
	case "bytes":
		b, err := hex.DecodeString(f.Value)
		if err != nil {
			t.Fatal(err)
		}
		return Bytes(b)
	case "string":
		return String(f.Value)
	case "int":
		var i int64
		if err := json.Unmarshal([]byte(f.Value), &i); err != nil {
			t.Fatal(err)
		}
		return Int(i)
	case "uint":
		var u uint64
		if err := json.Unmarshal([]byte(f.Value), &u); err != nil {
			t.Fatal(err)
		}
		return Uint(u)
	case "bool":
		return Bool(f.Value == "true")
	case "time":
		tm, err := time.Parse(time.RFC3339Nano, f.Value)
		if err != nil {
			t.Fatal(err)
		}
		return Time(tm)
	}
	t.Fatalf("unknown kind %q in vector", f.Kind)
	return Value{}
}

// defaultVectors are the cases the known-answer file covers; -update
// regenerates their expected bytes, which a reviewer must then read.
var defaultVectors = []vector{
	{Name: "empty domain, no fields", Domain: ""},
	{Name: "domain only", Domain: "test.v1"},
	{Name: "null", Domain: "test.v1", Fields: []vectorField{{Kind: "null"}}},
	{Name: "empty string", Domain: "test.v1", Fields: []vectorField{{Kind: "string"}}},
	{Name: "empty bytes", Domain: "test.v1", Fields: []vectorField{{Kind: "bytes"}}},
	{Name: "ab then c", Domain: "test.v1", Fields: []vectorField{{Kind: "string", Value: "ab"}, {Kind: "string", Value: "c"}}},
	{Name: "a then bc", Domain: "test.v1", Fields: []vectorField{{Kind: "string", Value: "a"}, {Kind: "string", Value: "bc"}}},
	{Name: "bytes", Domain: "test.v1", Fields: []vectorField{{Kind: "bytes", Value: "00ff10"}}},
	{Name: "int -1", Domain: "test.v1", Fields: []vectorField{{Kind: "int", Value: "-1"}}},
	{Name: "uint max", Domain: "test.v1", Fields: []vectorField{{Kind: "uint", Value: "18446744073709551615"}}},
	{Name: "bools", Domain: "test.v1", Fields: []vectorField{{Kind: "bool", Value: "true"}, {Kind: "bool", Value: "false"}}},
	{Name: "time with offset and nanos", Domain: "test.v1", Fields: []vectorField{{Kind: "time", Value: "2026-01-09T10:11:12.123456789+02:00"}}},
	{Name: "time before epoch", Domain: "test.v1", Fields: []vectorField{{Kind: "time", Value: "1969-12-31T23:59:59.999999Z"}}},
	{Name: "utf-8 string", Domain: "audit.entry.v1", Fields: []vectorField{{Kind: "string", Value: "patient ü 患者"}, {Kind: "null"}, {Kind: "int", Value: "42"}}},
}

func TestKnownAnswers(t *testing.T) {
	path := filepath.Join("testdata", "vectors.json")
	if *update {
		vs := make([]vector, len(defaultVectors))
		for i, v := range defaultVectors {
			fields := make([]Value, len(v.Fields))
			for j, f := range v.Fields {
				fields[j] = f.value(t)
			}
			v.Hex = hex.EncodeToString(Encode(v.Domain, fields...))
			vs[i] = v
		}
		out, err := json.MarshalIndent(vs, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) < len(defaultVectors) {
		t.Fatalf("testdata has %d vectors, want at least %d", len(vs), len(defaultVectors))
	}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			fields := make([]Value, len(v.Fields))
			for j, f := range v.Fields {
				fields[j] = f.value(t)
			}
			got := hex.EncodeToString(Encode(v.Domain, fields...))
			if got != v.Hex {
				t.Fatalf("Encode = %s, want %s", got, v.Hex)
			}

			// The Encoder spells the same bytes field by field.
			e := NewEncoder(v.Domain)
			for _, f := range fields {
				e.Value(f)
			}
			if got := hex.EncodeToString(e.Bytes()); got != v.Hex {
				t.Fatalf("Encoder = %s, want %s", got, v.Hex)
			}

			want, _ := hex.DecodeString(v.Hex)
			dom, dec, err := Decode(want)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if dom != v.Domain || !equalFields(dec, fields) {
				t.Fatalf("Decode = %q %v, want %q %v", dom, dec, v.Domain, fields)
			}
		})
	}
}

// TestAmbiguities pins the cases the design rules out by name: joined
// strings that concatenate alike, NULL against empty, and one kind against
// another with the same payload.
func TestAmbiguities(t *testing.T) {
	pairs := []struct {
		name string
		a, b []byte
	}{
		{"ab+c vs a+bc", Encode("d", String("ab"), String("c")), Encode("d", String("a"), String("bc"))},
		{"null vs empty string", Encode("d", Null()), Encode("d", String(""))},
		{"null vs empty bytes", Encode("d", Null()), Encode("d", Bytes(nil))},
		{"string vs bytes", Encode("d", String("x")), Encode("d", Bytes([]byte("x")))},
		{"int vs uint", Encode("d", Int(5)), Encode("d", Uint(5))},
		{"int vs time", Encode("d", Int(5)), Encode("d", Time(time.UnixMicro(5)))},
		{"domain vs first field", Encode("ab"), Encode("a", String("b"))},
		{"one empty field vs none", Encode("d", String("")), Encode("d")},
		{"opt nil vs opt empty", Encode("d", OptString(nil)), Encode("d", OptString(new(string)))},
	}
	for _, p := range pairs {
		if bytes.Equal(p.a, p.b) {
			t.Errorf("%s: both encode to %x", p.name, p.a)
		}
	}
}

func TestTimeZoneIndependent(t *testing.T) {
	utc := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	tokyo := utc.In(time.FixedZone("JST", 9*3600))
	if !bytes.Equal(Encode("d", Time(utc)), Encode("d", Time(tokyo))) {
		t.Fatal("the same instant in two zones encodes differently")
	}
	withNanos := utc.Add(789 * time.Nanosecond)
	if !bytes.Equal(Encode("d", Time(utc)), Encode("d", Time(withNanos))) {
		t.Fatal("sub-microsecond digits changed the encoding")
	}
	if got := TruncateTime(withNanos); !got.Equal(utc) || got.Location() != time.UTC {
		t.Fatalf("TruncateTime = %v, want %v", got, utc)
	}
}

func TestDecodeErrors(t *testing.T) {
	valid := Encode("d", String("abc"), Bool(true), Int(1))
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"bad version", append([]byte{0x02}, valid[1:]...), ErrVersion},
		{"short domain length", valid[:3], ErrTruncated},
		{"domain longer than input", []byte{Version, 0, 0, 0, 9, 'd'}, ErrTruncated},
		{"truncated string", valid[:len(valid)-13], ErrTruncated},
		{"truncated int", valid[:len(valid)-1], ErrTruncated},
		{"unknown kind", append(Encode("d"), 0x07), ErrKind},
		{"bool 2", append(Encode("d"), byte(KindBool), 2), ErrNonCanonical},
		{"bool missing payload", append(Encode("d"), byte(KindBool)), ErrTruncated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := Decode(c.in)
			if !errors.Is(err, c.want) {
				t.Fatalf("Decode error = %v, want %v", err, c.want)
			}
		})
	}
}

func TestAccessorsOfOtherKinds(t *testing.T) {
	s := String("x")
	if s.IntValue() != 0 || s.UintValue() != 0 || s.BoolValue() || !s.TimeValue().IsZero() {
		t.Fatal("accessor of another kind returned a non-zero value")
	}
	var zero Value
	if !zero.IsNull() {
		t.Fatal("the zero Value is not NULL")
	}
	if Int(-7).IntValue() != -7 || Uint(7).UintValue() != 7 || !Bool(true).BoolValue() {
		t.Fatal("accessor lost its value")
	}
	if Kind(9).String() != "kind(9)" || KindTime.String() != "time" {
		t.Fatal("Kind.String")
	}
}

func equalFields(a, b []Value) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

// fieldsFrom turns fuzzer bytes into a field list: each field takes a kind
// byte, then for variable payloads a length byte and that many bytes, for
// fixed payloads eight bytes (fewer at the end of the input).
func fieldsFrom(spec []byte) []Value {
	var fields []Value
	next := func(n int) []byte {
		if n > len(spec) {
			n = len(spec)
		}
		b := spec[:n]
		spec = spec[n:]
		return b
	}
	for len(spec) > 0 {
		k := next(1)[0] % 7
		switch Kind(k) {
		case KindNull:
			fields = append(fields, Null())
		case KindBytes, KindString:
			n := 0
			if l := next(1); len(l) == 1 {
				n = int(l[0] % 32)
			}
			p := next(n)
			if Kind(k) == KindBytes {
				fields = append(fields, Bytes(append([]byte{}, p...)))
			} else {
				fields = append(fields, String(string(p)))
			}
		case KindBool:
			b := next(1)
			fields = append(fields, Bool(len(b) == 1 && b[0]&1 == 1))
		default:
			var x [8]byte
			copy(x[:], next(8))
			fields = append(fields, Value{kind: Kind(k), n: uint64(x[0])<<56 | uint64(x[1])<<48 | uint64(x[2])<<40 | uint64(x[3])<<32 | uint64(x[4])<<24 | uint64(x[5])<<16 | uint64(x[6])<<8 | uint64(x[7])})
		}
	}
	return fields
}

// FuzzInjective checks that two different inputs never encode the same and
// that decoding inverts encoding.
func FuzzInjective(f *testing.F) {
	f.Add("d", []byte("\x02\x02ab\x02\x01c"), "d", []byte("\x02\x01a\x02\x02bc"))
	f.Add("d", []byte{0}, "d", []byte{2, 0})
	f.Add("ab", []byte{}, "a", []byte{2, 1, 'b'})
	f.Add("", []byte{3, 0, 0, 0, 0, 0, 0, 0, 5}, "", []byte{4, 0, 0, 0, 0, 0, 0, 0, 5})
	f.Fuzz(func(t *testing.T, d1 string, s1 []byte, d2 string, s2 []byte) {
		f1, f2 := fieldsFrom(s1), fieldsFrom(s2)
		e1, e2 := Encode(d1, f1...), Encode(d2, f2...)

		same := d1 == d2 && equalFields(f1, f2)
		if same != bytes.Equal(e1, e2) {
			t.Fatalf("inputs equal=%v but encodings equal=%v: %x %x", same, !same, e1, e2)
		}

		dom, dec, err := Decode(e1)
		if err != nil {
			t.Fatalf("Decode(Encode(x)): %v", err)
		}
		if dom != d1 || !equalFields(dec, f1) {
			t.Fatalf("Decode(Encode(x)) = %q %v, want %q %v", dom, dec, d1, f1)
		}
	})
}

// FuzzDecode checks that Decode never panics and that whatever it accepts
// re-encodes to the same bytes, so there is one spelling per value.
func FuzzDecode(f *testing.F) {
	f.Add(Encode("d", String("abc"), Null(), Bool(true), Time(time.Unix(1, 0))))
	f.Add([]byte{Version, 0, 0, 0, 0, byte(KindBool), 1})
	f.Add([]byte{Version, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		dom, fields, err := Decode(data)
		if err != nil {
			return
		}
		if got := Encode(dom, fields...); !bytes.Equal(got, data) {
			t.Fatalf("Encode(Decode(b)) = %x, want %x", got, data)
		}
	})
}

func BenchmarkEncoder(b *testing.B) {
	e := NewEncoder("bench.v1")
	text := bytes.Repeat([]byte("x"), 200)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		e.Reset("bench.v1")
		e.String("tenant-1")
		e.String("messages")
		e.Int(123456789)
		e.Time(now)
		e.BytesField(text)
		e.OptString(nil)
	}
}

// TestAppendFunctionsMatchEncode pins the stateless appenders to Encode.
func TestAppendFunctionsMatchEncode(t *testing.T) {
	now := time.Date(2026, 12, 3, 1, 2, 3, 4000, time.UTC)
	want := Encode("d.v1", Null(), Bytes([]byte{1, 2}), String("s"), Int(-3), Uint(4), Bool(true), Time(now))
	var buf [128]byte
	got := AppendHeader(buf[:0], "d.v1")
	got = AppendNull(got)
	got = AppendBytes(got, []byte{1, 2})
	got = AppendString(got, "s")
	got = AppendInt(got, -3)
	got = AppendUint(got, 4)
	got = AppendBool(got, true)
	got = AppendTime(got, now)
	if !bytes.Equal(got, want) {
		t.Fatalf("appenders = %x, want %x", got, want)
	}
}

func BenchmarkAppendStack(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		var buf [96]byte
		d := AppendHeader(buf[:0], "fieldcrypt.field.v1")
		d = AppendString(d, "tenant-1")
		d = AppendString(d, "messages")
		d = AppendString(d, "text")
		d = AppendString(d, "123456789")
		_ = d
	}
}

func BenchmarkAppendValues(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 96)
	for b.Loop() {
		buf = Append(buf[:0], "fieldcrypt.field.v1", String("tenant-1"), String("messages"), String("text"), String("123456789"))
	}
}
