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

// BenchmarkTagBesideBareHMAC alternates, in blocks of 1,000, the package's
// tag, Tink's primitive and a bare crypto/hmac HMAC-SHA256 of the same
// bytes, so that a loaded machine slows all three alike; it reports each
// one's ns per operation and the ratios.
func BenchmarkTagBesideBareHMAC(b *testing.B) {
	_, keys := integritytest.NewKeyset(b)
	tinkOnly := integrity.TinkOnly(keys)
	r := benchRecord()
	msg := integrity.AppendMessage(nil, r.Domain, r.Tenant, r.ID, r.Fields)
	key := make([]byte, 32)
	_, _ = rand.Read(key)

	const block = 1000
	var tTag, tTink, tBare time.Duration
	blocks := 0
	for b.Loop() {
		t0 := time.Now()
		for range block {
			if _, err := keys.Tag(r); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for range block {
			if _, err := tinkOnly.Tag(r); err != nil {
				b.Fatal(err)
			}
		}
		t2 := time.Now()
		for range block {
			m := hmac.New(sha256.New, key)
			m.Write(msg)
			_ = m.Sum(nil)
		}
		t3 := time.Now()
		tTag, tTink, tBare = tTag+t1.Sub(t0), tTink+t2.Sub(t1), tBare+t3.Sub(t2)
		blocks++
	}
	n := float64(blocks * block)
	b.ReportMetric(float64(tTag.Nanoseconds())/n, "ns/tag")
	b.ReportMetric(float64(tTink.Nanoseconds())/n, "ns/tink-tag")
	b.ReportMetric(float64(tBare.Nanoseconds())/n, "ns/bare-hmac")
	b.ReportMetric(float64(tTag)/float64(tBare), "tag/bare")
	b.ReportMetric(float64(tTink)/float64(tBare), "tink/bare")
}
