package tlog

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	xtlog "golang.org/x/mod/sumdb/tlog"
)

// Errors of the package. Signature and proof failures are deliberately
// terse: they say what failed, not how.
var (
	// ErrMalformed means a checkpoint, note, cosignature or proof could not
	// be parsed.
	ErrMalformed = errors.New("tlog: malformed")
	// ErrBadSignature means a note carries no valid signature of the
	// expected key, or a signature of a known key that does not verify.
	ErrBadSignature = errors.New("tlog: bad signature")
	// ErrBadProof means an inclusion or consistency proof does not verify.
	ErrBadProof = errors.New("tlog: proof does not verify")
	// ErrFork means two heads of one stream cannot both be true: the same
	// size with different roots, or a newer head that does not extend the
	// older one.
	ErrFork = errors.New("tlog: forked history")
	// ErrRollback means a head is smaller than one already seen.
	ErrRollback = errors.New("tlog: tree head rolled back")
	// ErrNoQuorum means a head lacks the cosignatures a verifier demands.
	ErrNoQuorum = errors.New("tlog: not enough witness cosignatures")
	// ErrKey means a key or keyset cannot be used; the message says why.
	ErrKey = errors.New("tlog: unusable key")
)

// Hash is a node or leaf hash of the tree (SHA-256).
type Hash = xtlog.Hash

// HashSize is the length of a [Hash].
const HashSize = xtlog.HashSize

// OriginPrefix starts the origin line of every checkpoint this package
// makes. Its "v1" names this version of the format and of the leaf
// definition; an incompatible change gets a new prefix.
const OriginPrefix = "chatsdk-compliance/audit/v1/"

// MaxCheckpointSize bounds a checkpoint or signed note this package parses.
const MaxCheckpointSize = 64 << 10

// TreeHead is the size and root of a stream's tree. The zero Size is the
// empty tree, whose root is SHA-256 of nothing.
type TreeHead struct {
	// Origin is the checkpoint's first line, [Origin] of the stream.
	Origin string
	// Size is the number of leaves: the stream's head Seq.
	Size uint64
	// Root is the Merkle tree hash of the first Size leaves.
	Root Hash
}

// Origin returns the origin line of stream's checkpoints. It fails with
// [ErrMalformed] for a stream name that is empty, not UTF-8, or holds a
// control character, none of which a note line may carry.
func Origin(stream string) (string, error) {
	if !validLine(stream) {
		return "", fmt.Errorf("%w: stream name cannot be a checkpoint origin", ErrMalformed)
	}
	return OriginPrefix + stream, nil
}

// Stream returns the stream an origin names, or false for an origin not
// made by [Origin].
func Stream(origin string) (string, bool) {
	s, ok := strings.CutPrefix(origin, OriginPrefix)
	return s, ok && s != ""
}

func validLine(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// EmptyRoot is the root of the empty tree: SHA-256 of the empty string.
func EmptyRoot() Hash {
	h, _ := xtlog.TreeHash(0, nil)
	return h
}

// Format returns the checkpoint text of h: origin, size and root, each on
// a line of its own.
func (h TreeHead) Format() ([]byte, error) {
	if !validLine(h.Origin) {
		return nil, fmt.Errorf("%w: origin", ErrMalformed)
	}
	if h.Size > math.MaxInt64 {
		return nil, fmt.Errorf("%w: size", ErrMalformed)
	}
	return fmt.Appendf(nil, "%s\n%d\n%s\n", h.Origin, h.Size, base64.StdEncoding.EncodeToString(h.Root[:])), nil
}

// ParseCheckpoint parses checkpoint text made by [TreeHead.Format]. It is
// strict: exactly three lines, a size in canonical decimal, a root in
// canonical base64 of 32 bytes. Extension lines, which C2SP allows, are
// refused, since version 1 defines none.
func ParseCheckpoint(text []byte) (TreeHead, error) {
	if len(text) > MaxCheckpointSize || !bytes.HasSuffix(text, []byte("\n")) {
		return TreeHead{}, fmt.Errorf("%w: checkpoint", ErrMalformed)
	}
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if len(lines) != 3 || !validLine(lines[0]) {
		return TreeHead{}, fmt.Errorf("%w: checkpoint lines", ErrMalformed)
	}
	size, err := strconv.ParseUint(lines[1], 10, 63)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return TreeHead{}, fmt.Errorf("%w: checkpoint size", ErrMalformed)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != HashSize || base64.StdEncoding.EncodeToString(root) != lines[2] {
		return TreeHead{}, fmt.Errorf("%w: checkpoint root", ErrMalformed)
	}
	h := TreeHead{Origin: lines[0], Size: size}
	copy(h.Root[:], root)
	return h, nil
}
