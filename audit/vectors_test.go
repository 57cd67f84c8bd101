package audit

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var updateVectors = flag.Bool("update-vectors", false, "rewrite testdata/vectors.json")

type vector struct {
	Name       string `json:"name"`
	Entry      Entry  `json:"entry"`
	EntryHash  string `json:"entry_hash"`
	Checkpoint string `json:"checkpoint_signed_bytes"`
}

func vectorInputs() []vector {
	at := time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)
	full := Entry{
		Event: Event{Tenant: "clinic-1", Time: at, Actor: "dr-lee", SessionID: "s-1", IP: "192.0.2.7",
			UserAgent: "ua/1", Type: TypeDataRead, Category: CategoryDataAccess, Action: ActionRead,
			ResourceType: "message", ResourceID: "msg-42", Subject: "patient-7", Success: false,
			FailureReason: "access denied", Metadata: map[string]string{"b": "2", "a": "1"},
			RetainUntil: at.AddDate(6, 0, 0)},
		Stream: "clinic-1", Seq: 42, PrevHash: make([]byte, HashSize),
	}
	full.PrevHash[0] = 0xab
	empty := Entry{
		Event:  Event{Tenant: "t", Time: time.Unix(0, 0).UTC(), Type: "x", Category: CategorySystem, Action: "a", RetainUntil: time.Unix(1, 0).UTC()},
		Stream: "t", Seq: 1, PrevHash: GenesisHash(),
	}
	return []vector{{Name: "every field", Entry: full}, {Name: "empty optional fields", Entry: empty}}
}

// TestVectors pins the entry hash and the checkpoint's signed bytes: a
// change to either encoding breaks every stored chain and checkpoint, so it
// must be deliberate (a new domain tag) and show up here.
func TestVectors(t *testing.T) {
	got := vectorInputs()
	for i := range got {
		v := &got[i]
		v.EntryHash = hex.EncodeToString(EntryHash(&v.Entry))
		c := Checkpoint{Stream: v.Entry.Stream, Seq: v.Entry.Seq, Head: EntryHash(&v.Entry), Time: v.Entry.Time, Kind: KindHead}
		v.Checkpoint = hex.EncodeToString(c.SignedBytes())
	}
	if *updateVectors {
		b, err := json.MarshalIndent(got, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile("testdata/vectors.json", append(b, '\n'), 0o644))
	}
	b, err := os.ReadFile("testdata/vectors.json")
	require.NoError(t, err)
	var want []vector
	require.NoError(t, json.Unmarshal(b, &want))
	require.Len(t, want, len(got))
	for i := range want {
		require.Equal(t, want[i].EntryHash, got[i].EntryHash, want[i].Name)
		require.Equal(t, want[i].Checkpoint, got[i].Checkpoint, want[i].Name)
		// The stored entry, read back, still hashes to its vector.
		require.Equal(t, want[i].EntryHash, hex.EncodeToString(EntryHash(&want[i].Entry)), want[i].Name)
	}
}
