// Package fieldcrypttest is the conformance suite of fieldcrypt's keyset
// [fieldcrypt.Store]. Every store, the in-memory one, fieldcryptpg's and a
// third party's, passes the same tests:
//
//	func TestStore(t *testing.T) {
//		fieldcrypttest.Run(t, func(t *testing.T) fieldcrypt.Store { return newStore(t) })
//	}
//
// Each clause of the contract is a subtest of its own. newStore must return
// an empty store each time it is called.
package fieldcrypttest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/chatsdk/compliance/fieldcrypt"
)

// Run runs the suite against the stores newStore returns.
func Run(t *testing.T, newStore func(t *testing.T) fieldcrypt.Store) {
	t.Helper()
	clauses := []struct {
		name string
		fn   func(*testing.T, fieldcrypt.Store)
	}{
		{"GetMissingIsNotFound", testGetMissing},
		{"CreateThenGet", testCreateThenGet},
		{"CreateRequiresVersionOne", testCreateVersion},
		{"CreateTwiceConflicts", testCreateTwice},
		{"UpdateIsCompareAndSwap", testUpdateCAS},
		{"UpdateMissingIsNotFound", testUpdateMissing},
		{"ScopesAndPurposesAreApart", testApart},
		{"ShredRemovesEveryPurpose", testShred},
		{"ShredIsPermanent", testShredPermanent},
		{"ShredIsIdempotent", testShredIdempotent},
		{"ShredLeavesOtherScopes", testShredOthers},
		{"ConcurrentCreateHasOneWinner", testConcurrentCreate},
		{"ConcurrentUpdateHasOneWinner", testConcurrentUpdate},
		{"ReturnedBytesAreCopies", testCopies},
	}
	for _, c := range clauses {
		t.Run(c.name, func(t *testing.T) {
			c.fn(t, newStore(t))
		})
	}
}

var (
	tenantA = fieldcrypt.Scope{Tenant: "app-a"}
	tenantB = fieldcrypt.Scope{Tenant: "app-b"}
	patient = fieldcrypt.Scope{Tenant: "app-a", Name: "patient:1"}
	epoch   = time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
)

func keysetOf(s fieldcrypt.Scope, p fieldcrypt.Purpose, version int64, wrapped string) fieldcrypt.StoredKeyset {
	return fieldcrypt.StoredKeyset{
		Scope:        s,
		Purpose:      p,
		Version:      version,
		Wrapped:      []byte(wrapped),
		PrimarySince: epoch,
		UpdatedAt:    epoch.Add(time.Duration(version) * time.Second),
	}
}

func mustCreate(t *testing.T, st fieldcrypt.Store, ks fieldcrypt.StoredKeyset) {
	t.Helper()
	if err := st.Create(context.Background(), ks); err != nil {
		t.Fatalf("Create(%s, %s): %v", ks.Scope, ks.Purpose, err)
	}
}

func mustGet(t *testing.T, st fieldcrypt.Store, s fieldcrypt.Scope, p fieldcrypt.Purpose) fieldcrypt.StoredKeyset {
	t.Helper()
	got, err := st.Get(context.Background(), s, p)
	if err != nil {
		t.Fatalf("Get(%s, %s): %v", s, p, err)
	}
	return got
}

func wantErr(t *testing.T, op string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", op, err, want)
	}
}

func equal(t *testing.T, got, want fieldcrypt.StoredKeyset) {
	t.Helper()
	if got.Scope != want.Scope || got.Purpose != want.Purpose || got.Version != want.Version || !bytes.Equal(got.Wrapped, want.Wrapped) {
		t.Fatalf("got keyset %s/%s v%d %q, want %s/%s v%d %q", got.Scope, got.Purpose, got.Version, got.Wrapped, want.Scope, want.Purpose, want.Version, want.Wrapped)
	}
	if !got.PrimarySince.Equal(want.PrimarySince) {
		t.Fatalf("got PrimarySince %v, want %v", got.PrimarySince, want.PrimarySince)
	}
	if !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Fatalf("got UpdatedAt %v, want %v", got.UpdatedAt, want.UpdatedAt)
	}
}

func testGetMissing(t *testing.T, st fieldcrypt.Store) {
	_, err := st.Get(context.Background(), tenantA, fieldcrypt.PurposeAEAD)
	wantErr(t, "Get of a missing keyset", err, fieldcrypt.ErrNotFound)
}

func testCreateThenGet(t *testing.T, st fieldcrypt.Store) {
	ks := keysetOf(tenantA, fieldcrypt.PurposeAEAD, 1, "wrapped-1")
	mustCreate(t, st, ks)
	equal(t, mustGet(t, st, tenantA, fieldcrypt.PurposeAEAD), ks)
}

func testCreateVersion(t *testing.T, st fieldcrypt.Store) {
	err := st.Create(context.Background(), keysetOf(tenantA, fieldcrypt.PurposeAEAD, 2, "w"))
	if err == nil {
		t.Fatal("Create with version 2 succeeded, want an error")
	}
	_, err = st.Get(context.Background(), tenantA, fieldcrypt.PurposeAEAD)
	wantErr(t, "Get after a refused Create", err, fieldcrypt.ErrNotFound)
}

func testCreateTwice(t *testing.T, st fieldcrypt.Store) {
	first := keysetOf(tenantA, fieldcrypt.PurposeAEAD, 1, "first")
	mustCreate(t, st, first)
	err := st.Create(context.Background(), keysetOf(tenantA, fieldcrypt.PurposeAEAD, 1, "second"))
	wantErr(t, "second Create", err, fieldcrypt.ErrConflict)
	equal(t, mustGet(t, st, tenantA, fieldcrypt.PurposeAEAD), first)
}

func testUpdateCAS(t *testing.T, st fieldcrypt.Store) {
	ctx := context.Background()
	mustCreate(t, st, keysetOf(tenantA, fieldcrypt.PurposeAEAD, 1, "v1"))

	v2 := keysetOf(tenantA, fieldcrypt.PurposeAEAD, 2, "v2")
	if err := st.Update(ctx, v2); err != nil {
		t.Fatalf("Update to v2: %v", err)
	}
	equal(t, mustGet(t, st, tenantA, fieldcrypt.PurposeAEAD), v2)

	wantErr(t, "Update to v2 again", st.Update(ctx, keysetOf(tenantA, fieldcrypt.PurposeAEAD, 2, "other v2")), fieldcrypt.ErrConflict)
	wantErr(t, "Update skipping v3", st.Update(ctx, keysetOf(tenantA, fieldcrypt.PurposeAEAD, 4, "v4")), fieldcrypt.ErrConflict)
	wantErr(t, "Update going back to v1", st.Update(ctx, keysetOf(tenantA, fieldcrypt.PurposeAEAD, 1, "v1 again")), fieldcrypt.ErrConflict)
	equal(t, mustGet(t, st, tenantA, fieldcrypt.PurposeAEAD), v2)

	v3 := keysetOf(tenantA, fieldcrypt.PurposeAEAD, 3, "v3")
	if err := st.Update(ctx, v3); err != nil {
		t.Fatalf("Update to v3: %v", err)
	}
	equal(t, mustGet(t, st, tenantA, fieldcrypt.PurposeAEAD), v3)
}

func testUpdateMissing(t *testing.T, st fieldcrypt.Store) {
	err := st.Update(context.Background(), keysetOf(tenantA, fieldcrypt.PurposeAEAD, 2, "v2"))
	wantErr(t, "Update of a missing keyset", err, fieldcrypt.ErrNotFound)
}

func testApart(t *testing.T, st fieldcrypt.Store) {
	all := []fieldcrypt.StoredKeyset{
		keysetOf(tenantA, fieldcrypt.PurposeAEAD, 1, "a-aead"),
		keysetOf(tenantA, fieldcrypt.PurposeBlindIndex, 1, "a-index"),
		keysetOf(tenantB, fieldcrypt.PurposeAEAD, 1, "b-aead"),
		keysetOf(patient, fieldcrypt.PurposeAEAD, 1, "patient-aead"),
	}
	for _, ks := range all {
		mustCreate(t, st, ks)
	}
	if err := st.Update(context.Background(), keysetOf(patient, fieldcrypt.PurposeAEAD, 2, "patient-v2")); err != nil {
		t.Fatalf("Update of the patient scope: %v", err)
	}
	all[3] = keysetOf(patient, fieldcrypt.PurposeAEAD, 2, "patient-v2")
	for _, ks := range all {
		equal(t, mustGet(t, st, ks.Scope, ks.Purpose), ks)
	}
}

func testShred(t *testing.T, st fieldcrypt.Store) {
	ctx := context.Background()
	mustCreate(t, st, keysetOf(tenantA, fieldcrypt.PurposeAEAD, 1, "a-aead"))
	mustCreate(t, st, keysetOf(tenantA, fieldcrypt.PurposeBlindIndex, 1, "a-index"))
	if err := st.Shred(ctx, tenantA, epoch); err != nil {
		t.Fatalf("Shred: %v", err)
	}
	for _, p := range []fieldcrypt.Purpose{fieldcrypt.PurposeAEAD, fieldcrypt.PurposeBlindIndex} {
		_, err := st.Get(ctx, tenantA, p)
		wantErr(t, "Get after Shred", err, fieldcrypt.ErrShredded)
	}
}

func testShredPermanent(t *testing.T, st fieldcrypt.Store) {
	ctx := context.Background()
	mustCreate(t, st, keysetOf(tenantA, fieldcrypt.PurposeAEAD, 1, "a-aead"))
	if err := st.Shred(ctx, tenantA, epoch); err != nil {
		t.Fatalf("Shred: %v", err)
	}
	wantErr(t, "Create after Shred", st.Create(ctx, keysetOf(tenantA, fieldcrypt.PurposeAEAD, 1, "again")), fieldcrypt.ErrShredded)
	wantErr(t, "Create of another purpose after Shred", st.Create(ctx, keysetOf(tenantA, fieldcrypt.PurposeBlindIndex, 1, "again")), fieldcrypt.ErrShredded)
	wantErr(t, "Update after Shred", st.Update(ctx, keysetOf(tenantA, fieldcrypt.PurposeAEAD, 2, "v2")), fieldcrypt.ErrShredded)
	_, err := st.Get(ctx, tenantA, fieldcrypt.PurposeAEAD)
	wantErr(t, "Get after Create after Shred", err, fieldcrypt.ErrShredded)
}

func testShredIdempotent(t *testing.T, st fieldcrypt.Store) {
	ctx := context.Background()
	if err := st.Shred(ctx, tenantB, epoch); err != nil {
		t.Fatalf("Shred of a scope without keysets: %v", err)
	}
	if err := st.Shred(ctx, tenantB, epoch.Add(time.Hour)); err != nil {
		t.Fatalf("second Shred: %v", err)
	}
	wantErr(t, "Create after Shred of an unused scope", st.Create(ctx, keysetOf(tenantB, fieldcrypt.PurposeAEAD, 1, "w")), fieldcrypt.ErrShredded)
}

func testShredOthers(t *testing.T, st fieldcrypt.Store) {
	ctx := context.Background()
	keep := []fieldcrypt.StoredKeyset{
		keysetOf(tenantA, fieldcrypt.PurposeAEAD, 1, "a-aead"),
		keysetOf(tenantB, fieldcrypt.PurposeAEAD, 1, "b-aead"),
	}
	for _, ks := range keep {
		mustCreate(t, st, ks)
	}
	mustCreate(t, st, keysetOf(patient, fieldcrypt.PurposeAEAD, 1, "patient"))
	if err := st.Shred(ctx, patient, epoch); err != nil {
		t.Fatalf("Shred: %v", err)
	}
	_, err := st.Get(ctx, patient, fieldcrypt.PurposeAEAD)
	wantErr(t, "Get of the shredded scope", err, fieldcrypt.ErrShredded)
	for _, ks := range keep {
		equal(t, mustGet(t, st, ks.Scope, ks.Purpose), ks)
	}
}

func testConcurrentCreate(t *testing.T, st fieldcrypt.Store) {
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = st.Create(context.Background(), keysetOf(tenantA, fieldcrypt.PurposeAEAD, 1, "writer-"+string(rune('a'+i))))
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, fieldcrypt.ErrConflict):
			t.Fatalf("concurrent Create: got %v, want nil or ErrConflict", err)
		}
	}
	if wins != 1 {
		t.Fatalf("concurrent Create: %d winners, want 1", wins)
	}
}

func testConcurrentUpdate(t *testing.T, st fieldcrypt.Store) {
	mustCreate(t, st, keysetOf(tenantA, fieldcrypt.PurposeAEAD, 1, "v1"))
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = st.Update(context.Background(), keysetOf(tenantA, fieldcrypt.PurposeAEAD, 2, "writer-"+string(rune('a'+i))))
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("concurrent Update: writers %d and %d both won", winner, i)
			}
			winner = i
		case !errors.Is(err, fieldcrypt.ErrConflict):
			t.Fatalf("concurrent Update: got %v, want nil or ErrConflict", err)
		}
	}
	if winner < 0 {
		t.Fatal("concurrent Update: no writer won")
	}
	equal(t, mustGet(t, st, tenantA, fieldcrypt.PurposeAEAD), keysetOf(tenantA, fieldcrypt.PurposeAEAD, 2, "writer-"+string(rune('a'+winner))))
}

func testCopies(t *testing.T, st fieldcrypt.Store) {
	ks := keysetOf(tenantA, fieldcrypt.PurposeAEAD, 1, "wrapped")
	mustCreate(t, st, ks)
	ks.Wrapped[0] = 'X'
	got := mustGet(t, st, tenantA, fieldcrypt.PurposeAEAD)
	if string(got.Wrapped) != "wrapped" {
		t.Fatalf("store kept the caller's slice: got %q", got.Wrapped)
	}
	got.Wrapped[0] = 'Y'
	if again := mustGet(t, st, tenantA, fieldcrypt.PurposeAEAD); string(again.Wrapped) != "wrapped" {
		t.Fatalf("store returned its own slice: got %q", again.Wrapped)
	}
}
