package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/auditpg"
)

// auditStore opens the audit store on the database.
func (e *env) auditStore() (*auditpg.Store, error) {
	pool, err := e.connect()
	if err != nil {
		return nil, err
	}
	s, err := auditpg.New(pool, auditpg.Config{Schema: e.schema})
	if err != nil {
		return nil, fmt.Errorf("audit store: %w", err)
	}
	return s, nil
}

// chainResult is what a verification of one stream found.
type chainResult struct {
	Stream string `json:"stream"`
	OK     bool   `json:"ok"`
	// From is the first sequence number checked; Through the last one
	// that verified.
	From        uint64 `json:"from"`
	Through     uint64 `json:"verified_through"`
	Entries     int    `json:"entries"`
	Checkpoints int    `json:"checkpoints_checked"`
	// Anchored is whether From was anchored by the genesis or a signed
	// checkpoint rather than taken on trust.
	Anchored bool `json:"anchored"`
	// LatestCheckpoint is the newest signed head checkpoint of the stream.
	LatestCheckpoint *checkpointSummary `json:"latest_checkpoint,omitempty"`
	Failure          *failureSummary    `json:"failure,omitempty"`
}

type checkpointSummary struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Kind string    `json:"kind"`
}

type failureSummary struct {
	Seq    uint64 `json:"seq"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

// countingSource counts the entries a verification reads, for progress.
type countingSource struct {
	audit.Source
	p *progress
}

func (c countingSource) Scan(ctx context.Context, stream string, from uint64, fn func(*audit.Entry) error) error {
	return c.Source.Scan(ctx, stream, from, func(e *audit.Entry) error {
		c.p.Add(1)
		return fn(e)
	})
}

// verifyChain verifies one stream of src. Tampering is reported in the
// result; the error is for a source that cannot be read.
func verifyChain(ctx context.Context, e *env, src audit.Source, total int64, opts audit.VerifyOptions) (chainResult, error) {
	res := chainResult{Stream: opts.Stream}
	cps, err := src.Checkpoints(ctx, opts.Stream)
	if err != nil {
		return res, fmt.Errorf("reading the checkpoints of %s: %w", opts.Stream, err)
	}
	for i := len(cps) - 1; i >= 0; i-- {
		if cps[i].Kind == audit.KindHead {
			res.LatestCheckpoint = &checkpointSummary{Seq: cps[i].Seq, Time: cps[i].Time.UTC(), Kind: string(cps[i].Kind)}
			break
		}
	}

	p := e.progress(total, "verify "+opts.Stream, "entries")
	rep, err := audit.Verify(ctx, countingSource{Source: src, p: p}, opts)
	p.Finish()
	res.From, res.Through, res.Entries, res.Checkpoints, res.Anchored = rep.From, rep.Head.Seq, rep.Entries, rep.Checkpoints, rep.Anchored
	var f *audit.Failure
	switch {
	case errors.As(err, &f):
		res.Failure = &failureSummary{Seq: f.Seq, Kind: string(f.Kind), Detail: f.Detail}
		return res, nil
	case err != nil:
		return res, fmt.Errorf("verifying %s: %w", opts.Stream, err)
	}
	res.OK = true
	return res, nil
}

// withPublished adds the stream's checkpoints from a published file to
// opts, and trusts the latest head checkpoint among them.
func withPublished(opts *audit.VerifyOptions, published []audit.Checkpoint) {
	for i := range published {
		if published[i].Stream != opts.Stream {
			continue
		}
		opts.Checkpoints = append(opts.Checkpoints, published[i])
		if published[i].Kind == audit.KindHead && (opts.Trusted == nil || published[i].Seq > opts.Trusted.Seq) {
			opts.Trusted = &published[i]
		}
	}
}

func printChain(w io.Writer, r chainResult) {
	if r.Failure != nil {
		fmt.Fprintf(w, "%s: TAMPERED: first bad entry seq %d: %s", r.Stream, r.Failure.Seq, r.Failure.Kind)
		if r.Failure.Detail != "" {
			fmt.Fprintf(w, " (%s)", r.Failure.Detail)
		}
		fmt.Fprintln(w)
		return
	}
	if r.Entries == 0 {
		fmt.Fprintf(w, "%s: no entries to verify\n", r.Stream)
		return
	}
	fmt.Fprintf(w, "%s: chain holds from seq %d through %d (%d entries, %d checkpoints checked", r.Stream, r.From, r.Through, r.Entries, r.Checkpoints)
	if !r.Anchored {
		fmt.Fprint(w, "; first entry taken on trust, no checkpoint anchors it")
	}
	fmt.Fprint(w, ")")
	if c := r.LatestCheckpoint; c != nil {
		fmt.Fprintf(w, "; latest signed checkpoint seq %d at %s", c.Seq, c.Time.Format(time.RFC3339))
	} else {
		fmt.Fprint(w, "; no signed checkpoint: the chain alone cannot show a whole-table rewrite")
	}
	fmt.Fprintln(w)
}

func auditVerifyCommand() *command {
	return &command{
		name:     "audit verify",
		summary:  "verify the audit hash chain and its signed checkpoints; exit 1 and name the first bad entry on tampering",
		synopsis: "[--app TENANT]… [--from-seq N] [--checkpoint FILE] [--public-key FILE]",
		example: `compliancectl audit verify --app app-1 --public-key audit-public.json \
    --checkpoint /mnt/worm/audit-checkpoints.jsonl
# app-1: chain holds from seq 1 through 48210 (48210 entries, 48 checkpoints checked); …`,
		bind: func(fs *flag.FlagSet, e *env) func([]string) error {
			var apps stringList
			fs.Var(&apps, "app", "tenant (audit stream) to verify; repeatable; default the configured tenants")
			fromSeq := fs.Uint64("from-seq", 0, "first sequence number to verify; default the start of the chain")
			cpFile := fs.String("checkpoint", "", "checkpoint file published outside the database (JSON Lines, as audit.FilePublisher writes); its latest checkpoint is trusted")
			pubKey := fs.String("public-key", "", "Tink public keyset (JSON or binary) of the checkpoint signer; default keys.audit_public_keyset")
			record := fs.Bool("record", false, "append the outcome to each verified stream as a "+audit.TypeAuditVerified+" entry")
			return func(args []string) error {
				if len(args) > 0 {
					return usagef("audit verify takes no arguments, got %q (did you mean --app %s?)", args[0], args[0])
				}
				verifier, err := e.auditVerifier(*pubKey)
				if err != nil {
					return err
				}
				streams, err := e.tenants(apps)
				if err != nil {
					return err
				}
				var published []audit.Checkpoint
				if *cpFile != "" {
					if published, err = audit.ReadCheckpointFile(*cpFile); err != nil {
						return usagef("checkpoint file %s: %v", *cpFile, err)
					}
				}
				store, err := e.auditStore()
				if err != nil {
					return err
				}

				var results []chainResult
				bad := false
				for _, stream := range streams {
					head, err := store.Head(e.ctx, stream)
					if err != nil {
						return fmt.Errorf("reading the head of %s: %w", stream, err)
					}
					opts := audit.VerifyOptions{Stream: stream, Verifier: verifier, From: *fromSeq}
					withPublished(&opts, published)
					total := max(int64(head.Seq)-int64(max(*fromSeq, 1))+1, 0)
					res, err := verifyChain(e.ctx, e, store, total, opts)
					if err != nil {
						return err
					}
					bad = bad || !res.OK
					results = append(results, res)
				}
				if *record {
					for _, res := range results {
						md := map[string]string{"ok": strconv.FormatBool(res.OK), "from": strconv.FormatUint(res.From, 10), "verified_through": strconv.FormatUint(res.Through, 10)}
						if res.Failure != nil {
							md["failure_kind"], md["failure_seq"] = res.Failure.Kind, strconv.FormatUint(res.Failure.Seq, 10)
						}
						if res.LatestCheckpoint != nil {
							md["checkpoint_seq"] = strconv.FormatUint(res.LatestCheckpoint.Seq, 10)
						}
						if err := e.recordOperation(res.Stream, audit.TypeAuditVerified, audit.ActionRead, "audit.stream", res.Stream, md); err != nil {
							return err
						}
					}
				}
				if err := e.emit(map[string]any{"ok": !bad, "streams": results}, func(w io.Writer) {
					for _, r := range results {
						printChain(w, r)
					}
				}); err != nil {
					return err
				}
				if bad {
					return errFindings
				}
				return nil
			}
		},
	}
}
