package fieldcrypt_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tink-crypto/tink-go/v2/core/registry"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/testing/fakekms"

	"github.com/chatsdk/compliance/fieldcrypt"
	"github.com/chatsdk/compliance/fieldcrypt/fieldcrypttest"
)

func TestMemoryStoreConformance(t *testing.T) {
	fieldcrypttest.Run(t, func(t *testing.T) fieldcrypt.Store { return fieldcrypt.NewMemoryStore() })
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, alg := range []fieldcrypt.Algorithm{fieldcrypt.AES256GCM, fieldcrypt.XAES256GCM, fieldcrypt.XChaCha20Poly1305} {
		b := newBundle(t, func(c *fieldcrypt.Config) { c.Algorithm = alg })
		for _, pt := range [][]byte{nil, []byte("hello"), bytes.Repeat([]byte{7}, 200)} {
			ct, err := b.kr.Encrypt(ctx, loc("app-a", "1"), pt)
			if err != nil {
				t.Fatalf("alg %d: Encrypt: %v", alg, err)
			}
			if len(pt) > 0 && bytes.Contains(ct, pt) {
				t.Fatalf("alg %d: ciphertext contains the plaintext", alg)
			}
			got, err := b.kr.Decrypt(ctx, loc("app-a", "1"), ct)
			if err != nil {
				t.Fatalf("alg %d: Decrypt: %v", alg, err)
			}
			if !bytes.Equal(got, pt) {
				t.Fatalf("alg %d: got %q, want %q", alg, got, pt)
			}
		}
	}
}

func TestSwappedCiphertextRejected(t *testing.T) {
	ctx := context.Background()
	b := newBundle(t, nil)
	home := loc("app-a", "1")
	// The tenant's keyset exists for both tenants, so the last case fails
	// on the key as well as on the associated data.
	if _, err := b.kr.Encrypt(ctx, loc("app-b", "1"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	ct, err := b.kr.Encrypt(ctx, home, []byte("blood pressure 120/80"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		loc  fieldcrypt.Location
	}{
		{"other row", fieldcrypt.Location{Tenant: "app-a", Table: "message", Column: "text", Row: "2"}},
		{"other column", fieldcrypt.Location{Tenant: "app-a", Table: "message", Column: "subject", Row: "1"}},
		{"other table", fieldcrypt.Location{Tenant: "app-a", Table: "note", Column: "text", Row: "1"}},
		{"other tenant", fieldcrypt.Location{Tenant: "app-b", Table: "message", Column: "text", Row: "1"}},
		{"fields shifted", fieldcrypt.Location{Tenant: "app-a", Table: "messaget", Column: "ext", Row: "1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := b.kr.Decrypt(ctx, c.loc, ct)
			if !errors.Is(err, fieldcrypt.ErrDecrypt) {
				t.Fatalf("Decrypt at %+v: got %v, want ErrDecrypt", c.loc, err)
			}
		})
	}
}

// Within one scope every location shares the key, so only the associated
// data keeps a patient's ciphertext from being read as another's.
func TestSwapWithinSharedScopeRejected(t *testing.T) {
	ctx := context.Background()
	b := newBundle(t, nil)
	a := fieldcrypt.Location{Tenant: "app-a", Table: "message", Column: "text", Row: "1", Scope: "ward:3"}
	other := a
	other.Row = "2"
	ct, err := b.kr.Encrypt(ctx, a, []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.kr.Decrypt(ctx, other, ct); !errors.Is(err, fieldcrypt.ErrDecrypt) {
		t.Fatalf("got %v, want ErrDecrypt", err)
	}
}

func TestFlippedBitRejected(t *testing.T) {
	ctx := context.Background()
	b := newBundle(t, nil)
	l := loc("app-a", "1")
	ct, err := b.kr.Encrypt(ctx, l, bytes.Repeat([]byte("a"), 64))
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(ct) * 8 {
		bad := bytes.Clone(ct)
		bad[i/8] ^= 1 << (i % 8)
		_, err := b.kr.Decrypt(ctx, l, bad)
		if !errors.Is(err, fieldcrypt.ErrDecrypt) {
			t.Fatalf("bit %d flipped: got %v, want ErrDecrypt", i, err)
		}
		if err.Error() != fieldcrypt.ErrDecrypt.Error() {
			t.Fatalf("bit %d flipped: error %q says more than ErrDecrypt", i, err)
		}
	}
	if _, err := b.kr.Decrypt(ctx, l, ct[:len(ct)-1]); !errors.Is(err, fieldcrypt.ErrDecrypt) {
		t.Fatalf("truncated: got %v, want ErrDecrypt", err)
	}
}

func TestInvalidLocation(t *testing.T) {
	b := newBundle(t, nil)
	for _, l := range []fieldcrypt.Location{
		{Table: "t", Column: "c", Row: "1"},
		{Tenant: "a", Column: "c", Row: "1"},
		{Tenant: "a", Table: "t", Row: "1"},
		{Tenant: "a", Table: "t", Column: "c"},
	} {
		if _, err := b.kr.Encrypt(context.Background(), l, []byte("x")); !errors.Is(err, fieldcrypt.ErrInvalidLocation) {
			t.Errorf("Encrypt at %+v: got %v, want ErrInvalidLocation", l, err)
		}
	}
}

// The associated data is a format: a change to it would make every stored
// ciphertext unreadable, so it is pinned by known-answer vectors.
func TestAssociatedDataVectors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "associated_data.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vectors []struct {
		Location fieldcrypt.Location
		Hex      string
	}
	if err := json.Unmarshal(raw, &vectors); err != nil {
		t.Fatal(err)
	}
	if len(vectors) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vectors {
		if got := hex.EncodeToString(v.Location.AssociatedData()); got != v.Hex {
			t.Errorf("AssociatedData(%+v) = %s, want %s", v.Location, got, v.Hex)
		}
	}
}

func TestHotPathMakesNoKEKCall(t *testing.T) {
	ctx := context.Background()
	b := newBundle(t, nil)
	if _, err := b.kr.Encrypt(ctx, loc("app-a", "0"), []byte("warm")); err != nil {
		t.Fatal(err)
	}
	enc, dec := b.kek.encrypts.Load(), b.kek.decrypts.Load()
	for i := range 100 {
		l := loc("app-a", string(rune('a'+i%26)))
		ct, err := b.kr.Encrypt(ctx, l, []byte("v"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.kr.Decrypt(ctx, l, ct); err != nil {
			t.Fatal(err)
		}
	}
	if e, d := b.kek.encrypts.Load()-enc, b.kek.decrypts.Load()-dec; e != 0 || d != 0 {
		t.Fatalf("100 fields made %d KEK encrypts and %d decrypts, want 0", e, d)
	}
}

func TestCacheBoundedAndExpires(t *testing.T) {
	ctx := context.Background()
	b := newBundle(t, func(c *fieldcrypt.Config) { c.CacheSize = 2; c.CacheTTL = time.Minute })
	cts := map[string][]byte{}
	for _, tenant := range []string{"t1", "t2", "t3"} {
		ct, err := b.kr.Encrypt(ctx, loc(tenant, "1"), []byte(tenant))
		if err != nil {
			t.Fatal(err)
		}
		cts[tenant] = ct
	}
	decrypt := func(tenant string) int64 {
		t.Helper()
		before := b.kek.decrypts.Load()
		if _, err := b.kr.Decrypt(ctx, loc(tenant, "1"), cts[tenant]); err != nil {
			t.Fatal(err)
		}
		return b.kek.decrypts.Load() - before
	}

	if n := decrypt("t3"); n != 0 {
		t.Fatalf("t3 is cached but took %d KEK calls", n)
	}
	if n := decrypt("t1"); n != 1 {
		t.Fatalf("t1 should have been evicted (size 2): %d KEK calls, want 1", n)
	}
	if n := decrypt("t1"); n != 0 {
		t.Fatalf("t1 reloaded: %d KEK calls, want 0", n)
	}
	b.clock.Advance(time.Minute)
	if n := decrypt("t1"); n != 1 {
		t.Fatalf("t1 after its TTL: %d KEK calls, want 1", n)
	}
}

func TestRotationRoundTrip(t *testing.T) {
	ctx := context.Background()
	b := newBundle(t, nil)
	l := loc("app-a", "1")
	old, err := b.kr.Encrypt(ctx, l, []byte("before"))
	if err != nil {
		t.Fatal(err)
	}
	oldID, _ := fieldcrypt.KeyID(old)

	newID, err := b.kr.Rotate(ctx, tenantA)
	if err != nil {
		t.Fatal(err)
	}
	if newID == oldID {
		t.Fatal("Rotate returned the old key id")
	}
	fresh, err := b.kr.Encrypt(ctx, l, []byte("after"))
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := fieldcrypt.KeyID(fresh); id != newID {
		t.Fatalf("new ciphertext under key %d, want the new primary %d", id, newID)
	}
	for ct, want := range map[string]string{string(old): "before", string(fresh): "after"} {
		got, err := b.kr.Decrypt(ctx, l, []byte(ct))
		if err != nil || string(got) != want {
			t.Fatalf("Decrypt after rotation: got %q, %v; want %q", got, err, want)
		}
	}
	keys, err := b.kr.Keys(ctx, tenantA)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("got %d keys, want 2", len(keys))
	}
	for _, k := range keys {
		if k.Primary != (k.ID == newID) || k.Status != fieldcrypt.KeyEnabled {
			t.Fatalf("key %+v: want enabled, primary only for %d", k, newID)
		}
	}
}

// An instance with the pre-rotation keyset cached reads rows another
// instance wrote under the new key.
func TestRotationSeenByOtherInstance(t *testing.T) {
	ctx := context.Background()
	b := newBundle(t, nil)
	other := b.another(t)
	l := loc("app-a", "1")
	first, err := b.kr.Encrypt(ctx, l, []byte("v1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Decrypt(ctx, l, first); err != nil {
		t.Fatal(err)
	}

	if _, err := b.kr.Rotate(ctx, tenantA); err != nil {
		t.Fatal(err)
	}
	second, err := b.kr.Encrypt(ctx, l, []byte("v2"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := other.Decrypt(ctx, l, second)
	if err != nil || string(got) != "v2" {
		t.Fatalf("other instance: got %q, %v; want v2", got, err)
	}
}

func TestConcurrentRotationsLoseNoKey(t *testing.T) {
	ctx := context.Background()
	b := newBundle(t, nil)
	if _, err := b.kr.Rotate(ctx, tenantA); err != nil {
		t.Fatal(err)
	}
	instances := []*fieldcrypt.Keyring{b.kr, b.another(t), b.another(t), b.another(t)}
	ids := make(chan uint32, len(instances))
	errs := make(chan error, len(instances))
	for _, kr := range instances {
		go func() {
			id, err := kr.Rotate(ctx, tenantA)
			ids <- id
			errs <- err
		}()
	}
	want := map[uint32]bool{}
	for range instances {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent Rotate: %v", err)
		}
		want[<-ids] = true
	}
	keys, err := b.kr.Keys(ctx, tenantA)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2+len(instances) {
		t.Fatalf("got %d keys, want %d", len(keys), 2+len(instances))
	}
	for _, k := range keys {
		delete(want, k.ID)
	}
	if len(want) != 0 {
		t.Fatalf("keys lost: %v", want)
	}
}

func TestShreddedScopeUnreadable(t *testing.T) {
	ctx := context.Background()
	var events []fieldcrypt.ShredEvent
	b := newBundle(t, func(c *fieldcrypt.Config) { c.OnShred = func(e fieldcrypt.ShredEvent) { events = append(events, e) } })
	other := b.another(t)
	patient := fieldcrypt.Location{Tenant: "app-a", Table: "message", Column: "text", Row: "9", Scope: "patient:9"}
	locs := []fieldcrypt.Location{loc("app-a", "1"), loc("app-b", "1"), patient}
	cts := make([][]byte, len(locs))
	for i, l := range locs {
		ct, err := b.kr.Encrypt(ctx, l, []byte("phi"))
		if err != nil {
			t.Fatal(err)
		}
		cts[i] = ct
		// Warm both caches: the shred must beat them.
		for _, kr := range []*fieldcrypt.Keyring{b.kr, other} {
			if _, err := kr.Decrypt(ctx, l, ct); err != nil {
				t.Fatal(err)
			}
		}
	}

	if err := b.kr.Shred(ctx, patient.ScopeOf()); err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Scope != patient.ScopeOf() {
		t.Fatalf("OnShred events %+v, want one for %s", events, patient.ScopeOf())
	}
	if _, err := b.kr.Decrypt(ctx, patient, cts[2]); !errors.Is(err, fieldcrypt.ErrShredded) {
		t.Fatalf("shredded scope through this cache: got %v, want ErrShredded", err)
	}
	if _, err := b.kr.Encrypt(ctx, patient, []byte("new")); !errors.Is(err, fieldcrypt.ErrShredded) {
		t.Fatalf("Encrypt in a shredded scope: got %v, want ErrShredded", err)
	}
	for i, l := range locs[:2] {
		if _, err := b.kr.Decrypt(ctx, l, cts[i]); err != nil {
			t.Fatalf("scope %s after another was shredded: %v", l.ScopeOf(), err)
		}
	}
	if errors.Is(fieldcrypt.ErrShredded, fieldcrypt.ErrDecrypt) || errors.Is(fieldcrypt.ErrDecrypt, fieldcrypt.ErrShredded) {
		t.Fatal("ErrShredded and ErrDecrypt must be told apart")
	}

	// The other instance's cache holds the keyset until its TTL.
	b.clock.Advance(5 * time.Minute)
	if _, err := other.Decrypt(ctx, patient, cts[2]); !errors.Is(err, fieldcrypt.ErrShredded) {
		t.Fatalf("other instance after its cache TTL: got %v, want ErrShredded", err)
	}

	// Shredding a tenant takes its narrower scopes' siblings down with it
	// only if they are the tenant scope: app-b stays readable.
	if err := b.kr.Shred(ctx, tenantA); err != nil {
		t.Fatal(err)
	}
	if _, err := b.kr.Decrypt(ctx, locs[0], cts[0]); !errors.Is(err, fieldcrypt.ErrShredded) {
		t.Fatalf("shredded tenant: got %v, want ErrShredded", err)
	}
	if _, err := b.kr.Decrypt(ctx, locs[1], cts[1]); err != nil {
		t.Fatalf("other tenant: %v", err)
	}
}

func TestWrappedKeysetBoundToScope(t *testing.T) {
	ctx := context.Background()
	b := newBundle(t, nil)
	if _, err := b.kr.Encrypt(ctx, loc("app-a", "1"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	st, err := b.store.Get(ctx, tenantA, fieldcrypt.PurposeAEAD)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := insecurecleartextkeyset.Read(keyset.NewBinaryReader(bytes.NewReader(st.Wrapped))); err == nil {
		t.Fatal("the stored keyset reads as a cleartext keyset")
	}
	if _, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(st.Wrapped)), newKEK(t), nil); err == nil {
		t.Fatal("the stored keyset unwraps under another KEK")
	}
	st.Scope = tenantB
	if err := b.store.Create(ctx, st); err != nil {
		t.Fatal(err)
	}
	if _, err := b.kr.Encrypt(ctx, loc("app-b", "1"), []byte("x")); !errors.Is(err, fieldcrypt.ErrUnwrap) {
		t.Fatalf("keyset copied to another scope: got %v, want ErrUnwrap", err)
	}
}

func TestDisableKeyNeedsProof(t *testing.T) {
	ctx := context.Background()
	b := newBundle(t, nil)
	col := fieldcrypt.NewMemoryColumn()
	ct, err := b.kr.Encrypt(ctx, loc("app-a", "1"), []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	col.Put(tenantA, "1", ct)
	oldID, _ := fieldcrypt.KeyID(ct)
	newID, err := b.kr.Rotate(ctx, tenantA)
	if err != nil {
		t.Fatal(err)
	}

	if err := b.kr.DisableKey(ctx, tenantA, oldID); !errors.Is(err, fieldcrypt.ErrKeyInUse) {
		t.Fatalf("DisableKey without proof: got %v, want ErrKeyInUse", err)
	}
	rw := &fieldcrypt.Rewrap{Keyring: b.kr, Rows: col, Scope: tenantA, Table: "message", Column: "text"}
	early, err := rw.Run(ctx)
	if err != nil || !early.Done {
		t.Fatalf("rewrap: %+v, %v", early, err)
	}
	if err := b.kr.DisableKey(ctx, tenantA, oldID, early); !errors.Is(err, fieldcrypt.ErrKeyInUse) {
		t.Fatalf("DisableKey with a report made within CacheTTL of the rotation: got %v, want ErrKeyInUse", err)
	}
	if err := b.kr.DisableKey(ctx, tenantA, newID, early); !errors.Is(err, fieldcrypt.ErrKeyInUse) {
		t.Fatalf("DisableKey of the primary: got %v, want ErrKeyInUse", err)
	}

	b.clock.Advance(10 * time.Minute)
	settled, err := rw.Run(ctx)
	if err != nil || !settled.Done || !settled.Settled {
		t.Fatalf("second rewrap: %+v, %v", settled, err)
	}
	if err := b.kr.DisableKey(ctx, tenantA, 12345, settled); !errors.Is(err, fieldcrypt.ErrUnknownKey) {
		t.Fatalf("DisableKey of an unknown key: got %v, want ErrUnknownKey", err)
	}
	if err := b.kr.DisableKey(ctx, tenantA, oldID, settled); err != nil {
		t.Fatalf("DisableKey with proof: %v", err)
	}
	if _, err := b.kr.Decrypt(ctx, loc("app-a", "1"), ct); !errors.Is(err, fieldcrypt.ErrDecrypt) {
		t.Fatalf("ciphertext of a disabled key: got %v, want ErrDecrypt", err)
	}
	rewrapped, _ := col.Get(tenantA, "1")
	if got, err := b.kr.Decrypt(ctx, loc("app-a", "1"), rewrapped); err != nil || string(got) != "x" {
		t.Fatalf("rewrapped row: got %q, %v", got, err)
	}
	if err := b.kr.DestroyKey(ctx, tenantA, oldID, settled); err != nil {
		t.Fatalf("DestroyKey: %v", err)
	}
	keys, err := b.kr.Keys(ctx, tenantA)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].ID != newID {
		t.Fatalf("keys after DestroyKey: %+v, want only %d", keys, newID)
	}
}

func TestConfigErrors(t *testing.T) {
	kek := newKEK(t)
	st := fieldcrypt.NewMemoryStore()
	cases := []struct {
		field string
		cfg   fieldcrypt.Config
	}{
		{"Store", fieldcrypt.Config{KEK: kek}},
		{"KEK", fieldcrypt.Config{Store: st}},
		{"Algorithm", fieldcrypt.Config{Store: st, KEK: kek, Algorithm: 99}},
		{"CacheSize", fieldcrypt.Config{Store: st, KEK: kek, CacheSize: -1}},
		{"CacheTTL", fieldcrypt.Config{Store: st, KEK: kek, CacheTTL: -1}},
		{"BlindIndexBits", fieldcrypt.Config{Store: st, KEK: kek, BlindIndexBits: 300}},
	}
	for _, c := range cases {
		_, err := fieldcrypt.New(c.cfg)
		if !errors.Is(err, fieldcrypt.ErrConfig) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("New with bad %s: got %v, want ErrConfig naming it", c.field, err)
		}
	}
}

func TestKEKFromURI(t *testing.T) {
	uri, err := fakekms.NewKeyURI()
	if err != nil {
		t.Fatal(err)
	}
	client, err := fakekms.NewClient("fake-kms://")
	if err != nil {
		t.Fatal(err)
	}
	registry.RegisterKMSClient(client)
	t.Cleanup(registry.ClearKMSClients)

	kek, err := fieldcrypt.KEKFromURI(uri)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := fieldcrypt.New(fieldcrypt.Config{Store: fieldcrypt.NewMemoryStore(), KEK: kek})
	if err != nil {
		t.Fatal(err)
	}
	ct, err := kr.Encrypt(context.Background(), loc("app-a", "1"), []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := kr.Decrypt(context.Background(), loc("app-a", "1"), ct); err != nil || string(got) != "x" {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err := fieldcrypt.KEKFromURI("nothing-registered://k"); !errors.Is(err, fieldcrypt.ErrConfig) {
		t.Fatalf("unknown URI: got %v, want ErrConfig", err)
	}
}

func TestInsecureKEKFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kek.bin")
	if err := fieldcrypt.InsecureWriteCleartextKEK(path); err != nil {
		t.Fatal(err)
	}
	if err := fieldcrypt.InsecureWriteCleartextKEK(path); err == nil {
		t.Fatal("InsecureWriteCleartextKEK overwrote an existing file")
	}
	st := fieldcrypt.NewMemoryStore()
	var ct []byte
	for i := range 2 {
		kek, err := fieldcrypt.InsecureKEKFromCleartextFile(path)
		if err != nil {
			t.Fatal(err)
		}
		kr, err := fieldcrypt.New(fieldcrypt.Config{Store: st, KEK: kek})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if ct, err = kr.Encrypt(context.Background(), loc("app-a", "1"), []byte("x")); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got, err := kr.Decrypt(context.Background(), loc("app-a", "1"), ct); err != nil || string(got) != "x" {
			t.Fatalf("after reloading the KEK file: got %q, %v", got, err)
		}
	}
}

func FuzzDecrypt(f *testing.F) {
	b := newBundle(f, nil)
	ctx := context.Background()
	l := loc("app-a", "1")
	ct, err := b.kr.Encrypt(ctx, l, []byte("seed"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ct)
	f.Add([]byte{})
	f.Add([]byte{0x01})
	f.Add(append([]byte(nil), ct[:5]...))
	f.Fuzz(func(t *testing.T, data []byte) {
		pt, err := b.kr.Decrypt(ctx, l, data)
		if err == nil && !bytes.Equal(data, ct) {
			t.Fatalf("forged ciphertext %x decrypted to %q", data, pt)
		}
		if err != nil && !errors.Is(err, fieldcrypt.ErrDecrypt) {
			t.Fatalf("got %v, want ErrDecrypt", err)
		}
	})
}

// A rotation while a rewrap runs restarts the wait for CacheTTL: other
// instances may still encrypt with the key the rotation replaced, so the
// report must not say Settled, even though the run started long after the
// previous rotation.
func TestRewrapRotatedMidRunNotSettled(t *testing.T) {
	ctx := context.Background()
	b := newBundle(t, nil)
	col := fieldcrypt.NewMemoryColumn()
	for _, id := range []string{"1", "2", "3"} {
		ct, err := b.kr.Encrypt(ctx, loc("app-a", id), []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		col.Put(tenantA, id, ct)
	}
	if _, err := b.kr.Rotate(ctx, tenantA); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(time.Hour) // the first rotation has long settled

	rotated := false
	rw := &fieldcrypt.Rewrap{Keyring: b.kr, Rows: col, Scope: tenantA, Table: "message", Column: "text", BatchSize: 1,
		OnProgress: func(fieldcrypt.RewrapReport) {
			if !rotated {
				rotated = true
				b.clock.Advance(time.Second)
				if _, err := b.kr.Rotate(ctx, tenantA); err != nil {
					t.Error(err)
				}
			}
		}}
	rep, err := rw.Run(ctx)
	if err != nil || !rep.Done {
		t.Fatalf("rewrap: %+v, %v", rep, err)
	}
	if rep.Settled {
		t.Fatalf("a rewrap during which the primary changed reported Settled: %+v", rep)
	}
}

// A report proves where rows were when its run ended. After a later
// rotation, rows written under the key that was primary since then are
// not covered by it, so it must not retire that key.
func TestDisableKeyRefusesOutdatedReport(t *testing.T) {
	ctx := context.Background()
	b := newBundle(t, nil)
	col := fieldcrypt.NewMemoryColumn()
	put := func(id string) {
		t.Helper()
		ct, err := b.kr.Encrypt(ctx, loc("app-a", id), []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		col.Put(tenantA, id, ct)
	}
	put("1")
	if _, err := b.kr.Rotate(ctx, tenantA); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(time.Hour)
	rw := &fieldcrypt.Rewrap{Keyring: b.kr, Rows: col, Scope: tenantA, Table: "message", Column: "text"}
	old, err := rw.Run(ctx)
	if err != nil || !old.Done || !old.Settled {
		t.Fatalf("rewrap: %+v, %v", old, err)
	}

	middle, err := b.kr.Rotate(ctx, tenantA)
	if err != nil {
		t.Fatal(err)
	}
	put("2") // under middle, which the old report knows nothing of
	if _, err := b.kr.Rotate(ctx, tenantA); err != nil {
		t.Fatal(err)
	}
	if err := b.kr.DisableKey(ctx, tenantA, middle, old); !errors.Is(err, fieldcrypt.ErrKeyInUse) {
		t.Fatalf("DisableKey with a report older than the key's use: got %v, want ErrKeyInUse", err)
	}
	ct, _ := col.Get(tenantA, "2")
	if _, err := b.kr.Decrypt(ctx, loc("app-a", "2"), ct); err != nil {
		t.Fatalf("row 2 no longer decrypts: %v", err)
	}
}
