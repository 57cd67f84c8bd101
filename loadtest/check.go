package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/signature"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/auditpg"
)

// result is what a scenario found: figures and facts to report, and the
// failures of its checks.
// Its methods are safe for concurrent use.
type result struct {
	Name string

	mu       sync.Mutex
	Notes    []string
	Failures []string
}

func (r *result) notef(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

func (r *result) failf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Failures = append(r.Failures, fmt.Sprintf(format, args...))
}

// OK reports whether every check passed.
func (r *result) OK() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.Failures) == 0
}

// checkMessages reads every channel of every account through the API and
// checks that each acknowledged message is there, with its text, and that
// its integrity tag and decryption passed ("integrity": "ok").
func checkMessages(ctx context.Context, a *api, base string, l *ledger, res *result) {
	type got struct{ text, integrity string }
	seen := map[string]got{}
	reads := 0
	for _, u := range l.accounts {
		if len(u.channels) == 0 {
			continue
		}
		r, err := a.callAt(ctx, base, "check", "POST", "/v1/apps/"+u.app+"/login", "", map[string]string{"username": u.name, "password": u.password}, nil)
		if err != nil || r.status != 200 {
			res.failf("check: log in as %s: %v %d %s", u.name, err, r.status, r.body)
			continue
		}
		tok := r.field("access_token")
		for _, ch := range u.channels {
			r, err := a.callAt(ctx, base, "check", "GET", "/v1/channels/"+ch+"/messages", tok, nil, nil)
			if err != nil || r.status != 200 {
				res.failf("check: read channel %s: %v %d %s", ch, err, r.status, r.body)
				continue
			}
			reads++
			var body struct {
				Messages []struct {
					ID, Text, Integrity string
				}
			}
			if err := json.Unmarshal(r.body, &body); err != nil {
				res.failf("check: channel %s: %v", ch, err)
				continue
			}
			for _, m := range body.Messages {
				seen[m.ID] = got{m.Text, m.Integrity}
			}
		}
	}
	missing, wrong, failed := 0, 0, 0
	for id, m := range l.msgs {
		g, ok := seen[id]
		switch {
		case !ok:
			missing++
		case g.integrity != "ok":
			failed++
		case g.text != m.text:
			wrong++
		}
	}
	res.notef("acknowledged messages: %d; read back through the API in %d channel reads: %d", len(l.msgs), reads, len(l.msgs)-missing)
	if missing+wrong+failed > 0 {
		res.failf("of %d acknowledged messages, %d missing, %d with other text, %d failing integrity or decryption", len(l.msgs), missing, wrong, failed)
	}
}

// checkAudit checks that every acknowledged request has its own audit
// entry: exactly one successful entry with the request's tag in its
// User-Agent (see userAgentPrefix) and the request's tenant, type, caller
// and resource; and that every acknowledged message has exactly one
// data.created detail entry naming it, from the request that posted it.
func checkAudit(ctx context.Context, e *env, l *ledger, res *result) {
	ids := map[[2]string]string{} // (app, username) → user id
	rows, err := e.pool.Query(ctx, `SELECT app_id, username, id FROM chat_users`)
	if err != nil {
		res.failf("audit check: %v", err)
		return
	}
	for rows.Next() {
		var app, name, id string
		if err := rows.Scan(&app, &name, &id); err != nil {
			res.failf("audit check: %v", err)
			return
		}
		ids[[2]string{app, name}] = id
	}
	if rows.Err() != nil {
		res.failf("audit check: %v", rows.Err())
		return
	}

	// Every successful entry of a tagged request, by all its fields.
	type key struct{ tenant, typ, actor, rtype, rid, tag string }
	counts := map[key]int{}
	byTag := map[string]int{}
	rows, err = e.pool.Query(ctx, `
		SELECT tenant, type, actor, resource_type, resource_id, substr(user_agent, $1), count(*)
		FROM audit_entries WHERE success AND starts_with(user_agent, $2) GROUP BY 1, 2, 3, 4, 5, 6`,
		len(userAgentPrefix)+1, userAgentPrefix)
	if err != nil {
		res.failf("audit check: %v", err)
		return
	}
	entries := 0
	for rows.Next() {
		var k key
		var n int
		if err := rows.Scan(&k.tenant, &k.typ, &k.actor, &k.rtype, &k.rid, &k.tag, &n); err != nil {
			res.failf("audit check: %v", err)
			return
		}
		counts[k] += n
		byTag[k.tag] += n
		entries += n
	}
	if rows.Err() != nil {
		res.failf("audit check: %v", rows.Err())
		return
	}

	missing, other, repeated := 0, 0, 0
	for _, a := range l.acks {
		id, ok := ids[[2]string{a.app, a.username}]
		if !ok {
			res.failf("audit check: user %s of %s acknowledged but not stored", a.username, a.app)
			continue
		}
		switch got := counts[key{a.app, a.typ, id, a.resourceType, a.resourceID, a.tag}]; {
		case got == 1:
			continue
		case got > 1:
			repeated++
		case byTag[a.tag] > 0:
			other++
		default:
			missing++
		}
		if missing+other+repeated <= 5 {
			res.failf("audit: acknowledged %s by %s on %s %q (request %s): %d entries of its own", a.typ, a.username, a.resourceType, a.resourceID, a.tag, counts[key{a.app, a.typ, id, a.resourceType, a.resourceID, a.tag}])
		}
	}
	noDetail := 0
	for id, m := range l.msgs {
		if counts[key{m.app, "data.created", ids[[2]string{m.app, m.username}], "message", id, m.tag}] != 1 {
			noDetail++
		}
	}
	res.notef("acknowledged requests: %d; successful audit entries of tagged requests: %d", len(l.acks), entries)
	if missing > 0 {
		res.failf("audit: %d acknowledged requests have no entry of their own", missing)
	}
	if other > 0 {
		res.failf("audit: %d acknowledged requests have entries, but none with their tenant, type, caller and resource", other)
	}
	if repeated > 0 {
		res.failf("audit: %d acknowledged requests have more than one entry of their own", repeated)
	}
	if noDetail > 0 {
		res.failf("audit: %d acknowledged messages lack exactly one data.created entry naming them from the request that posted them", noDetail)
	}
}

// verifyChains verifies every audit stream of the schema (every stream
// with a head, with entries or with a published checkpoint) from its
// first entry, with the audit package's verifier: checkpoint signatures
// checked with the server's public key, and the chain checked against
// every checkpoint the server published to its file, the latest of them
// trusted, so that a chain cut back or rewritten in the database fails
// even when its stored checkpoints went with it. With wantPublished, a
// stream of more than 4 × checkpointEvery entries (a process that
// wrote a quarter of them must have signed one) without a published
// checkpoint fails too: the check against the file would be empty.
func verifyChains(ctx context.Context, e *env, wantPublished bool, res *result) map[string]audit.Report {
	pub, err := os.ReadFile(e.publicKeyPath())
	if err != nil {
		res.failf("audit verify: public key: %v", err)
		return nil
	}
	h, err := keyset.ReadWithNoSecrets(keyset.NewJSONReader(bytes.NewReader(pub)))
	if err != nil {
		res.failf("audit verify: public key: %v", err)
		return nil
	}
	verifier, err := signature.NewVerifier(h)
	if err != nil {
		res.failf("audit verify: %v", err)
		return nil
	}
	published, err := audit.ReadCheckpointFile(e.checkpointsPath())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		res.failf("audit verify: checkpoint file: %v", err)
	}
	store, err := auditpg.New(e.pool, auditpg.Config{Schema: e.schema})
	if err != nil {
		res.failf("audit verify: %v", err)
		return nil
	}
	var streams []string
	rows, err := e.pool.Query(ctx, `SELECT stream FROM audit_heads UNION SELECT DISTINCT stream FROM audit_entries UNION SELECT unnest($1::text[]) ORDER BY 1`, publishedStreams(published))
	if err == nil {
		streams, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		res.failf("audit verify: streams: %v", err)
		return nil
	}
	reports := map[string]audit.Report{}
	for _, s := range streams {
		opts := audit.VerifyOptions{Stream: s, Verifier: verifier}
		for _, c := range published {
			if c.Stream != s {
				continue
			}
			opts.Checkpoints = append(opts.Checkpoints, c)
			if opts.Trusted == nil || c.Seq > opts.Trusted.Seq {
				opts.Trusted = &c
			}
		}
		rep, err := audit.Verify(ctx, store, opts)
		if err != nil {
			res.failf("audit chain %q: %v", s, err)
			continue
		}
		switch {
		case rep.From != 1 || !rep.Anchored:
			res.failf("audit chain %q: verified from %d (anchored %t), want from the genesis", s, rep.From, rep.Anchored)
		case uint64(rep.Entries) != rep.Head.Seq:
			res.failf("audit chain %q: %d entries checked, head at %d", s, rep.Entries, rep.Head.Seq)
		case wantPublished && rep.Entries > 4*checkpointEvery && len(opts.Checkpoints) == 0:
			res.failf("audit chain %q: %d entries and no published checkpoint to check them against", s, rep.Entries)
		}
		reports[s] = rep
		res.notef("audit chain %q verifies from seq 1: %d entries, %d signed checkpoints (%d published), vouched to seq %d", s, rep.Entries, rep.Checkpoints, len(opts.Checkpoints), rep.Vouched)
	}
	return reports
}

// publishedStreams lists the streams the checkpoints name.
func publishedStreams(cps []audit.Checkpoint) []string {
	var out []string
	for _, c := range cps {
		if !slices.Contains(out, c.Stream) {
			out = append(out, c.Stream)
		}
	}
	return out
}

// scanPlaintext searches the schema for the marker every message text
// starts and ends with: every column of every table through SQL (bytea as
// bytes, any other type as its text form: audit metadata, integrity tags,
// retention records, key material and all), and, where
// this process can read the database's files (a local server), the raw
// bytes of every relation of the schema (heap, TOAST and indexes, dead
// rows included) after a CHECKPOINT. It returns how many places it found
// the marker in.
func scanPlaintext(ctx context.Context, e *env, marker string, res *result) int {
	hits := 0
	rows, err := e.pool.Query(ctx, `
		SELECT c.table_name, c.column_name, c.data_type
		FROM information_schema.columns c
		JOIN information_schema.tables t USING (table_schema, table_name)
		WHERE c.table_schema = $1 AND t.table_type = 'BASE TABLE'`, e.schema)
	if err != nil {
		res.failf("plaintext scan: %v", err)
		return 0
	}
	type col struct{ table, column, typ string }
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (col, error) {
		var c col
		return c, r.Scan(&c.table, &c.column, &c.typ)
	})
	if err != nil {
		res.failf("plaintext scan: %v", err)
		return 0
	}
	for _, c := range cols {
		ident := pgx.Identifier{e.schema, c.table}.Sanitize()
		colID := pgx.Identifier{c.column}.Sanitize()
		q := fmt.Sprintf(`SELECT count(*) FROM %s WHERE position(convert_to($1, 'UTF8') IN convert_to(%s::text, 'UTF8')) > 0`, ident, colID)
		if c.typ == "bytea" {
			q = fmt.Sprintf(`SELECT count(*) FROM %s WHERE position(convert_to($1, 'UTF8') IN %s) > 0`, ident, colID)
		}
		var n int
		if err := e.pool.QueryRow(ctx, q, marker).Scan(&n); err != nil {
			res.failf("plaintext scan %s.%s: %v", c.table, c.column, err)
			continue
		}
		if n > 0 {
			hits++
			res.failf("message text stored in the clear: %d rows of %s.%s", n, c.table, c.column)
		}
	}

	files, bytesRead, why := scanRelationFiles(ctx, e, []byte(marker), func(rel string) {
		hits++
		res.failf("message text in the raw bytes of relation %s", rel)
	})
	if why != "" {
		res.notef("plaintext scan: %d columns searched through SQL; raw file scan skipped: %s", len(cols), why)
	} else {
		res.notef("plaintext scan: %d columns searched through SQL, %d relation files (%d KiB) searched raw", len(cols), files, bytesRead>>10)
	}
	return hits
}

// scanRelationFiles reads the files of every relation of the schema and
// calls found for each that holds needle. It returns why it could not
// when the files are out of reach.
func scanRelationFiles(ctx context.Context, e *env, needle []byte, found func(rel string)) (files int, read int64, why string) {
	if _, err := e.pool.Exec(ctx, "CHECKPOINT"); err != nil {
		return 0, 0, "CHECKPOINT refused (" + firstLine(err) + ")"
	}
	var dataDir string
	if err := e.pool.QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&dataDir); err != nil {
		return 0, 0, "data_directory not readable (" + firstLine(err) + ")"
	}
	rows, err := e.pool.Query(ctx, `
		SELECT c.relname, pg_relation_filepath(c.oid)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'i', 'm') AND pg_relation_filepath(c.oid) IS NOT NULL
		UNION ALL
		SELECT c.relname || ' (toast)', pg_relation_filepath(c.reltoastrelid)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.reltoastrelid <> 0`, e.schema)
	if err != nil {
		return 0, 0, firstLine(err)
	}
	type rel struct{ name, path string }
	rels, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rel, error) {
		var x rel
		return x, r.Scan(&x.name, &x.path)
	})
	if err != nil {
		return 0, 0, firstLine(err)
	}
	for _, r := range rels {
		base := filepath.Join(dataDir, r.path)
		matches, _ := filepath.Glob(base + ".*")
		for _, p := range append([]string{base}, matches...) {
			if strings.HasSuffix(p, "_fsm") || strings.HasSuffix(p, "_vm") {
				continue
			}
			b, err := os.ReadFile(p)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return files, read, "relation files not readable by this process (" + firstLine(err) + ")"
			}
			files++
			read += int64(len(b))
			if bytes.Contains(b, needle) {
				found(r.name)
			}
		}
	}
	if files == 0 {
		return 0, 0, "no relation files found under " + dataDir + " (a remote database?)"
	}
	return files, read, ""
}

// secret is a value that must never reach a server log, and what it is
// (the failure names what, never the value).
type secret struct{ what, value string }

// secretsOf lists the ledger's secrets: the marker every message text
// carries, and each account's password and last access token.
func secretsOf(l *ledger) []secret {
	out := []secret{{"message text", l.marker}}
	for _, u := range l.accounts {
		out = append(out, secret{"a password", u.password}, secret{"an access token", u.token()})
	}
	return out
}

// checkLogs checks the servers' logs for panics and for secrets.
func checkLogs(e *env, secrets []secret, res *result) {
	paths, _ := filepath.Glob(filepath.Join(e.dir, "server-*.log"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			res.failf("log %s: %v", p, err)
			continue
		}
		found := map[string]bool{}
		for _, s := range secrets {
			if s.value != "" && !found[s.what] && bytes.Contains(b, []byte(s.value)) {
				found[s.what] = true
				res.failf("%s in the server log %s", s.what, filepath.Base(p))
			}
		}
		if bytes.Contains(b, []byte("panic")) || bytes.Contains(b, []byte("goroutine ")) {
			res.failf("a panic in the server log %s", filepath.Base(p))
		}
	}
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
