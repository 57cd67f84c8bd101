// Command compliancectl is the operator's tool for the compliance module:
// it applies the schema, verifies the audit chain and the integrity tags,
// exports the audit log for offline verification, runs and forecasts
// retention sweeps, rotates, rewraps and shreds field keys, and writes the
// reports an auditor or a breach assessment asks for. It is what a
// compliance officer or an on-call engineer runs before an audit, after
// restoring a backup (a restored copy whose audit chain and integrity tags
// verify is an exact copy, §164.308(a)(7)(ii)(A)) and while assessing a
// breach (§164.404).
//
// # Commands
//
//	migrate               apply every package's migrations
//	audit verify          verify the hash chain and its signed checkpoints
//	audit export          write a period of the audit log to JSON Lines
//	audit verify-export   verify such a file offline, with no database
//	integrity verify      list every altered, unsealed or missing row by id
//	retention sweep       delete what is due (or --dry-run: count it)
//	retention forecast    what will be due within --days N
//	keys rotate           add a new primary field key to a scope
//	keys rewrap           move a column's rows to the primary key
//	keys shred            destroy a scope's keys (asks unless --yes)
//	report evidence       the evidence report, Markdown or HTML
//	report breach-scope   what one actor touched in a period
//	report disclosures    who touched one subject's records in a period
//
// "compliancectl help" lists them; "compliancectl CMD --help" shows a
// command's flags and an example.
//
// # Conventions
//
// Every command takes --database-url (or DATABASE_URL), --schema (else the
// URL's search_path), --config (or COMPLIANCECTL_CONFIG), --json (one JSON
// document on standard output, for automation), --no-progress and
// --timeout. On a terminal, verify, export, sweep and rewrap draw a
// progress bar with the rate and the time left on standard error; off a
// terminal, or with --json, they draw nothing.
//
// Exit status 0 means success with nothing wrong found, 1 means the command
// found tampering or findings (and printed them), and 2 means a usage,
// configuration or connection error; the message says what to fix.
//
// # Configuration
//
// What the database cannot say is declared in a JSON file (see Config):
// the tenants, where the keys are (a KMS URI for the KEK, aws-kms:// or
// hcvault:// with VAULT_ADDR and VAULT_TOKEN; the audit public keyset; the
// integrity MAC keyset encrypted under the KEK), the sealed tables, the
// sweep targets and the encrypted columns. Unknown fields are an error.
//
// The tool writes to the audit log what it does on the operator's behalf:
// each sweep batch (in the batch's transaction), each rotation and each
// shred, with the actor "compliancectl".
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
