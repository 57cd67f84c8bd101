package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/chatsdk/compliance/audit"
)

// The export format: JSON Lines, one object per line, each with exactly
// one member: a header, then the entries in sequence order, then the
// signed checkpoints that fall inside the exported range, then an end
// line with the count. Every line must be exactly what this program
// writes for its values (compact JSON, UTC times), so that no byte can
// change without changing a value, and every value is covered by an entry
// hash, a checkpoint signature or a check against the entries.
//
// TODO: move the format into package audit (it declares ErrBadExport) once
// it has an exporter, so that other tools read the same files.
const exportFormat = "compliancectl-audit-export"

type exportLine struct {
	Header     *exportHeader     `json:"header,omitempty"`
	Entry      *exportEntry      `json:"entry,omitempty"`
	Checkpoint *audit.Checkpoint `json:"checkpoint,omitempty"`
	End        *exportEnd        `json:"end,omitempty"`
}

type exportHeader struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	Stream  string `json:"stream"`
}

type exportEnd struct {
	From    uint64 `json:"from"`
	To      uint64 `json:"to"`
	Entries int    `json:"entries"`
}

// exportEntry is an audit.Entry with stable field names.
type exportEntry struct {
	Stream        string            `json:"stream"`
	Seq           uint64            `json:"seq"`
	PrevHash      []byte            `json:"prev_hash"`
	Hash          []byte            `json:"hash"`
	Tenant        string            `json:"tenant"`
	Time          time.Time         `json:"time"`
	Actor         string            `json:"actor"`
	SessionID     string            `json:"session_id"`
	IP            string            `json:"ip"`
	UserAgent     string            `json:"user_agent"`
	Type          string            `json:"type"`
	Category      string            `json:"category"`
	Action        string            `json:"action"`
	ResourceType  string            `json:"resource_type"`
	ResourceID    string            `json:"resource_id"`
	Subject       string            `json:"subject"`
	Success       bool              `json:"success"`
	FailureReason string            `json:"failure_reason"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	RetainUntil   time.Time         `json:"retain_until"`
}

func toExport(e *audit.Entry) *exportEntry {
	var md map[string]string
	if len(e.Metadata) > 0 {
		md = e.Metadata
	}
	return &exportEntry{
		Stream: e.Stream, Seq: e.Seq, PrevHash: e.PrevHash, Hash: e.Hash,
		Tenant: e.Tenant, Time: e.Time.UTC(), Actor: e.Actor, SessionID: e.SessionID, IP: e.IP, UserAgent: e.UserAgent,
		Type: e.Type, Category: string(e.Category), Action: e.Action, ResourceType: e.ResourceType, ResourceID: e.ResourceID,
		Subject: e.Subject, Success: e.Success, FailureReason: e.FailureReason, Metadata: md, RetainUntil: e.RetainUntil.UTC(),
	}
}

func (x *exportEntry) entry() audit.Entry {
	return audit.Entry{
		Stream: x.Stream, Seq: x.Seq, PrevHash: x.PrevHash, Hash: x.Hash,
		Event: audit.Event{
			Tenant: x.Tenant, Time: x.Time, Actor: x.Actor, SessionID: x.SessionID, IP: x.IP, UserAgent: x.UserAgent,
			Type: x.Type, Category: audit.Category(x.Category), Action: x.Action, ResourceType: x.ResourceType, ResourceID: x.ResourceID,
			Subject: x.Subject, Success: x.Success, FailureReason: x.FailureReason, Metadata: x.Metadata, RetainUntil: x.RetainUntil,
		},
	}
}

// writeLine writes one compact JSON line.
func writeLine(w *bufio.Writer, l exportLine) error {
	data, err := json.Marshal(l)
	if err != nil {
		return err
	}
	w.Write(data)
	return w.WriteByte('\n')
}

type exportResult struct {
	File        string `json:"file"`
	Stream      string `json:"stream"`
	From        uint64 `json:"from"`
	To          uint64 `json:"to"`
	Entries     int    `json:"entries"`
	Checkpoints int    `json:"checkpoints"`
}

func auditExportCommand() *command {
	return &command{
		name:     "audit export",
		summary:  "export a tenant's audit entries in a time window, with their signed checkpoints, to a JSON Lines file that verifies offline",
		synopsis: "--app TENANT [--since T] [--until T] --out FILE",
		example: `compliancectl audit export --app app-1 --since 2026-01-01 --until 2026-04-01 --out app-1-q1.jsonl
compliancectl audit verify-export app-1-q1.jsonl --public-key audit-public.json`,
		bind: func(fs *flag.FlagSet, e *env) func([]string) error {
			app := fs.String("app", "", "tenant (audit stream) to export")
			since := fs.String("since", "", "first entry time to include (RFC 3339 or a date); default the start")
			until := fs.String("until", "", "entries at or after this time are left out; default now")
			out := fs.String("out", "", "file to write; it must not exist")
			return func(args []string) error {
				if len(args) > 0 {
					return usagef("audit export takes no arguments, got %q", args[0])
				}
				if *app == "" || *out == "" {
					return usagef("--app and --out are required")
				}
				from, err := parseTime("since", *since)
				if err != nil {
					return err
				}
				to, err := parseTime("until", *until)
				if err != nil {
					return err
				}
				if to.IsZero() {
					to = time.Now()
				}
				if !from.Before(to) {
					return usagef("--since must be before --until")
				}
				store, err := e.auditStore()
				if err != nil {
					return err
				}
				head, err := store.Head(e.ctx, *app)
				if err != nil {
					return fmt.Errorf("reading the head of %s: %w", *app, err)
				}
				cps, err := store.Checkpoints(e.ctx, *app)
				if err != nil {
					return fmt.Errorf("reading the checkpoints of %s: %w", *app, err)
				}

				f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
				if err != nil {
					return usagef("cannot create the export: %v (it must not exist yet)", err)
				}
				res, err := writeExport(e, f, store, *app, from, to, int64(head.Seq), cps)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					os.Remove(*out)
					return err
				}
				res.File = *out
				return e.emit(res, func(w io.Writer) {
					fmt.Fprintf(w, "%s: wrote %d entries (seq %d to %d) and %d checkpoints to %s\n", res.Stream, res.Entries, res.From, res.To, res.Checkpoints, res.File)
				})
			}
		},
	}
}

// errStop ends a scan early.
var errStop = errors.New("stop")

func writeExport(e *env, f *os.File, src audit.Source, stream string, since, until time.Time, total int64, cps []audit.Checkpoint) (exportResult, error) {
	res := exportResult{Stream: stream}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := writeLine(w, exportLine{Header: &exportHeader{Format: exportFormat, Version: 1, Stream: stream}}); err != nil {
		return res, err
	}
	p := e.progress(total, "export "+stream)
	err := src.Scan(e.ctx, stream, 1, func(en *audit.Entry) error {
		p.Add(1)
		if en.Time.Before(since) {
			return nil
		}
		if !en.Time.Before(until) {
			return errStop
		}
		if res.Entries == 0 {
			res.From = en.Seq
		}
		res.To = en.Seq
		res.Entries++
		return writeLine(w, exportLine{Entry: toExport(en)})
	})
	p.Finish()
	if err != nil && !errors.Is(err, errStop) {
		return res, fmt.Errorf("reading %s: %w", stream, err)
	}
	for i := range cps {
		c := cps[i]
		if res.Entries == 0 || c.Seq+1 < res.From || c.Seq > res.To {
			continue
		}
		c.Time = c.Time.UTC()
		if err := writeLine(w, exportLine{Checkpoint: &c}); err != nil {
			return res, err
		}
		res.Checkpoints++
	}
	if err := writeLine(w, exportLine{End: &exportEnd{From: res.From, To: res.To, Entries: res.Entries}}); err != nil {
		return res, err
	}
	if err := w.Flush(); err != nil {
		return res, err
	}
	return res, f.Sync()
}

// exportSource is an export file read back: an audit.Source for Verify.
type exportSource struct {
	stream      string
	entries     []audit.Entry
	checkpoints []audit.Checkpoint
	end         exportEnd
}

func (s *exportSource) Scan(ctx context.Context, stream string, from uint64, fn func(*audit.Entry) error) error {
	for i := range s.entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.entries[i].Stream == stream && s.entries[i].Seq >= from {
			if err := fn(&s.entries[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *exportSource) Checkpoints(_ context.Context, stream string) ([]audit.Checkpoint, error) {
	var out []audit.Checkpoint
	for _, c := range s.checkpoints {
		if c.Stream == stream {
			out = append(out, c)
		}
	}
	return out, nil
}

// readExport parses an export. Any deviation from what writeExport writes
// is an error naming the line: the file cannot be trusted then.
//
// TODO: it holds the whole export in memory; stream it for exports larger
// than a few million entries.
func readExport(r io.Reader) (*exportSource, error) {
	src := &exportSource{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	n := 0
	ended := false
	for sc.Scan() {
		n++
		line := sc.Bytes()
		var l exportLine
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			return nil, fmt.Errorf("line %d: %w: %v", n, audit.ErrBadExport, err)
		}
		again, err := json.Marshal(l)
		if err != nil || !bytes.Equal(again, line) {
			return nil, fmt.Errorf("line %d: %w: not in the form the exporter writes", n, audit.ErrBadExport)
		}
		members := 0
		for _, set := range []bool{l.Header != nil, l.Entry != nil, l.Checkpoint != nil, l.End != nil} {
			if set {
				members++
			}
		}
		switch {
		case members != 1:
			return nil, fmt.Errorf("line %d: %w: a line holds exactly one of header, entry, checkpoint, end", n, audit.ErrBadExport)
		case ended:
			return nil, fmt.Errorf("line %d: %w: data after the end line", n, audit.ErrBadExport)
		case n == 1 && l.Header == nil, n > 1 && l.Header != nil:
			return nil, fmt.Errorf("line %d: %w: the header must be the first line and only it", n, audit.ErrBadExport)
		case l.Header != nil:
			if l.Header.Format != exportFormat || l.Header.Version != 1 {
				return nil, fmt.Errorf("line 1: %w: not a version 1 %s file", audit.ErrBadExport, exportFormat)
			}
			src.stream = l.Header.Stream
		case l.Entry != nil:
			if len(src.checkpoints) > 0 {
				return nil, fmt.Errorf("line %d: %w: entry after the checkpoints", n, audit.ErrBadExport)
			}
			if l.Entry.Stream != src.stream {
				return nil, fmt.Errorf("line %d: %w: entry of stream %q in an export of %q", n, audit.ErrBadExport, l.Entry.Stream, src.stream)
			}
			src.entries = append(src.entries, l.Entry.entry())
		case l.Checkpoint != nil:
			if l.Checkpoint.Stream != src.stream {
				return nil, fmt.Errorf("line %d: %w: checkpoint of stream %q in an export of %q", n, audit.ErrBadExport, l.Checkpoint.Stream, src.stream)
			}
			src.checkpoints = append(src.checkpoints, *l.Checkpoint)
		case l.End != nil:
			ended = true
			src.end = *l.End
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w: %v", n+1, audit.ErrBadExport, err)
	}
	if !ended {
		return nil, fmt.Errorf("%w: no end line: the file was cut short", audit.ErrBadExport)
	}
	var from, to uint64
	if len(src.entries) > 0 {
		from, to = src.entries[0].Seq, src.entries[len(src.entries)-1].Seq
	}
	if src.end.Entries != len(src.entries) || src.end.From != from || src.end.To != to {
		return nil, fmt.Errorf("%w: the end line does not match the entries (entries removed or added)", audit.ErrBadExport)
	}
	return src, nil
}

type verifyExportResult struct {
	File string `json:"file"`
	chainResult
	Malformed string `json:"malformed,omitempty"`
}

func auditVerifyExportCommand() *command {
	return &command{
		name:     "audit verify-export",
		summary:  "verify an audit export offline, with no database: its hash chain and checkpoint signatures; exit 1 if any byte was changed",
		synopsis: "FILE --public-key FILE",
		example: `compliancectl audit verify-export app-1-q1.jsonl --public-key audit-public.json
# app-1: chain holds from seq 1 through 48210 (48210 entries, 48 checkpoints checked); …`,
		bind: func(fs *flag.FlagSet, e *env) func([]string) error {
			pubKey := fs.String("public-key", "", "Tink public keyset (JSON or binary) of the checkpoint signer")
			return func(args []string) error {
				if len(args) != 1 {
					return usagef("audit verify-export takes one export file, got %d arguments", len(args))
				}
				if *pubKey == "" {
					return usagef("--public-key is required: the Tink public keyset of the checkpoint signer")
				}
				verifier, err := e.auditVerifier(*pubKey)
				if err != nil {
					return err
				}
				f, err := os.Open(args[0])
				if err != nil {
					return usagef("cannot open the export: %v", err)
				}
				defer f.Close()

				res := verifyExportResult{File: args[0]}
				src, err := readExport(f)
				if err != nil {
					res.Malformed = err.Error()
					if err := e.emit(res, func(w io.Writer) {
						fmt.Fprintf(w, "%s: TAMPERED or damaged: %v\n", args[0], err)
					}); err != nil {
						return err
					}
					return errFindings
				}
				opts := audit.VerifyOptions{Stream: src.stream, Verifier: verifier, From: src.end.From}
				res.chainResult, err = verifyChain(e.ctx, e, src, int64(len(src.entries)), opts)
				if err != nil {
					return err
				}
				if err := e.emit(res, func(w io.Writer) { printChain(w, res.chainResult) }); err != nil {
					return err
				}
				if !res.OK {
					return errFindings
				}
				return nil
			}
		},
	}
}
