package tlog

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/mod/sumdb/note"
)

func decodeSig(s string) ([]byte, error) { return base64.StdEncoding.Strict().DecodeString(s) }
func encodeSig(b []byte) string          { return base64.StdEncoding.EncodeToString(b) }

// AddRequest is what a log sends a witness for each new signed head.
type AddRequest struct {
	// OldSize is the size of the last head the log believes the witness
	// cosigned for this origin; 0 when it believes there is none.
	OldSize uint64
	// Proof is the consistency proof from OldSize to the new head's size.
	Proof []Hash
	// Checkpoint is the new head, a note signed by the log.
	Checkpoint []byte
}

// ConflictError is a witness's answer when AddRequest.OldSize is not the
// size it last cosigned: the log should send a proof from Size instead.
type ConflictError struct {
	// Size is the size of the last head the witness cosigned.
	Size uint64
}

// Error says the sizes disagree.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("tlog: witness last cosigned size %d", e.Size)
}

// Witness is an independent party that checks each new tree head extends
// the last one it cosigned for the same log and, if so, cosigns it.
// AddCheckpoint returns the cosignature as a note signature line
// ("— name base64\n") to append to the checkpoint, a [*ConflictError]
// when req.OldSize is not its last size, [ErrRollback] or [ErrFork] for a
// head it must refuse, and [ErrBadProof] or [ErrBadSignature] for a
// request that does not check out. Implementations must be safe for
// concurrent use.
type Witness interface {
	AddCheckpoint(ctx context.Context, req AddRequest) ([]byte, error)
}

// witnessState is what a FileWitness keeps per origin: the last head it
// cosigned. The state file is one JSON object mapping each origin to
// {"size": decimal size, "root": standard base64 root}; the origin's
// version prefix ([OriginPrefix]) versions it.
type witnessState struct {
	Size uint64 `json:"size"`
	Root Hash   `json:"root"`
}

// FileWitness is a [Witness] that keeps, in a JSON file, the last head it
// cosigned for each origin, and refuses a head that is smaller (a
// rollback), of the same size with another root, or not provably an
// extension (a fork). It records a head before it cosigns it, so a crash
// never leaves a cosignature it would not stand by. The first head of an
// origin is trusted as it comes. It is for tests and small deployments.
// It is safe for concurrent use, also by several processes on one state
// file: each check-and-record holds an exclusive flock(2) on a lock file
// beside it (the state file's path plus ".lock"), on platforms that have
// flock (Linux, macOS, the BSDs); elsewhere only within one process. The
// lock does not work across machines on a network file system.
type FileWitness struct {
	path   string
	signer *Cosigner
	logs   []note.Verifier

	mu sync.Mutex
}

var _ Witness = (*FileWitness)(nil)

// NewFileWitness returns a witness keeping its state at path, cosigning
// with signer heads signed by any key in logs.
func NewFileWitness(path string, signer *Cosigner, logs []note.Verifier) (*FileWitness, error) {
	if path == "" || signer == nil || len(logs) == 0 {
		return nil, fmt.Errorf("%w: FileWitness needs a path, a cosigner and the log's keys", ErrKey)
	}
	return &FileWitness{path: path, signer: signer, logs: logs}, nil
}

// Latest returns the last head the witness cosigned for origin, and false
// if none.
func (w *FileWitness) Latest(origin string) (TreeHead, bool, error) {
	unlock, err := w.lock()
	if err != nil {
		return TreeHead{}, false, err
	}
	defer unlock()
	st, err := w.load()
	if err != nil {
		return TreeHead{}, false, err
	}
	s, ok := st[origin]
	return TreeHead{Origin: origin, Size: s.Size, Root: s.Root}, ok, nil
}

// AddCheckpoint implements [Witness].
func (w *FileWitness) AddCheckpoint(ctx context.Context, req AddRequest) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	head, n, err := OpenHead(req.Checkpoint, w.logs)
	if err != nil {
		return nil, err
	}

	unlock, err := w.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := w.load()
	if err != nil {
		return nil, err
	}
	last, seen := st[head.Origin]
	if !seen {
		last = witnessState{Size: 0, Root: EmptyRoot()}
	}
	if req.OldSize != last.Size && head.Size > last.Size {
		return nil, &ConflictError{Size: last.Size}
	}
	older := TreeHead{Origin: head.Origin, Size: last.Size, Root: last.Root}
	if head.Size == last.Size && head.Root == last.Root {
		req.Proof = nil // the head it cosigned already: no proof needed
	}
	if err := VerifyConsistency(older, head, req.Proof); err != nil {
		if errors.Is(err, ErrBadProof) {
			return nil, fmt.Errorf("%w: head does not extend the last one cosigned: %w", ErrFork, err)
		}
		return nil, err
	}

	if !seen || head.Size != last.Size {
		st[head.Origin] = witnessState{Size: head.Size, Root: head.Root}
		if err := w.save(st); err != nil {
			return nil, err
		}
	}
	signed, err := note.Sign(&note.Note{Text: n.Text}, w.signer)
	if err != nil {
		return nil, fmt.Errorf("tlog: cosign: %w", err)
	}
	_, line, ok := bytes.Cut(signed, []byte("\n\n"))
	if !ok {
		return nil, errors.New("tlog: cosign: note without signature")
	}
	return line, nil
}

// lock takes the in-process mutex and the state file's lock, which load
// and save must be called under.
func (w *FileWitness) lock() (func(), error) {
	w.mu.Lock()
	release, err := lockFile(w.path + ".lock")
	if err != nil {
		w.mu.Unlock()
		return nil, fmt.Errorf("tlog: witness state lock: %w", err)
	}
	return func() {
		release()
		w.mu.Unlock()
	}, nil
}

func (w *FileWitness) load() (map[string]witnessState, error) {
	data, err := os.ReadFile(w.path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]witnessState{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tlog: witness state: %w", err)
	}
	st := map[string]witnessState{}
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%w: witness state file", ErrMalformed)
	}
	return st, nil
}

// save writes the state to a temporary file, syncs it and renames it over
// the old one, so a crash leaves the old state or the new, never half.
func (w *FileWitness) save(st map[string]witnessState) error {
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("tlog: witness state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(w.path), filepath.Base(w.path)+".*")
	if err != nil {
		return fmt.Errorf("tlog: witness state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("tlog: witness state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("tlog: witness state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("tlog: witness state: %w", err)
	}
	if err := os.Rename(tmp.Name(), w.path); err != nil {
		return fmt.Errorf("tlog: witness state: %w", err)
	}
	if d, err := os.Open(filepath.Dir(w.path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Cosign sends the signed head to w with a proof from the witness's last
// size, which the log guesses as lastSize; when the witness names another
// size, proof is asked for that one and the request sent once more. It
// returns the signed head with the cosignature line appended. proof
// returns the consistency proof from an older size to the head's size.
func Cosign(ctx context.Context, w Witness, signed []byte, lastSize uint64, proof func(oldSize uint64) ([]Hash, error)) ([]byte, error) {
	for try := 0; ; try++ {
		p, err := proof(lastSize)
		if err != nil {
			return nil, err
		}
		line, err := w.AddCheckpoint(ctx, AddRequest{OldSize: lastSize, Proof: p, Checkpoint: signed})
		var conflict *ConflictError
		if errors.As(err, &conflict) && try == 0 {
			lastSize = conflict.Size
			continue
		}
		if err != nil {
			return nil, err
		}
		return AddCosignature(signed, line)
	}
}

// AddCosignature appends a witness's signature line to a signed note. The
// line must be one well-formed signature line.
func AddCosignature(signed, line []byte) ([]byte, error) {
	if !bytes.HasPrefix(line, []byte("— ")) || !bytes.HasSuffix(line, []byte("\n")) || bytes.Count(line, []byte("\n")) != 1 {
		return nil, fmt.Errorf("%w: cosignature line", ErrMalformed)
	}
	if !bytes.HasSuffix(signed, []byte("\n")) || !bytes.Contains(signed, []byte("\n\n")) {
		return nil, fmt.Errorf("%w: signed note", ErrMalformed)
	}
	return append(append([]byte(nil), signed...), line...), nil
}

// Quorum verifies a signed head the way a careful auditor does: the log's
// signature, and cosignatures from at least N distinct known witnesses.
// Witnesses are distinct by name: two keys under one name count once, and
// a repeated cosignature line counts once. The log's own key is never a
// witness; a Quorum listing it is refused with [ErrKey]. Any signature of
// a known key that does not verify refuses the head.
type Quorum struct {
	// Log holds the log's verifiers ([Verifiers]). Required.
	Log []note.Verifier
	// Witnesses are the known witnesses' verifiers.
	Witnesses []note.Verifier
	// N is how many distinct known witnesses must have cosigned; 0 means
	// none are demanded.
	N int
}

// Verify checks signed and returns the head it states, or
// [ErrBadSignature], or [ErrNoQuorum] when fewer than N known witnesses
// cosigned it.
func (q *Quorum) Verify(signed []byte) (TreeHead, error) {
	if len(q.Log) == 0 || q.N < 0 || q.N > len(q.Witnesses) {
		return TreeHead{}, fmt.Errorf("%w: a quorum of %d from %d witnesses", ErrKey, q.N, len(q.Witnesses))
	}
	for _, w := range q.Witnesses {
		for _, l := range q.Log {
			if w.Name() == l.Name() && w.KeyHash() == l.KeyHash() {
				return TreeHead{}, fmt.Errorf("%w: a witness key is the log's own key", ErrKey)
			}
		}
	}
	head, n, err := OpenHead(signed, q.Log, q.Witnesses...)
	if err != nil {
		return TreeHead{}, err
	}
	names := map[string]bool{}
	for _, s := range n.Sigs {
		for _, v := range q.Witnesses {
			if s.Name == v.Name() && s.Hash == v.KeyHash() {
				names[s.Name] = true
			}
		}
	}
	if len(names) < q.N {
		return TreeHead{}, fmt.Errorf("%w: %d of %d", ErrNoQuorum, len(names), q.N)
	}
	return head, nil
}
