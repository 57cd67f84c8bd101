package integritypg_test

import (
	"sync"
	"testing"
	"time"

	"github.com/chatsdk/compliance/integrity"
	"github.com/chatsdk/compliance/integrity/integritypg"
)

// The streaming verifier pairs rows with tags head to head while the two
// scans agree, and through its maps when they do not. Over several
// batches, with rows and tags moved out of each other's order and rows
// deleted and inserted in between, it must find exactly what the join in
// the database finds.
func TestStreamingMatcherResyncs(t *testing.T) {
	a := newApp(t)
	const n = 10000 // more than two of the streaming verifier's batches
	a.loadSealed(t, n, 5, time.Second)

	// Rewritten tuples move to the end of their table: every seventh row
	// and every eleventh tag, without changing what they hold.
	a.exec(t, "UPDATE message SET body = body WHERE id % 7 = 0")
	a.exec(t, "UPDATE integrity_tags SET scope = scope WHERE row_id::bigint % 11 = 0")
	want := []string{"altered 4097", "altered 9999", "missing 2", "missing 4096", "missing 8191",
		"unsealed 20001", "unsealed 20002", "unsealed 20003"}
	a.exec(t, "UPDATE message SET body = 'x' WHERE id IN (4097, 9999)")
	a.exec(t, "DELETE FROM message WHERE id IN (2, 4096, 8191)")
	for i := range 3 {
		a.exec(t, "INSERT INTO message VALUES ('t1', $1, 'c1', 'intruder', $2)", 20001+i, a.day)
	}

	for _, join := range []bool{false, true} {
		for _, w := range []int{1, 2} {
			var mu sync.Mutex
			var fs []integrity.Finding
			v := a.verifier(t, integritypg.VerifierConfig{Workers: w, JoinInDatabase: join})
			sum, err := v.VerifyTable(a.ctx, messages, func(f integrity.Finding) { mu.Lock(); fs = append(fs, f); mu.Unlock() })
			if err != nil {
				t.Fatal(err)
			}
			if sum.Rows != n || sum.Sealed != n {
				t.Fatalf("join %v, workers %d: summary %+v", join, w, sum)
			}
			t.Logf("join %v, workers %d: %d findings", join, w, len(fs))
			wantOnly(t, fs, want...)
		}
	}
}

// The key_id column beside a tag is not authenticated, yet reseal lists
// rows and counts key usage by it: a row whose column was changed (say,
// to make an old key look unused) must be reported.
func TestKeyIDColumnEditedDetected(t *testing.T) {
	a := newApp(t)
	a.post(t, "t1", 1, "c1", ptr("hello"), a.day)
	a.post(t, "t1", 2, "c1", ptr("world"), a.day)
	a.exec(t, "UPDATE integrity_tags SET key_id = key_id + 1 WHERE row_id = '2'")
	for _, join := range []bool{false, true} {
		v := a.verifier(t, integritypg.VerifierConfig{JoinInDatabase: join})
		var fs []integrity.Finding
		if _, err := v.VerifyTable(a.ctx, messages, func(f integrity.Finding) { fs = append(fs, f) }); err != nil {
			t.Fatal(err)
		}
		wantOnly(t, fs, "altered 2")
	}
}
