// Package chat is the example chat server: HTTP handlers that wire every
// package of the module together over a Backend (all in memory, or all on
// Postgres).
package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/mac"
	"github.com/tink-crypto/tink-go/v2/signature"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/fieldcrypt"
	"github.com/chatsdk/compliance/integrity"
	"github.com/chatsdk/compliance/lockout"
	"github.com/chatsdk/compliance/retention"
	"github.com/chatsdk/compliance/session"
	"github.com/chatsdk/compliance/session/mfa"
	"github.com/chatsdk/compliance/session/password"
)

// Keys are the server's secrets. None of them is ever stored in the
// database: they come from files or a KMS (see the main package), or are
// generated at start for development.
type Keys struct {
	// KEK wraps every fieldcrypt keyset.
	KEK tink.AEAD
	// MAC is the integrity package's MAC keyset.
	MAC *keyset.Handle
	// AuditSigner is the private Ed25519 keyset that signs audit
	// checkpoints.
	AuditSigner *keyset.Handle
	// Session signs access tokens.
	Session session.Key
}

// GenerateDevelopmentKeys returns fresh keys held only in memory: every
// restart makes the data of the previous run unreadable. For development.
func GenerateDevelopmentKeys() (Keys, error) {
	kh, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return Keys{}, err
	}
	kek, err := aead.New(kh)
	if err != nil {
		return Keys{}, err
	}
	macH, err := keyset.NewHandle(mac.HMACSHA256Tag256KeyTemplate())
	if err != nil {
		return Keys{}, err
	}
	sigH, err := keyset.NewHandle(signature.ED25519KeyTemplate())
	if err != nil {
		return Keys{}, err
	}
	sk, err := session.GenerateEd25519Key("dev-1")
	if err != nil {
		return Keys{}, err
	}
	return Keys{KEK: kek, MAC: macH, AuditSigner: sigH, Session: sk}, nil
}

// Config configures a Server. Zero durations take the defaults in
// parentheses.
type Config struct {
	// Backend holds every store. Required.
	Backend *Backend
	// Keys are the server's secrets. Required.
	Keys Keys
	// Logger receives the server's own logs, which never hold message
	// text, tokens, passwords or codes. Defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock of every package. Defaults to time.Now.
	Now func() time.Time

	AccessTTL   time.Duration // access-token lifetime (15m)
	RefreshTTL  time.Duration // absolute session and refresh-family lifetime (24h)
	IdleTimeout time.Duration // automatic logoff (15m)

	LockoutFailures int           // failed logins before a lock (5)
	LockoutWindow   time.Duration // window the failures count in (15m)
	LockoutDuration time.Duration // length of a lock (15m)

	RetentionGrace time.Duration // wait before a shortened period applies (24h)

	// PasswordPolicy checks new passwords. Defaults to password.NIST().
	PasswordPolicy *password.Policy
	// HashParams are the argon2id parameters. Defaults to
	// password.DefaultParams().
	HashParams *password.Params
	// MFAPolicy applies to apps without a policy of their own. Defaults
	// to mfa.DefaultPolicy(): required, after seven days of grace.
	MFAPolicy *mfa.Policy
	// TLS reports that the server is served over TLS, which turns on HSTS.
	TLS bool
	// TrustedProxies are the proxies whose X-Forwarded-For names the
	// client, for the audit log and the lockout's address limit. Nil
	// trusts none: the peer address is the client.
	TrustedProxies []netip.Prefix
	// CheckpointFile, when set, receives every signed audit checkpoint
	// (audit.FilePublisher), and the audit verify route checks the chain
	// against the checkpoints in it as well as those in the store. Point
	// it at storage the database's administrators cannot write.
	CheckpointFile string
	// CheckpointEvery makes a signed checkpoint once a stream has grown
	// by this many entries (audit.Config.CheckpointEvery). Zero means
	// audit.DefaultCheckpointEvery.
	CheckpointEvery int
	// InsecureUnprotected, for benchmarks only, turns the safeguards off
	// that a benchmark compares against: the audit middleware (requests
	// get no audit entry) and the encryption of message text (stored and
	// read in the clear). Integrity tags, lockout and sessions stay on.
	// It exists to measure what the safeguards cost; never use it on real
	// data. False by default.
	InsecureUnprotected bool
}

// Server is the chat server. Build it with New, serve Handler, run Sweeps
// (or RunSweeper) and Close it at the end.
type Server struct {
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	chat     Store
	audit    *audit.Log
	verifier tink.Verifier
	keyring  *fieldcrypt.Keyring
	sealer   *integrity.Sealer
	policies *retention.Policies
	sweeper  *retention.Sweeper
	sessions *session.Manager
	mfa      *mfa.Authenticator
	guard    *lockout.Guard
	hasher   *password.Hasher
	pwPolicy password.Policy
	auditMW  func(http.Handler) http.Handler
	handler  http.Handler

	closeOnce sync.Once
}

// New wires the packages together on cfg.Backend.
func New(cfg Config) (*Server, error) {
	if cfg.Backend == nil {
		return nil, errors.New("chat: Config.Backend is required")
	}
	if cfg.Keys.KEK == nil || cfg.Keys.MAC == nil || cfg.Keys.AuditSigner == nil {
		return nil, errors.New("chat: Config.Keys is incomplete")
	}
	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Now, chat: cfg.Backend.Chat}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	b := cfg.Backend

	// Audit log with signed checkpoints.
	signer, err := signature.NewSigner(cfg.Keys.AuditSigner)
	if err != nil {
		return nil, fmt.Errorf("chat: audit signer: %w", err)
	}
	pub, err := cfg.Keys.AuditSigner.Public()
	if err != nil {
		return nil, fmt.Errorf("chat: audit public key: %w", err)
	}
	if s.verifier, err = signature.NewVerifier(pub); err != nil {
		return nil, fmt.Errorf("chat: audit verifier: %w", err)
	}
	var pubr audit.Publisher
	if cfg.CheckpointFile != "" {
		pubr = &audit.FilePublisher{Path: cfg.CheckpointFile}
	}
	s.audit, err = audit.New(audit.Config{
		Store:           b.Audit,
		Now:             s.now,
		Signer:          signer,
		Publisher:       pubr,
		CheckpointEvery: cfg.CheckpointEvery,
		OnError: func(stream string, err error) {
			s.log.Error("audit checkpoint failed", "stream", stream, "err", err)
		},
	})
	if err != nil {
		return nil, err
	}

	// Field encryption and integrity tags for message text.
	s.keyring, err = fieldcrypt.New(fieldcrypt.Config{Store: b.Keysets, KEK: cfg.Keys.KEK, Now: s.now})
	if err != nil {
		return nil, err
	}
	keys, err := integrity.NewKeys(cfg.Keys.MAC)
	if err != nil {
		return nil, err
	}
	if s.sealer, err = integrity.New(integrity.Config{Keys: keys, Store: b.Integrity}); err != nil {
		return nil, err
	}

	// Passwords, lockout, MFA and sessions.
	s.pwPolicy = password.NIST()
	if cfg.PasswordPolicy != nil {
		s.pwPolicy = *cfg.PasswordPolicy
	}
	params := password.DefaultParams()
	if cfg.HashParams != nil {
		params = *cfg.HashParams
	}
	if s.hasher, err = password.NewHasher(params); err != nil {
		return nil, err
	}
	lp := lockout.Policy{MaxFailures: cfg.LockoutFailures, Window: cfg.LockoutWindow}
	if cfg.LockoutDuration > 0 {
		lp.LockDurations = []time.Duration{cfg.LockoutDuration}
	}
	s.guard, err = lockout.New(lockout.Config{
		Store:  b.Lockout,
		Policy: lp,
		OnLock: s.onLock,
		OnUnlock: func(ctx context.Context, e lockout.UnlockEvent) error {
			// The unlock route records its own admin event; nothing more.
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	mp := mfa.DefaultPolicy()
	if cfg.MFAPolicy != nil {
		mp = *cfg.MFAPolicy
	}
	s.mfa, err = mfa.New(mfa.Config{
		Store:         b.MFA,
		Policies:      b.MFA,
		DefaultPolicy: &mp,
		Sealer:        mfaSealer{s.keyring},
		Issuer:        "Compliance Chat",
		Now:           s.now,
		OnEvent:       s.onMFAEvent,
	})
	if err != nil {
		return nil, err
	}
	sc := session.Config{
		Store:       b.Sessions,
		Issuer:      "chatserver",
		Audience:    "chatserver",
		AccessTTL:   cfg.AccessTTL,
		IdleTimeout: cfg.IdleTimeout,
		Lifetime:    cfg.RefreshTTL,
		Now:         s.now,
		Hooks: session.Hooks{
			RefreshReused:   s.onRefreshReused,
			SessionRevoked:  s.onSessionRevoked,
			EmergencyIssued: s.onEmergencyIssued,
			EmergencyUsed:   s.onEmergencyUsed,
		},
	}
	if idle := cfg.IdleTimeout; idle > 0 && idle <= session.DefaultActivityInterval {
		sc.ActivityInterval = idle / 4
	}
	if sc.Keys, err = session.NewKeyRing(cfg.Keys.Session); err != nil {
		return nil, err
	}
	if s.sessions, err = session.New(sc); err != nil {
		return nil, err
	}

	// Retention policies, holds and the sweeper of the messages table.
	s.policies, err = retention.NewPolicies(b.Retention, retention.PoliciesConfig{Grace: cfg.RetentionGrace, Now: s.now})
	if err != nil {
		return nil, err
	}
	target := b.Target
	target.Deleter = func(ctx context.Context, d retention.Deleted) error {
		return b.Forget(ctx, s.sealer, d)
	}
	s.sweeper, err = retention.NewSweeper(s.policies, retention.SweeperConfig{
		Targets: []retention.Target{target},
		Tenants: s.chat.Apps,
		OnBatch: s.onSweepBatch,
		Now:     s.now,
		Logger:  s.log,
	})
	if err != nil {
		return nil, err
	}

	if cfg.InsecureUnprotected {
		s.auditMW = func(h http.Handler) http.Handler { return h }
		s.log.Warn("INSECURE UNPROTECTED MODE: no audit middleware and message text stored in the clear; for benchmarks only")
	} else if s.auditMW, err = s.newAuditMiddleware(); err != nil {
		return nil, err
	}
	s.handler = s.checkInput(s.routes())
	return s, nil
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Sweep runs the retention sweeper once.
func (s *Server) Sweep(ctx context.Context) (retention.Report, error) {
	return s.sweeper.Run(ctx)
}

// RunSweeper runs the retention sweep and the housekeeping of lockout
// history and expired sessions every interval until ctx ends.
func (s *Server) RunSweeper(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rep, err := s.sweeper.Run(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Error("retention sweep failed", "err", err)
		} else if rep.Deleted > 0 || len(rep.Busy) > 0 {
			s.log.Info("retention sweep", "batches", rep.Batches, "deleted", rep.Deleted, "busy", len(rep.Busy))
		}
		if _, err := s.guard.Prune(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("lockout prune failed", "err", err)
		}
		if _, err := s.cfg.Backend.Sessions.Purge(ctx, s.now()); err != nil && ctx.Err() == nil {
			s.log.Error("session purge failed", "err", err)
		}
	}
}

// VerifyIntegrity checks every stored message against its integrity tag
// and digest, records each finding in the audit log of its tenant, and
// reports whether all was well.
func (s *Server) VerifyIntegrity(ctx context.Context) (bool, error) {
	var recErr error
	ok, err := s.cfg.Backend.Verify(ctx, s.sealer, func(ctx context.Context, f integrity.Finding) {
		s.log.Warn("integrity finding", "kind", f.Kind.String(), "table", f.Domain, "tenant", f.Tenant, "id", f.ID, "scope", f.Scope)
		e := audit.Event{
			Tenant:        f.Tenant,
			Actor:         "integrity-verifier",
			Type:          typeIntegrityFailed,
			Category:      audit.CategorySecurity,
			Action:        "verify",
			ResourceType:  "message",
			ResourceID:    f.ID,
			FailureReason: f.Kind.String(),
			Metadata:      map[string]string{"scope": f.Scope},
		}
		if f.ID == "" {
			e.ResourceType, e.ResourceID = "integrity_scope", f.Scope
		}
		if err := s.record(ctx, e); err != nil && recErr == nil {
			recErr = err
		}
	})
	return ok, errors.Join(err, recErr)
}

// RunVerifier verifies integrity every interval until ctx ends.
func (s *Server) RunVerifier(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := s.VerifyIntegrity(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error("integrity verification failed", "err", err)
		case !ok:
			s.log.Warn("integrity verification found problems; see the audit log")
		}
	}
}

// Close flushes the audit queue, waiting up to ctx.
func (s *Server) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() { err = s.audit.Close(ctx) })
	return err
}

// Ping reports whether the stores answer.
func (s *Server) Ping(ctx context.Context) error {
	if err := s.chat.Ping(ctx); err != nil {
		return err
	}
	_, err := s.cfg.Backend.Audit.Head(ctx, "healthz")
	return err
}

// mfaSealer seals TOTP secrets with fieldcrypt, bound to the enrolment.
type mfaSealer struct{ kr *fieldcrypt.Keyring }

func (m mfaSealer) loc(b mfa.Binding) fieldcrypt.Location {
	// The binding's canonical encoding, in hex, is the row: unambiguous,
	// and so bound as associated data with the tenant.
	return fieldcrypt.Location{Tenant: b.TenantID, Table: "mfa_enrolments", Column: "secret", Row: fmt.Sprintf("%x", b.AssociatedData())}
}

func (m mfaSealer) Seal(ctx context.Context, b mfa.Binding, secret []byte) ([]byte, error) {
	return m.kr.Encrypt(ctx, m.loc(b), secret)
}

func (m mfaSealer) Open(ctx context.Context, b mfa.Binding, sealed []byte) ([]byte, error) {
	pt, err := m.kr.Decrypt(ctx, m.loc(b), sealed)
	if err != nil {
		return nil, mfa.ErrUnseal
	}
	return pt, nil
}
