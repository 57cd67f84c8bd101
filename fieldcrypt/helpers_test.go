package fieldcrypt_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tink-crypto/tink-go/v2/testing/fakekms"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/chatsdk/compliance/fieldcrypt"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// countingKEK counts the calls made to a KEK.
type countingKEK struct {
	tink.AEAD
	encrypts, decrypts atomic.Int64
}

func (c *countingKEK) Encrypt(p, ad []byte) ([]byte, error) {
	c.encrypts.Add(1)
	return c.AEAD.Encrypt(p, ad)
}

func (c *countingKEK) Decrypt(ct, ad []byte) ([]byte, error) {
	c.decrypts.Add(1)
	return c.AEAD.Decrypt(ct, ad)
}

// bundle is one test's keyring with what it is made of.
type bundle struct {
	kr    *fieldcrypt.Keyring
	store *fieldcrypt.MemoryStore
	kek   *countingKEK
	clock *clock
	cfg   fieldcrypt.Config
}

func newKEK(t testing.TB) tink.AEAD {
	t.Helper()
	uri, err := fakekms.NewKeyURI()
	if err != nil {
		t.Fatal(err)
	}
	kek, err := fakekms.NewAEAD(uri)
	if err != nil {
		t.Fatal(err)
	}
	return kek
}

func newBundle(t testing.TB, configure func(*fieldcrypt.Config)) *bundle {
	t.Helper()
	b := &bundle{store: fieldcrypt.NewMemoryStore(), kek: &countingKEK{AEAD: newKEK(t)}, clock: newClock()}
	b.cfg = fieldcrypt.Config{Store: b.store, KEK: b.kek, Now: b.clock.Now}
	if configure != nil {
		configure(&b.cfg)
	}
	b.kr = b.another(t)
	return b
}

// another returns a second Keyring on the same store, KEK and clock: an
// other app instance.
func (b *bundle) another(t testing.TB) *fieldcrypt.Keyring {
	t.Helper()
	kr, err := fieldcrypt.New(b.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

var (
	tenantA = fieldcrypt.Scope{Tenant: "app-a"}
	tenantB = fieldcrypt.Scope{Tenant: "app-b"}
)

func loc(tenant, row string) fieldcrypt.Location {
	return fieldcrypt.Location{Tenant: tenant, Table: "message", Column: "text", Row: row}
}
