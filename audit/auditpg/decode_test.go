package auditpg

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseFlatJSON(t *testing.T) {
	cases := map[string]map[string]string{
		`{}`:                          {},
		`{"a": "b"}`:                  {"a": "b"},
		`{"a": "b", "c": ""}`:         {"a": "b", "c": ""},
		`{"esc": "x\"y\\z\u00e4"}`:    {"esc": "x\"y\\zä"},
		` { "k" : "v" , "k2":"v2" } `: {"k": "v", "k2": "v2"},
	}
	for in, want := range cases {
		got := map[string]string{}
		require.NoError(t, parseFlatJSON([]byte(in), got), in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{``, `[]`, `{"a": 1}`, `{"a": "b"`, `{"a" "b"}`, `null`, `{"a": "b"} x`} {
		require.Error(t, parseFlatJSON([]byte(bad), map[string]string{}), bad)
	}
}

// FuzzParseFlatJSON checks the fast path against encoding/json.
func FuzzParseFlatJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a": "b"}`, `{"a": "b", "a": "c"}`, `{"\u0000": "x"}`, `{"a":"\xff"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := map[string]string{}
		err := parseFlatJSON(b, got)
		var want map[string]string
		wantErr := json.Unmarshal(b, &want)
		if wantErr != nil || want == nil {
			require.Error(t, err)
			return
		}
		require.NoError(t, err)
		require.Equal(t, want, got)
	})
}
