package session_test

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"syscall"
	"testing"
	"time"

	"github.com/chatsdk/compliance/session"
)

// cpuClock reports, besides ns/op, the process CPU time per operation
// (cpu-ns/op): on a machine shared with other work, wall time per op
// includes time spent waiting for a core, CPU time much less so.
type cpuClock struct{ start time.Duration }

func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuClock { return cpuClock{start: cpuNow()} }

func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64(cpuNow()-c.start)/float64(b.N), "cpu-ns/op")
}

// benchManager returns a manager signing with key, on a memory store,
// with the real clock (tokens stay valid for the run). A negative
// cacheSize turns the verified-token cache off.
func benchManager(b *testing.B, key session.Key, cacheSize int) *session.Manager {
	b.Helper()
	ring, err := session.NewKeyRing(key)
	if err != nil {
		b.Fatal(err)
	}
	m, err := session.New(session.Config{
		Store: session.NewMemoryStore(), Keys: ring, Issuer: "https://auth.example", Audience: "chat-api",
		VerifyCacheSize: cacheSize,
	})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

func benchVerify(b *testing.B, key session.Key, cacheSize int) {
	m := benchManager(b, key, cacheSize)
	tok, err := m.Create(context.Background(), session.CreateParams{AppID: "app1", UserID: "u1", Methods: []string{"pwd", "otp"}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		if _, err := m.Verify(tok.AccessToken); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b)
}

// BenchmarkVerifyHS256 is full access-token verification with HS256
// (target ≤ 10 µs), the verified-token cache off.
func BenchmarkVerifyHS256(b *testing.B) {
	k, err := session.NewHS256Key("h1", []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		b.Fatal(err)
	}
	benchVerify(b, k, -1)
}

// BenchmarkVerifyEdDSA is full access-token verification with EdDSA
// (target ≤ 80 µs), the verified-token cache off.
func BenchmarkVerifyEdDSA(b *testing.B) {
	k, err := session.GenerateEd25519Key("e1")
	if err != nil {
		b.Fatal(err)
	}
	benchVerify(b, k, -1)
}

// BenchmarkVerifyCached is the same EdDSA token verified again: what every
// request after a token's first costs with the default cache.
func BenchmarkVerifyCached(b *testing.B) {
	k, err := session.GenerateEd25519Key("e1")
	if err != nil {
		b.Fatal(err)
	}
	benchVerify(b, k, 0)
}

// BenchmarkRawHMAC and BenchmarkRawEd25519 are the bare primitives over a
// token-sized input, run beside the verifiers to give a load-independent
// ratio.
func BenchmarkRawHMAC(b *testing.B) {
	msg := make([]byte, 400)
	key := []byte("0123456789abcdef0123456789abcdef")
	cpu := startCPU()
	for b.Loop() {
		h := hmac.New(sha256.New, key)
		h.Write(msg)
		_ = h.Sum(nil)
	}
	cpu.report(b)
}

func BenchmarkRawEd25519(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := make([]byte, 400)
	sig := ed25519.Sign(priv, msg)
	cpu := startCPU()
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("bad signature")
		}
	}
	cpu.report(b)
}

// BenchmarkAuthenticate is what the middleware does per request on a warm
// cache: verify, check the cached session, no store write.
func BenchmarkAuthenticate(b *testing.B) {
	k, _ := session.GenerateEd25519Key("e1")
	m := benchManager(b, k, 0)
	ctx := context.Background()
	tok, _ := m.Create(ctx, session.CreateParams{AppID: "app1", UserID: "u1", Methods: []string{"pwd"}})
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		if _, err := m.Authenticate(ctx, tok.AccessToken); err != nil {
			b.Fatal(err)
		}
	}
	cpu.report(b)
}

// BenchmarkRefreshMemory is a rotation on the memory store, signing
// included: the cost the Postgres figure adds its round trip to.
func BenchmarkRefreshMemory(b *testing.B) {
	k, _ := session.GenerateEd25519Key("e1")
	m := benchManager(b, k, 0)
	ctx := context.Background()
	tok, _ := m.Create(ctx, session.CreateParams{AppID: "app1", UserID: "u1", Methods: []string{"pwd"}})
	rt := tok.RefreshToken
	start := time.Now()
	b.ReportAllocs()
	cpu := startCPU()
	for b.Loop() {
		next, err := m.Refresh(ctx, rt)
		if err != nil {
			b.Fatal(err)
		}
		rt = next.RefreshToken
		if time.Since(start) > 10*time.Minute {
			b.Fatal("benchmark ran into the idle timeout")
		}
	}
	cpu.report(b)
}
