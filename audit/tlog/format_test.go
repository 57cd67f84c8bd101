package tlog_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/signature"

	"github.com/chatsdk/compliance/audit/tlog"
)

// refKeyID is the C2SP signed-note key ID, computed here from the spec:
// the first four bytes of SHA-256(name || 0x0A || algorithm || key).
func refKeyID(name string, alg byte, pub []byte) uint32 {
	s := sha256.Sum256(append(append([]byte(name+"\n"), alg), pub...))
	return binary.BigEndian.Uint32(s[:4])
}

// sigLines returns the signature lines of a signed note.
func sigLines(t *testing.T, signed []byte) (text []byte, lines []string) {
	t.Helper()
	i := bytes.LastIndex(signed, []byte("\n\n"))
	if i < 0 {
		t.Fatalf("no signature block in %q", signed)
	}
	return signed[:i+1], strings.Split(strings.TrimSuffix(string(signed[i+2:]), "\n"), "\n")
}

// TestLogSignatureFormat checks the log's note signature against the
// signed-note spec without the note package: the key ID from the vkey's
// public key, and a bare Ed25519 signature (no Tink prefix) over exactly
// the checkpoint text.
func TestLogSignatureFormat(t *testing.T) {
	f := newFixture(t)
	h := f.head(t, 17)
	signed := f.signed(t, h)
	text, lines := sigLines(t, signed)
	if want, _ := h.Format(); !bytes.Equal(text, want) {
		t.Fatalf("signed text %q, want %q", text, want)
	}

	parts := strings.SplitN(f.signer.VerifierKey(), "+", 3)
	if len(parts) != 3 || parts[0] != tlog.DefaultKeyName {
		t.Fatalf("vkey %q", f.signer.VerifierKey())
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != 0x01 {
		t.Fatalf("vkey key %x: %v", raw, err)
	}
	pub := ed25519.PublicKey(raw[1:])
	id := refKeyID(tlog.DefaultKeyName, 0x01, pub)
	if parts[1] != fmt.Sprintf("%08x", id) || f.signer.KeyHash() != id {
		t.Fatalf("key ID %s / %08x, spec says %08x", parts[1], f.signer.KeyHash(), id)
	}

	if len(lines) != 1 || !strings.HasPrefix(lines[0], "— "+tlog.DefaultKeyName+" ") {
		t.Fatalf("signature lines %q", lines)
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(lines[0], "— "+tlog.DefaultKeyName+" "))
	if err != nil || len(sig) != 4+ed25519.SignatureSize {
		t.Fatalf("signature of %d bytes: %v", len(sig), err)
	}
	if binary.BigEndian.Uint32(sig) != id {
		t.Fatal("signature carries another key ID")
	}
	if !ed25519.Verify(pub, text, sig[4:]) {
		t.Fatal("the signature is not a bare Ed25519 signature of the checkpoint text")
	}
}

// TestCosignatureFormat is a known answer for tlog-cosignature/v1: a
// witness key from a fixed seed, a fixed time, and the signature line
// rebuilt here from the spec (key ID with algorithm 0x04, 8-byte big-endian
// timestamp, Ed25519 over "cosignature/v1\ntime T\n" and the checkpoint).
func TestCosignatureFormat(t *testing.T) {
	f := newFixture(t)
	seed := sha256.Sum256([]byte("witness seed"))
	key := ed25519.NewKeyFromSeed(seed[:])
	const ts = 1_700_000_123
	c, err := tlog.NewCosigner("witness-a", key, func() time.Time { return time.Unix(ts, 0) })
	if err != nil {
		t.Fatal(err)
	}
	w, err := tlog.NewFileWitness(filepath.Join(t.TempDir(), "w.json"), c, f.logVs)
	if err != nil {
		t.Fatal(err)
	}
	h := f.head(t, 9)
	text, _ := h.Format()
	line, err := w.AddCheckpoint(context.Background(), tlog.AddRequest{Checkpoint: f.signed(t, h)})
	if err != nil {
		t.Fatal(err)
	}

	pub := key.Public().(ed25519.PublicKey)
	msg := append([]byte("cosignature/v1\ntime "+strconv.Itoa(ts)+"\n"), text...)
	raw := binary.BigEndian.AppendUint32(nil, refKeyID("witness-a", 0x04, pub))
	raw = binary.BigEndian.AppendUint64(raw, ts)
	raw = append(raw, ed25519.Sign(key, msg)...)
	want := "— witness-a " + base64.StdEncoding.EncodeToString(raw) + "\n"
	if string(line) != want {
		t.Fatalf("cosignature line\n%q, the spec gives\n%q", line, want)
	}
	v := c.Verifier().(*tlog.CosignatureVerifier)
	if v.VerifierKey() != fmt.Sprintf("witness-a+%08x+%s", refKeyID("witness-a", 0x04, pub), base64.StdEncoding.EncodeToString(append([]byte{0x04}, pub...))) {
		t.Fatalf("witness vkey %q", v.VerifierKey())
	}
	// A signature over the checkpoint alone, or with another time line,
	// is no cosignature.
	if v.Verify(text, append(raw[4:12:12], ed25519.Sign(key, text)...)) {
		t.Fatal("a plain signature of the checkpoint passed as a cosignature")
	}
	other := binary.BigEndian.AppendUint64(nil, ts+1)
	if v.Verify(text, append(other, raw[12:]...)) {
		t.Fatal("a cosignature verified with another timestamp")
	}
}

// TestParseCheckpointIsStrict refuses every second spelling of a head.
func TestParseCheckpointIsStrict(t *testing.T) {
	good := "chatsdk-compliance/audit/v1/app-1\n5\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
	if _, err := tlog.ParseCheckpoint([]byte(good)); err != nil {
		t.Fatal(err)
	}
	root := "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
	o := "chatsdk-compliance/audit/v1/app-1"
	for name, text := range map[string]string{
		"CRLF":                    strings.ReplaceAll(good, "\n", "\r\n"),
		"no final newline":        strings.TrimSuffix(good, "\n"),
		"extension line":          good + "extra\n",
		"blank line":              good + "\n",
		"empty origin":            "\n5\n" + root + "\n",
		"leading zero":            o + "\n05\n" + root + "\n",
		"plus sign":               o + "\n+5\n" + root + "\n",
		"minus sign":              o + "\n-5\n" + root + "\n",
		"space":                   o + "\n 5\n" + root + "\n",
		"hex size":                o + "\n0x5\n" + root + "\n",
		"size 2^63":               o + "\n9223372036854775808\n" + root + "\n",
		"size 2^64":               o + "\n18446744073709551616\n" + root + "\n",
		"empty size":              o + "\n\n" + root + "\n",
		"unpadded root":           o + "\n5\n" + strings.TrimSuffix(root, "=") + "\n",
		"non-canonical root bits": o + "\n5\n" + root[:42] + "V=\n",
		"url base64 root":         o + "\n5\n" + strings.NewReplacer("+", "-", "/", "_").Replace(root) + "\n",
		"short root":              o + "\n5\nAAAA\n",
		"origin with NUL":         "o\x00\n5\n" + root + "\n",
		"not UTF-8":               "o\xff\n5\n" + root + "\n",
		"too large":               o + "\n5\n" + root + "\n" + strings.Repeat("x", tlog.MaxCheckpointSize),
	} {
		if h, err := tlog.ParseCheckpoint([]byte(text)); !errors.Is(err, tlog.ErrMalformed) {
			t.Errorf("%s: parsed %+v (%v), want ErrMalformed", name, h, err)
		}
	}
	if h, _ := tlog.ParseCheckpoint([]byte(o + "\n9223372036854775807\n" + root + "\n")); h.Size != 1<<63-1 {
		t.Error("the largest size refused")
	}
}

// TestOpenHeadRefusesBadNotes covers the note around the checkpoint: a
// CRLF note, a signature line spelled non-canonically, a known key's bad
// signature, and unknown keys alone.
func TestOpenHeadRefusesBadNotes(t *testing.T) {
	f := newFixture(t)
	signed := f.signed(t, f.head(t, 7))
	text, lines := sigLines(t, signed)

	crlf := bytes.ReplaceAll(signed, []byte("\n"), []byte("\r\n"))
	if _, _, err := tlog.OpenHead(crlf, f.logVs); err == nil {
		t.Error("a CRLF note opened")
	}

	// The last base64 character before the padding of a 68-byte
	// signature carries 2 unused bits: setting one spells the same bytes
	// differently.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	l := lines[0]
	if !strings.HasSuffix(l, "=") || strings.HasSuffix(l, "==") {
		t.Fatalf("signature line %q: want one padding character", l)
	}
	last := strings.IndexByte(alphabet, l[len(l)-2])
	alt := l[:len(l)-2] + string(alphabet[last^1]) + "="
	noncanon := append(append(append([]byte(nil), text...), '\n'), alt+"\n"...)
	if _, _, err := tlog.OpenHead(noncanon, f.logVs); err == nil {
		t.Error("a non-canonically encoded signature opened")
	}

	other := newFixture(t)
	if _, _, err := tlog.OpenHead(other.signed(t, f.head(t, 7)), f.logVs); !errors.Is(err, tlog.ErrBadSignature) {
		t.Errorf("a note of an unknown key only: %v, want ErrBadSignature", err)
	}
	// The right key, the wrong signature bytes.
	sig, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(l, "— "+tlog.DefaultKeyName+" "))
	sig[10] ^= 1
	forged := append(append(append([]byte(nil), text...), '\n'), "— "+tlog.DefaultKeyName+" "+base64.StdEncoding.EncodeToString(sig)+"\n"...)
	if _, _, err := tlog.OpenHead(forged, f.logVs); !errors.Is(err, tlog.ErrBadSignature) {
		t.Errorf("a bad signature of the log's key: %v, want ErrBadSignature", err)
	}
	// An unknown key's line beside the log's valid one is ignored.
	both := append(append([]byte(nil), signed...), []byte(strings.SplitAfter(string(other.signed(t, f.head(t, 7))), "\n\n")[1])...)
	if _, _, err := tlog.OpenHead(both, f.logVs); err != nil {
		t.Errorf("an extra unknown signature: %v", err)
	}
}

// TestDisabledKeyRefused checks that a head signed by a key since
// disabled in the public keyset (rotated out) no longer opens.
func TestDisabledKeyRefused(t *testing.T) {
	h, err := keyset.NewHandle(signature.ED25519KeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	old, err := tlog.NewSigner("", h)
	if err != nil {
		t.Fatal(err)
	}
	m := keyset.NewManagerFromHandle(h)
	oldID := h.KeysetInfo().GetPrimaryKeyId()
	id, err := m.Add(signature.ED25519KeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetPrimary(id); err != nil {
		t.Fatal(err)
	}
	if err := m.Disable(oldID); err != nil {
		t.Fatal(err)
	}
	rotated, err := m.Handle()
	if err != nil {
		t.Fatal(err)
	}
	vs, _, err := tlog.Verifiers("", mustPublic(t, rotated))
	if err != nil {
		t.Fatal(err)
	}
	signed, err := tlog.SignHead(old, tlog.TreeHead{Origin: "o", Size: 1, Root: tlog.LeafHash([]byte("x"))})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tlog.OpenHead(signed, vs); !errors.Is(err, tlog.ErrBadSignature) {
		t.Fatalf("a head of a disabled key: %v, want ErrBadSignature", err)
	}
}
