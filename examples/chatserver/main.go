// Command chatserver is the example chat server: every package of the
// module wired together behind a small JSON API.
//
//	go run ./examples/chatserver
//
// starts on :8080 with in-memory stores and development keys made at
// start, and prints how to try it. With -database-url (or DATABASE_URL)
// it migrates and uses Postgres for every store; the keys then come from a
// KMS (-kek-uri) or a development KEK file (-kek-file) and a keys file
// wrapped under that KEK (-keys-file), never from the database.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tink-crypto/tink-go/v2/keyset"

	"github.com/chatsdk/compliance/examples/chatserver/internal/chat"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "chatserver:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	addr            string
	databaseURL     string
	databaseSchema  string
	tlsCert, tlsKey string
	kekURI, kekFile string
	keysFile        string
	accessTTL       time.Duration
	refreshTTL      time.Duration
	idleTimeout     time.Duration
	lockoutFailures int
	lockoutWindow   time.Duration
	lockoutDuration time.Duration
	sweepInterval   time.Duration
	retentionGrace  time.Duration
	verifyInterval  time.Duration
	checkpointFile  string
	checkpointEvery int
	auditPublicKey  string
	trustedProxies  []netip.Prefix
	// unprotected turns the audit middleware and message encryption off,
	// for benchmarks; unprotectedAck must then be unprotectedAckPhrase.
	unprotected    bool
	unprotectedAck string
}

// maxHeaderBytes bounds a request's headers; net/http answers 431 past it.
const maxHeaderBytes = 64 << 10

// unprotectedAckPhrase is what -benchmark-unprotected-ack must say before
// the server runs without its safeguards.
const unprotectedAckPhrase = "no-audit-no-encryption"

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("chatserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", ":8080", "address to listen on")
	fs.StringVar(&o.databaseURL, "database-url", os.Getenv("DATABASE_URL"), "Postgres URL; empty keeps everything in memory (default $DATABASE_URL)")
	fs.StringVar(&o.databaseSchema, "database-schema", "", "schema of every table; empty uses the connection's search_path")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate file (PEM); with -tls-key serves HTTPS with HSTS")
	fs.StringVar(&o.tlsKey, "tls-key", "", "TLS private key file (PEM)")
	fs.StringVar(&o.kekURI, "kek-uri", "", "KMS key URI of the key-encryption key (Postgres mode): aws-kms://…, or hcvault://… with $VAULT_ADDR and $VAULT_TOKEN")
	fs.StringVar(&o.kekFile, "kek-file", "", "cleartext Tink keyset file of the key-encryption key, for development (Postgres mode); created if missing")
	fs.StringVar(&o.keysFile, "keys-file", "chatserver-keys.json", "the server's keys wrapped under the KEK (Postgres mode); created if missing")
	fs.DurationVar(&o.accessTTL, "access-ttl", 15*time.Minute, "access-token lifetime")
	fs.DurationVar(&o.refreshTTL, "refresh-ttl", 24*time.Hour, "absolute lifetime of a session and its refresh tokens")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", 15*time.Minute, "automatic logoff after this long without activity")
	fs.IntVar(&o.lockoutFailures, "lockout-failures", 5, "failed logins within -lockout-window that lock an account")
	fs.DurationVar(&o.lockoutWindow, "lockout-window", 15*time.Minute, "window in which failed logins count")
	fs.DurationVar(&o.lockoutDuration, "lockout-duration", 15*time.Minute, "length of a lock")
	fs.DurationVar(&o.sweepInterval, "sweep-interval", time.Hour, "time between retention sweeps")
	fs.DurationVar(&o.retentionGrace, "retention-grace", 24*time.Hour, "wait before a shortened retention period applies")
	fs.DurationVar(&o.verifyInterval, "verify-interval", 24*time.Hour, "time between integrity verifications of every stored message")
	fs.StringVar(&o.checkpointFile, "audit-checkpoints", "", "file that receives every signed audit checkpoint (keep it where the database's administrators cannot write)")
	fs.IntVar(&o.checkpointEvery, "audit-checkpoint-every", 0, "sign an audit checkpoint once a stream has grown by this many entries; 0 means the audit package's default (1000)")
	fs.StringVar(&o.auditPublicKey, "audit-public-key", "", "file to write the audit checkpoint signer's public keyset to (Tink JSON, no secret), for compliancectl audit verify --public-key")
	fs.BoolVar(&o.unprotected, "benchmark-unprotected", false, "BENCHMARK ONLY: no audit middleware and message text stored in the clear; needs -benchmark-unprotected-ack "+unprotectedAckPhrase)
	fs.StringVar(&o.unprotectedAck, "benchmark-unprotected-ack", "", "acknowledges -benchmark-unprotected; must be "+unprotectedAckPhrase)
	fs.Func("trusted-proxies", "comma-separated CIDRs of proxies whose X-Forwarded-For names the client (default none)", func(v string) error {
		for _, p := range strings.Split(v, ",") {
			pfx, err := netip.ParsePrefix(strings.TrimSpace(p))
			if err != nil {
				return err
			}
			o.trustedProxies = append(o.trustedProxies, pfx)
		}
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return o, errors.New("-tls-cert and -tls-key go together")
	}
	if o.checkpointEvery < 0 {
		return o, errors.New("-audit-checkpoint-every must not be negative")
	}
	if o.sweepInterval <= 0 || o.verifyInterval <= 0 {
		return o, errors.New("-sweep-interval and -verify-interval must be positive")
	}
	if o.unprotected && o.unprotectedAck != unprotectedAckPhrase {
		return o, errors.New("-benchmark-unprotected turns off the audit log of requests and the encryption of messages; it is for benchmarks only and needs -benchmark-unprotected-ack " + unprotectedAckPhrase)
	}
	if !o.unprotected && o.unprotectedAck != "" {
		return o, errors.New("-benchmark-unprotected-ack without -benchmark-unprotected")
	}
	return o, nil
}

// run starts the server and blocks until ctx ends or SIGINT or SIGTERM
// arrives, then shuts down, flushing the audit queue. ready, when not nil,
// is told the address once the server listens.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(addr string)) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stderr, nil))
	if o.unprotected {
		logger.Warn("BENCHMARK-UNPROTECTED: requests are NOT audited and message text is stored UNENCRYPTED; this mode exists only to measure what the safeguards cost; never point it at real data")
	}

	// Stores and keys.
	var (
		backend *chat.Backend
		keys    chat.Keys
	)
	if o.databaseURL == "" {
		backend = chat.NewMemoryBackend(nil)
		if keys, err = chat.GenerateDevelopmentKeys(); err != nil {
			return err
		}
		logger.Warn("DEVELOPMENT KEYS: the encryption, integrity, audit-signing and token keys were generated at start and live only in memory; do not use this mode for real data")
		logger.Info("stores are in memory; everything is lost at exit")
	} else {
		pool, err := pgxpool.New(ctx, o.databaseURL)
		if err != nil {
			return fmt.Errorf("database: %w", err)
		}
		defer pool.Close()
		if keys, err = loadKeys(o, logger); err != nil {
			return err
		}
		if backend, err = chat.NewPostgresBackend(ctx, pool, o.databaseSchema); err != nil {
			return err
		}
		logger.Info("stores are in Postgres; migrations applied", "schema", o.databaseSchema)
	}
	defer backend.Close()

	srv, err := chat.New(chat.Config{
		Backend:         backend,
		Keys:            keys,
		Logger:          logger,
		AccessTTL:       o.accessTTL,
		RefreshTTL:      o.refreshTTL,
		IdleTimeout:     o.idleTimeout,
		LockoutFailures: o.lockoutFailures,
		LockoutWindow:   o.lockoutWindow,
		LockoutDuration: o.lockoutDuration,
		RetentionGrace:  o.retentionGrace,
		TLS:             o.tlsCert != "",
		CheckpointFile:  o.checkpointFile,
		CheckpointEvery: o.checkpointEvery,
		TrustedProxies:  o.trustedProxies,

		InsecureUnprotected: o.unprotected,
	})
	if err != nil {
		return err
	}
	if o.auditPublicKey != "" {
		if err := writeAuditPublicKey(o.auditPublicKey, keys); err != nil {
			return err
		}
	}

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	scheme := "http"
	if o.tlsCert != "" {
		scheme = "https"
		hs.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	} else {
		logger.Warn("no -tls-cert/-tls-key: traffic, tokens and messages travel in the clear; serve TLS (or terminate it in front) for anything real")
	}

	sweepCtx, stopSweeps := context.WithCancel(ctx)
	defer stopSweeps()
	go srv.RunSweeper(sweepCtx, o.sweepInterval)
	go srv.RunVerifier(sweepCtx, o.verifyInterval)

	errc := make(chan error, 1)
	go func() {
		if o.tlsCert != "" {
			errc <- hs.ServeTLS(ln, o.tlsCert, o.tlsKey)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	addr := ln.Addr().String()
	logger.Info("listening", "addr", addr, "scheme", scheme)
	printTry(stdout, scheme, addr)
	if ready != nil {
		ready(addr)
	}

	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-ctx.Done():
	}

	// Shut down: stop taking requests, let those in flight finish, stop
	// the sweeper, then flush the audit queue.
	logger.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err = hs.Shutdown(shutCtx)
	stopSweeps()
	if cerr := srv.Close(shutCtx); cerr != nil {
		logger.Error("audit flush failed", "err", cerr)
		err = errors.Join(err, cerr)
	} else {
		logger.Info("audit log flushed")
	}
	return err
}

// writeAuditPublicKey writes the public half of the audit signing keyset to
// path as Tink JSON, for whoever verifies the chain outside the server.
func writeAuditPublicKey(path string, keys chat.Keys) error {
	pub, err := keys.AuditSigner.Public()
	if err != nil {
		return fmt.Errorf("audit public key: %w", err)
	}
	var buf bytes.Buffer
	if err := pub.WriteWithNoSecrets(keyset.NewJSONWriter(&buf)); err != nil {
		return fmt.Errorf("audit public key: %w", err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("audit public key: %w", err)
	}
	return nil
}

func printTry(w io.Writer, scheme, addr string) {
	host, port, _ := net.SplitHostPort(addr)
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "localhost"
	}
	base := fmt.Sprintf("%s://%s", scheme, net.JoinHostPort(host, port))
	fmt.Fprintf(w, `chatserver is listening on %[1]s. Try it:

  curl -s %[1]s/healthz
  curl -s -X POST %[1]s/v1/apps/demo/users -d '{"username":"alice","password":"a long passphrase of words"}'
  TOKEN=$(curl -s -X POST %[1]s/v1/apps/demo/login -d '{"username":"alice","password":"a long passphrase of words"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  CH=$(curl -s -X POST %[1]s/v1/channels -H "Authorization: Bearer $TOKEN" -d '{"name":"care team"}' | sed 's/.*"id":"\([^"]*\)".*/\1/')
  curl -s -X POST %[1]s/v1/channels/$CH/messages -H "Authorization: Bearer $TOKEN" -d '{"text":"hello"}'
  curl -s %[1]s/v1/channels/$CH/messages -H "Authorization: Bearer $TOKEN"
  curl -s %[1]s/v1/admin/audit -H "Authorization: Bearer $TOKEN"
  curl -s %[1]s/v1/admin/audit/verify -H "Authorization: Bearer $TOKEN"

Stop it with Ctrl-C; the audit log is flushed on the way out.
`, base)
}
