package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"golang.org/x/mod/sumdb/note"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/tlog"
)

// proofFile is what prove-inclusion and prove-consistency write and
// verify-proof reads: one of the two proofs, tagged.
type proofFile struct {
	Inclusion   *audit.InclusionProof   `json:"inclusion,omitempty"`
	Consistency *audit.ConsistencyProof `json:"consistency,omitempty"`
}

// maxProofFile bounds a proof file verify-proof reads.
const maxProofFile = 4 << 20

// treeHeadOf returns the stream's stored signed tree head of size, or
// with size 0 the latest one covering at least atLeast.
func treeHeadOf(e *env, ts audit.TreeStore, stream string, size, atLeast uint64) (audit.SignedTreeHead, error) {
	if size == 0 {
		h, err := audit.LatestTreeHead(e.ctx, ts, stream, atLeast)
		if errors.Is(err, audit.ErrNoTree) {
			return h, usagef("%s has no signed tree head covering seq %d yet: the application's audit.TreePublisher makes one at each checkpoint", stream, atLeast)
		}
		return h, err
	}
	heads, err := ts.TreeHeads(e.ctx, stream)
	if err != nil {
		return audit.SignedTreeHead{}, fmt.Errorf("reading the tree heads of %s: %w", stream, err)
	}
	for _, h := range heads {
		if h.Size == size {
			return h, nil
		}
	}
	return audit.SignedTreeHead{}, usagef("%s has no signed tree head of size %d", stream, size)
}

func writeProof(path string, p proofFile) error {
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return usagef("cannot create %s: %v", path, err)
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

func auditProveInclusionCommand() *command {
	return &command{
		name:     "audit prove-inclusion",
		summary:  "write a proof that one audit entry is in its stream's Merkle tree under a signed tree head, for an auditor to check offline",
		synopsis: "--app TENANT --seq N [--tree-size S] --out FILE",
		example: `compliancectl audit prove-inclusion --app app-1 --seq 48001 --out entry-48001.proof.json
compliancectl audit verify-proof entry-48001.proof.json --public-key audit-public.json`,
		bind: func(fs *flag.FlagSet, e *env) func([]string) error {
			app := fs.String("app", "", "tenant (audit stream)")
			seq := fs.Uint64("seq", 0, "sequence number of the entry")
			size := fs.Uint64("tree-size", 0, "size of the signed tree head to prove against; default the latest")
			out := fs.String("out", "", "file to write; it must not exist (it holds the entry's fields)")
			return func(args []string) error {
				if len(args) > 0 {
					return usagef("audit prove-inclusion takes no arguments, got %q", args[0])
				}
				if *app == "" || *seq == 0 || *out == "" {
					return usagef("--app, --seq and --out are required")
				}
				store, err := e.auditStore()
				if err != nil {
					return err
				}
				head, err := treeHeadOf(e, store, *app, *size, *seq)
				if err != nil {
					return err
				}
				p, err := audit.ProveInclusion(e.ctx, store, *app, *seq, head)
				if err != nil {
					return fmt.Errorf("proving entry %d of %s: %w", *seq, *app, err)
				}
				if err := writeProof(*out, proofFile{Inclusion: &p}); err != nil {
					return err
				}
				return e.emit(map[string]any{"file": *out, "stream": *app, "seq": *seq, "tree_size": head.Size, "hashes": len(p.Proof)}, func(w io.Writer) {
					fmt.Fprintf(w, "%s: entry %d proved under the tree head of size %d (%d hashes) in %s\n", *app, *seq, head.Size, len(p.Proof), *out)
				})
			}
		},
	}
}

func auditProveConsistencyCommand() *command {
	return &command{
		name:     "audit prove-consistency",
		summary:  "write a proof that a stream's later signed tree head extends an earlier one (nothing before was changed or removed)",
		synopsis: "--app TENANT --old-size S [--new-size S] --out FILE",
		example: `compliancectl audit prove-consistency --app app-1 --old-size 40000 --out app-1-40000.proof.json
compliancectl audit verify-proof app-1-40000.proof.json --public-key audit-public.json`,
		bind: func(fs *flag.FlagSet, e *env) func([]string) error {
			app := fs.String("app", "", "tenant (audit stream)")
			oldSize := fs.Uint64("old-size", 0, "size of the earlier signed tree head (one the auditor already holds)")
			newSize := fs.Uint64("new-size", 0, "size of the later signed tree head; default the latest")
			out := fs.String("out", "", "file to write; it must not exist")
			return func(args []string) error {
				if len(args) > 0 {
					return usagef("audit prove-consistency takes no arguments, got %q", args[0])
				}
				if *app == "" || *oldSize == 0 || *out == "" {
					return usagef("--app, --old-size and --out are required")
				}
				store, err := e.auditStore()
				if err != nil {
					return err
				}
				older, err := treeHeadOf(e, store, *app, *oldSize, 0)
				if err != nil {
					return err
				}
				newer, err := treeHeadOf(e, store, *app, *newSize, *oldSize)
				if err != nil {
					return err
				}
				p, err := audit.ProveConsistency(e.ctx, store, *app, older, newer)
				if err != nil {
					return fmt.Errorf("proving %s from size %d to %d: %w", *app, older.Size, newer.Size, err)
				}
				if err := writeProof(*out, proofFile{Consistency: &p}); err != nil {
					return err
				}
				return e.emit(map[string]any{"file": *out, "stream": *app, "old_size": older.Size, "new_size": newer.Size, "hashes": len(p.Proof)}, func(w io.Writer) {
					fmt.Fprintf(w, "%s: tree head %d proved to extend %d (%d hashes) in %s\n", *app, newer.Size, older.Size, len(p.Proof), *out)
				})
			}
		},
	}
}

// stringsFlag is a repeatable string flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return fmt.Sprint(*s) }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

func auditVerifyProofCommand() *command {
	return &command{
		name:     "audit verify-proof",
		summary:  "check an inclusion or consistency proof offline, with the public key alone (and witness keys for a quorum); exit 1 if it fails",
		synopsis: "FILE --public-key FILE [--witness VKEY]… [--quorum N] [--held-head FILE]",
		example: `compliancectl audit verify-proof entry-48001.proof.json --public-key audit-public.json \
    --witness 'witness-a+1c2d3e4f+BGx…' --quorum 1
# app-1: entry 48001 is in the log under the signed tree head of size 48210`,
		bind: func(fs *flag.FlagSet, e *env) func([]string) error {
			pubKey := fs.String("public-key", "", "Tink public keyset (JSON or binary) of the checkpoint signer; default keys.audit_public_keyset")
			keyName := fs.String("key-name", tlog.DefaultKeyName, "note key name of the log's signatures")
			var witnesses stringsFlag
			fs.Var(&witnesses, "witness", "a witness's cosignature verifier key (name+hash+base64); repeatable")
			quorum := fs.Int("quorum", 0, "how many of the --witness keys must have cosigned the tree heads")
			heldPath := fs.String("held-head", "", "a signed tree head (note file) you already hold: a proof under an older head, a head of the same size with another root, or a consistency proof from another head fails")
			return func(args []string) error {
				if len(args) != 1 {
					return usagef("audit verify-proof takes one proof file")
				}
				log, err := treeVerifiers(e, *pubKey, *keyName)
				if err != nil {
					return err
				}
				q := &tlog.Quorum{Log: log, N: *quorum}
				for _, w := range witnesses {
					v, err := tlog.ParseCosignatureKey(w)
					if err != nil {
						return usagef("--witness %q: %v", w, err)
					}
					q.Witnesses = append(q.Witnesses, v)
				}
				if q.N < 0 || q.N > len(q.Witnesses) {
					return usagef("--quorum %d needs at least that many --witness keys", q.N)
				}
				p, err := readProof(args[0])
				if err != nil {
					return err
				}
				var held *tlog.TreeHead
				if *heldPath != "" {
					data, err := os.ReadFile(*heldPath)
					if err != nil {
						return usagef("cannot read --held-head: %v", err)
					}
					h, _, err := tlog.OpenHead(data, log)
					if err != nil {
						return usagef("--held-head %s: %v", *heldPath, err)
					}
					held = &h
				}

				res := map[string]any{"file": args[0]}
				var human string
				switch {
				case p.Inclusion != nil:
					head, err := p.Inclusion.VerifyQuorum(q)
					if err == nil && held != nil {
						err = againstHeld(*held, head, false)
					}
					res["kind"], res["stream"], res["seq"] = "inclusion", p.Inclusion.Entry.Stream, p.Inclusion.Entry.Seq
					if err != nil {
						res["ok"], res["error"] = false, err.Error()
						human = fmt.Sprintf("%s: PROOF FAILS: entry %d: %v", p.Inclusion.Entry.Stream, p.Inclusion.Entry.Seq, err)
						break
					}
					res["ok"], res["tree_size"] = true, head.Size
					human = fmt.Sprintf("%s: entry %d is in the log under the signed tree head of size %d", p.Inclusion.Entry.Stream, p.Inclusion.Entry.Seq, head.Size)
				default:
					older, errOld := q.Verify([]byte(p.Consistency.Old))
					newer, errNew := q.Verify([]byte(p.Consistency.New))
					err := errors.Join(errOld, errNew)
					if err == nil {
						err = tlog.VerifyConsistency(older, newer, p.Consistency.Proof)
					}
					if err == nil && held != nil {
						err = againstHeld(*held, older, true)
					}
					res["kind"], res["old_size"], res["new_size"] = "consistency", older.Size, newer.Size
					if err != nil {
						res["ok"], res["error"] = false, err.Error()
						human = fmt.Sprintf("PROOF FAILS: consistency: %v", err)
						break
					}
					res["ok"], res["stream"] = true, older.Origin
					human = fmt.Sprintf("%s: the tree head of size %d extends the one of size %d", older.Origin, newer.Size, older.Size)
				}
				if err := e.emit(res, func(w io.Writer) { fmt.Fprintln(w, human) }); err != nil {
					return err
				}
				if res["ok"] != true {
					return errFindings
				}
				return nil
			}
		},
	}
}

// againstHeld checks a proof's head against the head the auditor holds.
// A head older than the held one is a replay (a log showing an auditor a
// past state); one of the same size with another root is a fork. A
// consistency proof must start from the held head itself.
func againstHeld(held, got tlog.TreeHead, exact bool) error {
	switch {
	case got.Origin != held.Origin:
		return fmt.Errorf("%w: the proof is of another stream than the held head", tlog.ErrBadProof)
	case got.Size == held.Size && got.Root != held.Root:
		return fmt.Errorf("%w: the proof's head of size %d has another root than the held one", tlog.ErrFork, got.Size)
	case exact && got.Size != held.Size:
		return fmt.Errorf("%w: the proof starts from size %d, not from the held head's size %d", tlog.ErrBadProof, got.Size, held.Size)
	case got.Size < held.Size:
		return fmt.Errorf("%w: the proof's head of size %d is older than the held head of size %d: ask for a proof under the newer head", tlog.ErrRollback, got.Size, held.Size)
	}
	return nil
}

func readProof(path string) (proofFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return proofFile{}, usagef("cannot read %s: %v", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxProofFile+1))
	if err != nil {
		return proofFile{}, usagef("cannot read %s: %v", path, err)
	}
	var p proofFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if len(data) > maxProofFile || dec.Decode(&p) != nil || (p.Inclusion == nil) == (p.Consistency == nil) {
		return proofFile{}, usagef("%s is not a proof written by audit prove-inclusion or prove-consistency", path)
	}
	return p, nil
}

// treeVerifiers returns the note verifiers of the public keyset at path
// (default the configured one).
func treeVerifiers(e *env, path, name string) ([]note.Verifier, error) {
	h, path, err := e.auditPublicKeyset(path)
	if err != nil {
		return nil, err
	}
	vs, _, err := tlog.Verifiers(name, h)
	if err != nil {
		return nil, usagef("%s: %v", path, err)
	}
	return vs, nil
}
