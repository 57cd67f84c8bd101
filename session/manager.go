package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatsdk/compliance/internal/canon"
)

// Defaults and limits of [Config].
const (
	DefaultAccessTTL         = 15 * time.Minute
	DefaultIdleTimeout       = 15 * time.Minute
	DefaultLifetime          = 24 * time.Hour
	DefaultActivityInterval  = time.Minute
	DefaultStateCacheTTL     = 10 * time.Second
	DefaultLeeway            = 5 * time.Second
	DefaultEmergencyDuration = time.Hour
	DefaultEmergencyMax      = 4 * time.Hour
	DefaultVerifyCacheSize   = 10_000

	// MaxLeeway caps Config.Leeway.
	MaxLeeway = time.Minute
	// MaxRefreshGrace caps Config.RefreshGrace.
	MaxRefreshGrace = 10 * time.Second
	// MaxAccessTTL caps Config.AccessTTL.
	MaxAccessTTL = time.Hour
	// MaxReasonLen is the longest emergency reason accepted, in bytes.
	MaxReasonLen = 2000
)

// refreshBytes is the size of a refresh token's random value: 256 bits.
const refreshBytes = 32

// reuseResponseTimeout bounds the revocation and report that answer a
// replayed refresh token, which run even if the caller's context ends.
const reuseResponseTimeout = 30 * time.Second

// refreshDomain is the canonical-encoding domain of a refresh-token hash.
const refreshDomain = "session.refresh.v1"

// maxCached bounds the session-state cache; past it the cache is halved.
const maxCached = 100_000

// Config configures a [Manager]. Zero values take the documented defaults.
type Config struct {
	// Store keeps sessions. Required.
	Store Store
	// Keys signs and verifies access tokens. Required.
	Keys *KeyRing
	// Issuer is the iss claim written and required. Required.
	Issuer string
	// Audience is the aud claim written and required. Required.
	Audience string

	// AccessTTL is the lifetime of an access token. Defaults to 15 minutes;
	// at most MaxAccessTTL.
	AccessTTL time.Duration
	// IdleTimeout ends a session with no recorded activity for this long
	// (automatic logoff, §164.312(a)(2)(iii)). Defaults to 15 minutes.
	IdleTimeout time.Duration
	// Lifetime is the absolute lifetime of a session and of its refresh-
	// token family; it never slides. Defaults to 24 hours.
	Lifetime time.Duration
	// ActivityInterval is the most often activity is written to the store
	// for one session. Recorded activity may lag by this much, which can
	// only end a session early, never late. Defaults to 1 minute; must be
	// shorter than IdleTimeout.
	ActivityInterval time.Duration
	// StateCacheTTL is how long [Manager.Authenticate] trusts a session's
	// state read from the store: the bound within which a revocation made
	// by another instance is seen. Defaults to 10 seconds; a negative value
	// reads the store on every call.
	StateCacheTTL time.Duration
	// Leeway is the clock skew allowed on exp and iat. Defaults to 5
	// seconds; at most MaxLeeway.
	Leeway time.Duration
	// RefreshGrace lets a refresh token that was rotated less than this
	// long ago be rotated again, for clients that refresh from several
	// tabs at once. It weakens reuse detection: a thief replaying within
	// the window gets tokens instead of revoking the family. Defaults to
	// 0 (off); at most MaxRefreshGrace.
	RefreshGrace time.Duration
	// EmergencyDuration is the default length of a break-glass grant.
	// Defaults to 1 hour.
	EmergencyDuration time.Duration
	// EmergencyMax caps a break-glass grant's length. Defaults to 4 hours.
	EmergencyMax time.Duration

	// VerifyCacheSize is how many verified access tokens are remembered, so
	// a token presented again skips the signature check until it expires.
	// Defaults to 10,000; a negative value verifies every time in full.
	VerifyCacheSize int

	// PassiveRequest, when not nil, reports requests the middleware must
	// not count as user activity (background polling), so an unattended
	// screen still times out. Nil counts every request.
	PassiveRequest func(*http.Request) bool
	// Hooks are called on security events.
	Hooks Hooks
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// Manager issues, refreshes, checks and revokes sessions. It is safe for
// concurrent use; several instances may share one Store.
type Manager struct {
	cfg    Config
	store  Store
	now    func() time.Time
	signer atomic.Pointer[signer]

	mu    sync.Mutex
	cache map[string]cacheEntry
}

type cacheEntry struct {
	s       Session
	fetched time.Time
}

// Tokens is what a login, a refresh or an emergency grant returns.
// Its JSON form is what a login or refresh endpoint may send the client.
type Tokens struct {
	// AccessToken is the JWT to send as a bearer token.
	AccessToken string `json:"access_token"`
	// AccessExpiresAt is its exp.
	AccessExpiresAt time.Time `json:"access_expires_at"`
	// RefreshToken is the opaque refresh token. Only its hash is stored;
	// it cannot be recovered.
	RefreshToken string `json:"refresh_token"`
	// SessionID is the session (refresh-token family).
	SessionID string `json:"session_id"`
	// SessionExpiresAt is the session's absolute end.
	SessionExpiresAt time.Time `json:"session_expires_at"`
}

// String describes the pair without its tokens, so Tokens that reach a
// log or an error message give nothing away; the JSON form, for the
// client, keeps them.
func (t Tokens) String() string {
	return fmt.Sprintf("session.Tokens(session %s, access expires %s, session expires %s, tokens redacted)",
		t.SessionID, t.AccessExpiresAt.Format(time.RFC3339), t.SessionExpiresAt.Format(time.RFC3339))
}

// GoString is String, for the %#v verb.
func (t Tokens) GoString() string { return t.String() }

// LogValue implements [slog.LogValuer]: the session id and expiries only.
func (t Tokens) LogValue() slog.Value {
	return slog.GroupValue(slog.String("session_id", t.SessionID),
		slog.Time("access_expires_at", t.AccessExpiresAt), slog.Time("session_expires_at", t.SessionExpiresAt))
}

// New returns a Manager, or an error naming the first unusable field.
func New(cfg Config) (*Manager, error) {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.AccessTTL, DefaultAccessTTL)
	def(&cfg.IdleTimeout, DefaultIdleTimeout)
	def(&cfg.Lifetime, DefaultLifetime)
	def(&cfg.ActivityInterval, DefaultActivityInterval)
	def(&cfg.StateCacheTTL, DefaultStateCacheTTL)
	def(&cfg.Leeway, DefaultLeeway)
	def(&cfg.EmergencyDuration, DefaultEmergencyDuration)
	def(&cfg.EmergencyMax, DefaultEmergencyMax)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.VerifyCacheSize == 0 {
		cfg.VerifyCacheSize = DefaultVerifyCacheSize
	}

	bad := func(field, why string) error { return fmt.Errorf("%w: %s %s", ErrInvalidConfig, field, why) }
	switch {
	case cfg.Store == nil:
		return nil, bad("Store", "is nil")
	case cfg.Keys == nil:
		return nil, bad("Keys", "is nil")
	case cfg.Issuer == "":
		return nil, bad("Issuer", "is empty")
	case cfg.Audience == "":
		return nil, bad("Audience", "is empty")
	case cfg.AccessTTL < 0 || cfg.AccessTTL > MaxAccessTTL:
		return nil, bad("AccessTTL", "is out of range")
	case cfg.IdleTimeout < 0:
		return nil, bad("IdleTimeout", "is negative")
	case cfg.Lifetime < 0:
		return nil, bad("Lifetime", "is negative")
	case cfg.ActivityInterval < 0 || cfg.ActivityInterval >= cfg.IdleTimeout:
		return nil, bad("ActivityInterval", "must be positive and shorter than IdleTimeout")
	case cfg.Leeway < 0 || cfg.Leeway > MaxLeeway:
		return nil, bad("Leeway", "is out of range")
	case cfg.RefreshGrace < 0 || cfg.RefreshGrace > MaxRefreshGrace:
		return nil, bad("RefreshGrace", "is out of range")
	case cfg.EmergencyMax < 0 || cfg.EmergencyDuration < 0 || cfg.EmergencyDuration > cfg.EmergencyMax:
		return nil, bad("EmergencyDuration", "must be positive and at most EmergencyMax")
	}

	// Times are kept at microsecond precision, what Postgres stores, so
	// every store compares the same instants.
	clock := cfg.Now
	m := &Manager{cfg: cfg, store: cfg.Store, cache: map[string]cacheEntry{}}
	m.now = func() time.Time { return canon.TruncateTime(clock()) }
	m.SetKeys(cfg.Keys)
	return m, nil
}

// SetKeys replaces the key ring, for key rotation without a restart.
// Tokens signed by a key that the new ring lacks stop verifying at once,
// and the verified-token cache starts empty. A nil ring is ignored.
func (m *Manager) SetKeys(ring *KeyRing) {
	if ring == nil {
		return
	}
	m.signer.Store(newSigner(ring, m.cfg.Issuer, m.cfg.Audience, m.cfg.Leeway, m.now, m.cfg.VerifyCacheSize))
}

// CreateParams are the arguments of [Manager.Create].
type CreateParams struct {
	// AppID is the tenant. Required.
	AppID string
	// UserID is the authenticated user. Required.
	UserID string
	// Methods are the authentication methods used (AMRPassword, …).
	// Required: at least one.
	Methods []string
}

// Create opens a session for a user who has just authenticated, and returns
// its first token pair.
func (m *Manager) Create(ctx context.Context, p CreateParams) (Tokens, error) {
	if err := checkUser(p.AppID, p.UserID, p.Methods); err != nil {
		return Tokens{}, err
	}
	now := m.now()
	return m.open(ctx, p.AppID, p.UserID, p.Methods, now, now.Add(m.cfg.Lifetime), nil)
}

func checkUser(appID, userID string, methods []string) error {
	switch {
	case appID == "":
		return fmt.Errorf("%w: AppID is empty", ErrInvalidArgument)
	case userID == "":
		return fmt.Errorf("%w: UserID is empty", ErrInvalidArgument)
	case len(normalizeAMR(methods)) == 0:
		return fmt.Errorf("%w: Methods is empty", ErrInvalidArgument)
	}
	return nil
}

// open stores a new session (with its grant, if any) and issues its tokens.
func (m *Manager) open(ctx context.Context, appID, userID string, methods []string, now, expires time.Time, grant *EmergencyGrant) (Tokens, error) {
	id, err := randomID(16)
	if err != nil {
		return Tokens{}, err
	}
	refresh, hash, err := newRefreshToken()
	if err != nil {
		return Tokens{}, err
	}
	s := Session{
		ID: id, AppID: appID, UserID: userID, AMR: normalizeAMR(methods),
		CreatedAt: now, LastSeenAt: now, ExpiresAt: expires,
	}
	if grant != nil {
		grant.SessionID = id
		s.EmergencyGrantID = grant.ID
	}

	if err := m.store.CreateSession(ctx, NewSession{Session: s, RefreshHash: hash, Grant: grant}); err != nil {
		return Tokens{}, fmt.Errorf("session: create: %w", err)
	}

	m.put(s, now)
	return m.tokens(s, refresh, now)
}

// tokens signs an access token for s and pairs it with refresh.
func (m *Manager) tokens(s Session, refresh string, now time.Time) (Tokens, error) {
	access, exp, err := m.sign(s, now)
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{
		AccessToken: access, AccessExpiresAt: exp, RefreshToken: refresh,
		SessionID: s.ID, SessionExpiresAt: s.ExpiresAt,
	}, nil
}

// sign returns an access token for s, expiring at the earlier of AccessTTL
// from now and the session's end.
func (m *Manager) sign(s Session, now time.Time) (string, time.Time, error) {
	jti, err := randomID(16)
	if err != nil {
		return "", time.Time{}, err
	}
	exp := now.Add(m.cfg.AccessTTL)
	if s.ExpiresAt.Before(exp) {
		exp = s.ExpiresAt
	}
	expSec, iatSec := exp.Unix(), now.Unix()
	c := &wireClaims{
		Issuer: m.cfg.Issuer, Subject: s.UserID, Audience: []string{m.cfg.Audience},
		ExpiresAt: &expSec, IssuedAt: &iatSec, ID: jti,
		Tenant: s.AppID, SessionID: s.ID, AMR: s.AMR, Emergency: s.EmergencyGrantID,
	}
	tok, err := m.signer.Load().sign(c)
	if err != nil {
		return "", time.Time{}, err
	}
	return tok, time.Unix(expSec, 0).UTC(), nil
}

// newRefreshToken returns a fresh refresh token and its stored hash.
func newRefreshToken() (string, []byte, error) {
	var raw [refreshBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", nil, fmt.Errorf("session: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(raw[:]), hashRefresh(raw[:]), nil
}

// hashRefresh is the stored form of a refresh token's random value. The
// value has 256 bits of entropy, so a fast hash suffices: nobody can guess
// a preimage, and a database dump yields no usable token.
func hashRefresh(raw []byte) []byte {
	h := sha256.Sum256(canon.Encode(refreshDomain, canon.Bytes(raw)))
	return h[:]
}

// parseRefresh decodes a presented refresh token; anything that is not
// exactly 256 bits of base64url (an access token, say) is refused before
// the store is asked.
func parseRefresh(token string) ([]byte, bool) {
	if len(token) != base64.RawURLEncoding.EncodedLen(refreshBytes) {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) != refreshBytes {
		return nil, false
	}
	return raw, true
}

// TODO: a logout that presents only the refresh token (the access token
// having expired) needs a store lookup by token hash; today the client
// refreshes first, or the application revokes by session id.

// Refresh rotates a refresh token: it returns a new pair and the presented
// token stops working. A token that was already rotated revokes its whole
// session and returns ErrTokenReused. A refresh is refused once the session
// is idle, expired or revoked; refreshing is not activity, so a client's
// background refresh loop cannot keep an unattended session alive.
func (m *Manager) Refresh(ctx context.Context, refreshToken string) (Tokens, error) {
	raw, ok := parseRefresh(refreshToken)
	if !ok {
		return Tokens{}, ErrInvalidToken
	}
	next, nextHash, err := newRefreshToken()
	if err != nil {
		return Tokens{}, err
	}
	now := m.now()
	var grace time.Time
	if m.cfg.RefreshGrace > 0 {
		grace = now.Add(-m.cfg.RefreshGrace)
	}

	res, err := m.store.RotateRefresh(ctx, RotateParams{
		OldHash: hashRefresh(raw), NewHash: nextHash, Now: now,
		IdleCutoff: now.Add(-m.cfg.IdleTimeout), GraceCutoff: grace,
	})
	if err != nil {
		return Tokens{}, fmt.Errorf("session: refresh: %w", err)
	}

	s := res.Session
	switch {
	case !res.Known:
		return Tokens{}, ErrInvalidToken
	case res.Reused:
		// The response to a replay must not depend on the replaying
		// client staying connected: revoke and report on a context that
		// keeps the request's values but not its cancellation, bounded
		// so that a hung store still returns.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reuseResponseTimeout)
		defer cancel()
		if _, err := m.revoke(rctx, s, ReasonRefreshReuse); err != nil {
			return Tokens{}, fmt.Errorf("session: refresh: revoke reused family: %w", err)
		}
		if h := m.cfg.Hooks.RefreshReused; h != nil {
			h(rctx, ReuseEvent{AppID: s.AppID, UserID: s.UserID, SessionID: s.ID, At: now})
		}
		return Tokens{}, fmt.Errorf("%w: %w", ErrInvalidToken, ErrTokenReused)
	case !res.Rotated:
		if err := s.check(now, m.cfg.IdleTimeout); err != nil {
			m.put(s, now)
			return Tokens{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
		}
		return Tokens{}, ErrInvalidToken
	}

	m.put(s, now)
	m.emergencyUsed(ctx, s, now)
	return m.tokens(s, next, now)
}

// Verify checks an access token's signature, type, algorithm, issuer,
// audience and times, without asking the store: a revoked or idle session's
// token still verifies until it expires. Use [Manager.Authenticate] (or the
// middleware) for requests.
func (m *Manager) Verify(accessToken string) (Claims, error) {
	return m.signer.Load().verify(accessToken)
}

// Authenticate verifies an access token and checks its session: not
// revoked (as of at most StateCacheTTL ago), not expired, not idle. It
// records the request as user activity, writing to the store at most once
// per ActivityInterval per session. Errors other than ErrInvalidToken are
// store failures, so a caller can fail closed with a 5xx rather than a 401.
func (m *Manager) Authenticate(ctx context.Context, accessToken string) (*Identity, error) {
	return m.authenticate(ctx, accessToken, false)
}

// AuthenticatePassive is Authenticate for a request that is not user
// activity (a background poll): it checks the session but does not extend
// its idle deadline.
func (m *Manager) AuthenticatePassive(ctx context.Context, accessToken string) (*Identity, error) {
	return m.authenticate(ctx, accessToken, true)
}

func (m *Manager) authenticate(ctx context.Context, accessToken string, passive bool) (*Identity, error) {
	c, err := m.Verify(accessToken)
	if err != nil {
		return nil, err
	}
	now := m.now()

	s, err := m.state(ctx, c.SessionID, now)
	if err != nil {
		return nil, err
	}
	if s.AppID != c.Tenant || s.UserID != c.Subject || s.EmergencyGrantID != c.EmergencyGrantID {
		return nil, ErrInvalidToken
	}

	if !passive && now.Sub(s.LastSeenAt) >= m.cfg.ActivityInterval && m.claimTouch(s.ID, now) {
		s, err = m.store.Touch(ctx, s.ID, now, now.Add(-m.cfg.IdleTimeout))
		if err != nil {
			m.forget(c.SessionID)
		}
		if errors.Is(err, ErrNotFound) {
			return nil, ErrInvalidToken
		}
		if err != nil {
			return nil, fmt.Errorf("session: record activity: %w", err)
		}
		m.put(s, now)
		if err := s.check(now, m.cfg.IdleTimeout); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
		}
	}

	m.emergencyUsed(ctx, s, now)
	return &Identity{claims: c}, nil
}

// state returns a live session's state from the cache or the store. A
// cached revocation is final; a cached idle or expired verdict is checked
// against the store, since another instance may have recorded activity.
func (m *Manager) state(ctx context.Context, id string, now time.Time) (Session, error) {
	if m.cfg.StateCacheTTL > 0 {
		m.mu.Lock()
		e, ok := m.cache[id]
		m.mu.Unlock()
		if ok && now.Sub(e.fetched) < m.cfg.StateCacheTTL {
			err := e.s.check(now, m.cfg.IdleTimeout)
			if err == nil {
				return e.s, nil
			}
			if errors.Is(err, ErrRevoked) {
				return Session{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
			}
		}
	}

	s, err := m.store.Session(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Session{}, ErrInvalidToken
	}
	if err != nil {
		return Session{}, fmt.Errorf("session: load session: %w", err)
	}
	m.put(s, now)
	if err := s.check(now, m.cfg.IdleTimeout); err != nil {
		return Session{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	return s, nil
}

// claimTouch reports whether this request is the one to write the
// session's activity: concurrent requests at the interval's end make one
// write, not one each. It marks the cached state as seen at now; a failed
// write forgets the entry.
func (m *Manager) claimTouch(id string, now time.Time) bool {
	if m.cfg.StateCacheTTL <= 0 {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()

	e, ok := m.cache[id]
	if !ok {
		return true
	}
	if now.Sub(e.s.LastSeenAt) < m.cfg.ActivityInterval {
		return false
	}
	e.s.LastSeenAt = now
	m.cache[id] = e
	return true
}

// put caches s as read at now.
func (m *Manager) put(s Session, now time.Time) {
	if m.cfg.StateCacheTTL <= 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()

	if len(m.cache) >= maxCached {
		// TODO: an LRU would keep the hot sessions; dropping an arbitrary
		// half only costs store reads.
		n := 0
		for k := range m.cache {
			delete(m.cache, k)
			if n++; n >= maxCached/2 {
				break
			}
		}
	}
	if old, ok := m.cache[s.ID]; ok {
		// Revocation is final: a read that raced with it (a rotation that
		// read the session just before) must not bring the session back.
		if !old.s.RevokedAt.IsZero() && s.RevokedAt.IsZero() {
			return
		}
		// Never move activity back: a write claimed by a concurrent
		// request may not have reached the store yet.
		if old.s.LastSeenAt.After(s.LastSeenAt) {
			s.LastSeenAt = old.s.LastSeenAt
		}
	}
	m.cache[s.ID] = cacheEntry{s: s, fetched: now}
}

// markRevoked records in the cache that this instance revoked a session,
// so it refuses the session at once and no stale read can revive it.
func (m *Manager) markRevoked(id string, now time.Time, reason Reason) {
	if m.cfg.StateCacheTTL <= 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()

	e := m.cache[id]
	e.s.ID = id
	e.s.RevokedAt, e.s.RevokeReason = now, reason
	e.fetched = now
	m.cache[id] = e
}

func (m *Manager) emergencyUsed(ctx context.Context, s Session, now time.Time) {
	if h := m.cfg.Hooks.EmergencyUsed; h != nil && s.EmergencyGrantID != "" {
		h(ctx, EmergencyEvent{
			GrantID: s.EmergencyGrantID, AppID: s.AppID, UserID: s.UserID,
			SessionID: s.ID, ExpiresAt: s.ExpiresAt, At: now,
		})
	}
}

// StepUp adds authentication methods to a live session after a further
// factor (for example AMROTP after a TOTP check); AMRMultiFactor is added
// once the methods span two factor classes. It takes effect on the next
// access token issued for the session: the next refresh, or
// [Manager.IssueAccessToken].
func (m *Manager) StepUp(ctx context.Context, sessionID string, methods ...string) error {
	if len(normalizeAMR(methods)) == 0 {
		return fmt.Errorf("%w: no methods", ErrInvalidArgument)
	}
	now := m.now()

	s, err := m.store.Session(ctx, sessionID)
	if err != nil {
		return fmt.Errorf("session: step up: %w", err)
	}
	if err := s.check(now, m.cfg.IdleTimeout); err != nil {
		return fmt.Errorf("session: step up: %w", err)
	}

	s, err = m.store.SetAMR(ctx, sessionID, normalizeAMR(s.AMR, methods))
	if err != nil {
		return fmt.Errorf("session: step up: %w", err)
	}
	if !s.RevokedAt.IsZero() {
		return fmt.Errorf("session: step up: %w", ErrRevoked)
	}
	m.put(s, now)
	return nil
}

// IssueAccessToken returns a fresh access token for a live session, with
// its current methods: after [Manager.StepUp], so the client need not wait
// for its next refresh. The caller must have authenticated the request as
// this session.
func (m *Manager) IssueAccessToken(ctx context.Context, sessionID string) (string, time.Time, error) {
	now := m.now()
	s, err := m.store.Session(ctx, sessionID)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("session: issue: %w", err)
	}
	if err := s.check(now, m.cfg.IdleTimeout); err != nil {
		return "", time.Time{}, fmt.Errorf("session: issue: %w", err)
	}
	m.put(s, now)
	return m.sign(s, now)
}

// Revoke ends one session (logout); its refresh tokens stop at once and its
// access tokens within StateCacheTTL on other instances (at once on this
// one). Revoking a revoked session is not an error. Session ids are unique
// across tenants, so a caller acting for a tenant's administrator must
// first check that the session is that tenant's.
func (m *Manager) Revoke(ctx context.Context, sessionID string, reason Reason) error {
	s, err := m.store.Session(ctx, sessionID)
	if err != nil {
		return fmt.Errorf("session: revoke: %w", err)
	}
	if _, err := m.revoke(ctx, s, reason); err != nil {
		return fmt.Errorf("session: revoke: %w", err)
	}
	return nil
}

func (m *Manager) revoke(ctx context.Context, s Session, reason Reason) (bool, error) {
	now := m.now()
	done, err := m.store.Revoke(ctx, s.ID, now, reason)
	if err != nil {
		return false, err
	}
	m.markRevoked(s.ID, now, reason)
	if done {
		m.revoked(ctx, s.AppID, s.UserID, s.ID, reason, now)
	}
	return done, nil
}

// RevokeUser ends every session of a user: log out everywhere, a password
// change (ReasonPasswordChange) or an account disabled
// (ReasonAccountDisabled). It returns how many sessions it ended.
func (m *Manager) RevokeUser(ctx context.Context, appID, userID string, reason Reason) (int, error) {
	if appID == "" || userID == "" {
		return 0, fmt.Errorf("%w: AppID and UserID are required", ErrInvalidArgument)
	}
	now := m.now()
	ids, err := m.store.RevokeUser(ctx, appID, userID, now, reason)
	if err != nil {
		return 0, fmt.Errorf("session: revoke user: %w", err)
	}
	for _, id := range ids {
		m.markRevoked(id, now, reason)
		m.revoked(ctx, appID, userID, id, reason, now)
	}
	return len(ids), nil
}

// Sessions lists a user's live sessions (not revoked, expired or idle),
// newest first: for a "signed-in devices" page, or for an administrator
// reviewing access before revoking one with [Manager.Revoke].
func (m *Manager) Sessions(ctx context.Context, appID, userID string) ([]Session, error) {
	now := m.now()
	all, err := m.store.UserSessions(ctx, appID, userID, now)
	if err != nil {
		return nil, fmt.Errorf("session: list sessions: %w", err)
	}
	live := all[:0]
	for _, s := range all {
		if s.check(now, m.cfg.IdleTimeout) == nil {
			live = append(live, s)
		}
	}
	return live, nil
}

func (m *Manager) forget(id string) {
	m.mu.Lock()
	delete(m.cache, id)
	m.mu.Unlock()
}

func (m *Manager) revoked(ctx context.Context, appID, userID, id string, reason Reason, now time.Time) {
	if h := m.cfg.Hooks.SessionRevoked; h != nil {
		h(ctx, RevokeEvent{AppID: appID, UserID: userID, SessionID: id, Reason: reason, At: now})
	}
}

// EmergencyRequest asks for break-glass access (§164.312(a)(2)(ii)).
type EmergencyRequest struct {
	// AppID and UserID say who gets access. Required.
	AppID  string
	UserID string
	// Methods are the authentication methods the user just used. Required.
	Methods []string
	// Reason is the mandatory justification, recorded with the grant.
	Reason string
	// GrantedBy identifies who approved the grant; optional.
	GrantedBy string
	// Duration is the grant's length. Defaults to Config.EmergencyDuration;
	// at most Config.EmergencyMax.
	Duration time.Duration
}

// GrantEmergency opens a time-boxed break-glass session. Its access tokens
// carry the grant id (Identity.Emergency reports it), the EmergencyIssued
// hook fires now and EmergencyUsed on every use, and the grant stays
// listable through [Manager.EmergencyGrants] for review. Deciding who may
// break the glass is the application's job.
func (m *Manager) GrantEmergency(ctx context.Context, req EmergencyRequest) (Tokens, EmergencyGrant, error) {
	if err := checkUser(req.AppID, req.UserID, req.Methods); err != nil {
		return Tokens{}, EmergencyGrant{}, err
	}
	reason := strings.TrimSpace(req.Reason)
	switch {
	case reason == "":
		return Tokens{}, EmergencyGrant{}, fmt.Errorf("%w: Reason is required", ErrInvalidArgument)
	case len(reason) > MaxReasonLen:
		return Tokens{}, EmergencyGrant{}, fmt.Errorf("%w: Reason is longer than %d bytes", ErrInvalidArgument, MaxReasonLen)
	case req.Duration < 0 || req.Duration > m.cfg.EmergencyMax:
		return Tokens{}, EmergencyGrant{}, fmt.Errorf("%w: Duration is out of range", ErrInvalidArgument)
	}
	d := req.Duration
	if d == 0 {
		d = m.cfg.EmergencyDuration
	}
	gid, err := randomID(16)
	if err != nil {
		return Tokens{}, EmergencyGrant{}, err
	}
	now := m.now()
	g := &EmergencyGrant{
		ID: gid, AppID: req.AppID, UserID: req.UserID, GrantedBy: req.GrantedBy,
		Reason: reason, CreatedAt: now, ExpiresAt: now.Add(d),
	}

	t, err := m.open(ctx, req.AppID, req.UserID, req.Methods, now, g.ExpiresAt, g)
	if err != nil {
		return Tokens{}, EmergencyGrant{}, err
	}

	if h := m.cfg.Hooks.EmergencyIssued; h != nil {
		h(ctx, EmergencyEvent{
			GrantID: g.ID, AppID: g.AppID, UserID: g.UserID, SessionID: g.SessionID,
			GrantedBy: g.GrantedBy, Reason: g.Reason, ExpiresAt: g.ExpiresAt, At: now,
		})
	}
	return t, *g, nil
}

// EmergencyGrants lists a tenant's break-glass grants created in
// [from, to), oldest first, for after-the-fact review.
func (m *Manager) EmergencyGrants(ctx context.Context, appID string, from, to time.Time) ([]EmergencyGrant, error) {
	gs, err := m.store.EmergencyGrants(ctx, appID, from, to)
	if err != nil {
		return nil, fmt.Errorf("session: list emergency grants: %w", err)
	}
	return gs, nil
}
