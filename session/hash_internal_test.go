package session

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

// TestRefreshHashVectors pins the stored form of refresh tokens: a silent
// change would make every stored token unusable (or, worse, matchable by
// something else).
func TestRefreshHashVectors(t *testing.T) {
	data, err := os.ReadFile("testdata/refresh_hash.json")
	if err != nil {
		t.Fatal(err)
	}
	var vectors []struct {
		Token string `json:"token"`
		Hash  string `json:"hash"`
	}
	if err := json.Unmarshal(data, &vectors); err != nil {
		t.Fatal(err)
	}
	if len(vectors) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vectors {
		raw, ok := parseRefresh(v.Token)
		if !ok {
			t.Fatalf("vector token %q does not parse", v.Token)
		}
		if got := hex.EncodeToString(hashRefresh(raw)); got != v.Hash {
			t.Errorf("hash of %q: got %s, want %s", v.Token, got, v.Hash)
		}
	}
}
