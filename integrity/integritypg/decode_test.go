package integritypg

import (
	"bytes"
	"testing"
	"time"

	"github.com/chatsdk/compliance/internal/canon"
)

func TestDecoders(t *testing.T) {
	ts := []byte{0, 0x03, 0x1e, 0x2d, 0x2c, 0x4f, 0xc0, 0x00} // some µs after 2000-01-01
	cases := []struct {
		oid  uint32
		kind canon.Kind
		raw  []byte
		want canon.Value
	}{
		{oidText, canon.KindString, []byte("héllo"), canon.String("héllo")},
		{oidBytea, canon.KindBytes, []byte{0, 1}, canon.Bytes([]byte{0, 1})},
		{oidInt2, canon.KindInt, []byte{0xff, 0xfe}, canon.Int(-2)},
		{oidInt4, canon.KindInt, []byte{0, 0, 1, 0}, canon.Int(256)},
		{oidInt8, canon.KindInt, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, canon.Int(-1)},
		{oidBool, canon.KindBool, []byte{1}, canon.Bool(true)},
		{oidUUID, canon.KindString, []byte{0x01, 0x93, 0xa1, 0xf2, 0x7c, 0x3d, 0x7e, 0x4f, 0x8a, 0x9b, 0x0c, 0x1d, 0x2e, 0x3f, 0x4a, 0x5b},
			canon.String("0193a1f2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")},
		{oidTimestamptz, canon.KindTime, make([]byte, 8), canon.Time(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))},
		{oidTimestamp, canon.KindTime, ts, canon.Time(time.UnixMicro(pgEpochMicros + 0x031e2d2c4fc000))},
	}
	for _, c := range cases {
		dec, err := decoderFor(c.oid, c.kind)
		if err != nil {
			t.Fatalf("oid %d as %s: %v", c.oid, c.kind, err)
		}
		got, err := dec(c.raw)
		if err != nil || !got.Equal(c.want) {
			t.Fatalf("oid %d: %v, %v; want %v", c.oid, got, err, c.want)
		}
	}
	if _, err := decoderFor(oidText, canon.KindInt); err == nil {
		t.Fatal("text accepted as int")
	}
}

// FuzzDecoders feeds arbitrary bytes to every decoder: none may panic, and
// what one accepts must encode.
func FuzzDecoders(f *testing.F) {
	f.Add(uint8(0), []byte{1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(uint8(7), make([]byte, 16))
	pairs := []struct {
		oid  uint32
		kind canon.Kind
	}{
		{oidText, canon.KindString}, {oidBytea, canon.KindBytes}, {oidInt2, canon.KindInt}, {oidInt4, canon.KindInt},
		{oidInt8, canon.KindInt}, {oidBool, canon.KindBool}, {oidTimestamptz, canon.KindTime}, {oidUUID, canon.KindString},
	}
	f.Fuzz(func(t *testing.T, which uint8, raw []byte) {
		p := pairs[int(which)%len(pairs)]
		dec, err := decoderFor(p.oid, p.kind)
		if err != nil {
			t.Fatal(err)
		}
		app, err := appenderFor(p.oid, p.kind)
		if err != nil {
			t.Fatal(err)
		}
		v, err := dec(raw)
		got, aerr := app([]byte("x"), raw)
		if (err == nil) != (aerr == nil) {
			t.Fatalf("oid %d: decoder error %v, appender error %v", p.oid, err, aerr)
		}
		if err != nil {
			return
		}
		if want := canon.AppendValue([]byte("x"), v); !bytes.Equal(got, want) {
			t.Fatalf("oid %d: appender wrote %x, decoder's value encodes as %x", p.oid, got, want)
		}
	})
}

// The streaming verifier encodes columns with appenders, the join and the
// loader with decoders: both must give the same bytes for every value.
func TestAppendersAgree(t *testing.T) {
	inf := []byte{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	cases := []struct {
		oid  uint32
		kind canon.Kind
		raw  []byte
	}{
		{oidText, canon.KindString, []byte("héllo")},
		{oidText, canon.KindString, []byte{}},
		{oidVarchar, canon.KindString, []byte("v")},
		{oidBytea, canon.KindBytes, []byte{0, 1}},
		{oidBytea, canon.KindBytes, []byte{}},
		{oidInt4, canon.KindInt, []byte{0, 0, 1, 0}},
		{oidBool, canon.KindBool, []byte{1}},
		{oidUUID, canon.KindString, []byte{0x01, 0x93, 0xa1, 0xf2, 0x7c, 0x3d, 0x7e, 0x4f, 0x8a, 0x9b, 0x0c, 0x1d, 0x2e, 0x3f, 0x4a, 0x5b}},
		{oidTimestamptz, canon.KindTime, make([]byte, 8)},
		{oidTimestamptz, canon.KindTime, inf},
	}
	for _, c := range cases {
		dec, err := decoderFor(c.oid, c.kind)
		if err != nil {
			t.Fatal(err)
		}
		app, err := appenderFor(c.oid, c.kind)
		if err != nil {
			t.Fatal(err)
		}
		v, err := dec(c.raw)
		if err != nil {
			t.Fatal(err)
		}
		got, err := app(nil, c.raw)
		if err != nil {
			t.Fatal(err)
		}
		if want := canon.AppendValue(nil, v); !bytes.Equal(got, want) {
			t.Errorf("oid %d %x: appender wrote %x, want %x", c.oid, c.raw, got, want)
		}
	}
	if _, err := appenderFor(oidText, canon.KindInt); err == nil {
		t.Fatal("text accepted as int")
	}
}
