// Command compliancectl is the operator's tool for the compliance module:
// it applies the schema, verifies the audit chain and the integrity tags,
// exports the audit log for offline verification, runs and forecasts
// retention sweeps, rotates, rewraps and shreds field keys, and writes the
// reports an auditor or a breach assessment asks for.
//
// Every command takes --database-url (or DATABASE_URL), --schema,
// --config (or COMPLIANCECTL_CONFIG) and --json, and explains itself with
// --help, an example included. Exit status 0 means success, 1 means the
// command found tampering or findings, and 2 means a usage, configuration
// or connection error; the message says what to fix.
//
// Run "compliancectl help" for the list of commands.
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
