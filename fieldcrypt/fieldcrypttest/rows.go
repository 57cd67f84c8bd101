package fieldcrypttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"

	"github.com/chatsdk/compliance/fieldcrypt"
)

// Table is an encrypted column under test, with the hooks the suite needs
// to set up and inspect rows as the application would.
type Table struct {
	// Rows and Plain are the implementations under test, usually one value.
	Rows  fieldcrypt.Rows
	Plain fieldcrypt.PlainRows
	// Put writes a row of scope s: its ciphertext and plaintext, nil for
	// NULL, replacing any row with that id.
	Put func(t *testing.T, s fieldcrypt.Scope, id string, ciphertext, plaintext []byte)
	// Get reads a row's ciphertext and plaintext, nil for NULL.
	Get func(t *testing.T, s fieldcrypt.Scope, id string) (ciphertext, plaintext []byte)
}

// The suite's names: rows live in table "message", column "text"; row ids
// are decimal numbers of three digits, so text and integer order agree.
const (
	TableName  = "message"
	ColumnName = "text"
)

// Scopes the suite writes rows in; a Table must keep them apart.
var (
	ScopeA       = fieldcrypt.Scope{Tenant: "app-a"}
	ScopeB       = fieldcrypt.Scope{Tenant: "app-b"}
	ScopePatient = fieldcrypt.Scope{Tenant: "app-a", Name: "patient:1"}
)

// RunRows runs the suite of [fieldcrypt.Rows] and [fieldcrypt.PlainRows],
// including Rewrap and Backfill end to end, against the tables newTable
// returns. newTable must return an empty table each time.
func RunRows(t *testing.T, newTable func(t *testing.T) Table) {
	t.Helper()
	clauses := []struct {
		name string
		fn   func(*testing.T, Table)
	}{
		{"StaleSkipsCurrentKeyAndNull", testStaleSkips},
		{"StalePagesInOrder", testStalePages},
		{"SwapIsConditional", testSwapConditional},
		{"ScopesAreApart", testRowScopes},
		{"PlainSealCount", testPlainSeal},
		{"RewrapEveryRow", testRewrapAll},
		{"RewrapKilledAndRestarted", testRewrapKilled},
		{"RewrapKilledMidBatch", testRewrapKilledMidBatch},
		{"RewrapTwoAtOnce", testRewrapTwo},
		{"RewrapConcurrentEditWins", testRewrapEditWins},
		{"RewrapLeavesUndecryptable", testRewrapUndecryptable},
		{"BackfillKilledAndRestarted", testBackfillKilled},
		{"BackfillConcurrentEditWins", testBackfillEditWins},
	}
	for _, c := range clauses {
		t.Run(c.name, func(t *testing.T) {
			c.fn(t, newTable(t))
		})
	}
}

func id(i int) string { return fmt.Sprintf("%03d", 100+i) }

func rowLoc(s fieldcrypt.Scope, rowID string) fieldcrypt.Location {
	return fieldcrypt.Location{Tenant: s.Tenant, Table: TableName, Column: ColumnName, Row: rowID, Scope: s.Name}
}

// keyrings returns n Keyrings sharing one memory store, as n instances.
func keyrings(t *testing.T, n int) []*fieldcrypt.Keyring {
	t.Helper()
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	kek, err := aead.New(h)
	if err != nil {
		t.Fatal(err)
	}
	st := fieldcrypt.NewMemoryStore()
	out := make([]*fieldcrypt.Keyring, n)
	for i := range out {
		if out[i], err = fieldcrypt.New(fieldcrypt.Config{Store: st, KEK: kek}); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// fill writes n encrypted rows of scope s and returns their plaintexts.
func fill(t *testing.T, tb Table, kr *fieldcrypt.Keyring, s fieldcrypt.Scope, n int) map[string]string {
	t.Helper()
	want := map[string]string{}
	for i := range n {
		pt := fmt.Sprintf("message %d of %s", i, s)
		ct, err := kr.Encrypt(context.Background(), rowLoc(s, id(i)), []byte(pt))
		if err != nil {
			t.Fatal(err)
		}
		tb.Put(t, s, id(i), ct, nil)
		want[id(i)] = pt
	}
	return want
}

// check asserts every row decrypts to want and, when keyID is not 0, is
// under that key.
func check(t *testing.T, tb Table, kr *fieldcrypt.Keyring, s fieldcrypt.Scope, want map[string]string, keyID uint32) {
	t.Helper()
	for rowID, pt := range want {
		ct, _ := tb.Get(t, s, rowID)
		if ct == nil {
			t.Fatalf("row %s lost its ciphertext", rowID)
		}
		if got, ok := fieldcrypt.KeyID(ct); keyID != 0 && (!ok || got != keyID) {
			t.Fatalf("row %s under key %d, want %d", rowID, got, keyID)
		}
		got, err := kr.Decrypt(context.Background(), rowLoc(s, rowID), ct)
		if err != nil || string(got) != pt {
			t.Fatalf("row %s: got %q, %v; want %q", rowID, got, err, pt)
		}
	}
}

func rewrapOf(kr *fieldcrypt.Keyring, rows fieldcrypt.Rows, s fieldcrypt.Scope) *fieldcrypt.Rewrap {
	return &fieldcrypt.Rewrap{Keyring: kr, Rows: rows, Scope: s, Table: TableName, Column: ColumnName, BatchSize: 3}
}

func ids(rows []fieldcrypt.Row) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.ID
	}
	return out
}

func testStaleSkips(t *testing.T, tb Table) {
	ctx := context.Background()
	cur := fieldcrypt.KeyPrefix(7)
	tb.Put(t, ScopeA, id(0), append(fieldcrypt.KeyPrefix(7), "current"...), nil)
	tb.Put(t, ScopeA, id(1), append(fieldcrypt.KeyPrefix(8), "old"...), nil)
	tb.Put(t, ScopeA, id(2), nil, []byte("plain only"))
	tb.Put(t, ScopeA, id(3), []byte{0x00, 1}, nil)
	got, err := tb.Rows.Stale(ctx, fieldcrypt.StaleParams{Scope: ScopeA, Limit: 10, Prefix: cur})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ids(got)) != fmt.Sprint([]string{id(1), id(3)}) {
		t.Fatalf("Stale returned rows %v, want %v", ids(got), []string{id(1), id(3)})
	}
	if !bytes.Equal(got[0].Ciphertext, append(fieldcrypt.KeyPrefix(8), "old"...)) {
		t.Fatalf("Stale returned ciphertext %x", got[0].Ciphertext)
	}
}

func testStalePages(t *testing.T, tb Table) {
	ctx := context.Background()
	var want []string
	for i := 6; i >= 0; i-- {
		tb.Put(t, ScopeA, id(i), append(fieldcrypt.KeyPrefix(8), byte(i)), nil)
	}
	for i := range 7 {
		want = append(want, id(i))
	}
	var got []string
	after := ""
	for range 10 {
		page, err := tb.Rows.Stale(ctx, fieldcrypt.StaleParams{Scope: ScopeA, After: after, Limit: 3, Prefix: fieldcrypt.KeyPrefix(7)})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 3 {
			t.Fatalf("page of %d rows, limit 3", len(page))
		}
		if len(page) == 0 {
			break
		}
		got = append(got, ids(page)...)
		after = page[len(page)-1].ID
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("pages gave %v, want %v", got, want)
	}
}

func testSwapConditional(t *testing.T, tb Table) {
	ctx := context.Background()
	old := append(fieldcrypt.KeyPrefix(8), "old"...)
	tb.Put(t, ScopeA, id(0), old, nil)
	ok, err := tb.Rows.Swap(ctx, fieldcrypt.SwapParams{Scope: ScopeA, ID: id(0), Old: []byte("not it"), New: []byte("new")})
	if err != nil || ok {
		t.Fatalf("Swap with the wrong old value: %v, %v; want false, nil", ok, err)
	}
	if ct, _ := tb.Get(t, ScopeA, id(0)); !bytes.Equal(ct, old) {
		t.Fatalf("row changed by a failed Swap: %q", ct)
	}
	ok, err = tb.Rows.Swap(ctx, fieldcrypt.SwapParams{Scope: ScopeA, ID: id(0), Old: old, New: []byte("new")})
	if err != nil || !ok {
		t.Fatalf("Swap: %v, %v; want true, nil", ok, err)
	}
	if ct, _ := tb.Get(t, ScopeA, id(0)); string(ct) != "new" {
		t.Fatalf("row after Swap: %q, want new", ct)
	}
	ok, err = tb.Rows.Swap(ctx, fieldcrypt.SwapParams{Scope: ScopeA, ID: id(9), Old: old, New: []byte("x")})
	if err != nil || ok {
		t.Fatalf("Swap of a missing row: %v, %v; want false, nil", ok, err)
	}
}

func testRowScopes(t *testing.T, tb Table) {
	ctx := context.Background()
	old := append(fieldcrypt.KeyPrefix(8), "old"...)
	tb.Put(t, ScopeA, id(0), old, []byte("a"))
	tb.Put(t, ScopeB, id(1), old, []byte("b"))
	tb.Put(t, ScopePatient, id(2), old, []byte("p"))
	for _, s := range []fieldcrypt.Scope{ScopeA, ScopeB, ScopePatient} {
		rows, err := tb.Rows.Stale(ctx, fieldcrypt.StaleParams{Scope: s, Limit: 10, Prefix: fieldcrypt.KeyPrefix(7)})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 {
			t.Fatalf("scope %s: Stale returned %v, want its one row", s, ids(rows))
		}
		plain, err := tb.Plain.Plain(ctx, fieldcrypt.PlainParams{Scope: s, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(plain) != 1 {
			t.Fatalf("scope %s: Plain returned %d rows, want 1", s, len(plain))
		}
	}
	ok, err := tb.Rows.Swap(ctx, fieldcrypt.SwapParams{Scope: ScopeB, ID: id(0), Old: old, New: []byte("x")})
	if err != nil || ok {
		t.Fatalf("Swap of another scope's row: %v, %v; want false, nil", ok, err)
	}
}

func testPlainSeal(t *testing.T, tb Table) {
	ctx := context.Background()
	tb.Put(t, ScopeA, id(0), nil, []byte("first"))
	tb.Put(t, ScopeA, id(1), []byte("ct"), nil)
	tb.Put(t, ScopeA, id(2), nil, []byte("third"))
	rows, err := tb.Plain.Plain(ctx, fieldcrypt.PlainParams{Scope: ScopeA, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].ID != id(0) || string(rows[0].Plaintext) != "first" || rows[1].ID != id(2) {
		t.Fatalf("Plain returned %+v", rows)
	}
	if n, err := tb.Plain.CountPlain(ctx, ScopeA); err != nil || n != 2 {
		t.Fatalf("CountPlain: %d, %v; want 2", n, err)
	}
	ok, err := tb.Plain.Seal(ctx, fieldcrypt.SealParams{Scope: ScopeA, ID: id(0), Plaintext: []byte("changed"), Ciphertext: []byte("c0")})
	if err != nil || ok {
		t.Fatalf("Seal with a stale plaintext: %v, %v; want false, nil", ok, err)
	}
	ok, err = tb.Plain.Seal(ctx, fieldcrypt.SealParams{Scope: ScopeA, ID: id(0), Plaintext: []byte("first"), Ciphertext: []byte("c0")})
	if err != nil || !ok {
		t.Fatalf("Seal: %v, %v; want true, nil", ok, err)
	}
	ct, pt := tb.Get(t, ScopeA, id(0))
	if string(ct) != "c0" || pt != nil {
		t.Fatalf("after Seal: ciphertext %q, plaintext %q; want c0 and NULL", ct, pt)
	}
	if n, err := tb.Plain.CountPlain(ctx, ScopeA); err != nil || n != 1 {
		t.Fatalf("CountPlain after Seal: %d, %v; want 1", n, err)
	}
}

func testRewrapAll(t *testing.T, tb Table) {
	ctx := context.Background()
	kr := keyrings(t, 1)[0]
	want := fill(t, tb, kr, ScopeA, 10)
	other := fill(t, tb, kr, ScopeB, 2)
	otherBefore, _ := tb.Get(t, ScopeB, id(0))
	newID, err := kr.Rotate(ctx, ScopeA)
	if err != nil {
		t.Fatal(err)
	}

	var progress []fieldcrypt.RewrapReport
	rw := rewrapOf(kr, tb.Rows, ScopeA)
	rw.OnProgress = func(r fieldcrypt.RewrapReport) { progress = append(progress, r) }
	rep, err := rw.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Done || rep.Rewrapped != 10 || rep.KeyID != newID {
		t.Fatalf("report %+v: want Done, 10 rewrapped, key %d", rep, newID)
	}
	if len(progress) < 4 {
		t.Fatalf("%d progress reports for 10 rows in batches of 3, want 4 or more", len(progress))
	}
	check(t, tb, kr, ScopeA, want, newID)
	check(t, tb, kr, ScopeB, other, 0)
	if after, _ := tb.Get(t, ScopeB, id(0)); !bytes.Equal(after, otherBefore) {
		t.Fatal("rewrap of one scope changed another's row")
	}
}

func testRewrapKilled(t *testing.T, tb Table) {
	kr := keyrings(t, 1)[0]
	want := fill(t, tb, kr, ScopeA, 10)
	newID, err := kr.Rotate(context.Background(), ScopeA)
	if err != nil {
		t.Fatal(err)
	}

	// Kill the job after its first batch.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rw := rewrapOf(kr, tb.Rows, ScopeA)
	rw.OnProgress = func(fieldcrypt.RewrapReport) { cancel() }
	rep, err := rw.Run(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("killed rewrap: got %v, want context.Canceled", err)
	}
	if rep.Done || rep.Rewrapped != 3 {
		t.Fatalf("killed rewrap report %+v: want 3 rewrapped, not Done", rep)
	}
	check(t, tb, kr, ScopeA, want, 0)

	rw = rewrapOf(kr, tb.Rows, ScopeA)
	rep, err = rw.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Done || rep.Rewrapped != 7 {
		t.Fatalf("restarted rewrap report %+v: want Done with the 7 rows left", rep)
	}
	check(t, tb, kr, ScopeA, want, newID)
}

// swapBatch passes swaps to rows at once when rows takes batches, and one
// at a time otherwise, so a wrapper under test keeps the path rows has.
func swapBatch(ctx context.Context, rows fieldcrypt.Rows, swaps []fieldcrypt.SwapParams) ([]bool, error) {
	if b, ok := rows.(fieldcrypt.BatchSwapper); ok {
		return b.SwapBatch(ctx, swaps)
	}
	return each(ctx, swaps, rows.Swap)
}

// sealBatch is swapBatch for seals.
func sealBatch(ctx context.Context, rows fieldcrypt.PlainRows, seals []fieldcrypt.SealParams) ([]bool, error) {
	if b, ok := rows.(fieldcrypt.BatchSealer); ok {
		return b.SealBatch(ctx, seals)
	}
	return each(ctx, seals, rows.Seal)
}

// each applies one to every p in turn.
func each[P any](ctx context.Context, ps []P, one func(context.Context, P) (bool, error)) ([]bool, error) {
	done := make([]bool, len(ps))
	for i, p := range ps {
		ok, err := one(ctx, p)
		if err != nil {
			return nil, err
		}
		done[i] = ok
	}
	return done, nil
}

// killingRows cancels the job's context as its second batch is written, so
// the kill lands inside a write.
type killingRows struct {
	fieldcrypt.Rows
	cancel  context.CancelFunc
	batches int
}

func (k *killingRows) SwapBatch(ctx context.Context, swaps []fieldcrypt.SwapParams) ([]bool, error) {
	k.batches++
	if k.batches == 2 {
		k.cancel()
	}
	return swapBatch(ctx, k.Rows, swaps)
}

func testRewrapKilledMidBatch(t *testing.T, tb Table) {
	kr := keyrings(t, 1)[0]
	want := fill(t, tb, kr, ScopeA, 10)
	newID, err := kr.Rotate(context.Background(), ScopeA)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rows := &killingRows{Rows: tb.Rows, cancel: cancel}
	if _, err := rewrapOf(kr, rows, ScopeA).Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("killed rewrap: got %v, want context.Canceled", err)
	}
	check(t, tb, kr, ScopeA, want, 0)

	rep, err := rewrapOf(kr, tb.Rows, ScopeA).Run(context.Background())
	if err != nil || !rep.Done {
		t.Fatalf("restarted rewrap: %+v, %v", rep, err)
	}
	check(t, tb, kr, ScopeA, want, newID)
}

func testRewrapTwo(t *testing.T, tb Table) {
	krs := keyrings(t, 2)
	want := fill(t, tb, krs[0], ScopeA, 20)
	newID, err := krs[0].Rotate(context.Background(), ScopeA)
	if err != nil {
		t.Fatal(err)
	}

	reps := make([]fieldcrypt.RewrapReport, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, kr := range krs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reps[i], errs[i] = rewrapOf(kr, tb.Rows, ScopeA).Run(context.Background())
		}()
	}
	wg.Wait()
	var rewrapped int64
	for i := range reps {
		if errs[i] != nil {
			t.Fatalf("job %d: %v", i, errs[i])
		}
		if !reps[i].Done {
			t.Fatalf("job %d not done: %+v", i, reps[i])
		}
		rewrapped += reps[i].Rewrapped
	}
	if rewrapped < 20 {
		t.Fatalf("the jobs rewrapped %d rows together, want at least 20", rewrapped)
	}
	check(t, tb, krs[1], ScopeA, want, newID)
}

// editingRows makes an application write to a row between a rewrap's read
// and its write.
type editingRows struct {
	fieldcrypt.Rows
	once sync.Once
	edit func()
}

func (e *editingRows) Swap(ctx context.Context, p fieldcrypt.SwapParams) (bool, error) {
	e.once.Do(e.edit)
	return e.Rows.Swap(ctx, p)
}

// SwapBatch passes batches on when the Rows under test takes them, so the
// batch path is the one tested.
func (e *editingRows) SwapBatch(ctx context.Context, swaps []fieldcrypt.SwapParams) ([]bool, error) {
	e.once.Do(e.edit)
	return swapBatch(ctx, e.Rows, swaps)
}

func testRewrapEditWins(t *testing.T, tb Table) {
	ctx := context.Background()
	kr := keyrings(t, 1)[0]
	want := fill(t, tb, kr, ScopeA, 4)
	newID, err := kr.Rotate(ctx, ScopeA)
	if err != nil {
		t.Fatal(err)
	}
	rows := &editingRows{Rows: tb.Rows, edit: func() {
		ct, err := kr.Encrypt(ctx, rowLoc(ScopeA, id(0)), []byte("edited"))
		if err != nil {
			t.Error(err)
			return
		}
		tb.Put(t, ScopeA, id(0), ct, nil)
	}}
	rep, err := rewrapOf(kr, rows, ScopeA).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Done || rep.Conflicts != 1 || rep.Rewrapped != 3 {
		t.Fatalf("report %+v: want Done, 1 conflict, 3 rewrapped", rep)
	}
	want[id(0)] = "edited"
	check(t, tb, kr, ScopeA, want, newID)
}

func testRewrapUndecryptable(t *testing.T, tb Table) {
	ctx := context.Background()
	kr := keyrings(t, 1)[0]
	want := fill(t, tb, kr, ScopeA, 3)
	bad, _ := tb.Get(t, ScopeA, id(1))
	bad[len(bad)-1] ^= 1
	tb.Put(t, ScopeA, id(1), bad, nil)
	delete(want, id(1))
	newID, err := kr.Rotate(ctx, ScopeA)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := rewrapOf(kr, tb.Rows, ScopeA).Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Done || rep.Undecryptable == 0 || rep.Rewrapped != 2 {
		t.Fatalf("report %+v: want not Done, the tampered row undecryptable, 2 rewrapped", rep)
	}
	if got, _ := tb.Get(t, ScopeA, id(1)); !bytes.Equal(got, bad) {
		t.Fatal("rewrap changed an undecryptable row")
	}
	check(t, tb, kr, ScopeA, want, newID)
}

func backfillOf(kr *fieldcrypt.Keyring, rows fieldcrypt.PlainRows, s fieldcrypt.Scope) *fieldcrypt.Backfill {
	return &fieldcrypt.Backfill{Keyring: kr, Rows: rows, Scope: s, Table: TableName, Column: ColumnName, BatchSize: 3}
}

func testBackfillKilled(t *testing.T, tb Table) {
	kr := keyrings(t, 1)[0]
	want := map[string]string{}
	for i := range 8 {
		pt := fmt.Sprintf("legacy %d", i)
		tb.Put(t, ScopeA, id(i), nil, []byte(pt))
		want[id(i)] = pt
	}
	tb.Put(t, ScopeB, id(0), nil, []byte("other tenant"))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bf := backfillOf(kr, tb.Plain, ScopeA)
	bf.OnProgress = func(fieldcrypt.BackfillReport) { cancel() }
	rep, err := bf.Run(ctx)
	if !errors.Is(err, context.Canceled) || rep.Sealed != 3 || rep.Done {
		t.Fatalf("killed backfill: %+v, %v; want 3 sealed, context.Canceled", rep, err)
	}

	rep, err = backfillOf(kr, tb.Plain, ScopeA).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Done || rep.Remaining != 0 || rep.Sealed != 5 {
		t.Fatalf("restarted backfill: %+v; want Done with the 5 rows left", rep)
	}
	for rowID := range want {
		if _, pt := tb.Get(t, ScopeA, rowID); pt != nil {
			t.Fatalf("row %s still holds plaintext %q", rowID, pt)
		}
	}
	check(t, tb, kr, ScopeA, want, 0)
	if _, pt := tb.Get(t, ScopeB, id(0)); string(pt) != "other tenant" {
		t.Fatalf("backfill of one tenant touched another: %q", pt)
	}
}

// editingPlain makes an application write to a row's plaintext between a
// backfill's read and its write.
type editingPlain struct {
	fieldcrypt.PlainRows
	once sync.Once
	edit func()
}

func (e *editingPlain) Seal(ctx context.Context, p fieldcrypt.SealParams) (bool, error) {
	e.once.Do(e.edit)
	return e.PlainRows.Seal(ctx, p)
}

// SealBatch passes batches on when the PlainRows under test takes them.
func (e *editingPlain) SealBatch(ctx context.Context, seals []fieldcrypt.SealParams) ([]bool, error) {
	e.once.Do(e.edit)
	return sealBatch(ctx, e.PlainRows, seals)
}

func testBackfillEditWins(t *testing.T, tb Table) {
	kr := keyrings(t, 1)[0]
	tb.Put(t, ScopeA, id(0), nil, []byte("before"))
	tb.Put(t, ScopeA, id(1), nil, []byte("one"))
	rows := &editingPlain{PlainRows: tb.Plain, edit: func() { tb.Put(t, ScopeA, id(0), nil, []byte("after")) }}
	rep, err := backfillOf(kr, rows, ScopeA).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Done || rep.Conflicts != 1 {
		t.Fatalf("report %+v: want Done after 1 conflict", rep)
	}
	check(t, tb, kr, ScopeA, map[string]string{id(0): "after", id(1): "one"}, 0)
}
