package chat

import (
	"fmt"
	"testing"
)

// BenchmarkMessages measures a message's round trip through the whole
// stack over HTTP on a loopback listener: POST (authenticate, member
// check, encrypt, seal, store, audit) and GET of a channel of 50 messages
// (authenticate, member check, and per message a tag check and a
// decryption, then one audit entry).
func BenchmarkMessages(b *testing.B) {
	for _, backend := range backends {
		b.Run(backend, func(b *testing.B) {
			f := newFixture(b, backend, setup{})
			f.signup("alice")
			tok := f.login("alice")
			ch := f.channel(tok.access, "bench")
			b.Run("post", func(b *testing.B) {
				f.t = b
				for i := 0; b.Loop(); i++ {
					f.post(tok.access, ch, fmt.Sprint("benchmark message number ", i))
				}
			})
			read := f.channel(tok.access, "read")
			for i := range 50 {
				f.post(tok.access, read, fmt.Sprint("message to read ", i))
			}
			b.Run("read50", func(b *testing.B) {
				f.t = b
				for b.Loop() {
					if got := f.read(tok.access, read); len(got) != 50 {
						b.Fatalf("read %d", len(got))
					}
				}
			})
		})
	}
}
