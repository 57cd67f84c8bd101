package password

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestArgon2idKnownAnswers hashes with the salt and parameters of vectors
// made by the argon2 reference CLI and expects its exact PHC strings, so
// a silent change of the encoding or of the derivation fails here.
func TestArgon2idKnownAnswers(t *testing.T) {
	raw, err := os.ReadFile("testdata/argon2id-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Vectors []struct{ Password, Salt, Encoded string }
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range file.Vectors {
		p, err := parsePHC(v.Encoded)
		if err != nil {
			t.Fatalf("parse %s: %v", v.Encoded, err)
		}
		h, err := NewHasher(p.params)
		if err != nil {
			t.Fatal(err)
		}
		h.rand = strings.NewReader(v.Salt)
		got, err := h.Hash(v.Password)
		if err != nil {
			t.Fatal(err)
		}
		if got != v.Encoded {
			t.Errorf("Hash(%q) = %s, want %s", v.Password, got, v.Encoded)
		}
		if err := h.Verify(v.Password, v.Encoded); err != nil {
			t.Errorf("Verify(%q): %v", v.Password, err)
		}
	}
}
