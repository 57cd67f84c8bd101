package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/chatsdk/compliance/internal/canon"
)

const checkpointDomain = "audit.checkpoint.v1"

// CheckpointKind says what a checkpoint vouches for.
type CheckpointKind string

// The kinds of checkpoint.
const (
	// KindHead vouches that the stream's entry Seq had hash Head at Time:
	// nothing at or before Seq may change or vanish.
	KindHead CheckpointKind = "head"
	// KindHorizon records that entries up to Seq were removed on purpose
	// (their partitions passed retain-until). Verification starts after
	// it, with Head as the previous hash.
	KindHorizon CheckpointKind = "horizon"
)

// Checkpoint is a signed statement about a stream's chain, made with a key
// the application holds and the database never sees. A copy published
// outside the database lets a verifier catch a rewritten or truncated
// chain.
type Checkpoint struct {
	// Stream is the chain the checkpoint is about.
	Stream string `json:"stream"`
	// Seq is the entry it vouches for (for a horizon, the last removed).
	Seq uint64 `json:"seq"`
	// Head is the Hash of entry Seq.
	Head []byte `json:"head"`
	// Time is when it was signed, at microsecond precision.
	Time time.Time `json:"time"`
	// Kind says what it vouches for; empty is signed as [KindHead].
	Kind CheckpointKind `json:"kind"`
	// Signature covers [Checkpoint.SignedBytes]: every field above.
	Signature []byte `json:"signature"`
}

// SignedBytes returns the canonical encoding the signature covers: every
// field but the signature.
func (c *Checkpoint) SignedBytes() []byte {
	return canon.Encode(checkpointDomain,
		canon.String(c.Stream), canon.Uint(c.Seq), canon.Bytes(c.Head),
		canon.Time(c.Time), canon.String(string(c.Kind)))
}

// Signer signs checkpoints. A Tink signature.NewSigner over an Ed25519
// keyset handle satisfies it; rotating the keyset's primary key rotates
// the signing key.
type Signer interface {
	Sign(data []byte) ([]byte, error)
}

// SignatureVerifier checks checkpoint signatures. A Tink
// signature.NewVerifier over the public keyset satisfies it; a keyset that
// still holds the previous public key accepts checkpoints signed before a
// rotation, which is the overlap.
type SignatureVerifier interface {
	Verify(signature, data []byte) error
}

// SignCheckpoint fills in c.Signature. c.Time is truncated to microseconds.
func SignCheckpoint(s Signer, c *Checkpoint) error {
	if c.Kind == "" {
		c.Kind = KindHead
	}
	c.Time = truncate(c.Time)
	sig, err := s.Sign(c.SignedBytes())
	if err != nil {
		return fmt.Errorf("audit: sign checkpoint: %w", err)
	}
	c.Signature = sig
	return nil
}

// VerifyCheckpoint checks c's signature and returns [ErrBadSignature] when
// it does not verify.
func VerifyCheckpoint(v SignatureVerifier, c *Checkpoint) error {
	if c.Kind != KindHead && c.Kind != KindHorizon {
		return fmt.Errorf("%w: unknown kind", ErrBadSignature)
	}
	if err := v.Verify(c.Signature, c.SignedBytes()); err != nil {
		// The verifier's own error is not wrapped: it says nothing a
		// caller can act on, and an attacker should learn nothing.
		return ErrBadSignature
	}
	return nil
}

// Publisher keeps a copy of each checkpoint outside the database, where
// whoever can rewrite the database cannot rewrite it too. Publish must be
// safe for concurrent use.
type Publisher interface {
	Publish(ctx context.Context, c Checkpoint) error
}

// FilePublisher appends checkpoints as JSON Lines to a file, synced after
// each one. Point it at storage the database's administrators cannot
// write (a WORM bucket mount, another host's share). It is safe for
// concurrent use.
type FilePublisher struct {
	// Path is the file; it is created if missing.
	Path string
	mu   sync.Mutex
}

// Publish appends c to the file and syncs it.
func (p *FilePublisher) Publish(_ context.Context, c Checkpoint) error {
	line, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("audit: encode checkpoint: %w", err)
	}
	line = append(line, '\n')

	p.mu.Lock()
	defer p.mu.Unlock()
	_, statErr := os.Stat(p.Path)
	created := errors.Is(statErr, fs.ErrNotExist)
	f, err := os.OpenFile(p.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("audit: open checkpoint file: %w", err)
	}
	if _, err := f.Write(line); err != nil {
		f.Close()
		return fmt.Errorf("audit: write checkpoint file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("audit: sync checkpoint file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("audit: close checkpoint file: %w", err)
	}
	if created {
		// A new file's name lives in its directory: sync that too, or a
		// crash can lose the file with every checkpoint in it.
		if err := syncDir(filepath.Dir(p.Path)); err != nil {
			return fmt.Errorf("audit: sync checkpoint directory: %w", err)
		}
	}
	return nil
}

// syncDir flushes a directory's entries to stable storage. Windows cannot
// sync a directory (its file system journals names itself), so there it
// does nothing.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// ReadCheckpointFile reads the checkpoints a [FilePublisher] wrote. It does
// not verify them; [Verify] does.
func ReadCheckpointFile(path string) ([]Checkpoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: read checkpoint file: %w", err)
	}
	var cps []Checkpoint
	for i, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var c Checkpoint
		if err := json.Unmarshal(line, &c); err != nil {
			return nil, fmt.Errorf("%w: checkpoint file line %d", ErrBadExport, i+1)
		}
		cps = append(cps, c)
	}
	return cps, nil
}

// HTTPPublisher POSTs each checkpoint as JSON to an endpoint (a transparency
// log, another organisation's notary) and treats any status but 2xx as a
// failure. It is safe for concurrent use.
type HTTPPublisher struct {
	// URL is the endpoint.
	URL string
	// Client is the HTTP client; nil means http.DefaultClient. Give it a
	// timeout.
	Client *http.Client
}

// Publish sends c.
func (p *HTTPPublisher) Publish(ctx context.Context, c Checkpoint) error {
	body, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("audit: encode checkpoint: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("audit: publish checkpoint: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	client := p.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("audit: publish checkpoint: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("audit: publish checkpoint: status %d", resp.StatusCode)
	}
	return nil
}
