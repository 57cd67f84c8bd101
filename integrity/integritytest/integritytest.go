// Package integritytest is the conformance suite for integrity.Store
// implementations. An adapter passes it by calling [Run] from a test with
// a constructor of fresh, empty stores:
//
//	func TestConformance(t *testing.T) {
//		integritytest.Run(t, func(t *testing.T) integritytest.Harness {
//			s := newStore(t)
//			return integritytest.Harness{Store: s, Tamper: s}
//		})
//	}
//
// Each clause of the Store contract is a subtest of its own, so a failure
// names the clause. The memory store and integritypg both run it.
package integritytest

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chatsdk/compliance/integrity"
	"github.com/chatsdk/compliance/internal/canon"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/mac"
)

// Tamperer edits a store behind the package's back, as someone with write
// access to the storage could. A store that offers it lets the suite check
// that such edits are detected.
type Tamperer interface {
	// InsecureDeleteSealed removes a row's tag, leaving its digest alone.
	InsecureDeleteSealed(ctx context.Context, k integrity.Key) error
	// InsecurePutSealed writes a tag as given, leaving digests alone.
	InsecurePutSealed(ctx context.Context, s integrity.Sealed) error
	// InsecurePutDigest overwrites an existing digest as given.
	InsecurePutDigest(ctx context.Context, d integrity.Digest) error
}

// Harness is what a constructor gives the suite.
type Harness struct {
	// Store is a fresh, empty store. Required.
	Store integrity.Store
	// Tamper, if not nil, edits Store's storage directly; without it the
	// tampering clauses are skipped.
	Tamper Tamperer
}

// NewKeyset returns a fresh HMAC-SHA256 keyset manager and Keys on it.
func NewKeyset(t testing.TB) (*keyset.Manager, *integrity.Keys) {
	t.Helper()
	m := keyset.NewManager()
	id, err := m.Add(mac.HMACSHA256Tag256KeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetPrimary(id); err != nil {
		t.Fatal(err)
	}
	return m, KeysOf(t, m)
}

// Rotate adds a new primary key to m and returns Keys on the result.
func Rotate(t testing.TB, m *keyset.Manager) *integrity.Keys {
	t.Helper()
	id, err := m.Add(mac.HMACSHA256Tag256KeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetPrimary(id); err != nil {
		t.Fatal(err)
	}
	return KeysOf(t, m)
}

// KeysOf returns Keys on m's current keyset.
func KeysOf(t testing.TB, m *keyset.Manager) *integrity.Keys {
	t.Helper()
	h, err := m.Handle()
	if err != nil {
		t.Fatal(err)
	}
	k, err := integrity.NewKeys(h)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Table is a stand-in for an application table the suite protects: rows
// by key, which the suite edits freely to play the attacker.
type Table struct {
	mu   sync.Mutex
	rows map[integrity.Key]integrity.Record
}

// NewTable returns an empty Table.
func NewTable() *Table { return &Table{rows: map[integrity.Key]integrity.Record{}} }

// Set stores r.
func (tb *Table) Set(r integrity.Record) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.rows[keyOf(r)] = r
}

// Delete removes a row.
func (tb *Table) Delete(k integrity.Key) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	delete(tb.rows, k)
}

// Rows yields the rows of domain.
func (tb *Table) Rows(domain string) iter.Seq2[integrity.Record, error] {
	tb.mu.Lock()
	var rs []integrity.Record
	for _, r := range tb.rows {
		if r.Domain == domain {
			rs = append(rs, r)
		}
	}
	tb.mu.Unlock()
	return func(yield func(integrity.Record, error) bool) {
		for _, r := range rs {
			if !yield(r, nil) {
				return
			}
		}
	}
}

// Load returns the rows for keys, for integrity.ResealParams.Load.
func (tb *Table) Load(_ context.Context, keys []integrity.Key) ([]integrity.Record, error) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var out []integrity.Record
	for _, k := range keys {
		if r, ok := tb.rows[k]; ok {
			out = append(out, r)
		}
	}
	return out, nil
}

func keyOf(r integrity.Record) integrity.Key {
	return integrity.Key{Domain: r.Domain, Tenant: r.Tenant, ID: r.ID}
}

const domain = "message"

// Message returns a record of the suite's "message" domain.
func Message(tenant, id, channel, text string, at time.Time) integrity.Record {
	return integrity.Record{
		Domain: domain, Tenant: tenant, ID: id, Scope: integrity.DayScope(channel, at),
		Fields: []canon.Value{canon.String(channel), canon.String(text), canon.Time(at)},
	}
}

type bundle struct {
	h      Harness
	ctx    context.Context
	m      *keyset.Manager
	keys   *integrity.Keys
	sealer *integrity.Sealer
	table  *Table
	day    time.Time
}

func setup(t *testing.T, newStore func(t *testing.T) Harness) *bundle {
	t.Helper()
	h := newStore(t)
	m, keys := NewKeyset(t)
	s, err := integrity.New(integrity.Config{Keys: keys, Store: h.Store})
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{h: h, ctx: context.Background(), m: m, keys: keys, sealer: s, table: NewTable(),
		day: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}
}

// seal stores and seals n messages in channel c of tenant "t1".
func (b *bundle) seal(t *testing.T, c string, n int) []integrity.Record {
	t.Helper()
	var rs []integrity.Record
	for i := range n {
		r := Message("t1", fmt.Sprintf("%s-%03d", c, i), c, fmt.Sprintf("hello %d", i), b.day.Add(time.Duration(i)*time.Minute))
		rs = append(rs, r)
		b.table.Set(r)
	}
	if err := b.sealer.Seal(b.ctx, rs...); err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return rs
}

func (b *bundle) verify(t *testing.T) (integrity.Summary, []integrity.Finding) {
	t.Helper()
	var fs []integrity.Finding
	sum, err := b.sealer.Verify(b.ctx, domain, b.table.Rows(domain), func(f integrity.Finding) { fs = append(fs, f) })
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return sum, fs
}

func (b *bundle) wantClean(t *testing.T) {
	t.Helper()
	if sum, fs := b.verify(t); !sum.OK() || len(fs) > 0 {
		t.Fatalf("Verify found %v, want nothing", fs)
	}
}

func wantFinding(t *testing.T, fs []integrity.Finding, kind integrity.FindingKind, id string) {
	t.Helper()
	for _, f := range fs {
		if f.Kind == kind && f.ID == id {
			return
		}
	}
	t.Fatalf("findings %v lack %s of %q", fs, kind, id)
}

// Run runs the conformance suite against stores from newStore, one subtest
// per clause of the integrity.Store contract.
func Run(t *testing.T, newStore func(t *testing.T) Harness) {
	clauses := []struct {
		name   string
		tamper bool
		fn     func(t *testing.T, b *bundle)
	}{
		{"SealedReturnsTag", false, testSealedReturnsTag},
		{"NotSealed", false, testNotSealed},
		{"SealedMany", false, testSealedMany},
		{"CheckAllFindsEachBadRow", false, testCheckAll},
		{"CheckAllSwappedTags", true, testCheckAllSwapped},
		{"ResealReplacesTag", false, testResealReplacesTag},
		{"ForgetTakesRowsOutOfDigest", false, testForget},
		{"FailedUpdateChangesNothing", false, testFailedUpdate},
		{"DigestPerScope", false, testDigestPerScope},
		{"ListPagesInOrder", false, testList},
		{"KeyUsage", false, testKeyUsage},
		{"ConcurrentSeals", false, testConcurrentSeals},
		{"ConcurrentSealAndForget", false, testConcurrentSealAndForget},
		{"RotationAndReseal", false, testRotation},
		{"EditedFieldDetected", false, testEditedField},
		{"RowDeletedBehindBack", false, testRowDeleted},
		{"RowInsertedBehindBack", false, testRowInserted},
		{"TagsSwappedDetected", true, testTagsSwapped},
		{"RowAndTagDeletedBehindBack", true, testRowAndTagDeleted},
		{"ForgottenRowReplayed", true, testReplayForgotten},
		{"DigestTampered", true, testDigestTampered},
	}
	for _, c := range clauses {
		t.Run(c.name, func(t *testing.T) {
			b := setup(t, newStore)
			if c.tamper && b.h.Tamper == nil {
				t.Skip("store offers no Tamperer")
			}
			c.fn(t, b)
		})
	}
}

func testSealedReturnsTag(t *testing.T, b *bundle) {
	rs := b.seal(t, "c1", 2)
	got, err := b.h.Store.Sealed(b.ctx, keyOf(rs[0]))
	if err != nil {
		t.Fatalf("Sealed: %v", err)
	}
	if got.Scope != rs[0].Scope || got.KeyID != b.keys.Primary() {
		t.Fatalf("Sealed = scope %q key %d, want %q key %d", got.Scope, got.KeyID, rs[0].Scope, b.keys.Primary())
	}
	if err := b.keys.Check(rs[0], got.Tag); err != nil {
		t.Fatalf("stored tag does not check: %v", err)
	}
	if err := b.sealer.Check(b.ctx, rs[1]); err != nil {
		t.Fatalf("Check: %v", err)
	}
	b.wantClean(t)
}

func testNotSealed(t *testing.T, b *bundle) {
	_, err := b.h.Store.Sealed(b.ctx, integrity.Key{Domain: domain, Tenant: "t1", ID: "nope"})
	if !errors.Is(err, integrity.ErrNotSealed) {
		t.Fatalf("Sealed(unknown) = %v, want ErrNotSealed", err)
	}
	if err := b.sealer.Check(b.ctx, Message("t1", "nope", "c", "x", b.day)); !errors.Is(err, integrity.ErrNotSealed) {
		t.Fatalf("Check(unknown) = %v, want ErrNotSealed", err)
	}
}

// testSealedMany reads many tags at once: present keys by key, absent
// keys left out, duplicates and other tenants and domains no trouble.
func testSealedMany(t *testing.T, b *bundle) {
	br, ok := b.h.Store.(integrity.BatchReader)
	if !ok {
		// CheckAll falls back to one read per record; testCheckAll covers it.
		return
	}
	rs := b.seal(t, "c1", 3)
	other := Message("t2", rs[0].ID, "c1", "other tenant", b.day)
	if err := b.sealer.Seal(b.ctx, other); err != nil {
		t.Fatal(err)
	}
	absent := integrity.Key{Domain: domain, Tenant: "t1", ID: "nope"}
	otherDomain := integrity.Key{Domain: "attachment", Tenant: "t1", ID: rs[1].ID}
	keys := []integrity.Key{keyOf(rs[2]), absent, keyOf(rs[0]), keyOf(rs[0]), keyOf(other), otherDomain}
	got, err := br.SealedMany(b.ctx, keys)
	if err != nil {
		t.Fatalf("SealedMany: %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("SealedMany returned %d tags, want 3 (rs[0], rs[2], other)", len(got))
	}
	for _, r := range []integrity.Record{rs[0], rs[2], other} {
		s, ok := got[keyOf(r)]
		if !ok {
			t.Fatalf("SealedMany lacks %v", keyOf(r))
		}
		if s.Key != keyOf(r) || s.Scope != r.Scope {
			t.Fatalf("SealedMany[%v] = key %v scope %q", keyOf(r), s.Key, s.Scope)
		}
		if err := b.keys.Check(r, s.Tag); err != nil {
			t.Fatalf("SealedMany[%v] tag does not check: %v", keyOf(r), err)
		}
	}
	if _, ok := got[absent]; ok {
		t.Fatal("SealedMany returned a tag for an unsealed key")
	}
	if _, ok := got[otherDomain]; ok {
		t.Fatal("SealedMany returned a tag of another domain")
	}
	if got, err := br.SealedMany(b.ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("SealedMany(nil) = %v, %v; want empty", got, err)
	}
}

// testCheckAll checks a page of records as read: every genuine record
// passes and each edited or unsealed one fails at its own position.
func testCheckAll(t *testing.T, b *bundle) {
	rs := b.seal(t, "c1", 5)
	page := slices.Clone(rs)
	page[1].Fields = slices.Clone(rs[1].Fields)
	page[1].Fields[1] = canon.String("edited")
	page[3].Tenant = "t2" // the same id read under another tenant
	page = append(page, Message("t1", "intruder", "c1", "x", b.day))
	results, err := b.sealer.CheckAll(b.ctx, page)
	if err != nil {
		t.Fatalf("CheckAll: %v", err)
	}
	if len(results) != len(page) {
		t.Fatalf("CheckAll returned %d results for %d records", len(results), len(page))
	}
	want := []error{nil, integrity.ErrMismatch, nil, integrity.ErrNotSealed, nil, integrity.ErrNotSealed}
	for i := range page {
		if want[i] == nil && results[i] != nil || want[i] != nil && !errors.Is(results[i], want[i]) {
			t.Errorf("CheckAll[%d] = %v, want %v", i, results[i], want[i])
		}
		if single := b.sealer.Check(b.ctx, page[i]); !errors.Is(single, want[i]) && (single != nil || want[i] != nil) {
			t.Errorf("Check[%d] = %v, disagrees with CheckAll's %v", i, single, results[i])
		}
	}
	if results, err := b.sealer.CheckAll(b.ctx, nil); err != nil || len(results) != 0 {
		t.Fatalf("CheckAll(nil) = %v, %v", results, err)
	}
}

// testCheckAllSwapped swaps two rows' tags behind the package's back:
// CheckAll must fail both rows and only them.
func testCheckAllSwapped(t *testing.T, b *bundle) {
	rs := b.seal(t, "c1", 4)
	s1, err := b.h.Store.Sealed(b.ctx, keyOf(rs[1]))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := b.h.Store.Sealed(b.ctx, keyOf(rs[2]))
	if err != nil {
		t.Fatal(err)
	}
	s1.Tag, s2.Tag = s2.Tag, s1.Tag
	for _, s := range []integrity.Sealed{s1, s2} {
		if err := b.h.Tamper.InsecurePutSealed(b.ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	results, err := b.sealer.CheckAll(b.ctx, rs)
	if err != nil {
		t.Fatalf("CheckAll: %v", err)
	}
	for i, res := range results {
		bad := i == 1 || i == 2
		if bad != errors.Is(res, integrity.ErrMismatch) || !bad && res != nil {
			t.Errorf("CheckAll[%d] = %v after swapping the tags of 1 and 2", i, res)
		}
	}
}

func testResealReplacesTag(t *testing.T, b *bundle) {
	rs := b.seal(t, "c1", 3)
	edited := Message("t1", rs[1].ID, "c1", "edited", b.day)
	b.table.Set(edited)
	if err := b.sealer.Seal(b.ctx, edited); err != nil {
		t.Fatal(err)
	}
	if err := b.sealer.Check(b.ctx, rs[1]); !errors.Is(err, integrity.ErrMismatch) {
		t.Fatalf("old version checks: %v", err)
	}
	if err := b.sealer.Check(b.ctx, edited); err != nil {
		t.Fatalf("new version: %v", err)
	}
	ds, err := b.h.Store.Digests(b.ctx, domain)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Count != 3 {
		t.Fatalf("digests %+v, want one of count 3", ds)
	}
	b.wantClean(t)
}

func testForget(t *testing.T, b *bundle) {
	rs := b.seal(t, "c1", 4)
	ids := []string{rs[0].ID, rs[2].ID, "never-sealed"}
	for _, id := range ids {
		b.table.Delete(integrity.Key{Domain: domain, Tenant: "t1", ID: id})
	}
	n, err := b.sealer.Forget(b.ctx, domain, "t1", ids)
	if err != nil {
		t.Fatalf("Forget: %v", err)
	}
	if n != 2 {
		t.Fatalf("Forget = %d, want 2", n)
	}
	if _, err := b.h.Store.Sealed(b.ctx, keyOf(rs[0])); !errors.Is(err, integrity.ErrNotSealed) {
		t.Fatalf("forgotten row still sealed: %v", err)
	}
	b.wantClean(t)

	// Forgetting the rest leaves an empty scope that still verifies.
	b.table.Delete(keyOf(rs[1]))
	b.table.Delete(keyOf(rs[3]))
	if _, err := b.sealer.Forget(b.ctx, domain, "t1", []string{rs[1].ID, rs[3].ID}); err != nil {
		t.Fatal(err)
	}
	b.wantClean(t)
}

func testFailedUpdate(t *testing.T, b *bundle) {
	rs := b.seal(t, "c1", 1)
	boom := errors.New("boom")
	err := b.h.Store.Update(b.ctx, func(ctx context.Context, tx integrity.Tx) error {
		if err := tx.Delete(ctx, []integrity.Key{keyOf(rs[0])}); err != nil {
			return err
		}
		if _, err := tx.Put(ctx, []integrity.Sealed{{Key: integrity.Key{Domain: domain, Tenant: "t1", ID: "x"}, Scope: "s", KeyID: 1, Tag: []byte{1}}}); err != nil {
			return err
		}
		if err := tx.PutDigest(ctx, integrity.Digest{ScopeKey: integrity.ScopeKey{Domain: domain, Tenant: "t1", Scope: rs[0].Scope}, Count: 9}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want fn's error", err)
	}
	if _, err := b.h.Store.Sealed(b.ctx, integrity.Key{Domain: domain, Tenant: "t1", ID: "x"}); !errors.Is(err, integrity.ErrNotSealed) {
		t.Fatalf("put of a failed update visible: %v", err)
	}
	b.wantClean(t)
}

func testDigestPerScope(t *testing.T, b *bundle) {
	b.seal(t, "c1", 3)
	b.seal(t, "c2", 2)
	other := Message("t2", "x", "c1", "hi", b.day)
	b.table.Set(other)
	if err := b.sealer.Seal(b.ctx, other); err != nil {
		t.Fatal(err)
	}
	ds, err := b.h.Store.Digests(b.ctx, domain)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, fmt.Sprintf("%s %s %d", d.Tenant, d.Scope, d.Count))
	}
	slices.Sort(got)
	want := []string{"t1 c1/2026-12-03 3", "t1 c2/2026-12-03 2", "t2 c1/2026-12-03 1"}
	if !slices.Equal(got, want) {
		t.Fatalf("digests %q, want %q", got, want)
	}
	if ds, _ := b.h.Store.Digests(b.ctx, "other"); len(ds) != 0 {
		t.Fatalf("digests of another domain: %v", ds)
	}
	b.wantClean(t)
}

func testList(t *testing.T, b *bundle) {
	b.seal(t, "c1", 5)
	var ids []string
	p := integrity.ListParams{Domain: domain, Limit: 2}
	for {
		page, err := b.h.Store.List(b.ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page {
			ids = append(ids, s.ID)
		}
		if len(page) < p.Limit {
			break
		}
		p.AfterTenant, p.AfterID = page[len(page)-1].Tenant, page[len(page)-1].ID
	}
	want := []string{"c1-000", "c1-001", "c1-002", "c1-003", "c1-004"}
	if !slices.Equal(ids, want) {
		t.Fatalf("paged ids %q, want %q", ids, want)
	}
	page, err := b.h.Store.List(b.ctx, integrity.ListParams{Domain: domain, ExceptKeyID: b.keys.Primary()})
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 0 {
		t.Fatalf("ExceptKeyID primary listed %d rows", len(page))
	}
}

func testKeyUsage(t *testing.T, b *bundle) {
	b.seal(t, "c1", 3)
	use, err := b.h.Store.KeyUsage(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if use[b.keys.Primary()] != 4 { // three tags and one digest
		t.Fatalf("KeyUsage = %v, want 4 for key %d", use, b.keys.Primary())
	}
}

func testConcurrentSeals(t *testing.T, b *bundle) {
	const workers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				// Every worker also reseals a shared row, so the same new
				// key races from several updates.
				own := Message("t1", fmt.Sprintf("w%d-%d", w, i), "c1", "x", b.day)
				shared := Message("t1", fmt.Sprintf("shared-%d", i), "c1", fmt.Sprintf("by %d", w), b.day)
				if err := b.sealer.Seal(b.ctx, own, shared); err != nil {
					errs <- err
					return
				}
				b.table.Set(own)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Seal: %v", err)
	}

	// The shared rows' contents are whichever worker sealed last; take the
	// versions that check.
	for i := range each {
		for w := range workers {
			r := Message("t1", fmt.Sprintf("shared-%d", i), "c1", fmt.Sprintf("by %d", w), b.day)
			if b.sealer.Check(b.ctx, r) == nil {
				b.table.Set(r)
			}
		}
	}
	ds, err := b.h.Store.Digests(b.ctx, domain)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Count != workers*each+each {
		t.Fatalf("digests %+v, want one of count %d", ds, workers*each+each)
	}
	b.wantClean(t)
}

func testConcurrentSealAndForget(t *testing.T, b *bundle) {
	rs := b.seal(t, "c1", 20)
	var wg sync.WaitGroup
	var errSeal, errForget error
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 20; i += 2 {
			r := Message("t1", rs[i].ID, "c1", "again", b.day)
			if err := b.sealer.Seal(b.ctx, r); err != nil {
				errSeal = err
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := 1; i < 20; i += 2 {
			if _, err := b.sealer.Forget(b.ctx, domain, "t1", []string{rs[i].ID}); err != nil {
				errForget = err
				return
			}
		}
	}()
	wg.Wait()
	if errSeal != nil || errForget != nil {
		t.Fatalf("Seal: %v, Forget: %v", errSeal, errForget)
	}
	for i := range 20 {
		if i%2 == 0 {
			b.table.Set(Message("t1", rs[i].ID, "c1", "again", b.day))
		} else {
			b.table.Delete(keyOf(rs[i]))
		}
	}
	b.wantClean(t)
}

func testRotation(t *testing.T, b *bundle) {
	rs := b.seal(t, "c1", 7)
	oldID := b.keys.Primary()

	// A keyset with a new primary keeps verifying the old tags.
	keys := Rotate(t, b.m)
	s, err := integrity.New(integrity.Config{Keys: keys, Store: b.h.Store})
	if err != nil {
		t.Fatal(err)
	}
	b.sealer = s
	for _, r := range rs {
		if err := s.Check(b.ctx, r); err != nil {
			t.Fatalf("old tag after rotation: %v", err)
		}
	}
	b.wantClean(t)

	// New seals use the new key.
	fresh := Message("t1", "new", "c1", "x", b.day)
	b.table.Set(fresh)
	if err := s.Seal(b.ctx, fresh); err != nil {
		t.Fatal(err)
	}
	got, err := b.h.Store.Sealed(b.ctx, keyOf(fresh))
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := integrity.KeyID(got.Tag); id != keys.Primary() || id == oldID {
		t.Fatalf("new tag under key %d, want new primary %d", id, keys.Primary())
	}

	// An altered row is not resealed: a reseal must never launder it.
	altered := rs[3]
	altered.Fields = []canon.Value{canon.String("c1"), canon.String("forged"), canon.Time(b.day)}
	b.table.Set(altered)

	// A reseal interrupted after its first batch resumes from its cursor.
	var cursor [2]string
	ctx, cancel := context.WithCancel(b.ctx)
	_, err = s.Reseal(ctx, integrity.ResealParams{Domain: domain, Load: b.table.Load, BatchSize: 2,
		Progress: func(tenant, id string) { cursor = [2]string{tenant, id}; cancel() }})
	cancel()
	if err == nil {
		t.Fatal("cancelled Reseal returned no error")
	}
	if cursor[1] == "" {
		t.Fatalf("no progress reported before cancel: %v", err)
	}
	var findings []integrity.Finding
	res, err := s.Reseal(b.ctx, integrity.ResealParams{Domain: domain, Load: b.table.Load, BatchSize: 2,
		AfterTenant: cursor[0], AfterID: cursor[1], Report: func(f integrity.Finding) { findings = append(findings, f) }})
	if err != nil {
		t.Fatalf("Reseal: %v", err)
	}
	if res.Resealed != 4 || res.Skipped != 1 || res.Digests != 0 {
		t.Fatalf("Reseal = %+v, want 4 resealed, 1 skipped, 0 digests (digest re-signed by the seal)", res)
	}
	wantFinding(t, findings, integrity.Altered, altered.ID)
	if len(res.Unused) != 0 {
		t.Fatalf("old key reported unused while the altered row still uses it: %v", res.Unused)
	}

	// Once the altered row is put right, the old key falls out of use.
	b.table.Set(rs[3])
	res, err = s.Reseal(b.ctx, integrity.ResealParams{Domain: domain, Load: b.table.Load})
	if err != nil {
		t.Fatal(err)
	}
	if res.Resealed != 1 || !slices.Equal(res.Unused, []uint32{oldID}) {
		t.Fatalf("Reseal = %+v, want 1 resealed and key %d unused", res, oldID)
	}
	for _, r := range rs {
		got, err := b.h.Store.Sealed(b.ctx, keyOf(r))
		if err != nil {
			t.Fatal(err)
		}
		if got.KeyID != keys.Primary() {
			t.Fatalf("row %s still under key %d", r.ID, got.KeyID)
		}
	}
	b.wantClean(t)
}

func testEditedField(t *testing.T, b *bundle) {
	rs := b.seal(t, "c1", 3)
	for i := range rs[0].Fields {
		edited := rs[0]
		edited.Fields = slices.Clone(rs[0].Fields)
		switch i {
		case 0:
			edited.Fields[i] = canon.String("c9")
		case 1:
			edited.Fields[i] = canon.String("hello 0 ")
		case 2:
			edited.Fields[i] = canon.Time(b.day.Add(time.Microsecond))
		}
		b.table.Set(edited)
		_, fs := b.verify(t)
		if len(fs) != 1 {
			t.Fatalf("field %d edited: findings %v, want exactly one", i, fs)
		}
		wantFinding(t, fs, integrity.Altered, edited.ID)
		if err := b.sealer.Check(b.ctx, edited); !errors.Is(err, integrity.ErrMismatch) {
			t.Fatalf("Check(edited field %d) = %v, want ErrMismatch", i, err)
		}
	}
}

func testRowDeleted(t *testing.T, b *bundle) {
	rs := b.seal(t, "c1", 3)
	b.table.Delete(keyOf(rs[1]))
	_, fs := b.verify(t)
	wantFinding(t, fs, integrity.Missing, rs[1].ID)
}

func testRowInserted(t *testing.T, b *bundle) {
	b.seal(t, "c1", 3)
	b.table.Set(Message("t1", "intruder", "c1", "x", b.day))
	_, fs := b.verify(t)
	wantFinding(t, fs, integrity.Unsealed, "intruder")
}

func testTagsSwapped(t *testing.T, b *bundle) {
	rs := b.seal(t, "c1", 3)
	s0, err := b.h.Store.Sealed(b.ctx, keyOf(rs[0]))
	if err != nil {
		t.Fatal(err)
	}
	s1, err := b.h.Store.Sealed(b.ctx, keyOf(rs[1]))
	if err != nil {
		t.Fatal(err)
	}
	s0.Tag, s1.Tag = s1.Tag, s0.Tag
	for _, s := range []integrity.Sealed{s0, s1} {
		if err := b.h.Tamper.InsecurePutSealed(b.ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	_, fs := b.verify(t)
	wantFinding(t, fs, integrity.Altered, rs[0].ID)
	wantFinding(t, fs, integrity.Altered, rs[1].ID)

	// A tag copied onto a row inserted behind the package's back does not
	// authenticate it either.
	in := Message("t1", "intruder", "c1", rs[2].Fields[1].StringValue(), b.day)
	s2, _ := b.h.Store.Sealed(b.ctx, keyOf(rs[2]))
	s2.Key = keyOf(in)
	if err := b.h.Tamper.InsecurePutSealed(b.ctx, s2); err != nil {
		t.Fatal(err)
	}
	b.table.Set(in)
	_, fs = b.verify(t)
	wantFinding(t, fs, integrity.Altered, "intruder")
}

func testRowAndTagDeleted(t *testing.T, b *bundle) {
	rs := b.seal(t, "c1", 3)
	b.table.Delete(keyOf(rs[1]))
	if err := b.h.Tamper.InsecureDeleteSealed(b.ctx, keyOf(rs[1])); err != nil {
		t.Fatal(err)
	}
	_, fs := b.verify(t)
	if len(fs) != 1 || fs[0].Kind != integrity.DigestMismatch || fs[0].Scope != rs[1].Scope || fs[0].WantCount != 3 || fs[0].GotCount != 2 {
		t.Fatalf("findings %+v, want one digest mismatch of %s, 3 recorded, 2 found", fs, rs[1].Scope)
	}
}

func testReplayForgotten(t *testing.T, b *bundle) {
	rs := b.seal(t, "c1", 3)
	old, err := b.h.Store.Sealed(b.ctx, keyOf(rs[0]))
	if err != nil {
		t.Fatal(err)
	}
	b.table.Delete(keyOf(rs[0]))
	if _, err := b.sealer.Forget(b.ctx, domain, "t1", []string{rs[0].ID}); err != nil {
		t.Fatal(err)
	}
	b.wantClean(t)

	// Putting back the row and its once valid tag is an insertion the
	// row tag cannot see, but the digest does.
	b.table.Set(rs[0])
	if err := b.h.Tamper.InsecurePutSealed(b.ctx, old); err != nil {
		t.Fatal(err)
	}
	_, fs := b.verify(t)
	if len(fs) != 1 || fs[0].Kind != integrity.DigestMismatch {
		t.Fatalf("findings %+v, want one digest mismatch", fs)
	}
}

func testDigestTampered(t *testing.T, b *bundle) {
	rs := b.seal(t, "c1", 3)
	ds, err := b.h.Store.Digests(b.ctx, domain)
	if err != nil || len(ds) != 1 {
		t.Fatalf("Digests = %v, %v", ds, err)
	}
	d := ds[0]
	d.Count = 2
	if err := b.h.Tamper.InsecurePutDigest(b.ctx, d); err != nil {
		t.Fatal(err)
	}
	_, fs := b.verify(t)
	if len(fs) != 1 || fs[0].Kind != integrity.DigestForged {
		t.Fatalf("findings %+v, want one forged digest", fs)
	}
	// Sealing into the scope refuses to re-sign (and so launder) it.
	more := Message("t1", "more", "c1", "x", b.day)
	if err := b.sealer.Seal(b.ctx, more); !errors.Is(err, integrity.ErrDigestTampered) {
		t.Fatalf("Seal into a tampered scope = %v, want ErrDigestTampered", err)
	}
	if _, err := b.sealer.Forget(b.ctx, domain, "t1", []string{rs[0].ID}); !errors.Is(err, integrity.ErrDigestTampered) {
		t.Fatalf("Forget from a tampered scope = %v, want ErrDigestTampered", err)
	}
}
