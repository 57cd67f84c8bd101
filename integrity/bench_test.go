package integrity_test

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/chatsdk/compliance/integrity"
	"github.com/chatsdk/compliance/integrity/integritytest"
	"github.com/chatsdk/compliance/internal/canon"
)

// benchRecord is a typical chat message: channel, 120 bytes of text, time.
func benchRecord() integrity.Record {
	text := make([]byte, 120)
	for i := range text {
		text[i] = 'a' + byte(i%26)
	}
	at := time.Date(2026, 12, 3, 9, 30, 0, 0, time.UTC)
	return integrity.Record{Domain: "message", Tenant: "app-1", ID: "1234567", Scope: integrity.DayScope("chan-7", at),
		Fields: []canon.Value{canon.String("chan-7"), canon.String(string(text)), canon.Time(at)}}
}

// BenchmarkTag is the package's tag: canonical encoding and Tink HMAC.
func BenchmarkTag(b *testing.B) {
	_, keys := integritytest.NewKeyset(b)
	r := benchRecord()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := keys.Tag(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBareHMACSHA256 is crypto/hmac over the same bytes, the floor.
func BenchmarkBareHMACSHA256(b *testing.B) {
	r := benchRecord()
	msg := integrity.AppendMessage(nil, r.Domain, r.Tenant, r.ID, r.Fields)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	b.ReportAllocs()
	for b.Loop() {
		m := hmac.New(sha256.New, key)
		m.Write(msg)
		_ = m.Sum(nil)
	}
}

// BenchmarkCheck verifies a tag.
func BenchmarkCheck(b *testing.B) {
	_, keys := integritytest.NewKeyset(b)
	r := benchRecord()
	tag, err := keys.Tag(r)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := keys.Check(r, tag); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScanRow is the verifier's per-row work: encode, check the tag,
// add the row's element to its scope's sum.
func BenchmarkScanRow(b *testing.B) {
	_, keys := integritytest.NewKeyset(b)
	s, err := integrity.New(integrity.Config{Keys: keys, Store: integrity.NewMemoryStore()})
	if err != nil {
		b.Fatal(err)
	}
	r := benchRecord()
	tag, _ := keys.Tag(r)
	sealed := &integrity.Sealed{Key: integrity.Key{Domain: r.Domain, Tenant: r.Tenant, ID: r.ID}, Scope: r.Scope, KeyID: keys.Primary(), Tag: tag}
	sc := s.NewScan("message", nil)
	b.ReportAllocs()
	for b.Loop() {
		sc.Row(r.Tenant, r.ID, r.Fields, sealed)
	}
}

// BenchmarkTagTinkPrimitive is the same tag through Tink's own HMAC
// primitive, which the fast path replaces for HMAC-SHA256 keys.
func BenchmarkTagTinkPrimitive(b *testing.B) {
	_, keys := integritytest.NewKeyset(b)
	keys = integrity.TinkOnly(keys)
	r := benchRecord()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := keys.Tag(r); err != nil {
			b.Fatal(err)
		}
	}
}
