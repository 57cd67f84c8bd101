package integritypg_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chatsdk/compliance/integrity"
	"github.com/chatsdk/compliance/integrity/integritypg"
	"github.com/chatsdk/compliance/integrity/integritytest"
)

// hookStore is a Store whose transactions run beforeDelete just before
// each Delete, so a test can make a concurrent update commit at that
// point.
type hookStore struct {
	*integritypg.Store
	beforeDelete func(ctx context.Context)
}

func (h hookStore) Update(ctx context.Context, fn func(ctx context.Context, tx integrity.Tx) error) error {
	return h.Store.Update(ctx, func(ctx context.Context, tx integrity.Tx) error {
		return fn(ctx, hookTx{Tx: tx, beforeDelete: h.beforeDelete})
	})
}

type hookTx struct {
	integrity.Tx
	beforeDelete func(ctx context.Context)
}

func (h hookTx) Delete(ctx context.Context, keys []integrity.Key) error {
	h.beforeDelete(ctx)
	return h.Tx.Delete(ctx, keys)
}

// A Forget that names an id not sealed when it locks, while another
// instance seals that id (in another scope, so nothing blocks it) and
// commits before the Forget deletes, must leave the new tag and its
// digest alone: deleting a tag it did not take out of a digest would
// raise a false digest alarm for good.
func TestForgetDeletesOnlyWhatItLocked(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	_, keys := integritytest.NewKeyset(t)
	store := integritypg.New(db.Pool, integritypg.Config{})
	other, err := integrity.New(integrity.Config{Keys: keys, Store: integritypg.New(db.NewPool(t, nil), integritypg.Config{})})
	if err != nil {
		t.Fatal(err)
	}
	day := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	old := integritytest.Message("t1", "old", "c1", "to be swept", day)
	late := integritytest.Message("t1", "late", "c2", "sealed meanwhile", day)
	if err := other.Seal(ctx, old); err != nil {
		t.Fatal(err)
	}

	sealedMeanwhile := false
	forgetter, err := integrity.New(integrity.Config{Keys: keys, Store: hookStore{Store: store, beforeDelete: func(context.Context) {
		if !sealedMeanwhile {
			sealedMeanwhile = true
			if err := other.Seal(ctx, late); err != nil {
				t.Errorf("concurrent Seal: %v", err)
			}
		}
	}}})
	if err != nil {
		t.Fatal(err)
	}
	n, err := forgetter.Forget(ctx, "message", "t1", []string{"old", "late"})
	if err != nil || n != 1 {
		t.Fatalf("Forget = %d, %v; want 1 forgotten", n, err)
	}
	if !sealedMeanwhile {
		t.Fatal("the concurrent Seal did not run")
	}

	tb := integritytest.NewTable()
	tb.Set(late)
	var fs []integrity.Finding
	sum, err := other.Verify(ctx, "message", tb.Rows("message"), func(f integrity.Finding) { fs = append(fs, f) })
	if err != nil {
		t.Fatal(err)
	}
	if !sum.OK() {
		t.Fatalf("after Forget raced a Seal the verifier found %v, want nothing", fs)
	}
}

// Instances on separate pools seal into the same scopes at once; the
// digest row lock must serialise them, or one's update of a digest is
// lost and the verifier reports the scope.
func TestConcurrentSealsFromSeveralPools(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	_, keys := integritytest.NewKeyset(t)
	day := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	const instances, each = 3, 15

	tb := integritytest.NewTable()
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, instances)
	for i := range instances {
		s, err := integrity.New(integrity.Config{Keys: keys, Store: integritypg.New(db.NewPool(t, nil), integritypg.Config{})})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				// Two scopes per seal, in either order, so the digests are
				// contended and locked in scope order whatever the input.
				a := integritytest.Message("t1", fmt.Sprintf("i%d-a%d", i, j), "c1", "x", day)
				b := integritytest.Message("t1", fmt.Sprintf("i%d-b%d", i, j), "c2", "y", day)
				if err := s.Seal(ctx, b, a); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				tb.Set(a)
				tb.Set(b)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Seal: %v", err)
	}

	s, err := integrity.New(integrity.Config{Keys: keys, Store: integritypg.New(db.Pool, integritypg.Config{})})
	if err != nil {
		t.Fatal(err)
	}
	var fs []integrity.Finding
	sum, err := s.Verify(ctx, "message", tb.Rows("message"), func(f integrity.Finding) { fs = append(fs, f) })
	if err != nil {
		t.Fatal(err)
	}
	if !sum.OK() || sum.Sealed != 2*instances*each || sum.Scopes != 2 {
		t.Fatalf("summary %+v, findings %v; want %d rows in 2 clean scopes", sum, fs, 2*instances*each)
	}
}
