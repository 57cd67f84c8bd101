package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/fieldcrypt"
	"github.com/chatsdk/compliance/fieldcrypt/fieldcryptpg"
)

// typeKeyShredded is the audit type of a crypto-shred by this tool.
const typeKeyShredded = "security.key_shredded"

// keyring opens the field keyring on the database with the KEK.
func (e *env) keyring() (*fieldcrypt.Keyring, *fieldcryptpg.Store, error) {
	kek, err := e.kek()
	if err != nil {
		return nil, nil, err
	}
	pool, err := e.connect()
	if err != nil {
		return nil, nil, err
	}
	store := fieldcryptpg.New(pool, fieldcryptpg.Config{Schema: e.schema})
	kr, err := fieldcrypt.New(fieldcrypt.Config{Store: store, KEK: kek})
	if err != nil {
		return nil, nil, err
	}
	return kr, store, nil
}

// recordOperation appends an audit entry for an operator action on a
// tenant's stream and waits until it is durable.
func (e *env) recordOperation(tenant, typ, action, resourceType, resourceID string, md map[string]string) error {
	store, err := e.auditStore()
	if err != nil {
		return err
	}
	l, err := audit.New(audit.Config{Store: store})
	if err != nil {
		return err
	}
	category := audit.CategorySecurity
	if strings.HasPrefix(typ, "system.") {
		category = audit.CategorySystem
	}
	_, err = l.Record(e.ctx, audit.Event{
		Tenant: tenant, Actor: operator, Type: typ, Category: category, Action: action,
		ResourceType: resourceType, ResourceID: resourceID, Success: true, Metadata: md,
	})
	if cerr := l.Close(context.Background()); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("recording the operation in the audit log: %w", err)
	}
	return nil
}

type keyJSON struct {
	ID      uint32 `json:"id"`
	Status  string `json:"status"`
	Primary bool   `json:"primary"`
}

func keysJSON(ks []fieldcrypt.KeyInfo) []keyJSON {
	out := make([]keyJSON, 0, len(ks))
	for _, k := range ks {
		out = append(out, keyJSON{ID: k.ID, Status: string(k.Status), Primary: k.Primary})
	}
	return out
}

func keysRotateCommand() *command {
	return &command{
		name:     "keys rotate",
		summary:  "add a new primary field key to a scope's keyset (old keys keep decrypting; run keys rewrap next) and audit it",
		synopsis: "--scope TENANT[/NAME]",
		example: `compliancectl keys rotate --scope app-1 --config compliancectl.json
compliancectl keys rewrap --scope app-1 --table message --column body --config compliancectl.json`,
		bind: func(fs *flag.FlagSet, e *env) func([]string) error {
			scopeFlag := fs.String("scope", "", "the keyset's scope: a tenant (app-1) or a narrower scope (app-1/patient:42)")
			return func(args []string) error {
				if len(args) > 0 {
					return usagef("keys rotate takes no arguments, got %q", args[0])
				}
				scope, err := parseScope(*scopeFlag)
				if err != nil {
					return err
				}
				kr, _, err := e.keyring()
				if err != nil {
					return err
				}
				id, err := kr.Rotate(e.ctx, scope)
				if err != nil {
					return fmt.Errorf("rotating %s: %w", scope, err)
				}
				if err := e.recordOperation(scope.Tenant, audit.TypeKeyRotated, audit.ActionUpdate, "fieldcrypt.keyset", scope.String(),
					map[string]string{"new_key_id": strconv.FormatUint(uint64(id), 10)}); err != nil {
					return err
				}
				keys, err := kr.Keys(e.ctx, scope)
				if err != nil {
					return fmt.Errorf("listing the keys of %s: %w", scope, err)
				}
				return e.emit(map[string]any{"scope": scope.String(), "primary": id, "keys": keysJSON(keys)}, func(w io.Writer) {
					fmt.Fprintf(w, "%s: key %d is now primary; %d keys in the keyset; rewrap the scope's columns, then retire the old keys\n", scope, id, len(keys))
				})
			}
		},
	}
}

type rewrapJSON struct {
	Scope         string    `json:"scope"`
	Table         string    `json:"table"`
	Column        string    `json:"column"`
	KeyID         uint32    `json:"key_id"`
	Scanned       int64     `json:"scanned"`
	Rewrapped     int64     `json:"rewrapped"`
	Conflicts     int64     `json:"conflicts"`
	Undecryptable int64     `json:"undecryptable"`
	Passes        int       `json:"passes"`
	Done          bool      `json:"done"`
	Settled       bool      `json:"settled"`
	After         string    `json:"resume_after,omitempty"`
	Skipped       string    `json:"skipped,omitempty"`
	Started       time.Time `json:"started"`
	Finished      time.Time `json:"finished"`
}

func keysRewrapCommand() *command {
	return &command{
		name:     "keys rewrap",
		summary:  "re-encrypt an encrypted column's rows under each scope's primary key, in batches, resumable; exit 1 if rows did not decrypt or remain",
		synopsis: "--table T --column C [--scope TENANT[/NAME]]",
		example: `compliancectl keys rewrap --table message --column body --config compliancectl.json
compliancectl keys rewrap --table message --column body --scope app-1/patient:42`,
		bind: func(fs *flag.FlagSet, e *env) func([]string) error {
			scopeFlag := fs.String("scope", "", "the keyset's scope: a tenant (app-1) or a narrower scope (app-1/patient:42); default each configured tenant")
			table := fs.String("table", "", "table of the encrypted column, as declared in fieldcrypt.columns")
			column := fs.String("column", "", "encrypted column, as declared in fieldcrypt.columns")
			batch := fs.Int("batch", 500, "rows read at a time")
			return func(args []string) error {
				if len(args) > 0 {
					return usagef("keys rewrap takes no arguments, got %q", args[0])
				}
				if *table == "" || *column == "" {
					return usagef("--table and --column are required")
				}
				var scopes []fieldcrypt.Scope
				if *scopeFlag != "" {
					scope, err := parseScope(*scopeFlag)
					if err != nil {
						return err
					}
					scopes = append(scopes, scope)
				} else {
					tenants, err := e.tenants(nil)
					if err != nil {
						return usagef("no scope given: pass --scope, or list \"tenants\" in the configuration to rewrap each tenant's scope")
					}
					for _, t := range tenants {
						scopes = append(scopes, fieldcrypt.Scope{Tenant: t})
					}
				}
				cfg, err := e.config()
				if err != nil {
					return err
				}
				cc, err := cfg.column(*table, *column)
				if err != nil {
					return err
				}
				kr, _, err := e.keyring()
				if err != nil {
					return err
				}
				schema := cc.Schema
				if schema == "" {
					schema = e.schema
				}
				col, err := fieldcryptpg.NewColumn(e.pool, fieldcryptpg.ColumnConfig{Schema: schema, Table: cc.Table, ID: cc.ID, IDType: cc.IDType, Tenant: cc.Tenant, Scope: cc.Scope, Ciphertext: cc.Ciphertext})
				if err != nil {
					return usagef("fieldcrypt column %s.%s: %v", cc.Table, cc.Column, err)
				}

				var results []rewrapJSON
				ok := true
				for _, scope := range scopes {
					res, err := rewrapScope(e, kr, col, cc, scope, *batch)
					if err != nil {
						return err
					}
					ok = ok && res.Done && res.Undecryptable == 0
					results = append(results, res)
				}
				var out any = results
				if *scopeFlag != "" {
					out = results[0]
				}
				if err := e.emit(out, func(w io.Writer) {
					for _, res := range results {
						if res.Skipped != "" {
							fmt.Fprintf(w, "%s %s.%s: skipped: %s\n", res.Scope, res.Table, res.Column, res.Skipped)
							continue
						}
						fmt.Fprintf(w, "%s %s.%s: %d rows rewrapped to key %d in %d passes (%d conflicts, %d undecryptable)", res.Scope, res.Table, res.Column, res.Rewrapped, res.KeyID, res.Passes, res.Conflicts, res.Undecryptable)
						switch {
						case !res.Done:
							fmt.Fprint(w, "; NOT DONE: rows remain under older keys, run it again")
						case !res.Settled:
							fmt.Fprint(w, "; done, but too soon after the rotation to retire old keys: run it again after the keyring's cache TTL")
						default:
							fmt.Fprint(w, "; done and settled")
						}
						fmt.Fprintln(w)
					}
				}); err != nil {
					return err
				}
				if !ok {
					return errFindings
				}
				return nil
			}
		},
	}
}

// rewrapScope runs one scope's rewrap with a progress bar.
func rewrapScope(e *env, kr *fieldcrypt.Keyring, col *fieldcryptpg.Column, cc ColumnConfig, scope fieldcrypt.Scope, batch int) (rewrapJSON, error) {
	p := e.progress(-1, "rewrap "+scope.String()+" "+cc.Table+"."+cc.Column, "rows")
	var done int64
	rw := &fieldcrypt.Rewrap{Keyring: kr, Rows: col, Scope: scope, Table: cc.Table, Column: cc.Column, BatchSize: batch,
		OnProgress: func(r fieldcrypt.RewrapReport) {
			p.Add(int(r.Scanned - done))
			done = r.Scanned
		}}
	rep, err := rw.Run(e.ctx)
	p.Finish()
	res := rewrapJSON{Scope: scope.String(), Table: cc.Table, Column: cc.Column, KeyID: rep.KeyID, Scanned: rep.Scanned, Rewrapped: rep.Rewrapped,
		Conflicts: rep.Conflicts, Undecryptable: rep.Undecryptable, Passes: rep.Passes, Done: rep.Done, Settled: rep.Settled, After: rep.After,
		Started: rep.Started.UTC(), Finished: rep.Finished.UTC()}
	switch {
	case errors.Is(err, fieldcrypt.ErrNotFound), errors.Is(err, fieldcrypt.ErrShredded):
		// No keyset, or none any more: nothing is encrypted under it that
		// could be moved.
		res.Done, res.Skipped = true, "no keyset"
		if errors.Is(err, fieldcrypt.ErrShredded) {
			res.Skipped = "shredded"
		}
		return res, nil
	case err != nil:
		return res, fmt.Errorf("rewrap of %s stopped after row %q (rerun to resume; rows done stay done): %w", scope, rep.After, err)
	}
	return res, nil
}

func keysShredCommand() *command {
	return &command{
		name:     "keys shred",
		summary:  "destroy every keyset of a scope so its ciphertexts can never be decrypted again (asks for confirmation unless --yes) and audit it",
		synopsis: "--scope TENANT[/NAME] [--yes]",
		example: `compliancectl keys shred --scope app-1/patient:42 --config compliancectl.json
# type the scope (app-1/patient:42) to confirm: app-1/patient:42`,
		bind: func(fs *flag.FlagSet, e *env) func([]string) error {
			scopeFlag := fs.String("scope", "", "the scope to shred: a tenant (app-1) or a narrower scope (app-1/patient:42)")
			yes := fs.Bool("yes", false, "do not ask for confirmation")
			return func(args []string) error {
				if len(args) > 0 {
					return usagef("keys shred takes no arguments, got %q", args[0])
				}
				scope, err := parseScope(*scopeFlag)
				if err != nil {
					return err
				}
				if !*yes {
					fmt.Fprintf(e.stderr, "This destroys the keys of %s for good: its encrypted data becomes unreadable, in the database and in its backups once their copies of the keyset expire.\nType the scope (%s) to confirm: ", scope, scope)
					line, _ := bufio.NewReader(e.stdin).ReadString('\n')
					if strings.TrimSpace(line) != scope.String() {
						return usagef("not confirmed, nothing shredded: type the scope exactly, or pass --yes")
					}
				}
				kr, _, err := e.keyring()
				if err != nil {
					return err
				}
				if err := kr.Shred(e.ctx, scope); err != nil {
					return fmt.Errorf("shredding %s: %w", scope, err)
				}
				if err := e.recordOperation(scope.Tenant, typeKeyShredded, audit.ActionDelete, "fieldcrypt.keyset", scope.String(), nil); err != nil {
					return err
				}
				return e.emit(map[string]any{"scope": scope.String(), "shredded": true}, func(w io.Writer) {
					fmt.Fprintf(w, "%s: shredded; other instances stop decrypting it when their cached keyset expires\n", scope)
				})
			}
		},
	}
}
