package fieldcrypt_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatsdk/compliance/fieldcrypt"
)

// countingStore counts reads of a Store.
type countingStore struct {
	fieldcrypt.Store
	gets atomic.Int64
}

func (c *countingStore) Get(ctx context.Context, s fieldcrypt.Scope, p fieldcrypt.Purpose) (fieldcrypt.StoredKeyset, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, s, p)
}

// Ciphertexts naming keys the keyset lacks must not turn every decrypt
// into a store read and a KEK call.
func TestUnknownKeyReloadIsRateLimited(t *testing.T) {
	ctx := context.Background()
	st := &countingStore{Store: fieldcrypt.NewMemoryStore()}
	clk := newClock()
	kr, err := fieldcrypt.New(fieldcrypt.Config{Store: st, KEK: newKEK(t), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	l := loc("app-a", "1")
	if _, err := kr.Encrypt(ctx, l, []byte("x")); err != nil {
		t.Fatal(err)
	}
	before := st.gets.Load()
	forged := append(fieldcrypt.KeyPrefix(0xdeadbeef), make([]byte, 40)...)
	for range 100 {
		if _, err := kr.Decrypt(ctx, l, forged); !errors.Is(err, fieldcrypt.ErrDecrypt) {
			t.Fatalf("forged ciphertext: got %v, want ErrDecrypt", err)
		}
	}
	if n := st.gets.Load() - before; n != 1 {
		t.Fatalf("100 forged ciphertexts made %d store reads, want 1", n)
	}
	clk.Advance(2 * time.Second)
	if _, err := kr.Decrypt(ctx, l, forged); !errors.Is(err, fieldcrypt.ErrDecrypt) {
		t.Fatal(err)
	}
	if n := st.gets.Load() - before; n != 2 {
		t.Fatalf("after a second: %d store reads, want 2", n)
	}
}

// Many goroutines meeting a new scope at once create one keyset between
// them, and every ciphertext decrypts.
func TestConcurrentFirstUse(t *testing.T) {
	ctx := context.Background()
	b := newBundle(t, nil)
	instances := []*fieldcrypt.Keyring{b.kr, b.another(t), b.another(t)}
	var wg sync.WaitGroup
	cts := make([][]byte, 24)
	errs := make([]error, len(cts))
	for i := range cts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cts[i], errs[i] = instances[i%len(instances)].Encrypt(ctx, loc("app-new", "1"), []byte("hello"))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Encrypt %d: %v", i, err)
		}
	}
	keys, err := b.kr.Keys(ctx, fieldcrypt.Scope{Tenant: "app-new"})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Fatalf("concurrent first use made %d keys, want 1", len(keys))
	}
	for _, ct := range cts {
		for _, kr := range instances {
			if got, err := kr.Decrypt(ctx, loc("app-new", "1"), ct); err != nil || string(got) != "hello" {
				t.Fatalf("got %q, %v", got, err)
			}
		}
	}
}

// gatedStore lets a test hold a Get after it has read the store and before
// it returns, so that something can happen in between.
type gatedStore struct {
	fieldcrypt.Store
	mu      sync.Mutex
	hold    bool
	read    chan struct{}
	release chan struct{}
}

func (g *gatedStore) Get(ctx context.Context, s fieldcrypt.Scope, p fieldcrypt.Purpose) (fieldcrypt.StoredKeyset, error) {
	st, err := g.Store.Get(ctx, s, p)
	g.mu.Lock()
	hold := g.hold
	g.hold = false
	g.mu.Unlock()
	if hold {
		close(g.read)
		<-g.release
	}
	return st, err
}

// Forget is how an application passes on another instance's shred. A load
// that read the store before the shred and finishes after Forget must not
// put the shredded keyset back in the cache for a whole CacheTTL.
func TestForgetBeatsLoadInFlight(t *testing.T) {
	ctx := context.Background()
	mem := fieldcrypt.NewMemoryStore()
	gs := &gatedStore{Store: mem, read: make(chan struct{}), release: make(chan struct{})}
	kek := newKEK(t)
	clk := newClock()
	here, err := fieldcrypt.New(fieldcrypt.Config{Store: gs, KEK: kek, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	there, err := fieldcrypt.New(fieldcrypt.Config{Store: mem, KEK: kek, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	l := loc("app-a", "1")
	ct, err := there.Encrypt(ctx, l, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}

	gs.mu.Lock()
	gs.hold = true
	gs.mu.Unlock()
	done := make(chan error, 1)
	go func() { _, err := here.Decrypt(ctx, l, ct); done <- err }()
	<-gs.read // here has read the live keyset
	if err := there.Shred(ctx, tenantA); err != nil {
		t.Fatal(err)
	}
	here.Forget(tenantA) // the shred's notification arrives
	close(gs.release)
	<-done // this one read the store before the shred; it may succeed

	if _, err := here.Decrypt(ctx, l, ct); !errors.Is(err, fieldcrypt.ErrShredded) {
		t.Fatalf("after Forget, decrypt of a shredded scope: got %v, want ErrShredded", err)
	}
}

// An instance that reloads a keyset for an unknown key ID and finds the
// scope shredded says so, rather than calling the ciphertext tampered.
func TestReloadFindingShredReportsShredded(t *testing.T) {
	ctx := context.Background()
	b := newBundle(t, nil)
	here := b.another(t)
	l := loc("app-a", "1")
	ct, err := b.kr.Encrypt(ctx, l, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := here.Decrypt(ctx, l, ct); err != nil { // here caches the keyset
		t.Fatal(err)
	}
	if _, err := b.kr.Rotate(ctx, tenantA); err != nil {
		t.Fatal(err)
	}
	newer, err := b.kr.Encrypt(ctx, l, []byte("y"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.kr.Shred(ctx, tenantA); err != nil {
		t.Fatal(err)
	}
	if _, err := here.Decrypt(ctx, l, newer); !errors.Is(err, fieldcrypt.ErrShredded) {
		t.Fatalf("decrypt under a key unknown here, scope shredded elsewhere: got %v, want ErrShredded", err)
	}
	if _, err := here.Decrypt(ctx, l, ct); !errors.Is(err, fieldcrypt.ErrShredded) {
		t.Fatalf("after learning of the shred: got %v, want ErrShredded", err)
	}
}
