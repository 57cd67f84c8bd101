package fieldcrypt

import (
	"context"
	"runtime"
	"sync"
	"testing"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
)

// blockingStore holds the first Get until released.
type blockingStore struct {
	Store
	once    sync.Once
	first   chan struct{}
	release chan struct{}
}

func (b *blockingStore) Get(ctx context.Context, s Scope, p Purpose) (StoredKeyset, error) {
	b.once.Do(func() {
		close(b.first)
		<-b.release
	})
	return b.Store.Get(ctx, s, p)
}

// A decrypt and an encrypt meeting a new scope at once share one load, the
// decrypt's, which does not create: the encrypt must still create the
// keyset rather than fail with "not found".
func TestEncryptSharingDecryptsLoad(t *testing.T) {
	ctx := context.Background()
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	kek, err := aead.New(h)
	if err != nil {
		t.Fatal(err)
	}
	st := &blockingStore{Store: NewMemoryStore(), first: make(chan struct{}), release: make(chan struct{})}
	kr, err := New(Config{Store: st, KEK: kek})
	if err != nil {
		t.Fatal(err)
	}
	l := Location{Tenant: "new", Table: "t", Column: "c", Row: "1"}

	decrypted := make(chan error, 1)
	go func() {
		_, err := kr.Decrypt(ctx, l, append(KeyPrefix(1), make([]byte, 40)...))
		decrypted <- err
	}()
	<-st.first // the decrypt's load is waiting in Get

	encrypted := make(chan error, 1)
	go func() {
		_, err := kr.Encrypt(ctx, l, []byte("x"))
		encrypted <- err
	}()
	key := cacheKey{l.ScopeOf(), PurposeAEAD}
	for joined := false; !joined; runtime.Gosched() {
		kr.flight.mu.Lock()
		c := kr.flight.calls[key]
		joined = c != nil && c.waiters == 1
		kr.flight.mu.Unlock()
	}
	close(st.release)

	<-decrypted
	if err := <-encrypted; err != nil {
		t.Fatalf("Encrypt that shared a Decrypt's load: %v", err)
	}
}
