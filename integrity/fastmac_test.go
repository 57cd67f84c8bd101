package integrity

import (
	"bytes"
	"testing"

	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/mac"
	tinkpb "github.com/tink-crypto/tink-go/v2/proto/tink_go_proto"
)

// The fast path reproduces Tink's TINK-prefix HMAC-SHA256 only. A LEGACY
// key MACs the data with a 0x00 byte appended, a RAW or CRUNCHY key has
// another prefix, and other hashes are other functions: none of them may
// reach it, even if NewKeys stopped refusing their prefixes.
func TestFastKeysOnlyTinkPrefixHMACSHA256(t *testing.T) {
	for name, tc := range map[string]struct {
		tmpl   *tinkpb.KeyTemplate
		prefix tinkpb.OutputPrefixType
		want   int
	}{
		"tink sha256/256": {mac.HMACSHA256Tag256KeyTemplate(), tinkpb.OutputPrefixType_TINK, 1},
		"tink sha256/128": {mac.HMACSHA256Tag128KeyTemplate(), tinkpb.OutputPrefixType_TINK, 1},
		"legacy sha256":   {mac.HMACSHA256Tag256KeyTemplate(), tinkpb.OutputPrefixType_LEGACY, 0},
		"crunchy sha256":  {mac.HMACSHA256Tag256KeyTemplate(), tinkpb.OutputPrefixType_CRUNCHY, 0},
		"raw sha256":      {mac.HMACSHA256Tag256KeyTemplate(), tinkpb.OutputPrefixType_RAW, 0},
		"tink sha512":     {mac.HMACSHA512Tag256KeyTemplate(), tinkpb.OutputPrefixType_TINK, 0},
		"tink aes-cmac":   {mac.AESCMACTag128KeyTemplate(), tinkpb.OutputPrefixType_TINK, 0},
	} {
		t.Run(name, func(t *testing.T) {
			tc.tmpl.OutputPrefixType = tc.prefix
			h, err := keyset.NewHandle(tc.tmpl)
			if err != nil {
				t.Fatal(err)
			}
			fast := fastKeys(h)
			if len(fast) != tc.want {
				t.Fatalf("%d keys on the fast path, want %d", len(fast), tc.want)
			}
			if tc.prefix != tinkpb.OutputPrefixType_TINK {
				if _, err := NewKeys(h); err == nil {
					t.Fatal("NewKeys accepted a keyset whose tags do not name their key")
				}
				return
			}

			// Where the fast path applies it gives Tink's bytes, tag size
			// included, and checks Tink's tags.
			m, err := mac.New(h)
			if err != nil {
				t.Fatal(err)
			}
			for _, msg := range [][]byte{nil, {0}, bytes.Repeat([]byte("x"), 200)} {
				want, err := m.ComputeMAC(msg)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range fast {
					if got := f.tag(nil, msg); !bytes.Equal(got, want) {
						t.Fatalf("fast tag %x, Tink tag %x", got, want)
					}
					if !f.check(msg, want) {
						t.Fatal("fast check refused Tink's tag")
					}
					if f.check(append(msg, 0), want) {
						t.Fatal("fast check accepted the tag of other data")
					}
				}
			}
		})
	}
}
