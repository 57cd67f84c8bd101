package session_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/chatsdk/compliance/session"
)

// clock is a fake clock tests advance by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// events records every hook call.
type events struct {
	mu        sync.Mutex
	reused    []session.ReuseEvent
	revoked   []session.RevokeEvent
	issued    []session.EmergencyEvent
	emergency []session.EmergencyEvent
}

func (e *events) hooks() session.Hooks {
	return session.Hooks{
		RefreshReused: func(_ context.Context, ev session.ReuseEvent) {
			e.mu.Lock()
			e.reused = append(e.reused, ev)
			e.mu.Unlock()
		},
		SessionRevoked: func(_ context.Context, ev session.RevokeEvent) {
			e.mu.Lock()
			e.revoked = append(e.revoked, ev)
			e.mu.Unlock()
		},
		EmergencyIssued: func(_ context.Context, ev session.EmergencyEvent) {
			e.mu.Lock()
			e.issued = append(e.issued, ev)
			e.mu.Unlock()
		},
		EmergencyUsed: func(_ context.Context, ev session.EmergencyEvent) {
			e.mu.Lock()
			e.emergency = append(e.emergency, ev)
			e.mu.Unlock()
		},
	}
}

// bundle is one test's manager and what it was built from.
type bundle struct {
	m      *session.Manager
	store  *countingStore
	clock  *clock
	key    session.Key
	priv   ed25519.PrivateKey
	events *events
	cfg    session.Config
}

// countingStore counts the writes the manager makes.
type countingStore struct {
	session.Store
	mu      sync.Mutex
	touches int
	fail    error
}

func (c *countingStore) Touch(ctx context.Context, id string, now, idleCutoff time.Time) (session.Session, error) {
	c.mu.Lock()
	c.touches++
	c.mu.Unlock()
	return c.Store.Touch(ctx, id, now, idleCutoff)
}

func (c *countingStore) Session(ctx context.Context, id string) (session.Session, error) {
	c.mu.Lock()
	fail := c.fail
	c.mu.Unlock()
	if fail != nil {
		return session.Session{}, fail
	}
	return c.Store.Session(ctx, id)
}

func (c *countingStore) touchCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.touches
}

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func setup(t testing.TB, mod func(*session.Config)) *bundle {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := session.NewEd25519Key("k1", priv)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := session.NewKeyRing(key)
	if err != nil {
		t.Fatal(err)
	}
	b := &bundle{store: &countingStore{Store: session.NewMemoryStore()}, clock: &clock{t: t0}, key: key, priv: priv, events: &events{}}
	b.cfg = session.Config{
		Store: b.store, Keys: ring, Issuer: "https://auth.example", Audience: "chat-api",
		Hooks: b.events.hooks(), Now: b.clock.Now,
	}
	if mod != nil {
		mod(&b.cfg)
	}
	b.m, err = session.New(b.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *bundle) login(t testing.TB, methods ...string) session.Tokens {
	t.Helper()
	if len(methods) == 0 {
		methods = []string{session.AMRPassword}
	}
	tok, err := b.m.Create(context.Background(), session.CreateParams{AppID: "app1", UserID: "u1", Methods: methods})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// forge signs claims with method and key, with the given header fields.
func forge(t *testing.T, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func goodClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": "https://auth.example", "sub": "u1", "aud": []string{"chat-api"},
		"exp": now.Add(10 * time.Minute).Unix(), "iat": now.Unix(), "jti": "j1",
		"tid": "app1", "sid": "s1", "amr": []string{"pwd"},
	}
}

func with(c jwt.MapClaims, k string, v any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for kk, vv := range c {
		out[kk] = vv
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

func TestVerifyRejects(t *testing.T) {
	b := setup(t, nil)
	pub := b.key.PublicKey()
	hdr := map[string]any{"typ": session.TokenType, "kid": "k1"}
	good := goodClaims(t0)

	// The forger's own signing key, with a key id the ring trusts.
	ed := func(c jwt.MapClaims, h map[string]any) string {
		t.Helper()
		return forge(t, jwt.SigningMethodEdDSA, b.priv, h, c)
	}
	if _, err := b.m.Verify(ed(good, hdr)); err != nil {
		t.Fatalf("control: a well-formed token was refused: %v", err)
	}

	_, otherPriv, _ := ed25519.GenerateKey(nil)
	refresh := b.login(t).RefreshToken

	cases := map[string]string{
		"none alg":                      forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, hdr, good),
		"HS256 keyed with EdDSA public": forge(t, jwt.SigningMethodHS256, []byte(pub), hdr, good),
		"expired":                       ed(with(good, "exp", t0.Add(-time.Minute).Unix()), hdr),
		"wrong audience":                ed(with(good, "aud", []string{"other-api"}), hdr),
		"no audience":                   ed(with(good, "aud", nil), hdr),
		"wrong issuer":                  ed(with(good, "iss", "https://evil.example"), hdr),
		"no exp":                        ed(with(good, "exp", nil), hdr),
		"exp not an integer":            ed(with(good, "exp", float64(t0.Add(10*time.Minute).Unix())+0.5), hdr),
		"exp a string":                  ed(with(good, "exp", "4102444800"), hdr),
		"aud a string, not as issued":   ed(with(good, "aud", "chat-api"), hdr),
		"no iat":                        ed(with(good, "iat", nil), hdr),
		"iat in the future":             ed(with(good, "iat", t0.Add(time.Hour).Unix()), hdr),
		"no sid":                        ed(with(good, "sid", nil), hdr),
		"no tenant":                     ed(with(good, "tid", nil), hdr),
		"no sub":                        ed(with(good, "sub", nil), hdr),
		"no jti":                        ed(with(good, "jti", nil), hdr),
		"typ JWT (an ID token)":         ed(good, map[string]any{"typ": "JWT", "kid": "k1"}),
		"no typ":                        ed(good, map[string]any{"kid": "k1"}),
		"unknown kid":                   ed(good, map[string]any{"typ": session.TokenType, "kid": "k9"}),
		"no kid":                        ed(good, map[string]any{"typ": session.TokenType}),
		"signed by another key":         forge(t, jwt.SigningMethodEdDSA, otherPriv, hdr, good),
		"refresh token":                 refresh,
		"empty":                         "",
		"garbage":                       "a.b.c",
	}
	tampered := ed(good, hdr)
	parts := strings.Split(tampered, ".")
	parts[1] = strings.TrimRight(jwtSeg(t, with(good, "sub", "admin")), "=")
	cases["payload swapped"] = strings.Join(parts, ".")

	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := b.m.Verify(tok); !errors.Is(err, session.ErrInvalidToken) {
				t.Errorf("got %v, want ErrInvalidToken", err)
			}
		})
	}

	if _, err := b.m.Verify(cases["expired"]); !errors.Is(err, session.ErrTokenExpired) {
		t.Errorf("expired: got %v, want ErrTokenExpired too", err)
	}
}

// TestAlgorithmBoundToKid: with an EdDSA and an HS256 key in one ring both
// algorithms pass WithValidMethods, so only the binding of each kid to its
// algorithm stops an HS256 token keyed with the EdDSA public key.
func TestAlgorithmBoundToKid(t *testing.T) {
	hk, err := session.NewHS256Key("h1", []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	var ek session.Key
	b := setup(t, func(c *session.Config) {
		ek = c.Keys.SigningKey()
		ring, err := session.NewKeyRing(ek, hk)
		if err != nil {
			t.Fatal(err)
		}
		c.Keys = ring
	})
	if got := b.cfg.Keys.Algorithms(); !slices.Equal(got, []string{"EdDSA", "HS256"}) {
		t.Fatalf("ring algorithms %v", got)
	}
	pub := []byte(ek.PublicKey())
	for _, kid := range []string{"k1", "h1"} {
		forged := forge(t, jwt.SigningMethodHS256, pub, map[string]any{"typ": session.TokenType, "kid": kid}, goodClaims(t0))
		if _, err := b.m.Verify(forged); !errors.Is(err, session.ErrInvalidToken) {
			t.Errorf("HS256 keyed with the EdDSA public key, kid %s: got %v", kid, err)
		}
	}
}

func TestVerifyLeewayIsBounded(t *testing.T) {
	b := setup(t, nil)
	k := b.priv
	hdr := map[string]any{"typ": session.TokenType, "kid": "k1"}
	justExpired := forge(t, jwt.SigningMethodEdDSA, k, hdr, with(goodClaims(t0), "exp", t0.Add(-3*time.Second).Unix()))
	if _, err := b.m.Verify(justExpired); err != nil {
		t.Errorf("3 s past exp, inside the 5 s leeway: %v", err)
	}
	long := forge(t, jwt.SigningMethodEdDSA, k, hdr, with(goodClaims(t0), "exp", t0.Add(-10*time.Second).Unix()))
	if _, err := b.m.Verify(long); !errors.Is(err, session.ErrTokenExpired) {
		t.Errorf("10 s past exp: got %v, want ErrTokenExpired", err)
	}
}

// TestVerifyCacheHonoursExpiry: a token verified once and remembered still
// expires on time, and the remembered claims cannot be changed by a
// caller.
func TestVerifyCacheHonoursExpiry(t *testing.T) {
	for _, size := range []int{0, -1} {
		b := setup(t, func(c *session.Config) { c.VerifyCacheSize = size })
		tok := b.login(t)
		c, err := b.m.Verify(tok.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		c.AMR[0] = "hwk"
		if c2, _ := b.m.Verify(tok.AccessToken); c2.AMR[0] != session.AMRPassword {
			t.Errorf("cache %d: remembered claims changed through a returned slice: %v", size, c2.AMR)
		}

		b.clock.Advance(15*time.Minute + 4*time.Second)
		if _, err := b.m.Verify(tok.AccessToken); err != nil {
			t.Errorf("cache %d: inside the leeway: %v", size, err)
		}
		b.clock.Advance(time.Second)
		if _, err := b.m.Verify(tok.AccessToken); !errors.Is(err, session.ErrTokenExpired) {
			t.Errorf("cache %d: at exp+leeway: got %v, want ErrTokenExpired", size, err)
		}
	}
}

func TestHS256Option(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	hk, err := session.NewHS256Key("h1", secret)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := session.NewKeyRing(hk)
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, func(c *session.Config) { c.Keys = ring })
	tok := b.login(t)
	c, err := b.m.Verify(tok.AccessToken)
	if err != nil || c.Subject != "u1" {
		t.Fatalf("Verify: %+v, %v", c, err)
	}

	// An EdDSA token with the HS256 key's kid is refused: the ring pins
	// HS256 and the kid pins its algorithm.
	_, edPriv, _ := ed25519.GenerateKey(nil)
	forged := forge(t, jwt.SigningMethodEdDSA, edPriv, map[string]any{"typ": session.TokenType, "kid": "h1"}, goodClaims(t0))
	if _, err := b.m.Verify(forged); !errors.Is(err, session.ErrInvalidToken) {
		t.Errorf("EdDSA token under an HS256 kid: %v", err)
	}
	if _, err := session.NewHS256Key("short", secret[:31]); !errors.Is(err, session.ErrInvalidConfig) {
		t.Errorf("31-byte secret: got %v, want ErrInvalidConfig", err)
	}
}

func TestAccessTokenShape(t *testing.T) {
	b := setup(t, nil)
	tok := b.login(t, session.AMRPassword)
	p := jwt.NewParser()
	parsed, _, err := p.ParseUnverified(tok.AccessToken, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Header["typ"] != session.TokenType || parsed.Header["kid"] != "k1" || parsed.Header["alg"] != "EdDSA" {
		t.Errorf("header %v", parsed.Header)
	}
	mc := parsed.Claims.(jwt.MapClaims)
	for _, k := range []string{"iss", "sub", "aud", "exp", "iat", "jti", "tid", "sid", "amr"} {
		if _, ok := mc[k]; !ok {
			t.Errorf("claim %s missing", k)
		}
	}
	if exp := tok.AccessExpiresAt.Sub(t0); exp != 15*time.Minute {
		t.Errorf("access lifetime %v, want 15m", exp)
	}
	if life := tok.SessionExpiresAt.Sub(t0); life != 24*time.Hour {
		t.Errorf("session lifetime %v, want 24h", life)
	}
}

func TestKeyRotation(t *testing.T) {
	b := setup(t, nil)
	old := b.login(t).AccessToken

	k2, _ := session.GenerateEd25519Key("k2")
	retired, err := session.NewEd25519PublicKey("k1", b.key.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	ring, err := session.NewKeyRing(k2, retired)
	if err != nil {
		t.Fatal(err)
	}
	b.m.SetKeys(ring)

	if _, err := b.m.Verify(old); err != nil {
		t.Errorf("token of the retired key: %v", err)
	}
	fresh := b.login(t).AccessToken
	if c, _, _ := jwt.NewParser().ParseUnverified(fresh, jwt.MapClaims{}); c.Header["kid"] != "k2" {
		t.Errorf("new token kid %v, want k2", c.Header["kid"])
	}

	only, _ := session.NewKeyRing(k2)
	b.m.SetKeys(only)
	if _, err := b.m.Verify(old); !errors.Is(err, session.ErrInvalidToken) {
		t.Errorf("token of a dropped key: got %v", err)
	}
	if _, err := session.NewKeyRing(k2, k2); !errors.Is(err, session.ErrInvalidConfig) {
		t.Errorf("duplicate kid: got %v", err)
	}
	if _, err := session.NewKeyRing(retired); !errors.Is(err, session.ErrInvalidConfig) {
		t.Errorf("verify-only signing key: got %v", err)
	}
}

func TestRefreshRotates(t *testing.T) {
	b := setup(t, nil)
	first := b.login(t)
	b.clock.Advance(time.Minute)

	second, err := b.m.Refresh(context.Background(), first.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if second.RefreshToken == first.RefreshToken || second.SessionID != first.SessionID {
		t.Errorf("refresh did not rotate within the family")
	}
	if second.SessionExpiresAt != first.SessionExpiresAt {
		t.Errorf("family lifetime slid from %v to %v", first.SessionExpiresAt, second.SessionExpiresAt)
	}
	if _, err := b.m.Verify(second.AccessToken); err != nil {
		t.Error(err)
	}
}

func TestRefreshRejectsAccessToken(t *testing.T) {
	b := setup(t, nil)
	tok := b.login(t)
	for name, s := range map[string]string{
		"access token": tok.AccessToken, "empty": "", "short": tok.RefreshToken[:20],
		"unknown": strings.Repeat("A", len(tok.RefreshToken)),
	} {
		if _, err := b.m.Refresh(context.Background(), s); !errors.Is(err, session.ErrInvalidToken) {
			t.Errorf("%s: got %v, want ErrInvalidToken", name, err)
		}
	}
}

func TestRefreshReuseRevokesFamily(t *testing.T) {
	ctx := context.Background()
	b := setup(t, nil)
	first := b.login(t)
	b.clock.Advance(time.Minute)
	second, err := b.m.Refresh(ctx, first.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}

	// The thief (or the victim) replays the rotated token.
	b.clock.Advance(time.Minute)
	if _, err := b.m.Refresh(ctx, first.RefreshToken); !errors.Is(err, session.ErrTokenReused) {
		t.Fatalf("replay: got %v, want ErrTokenReused", err)
	}

	// The whole family is dead: the newest refresh token and the access
	// token of the legitimate holder too.
	if _, err := b.m.Refresh(ctx, second.RefreshToken); !errors.Is(err, session.ErrRevoked) {
		t.Errorf("newest token after reuse: got %v, want ErrRevoked", err)
	}
	if _, err := b.m.Authenticate(ctx, second.AccessToken); !errors.Is(err, session.ErrRevoked) {
		t.Errorf("access token after reuse: got %v, want ErrRevoked", err)
	}
	if len(b.events.reused) != 1 || b.events.reused[0].SessionID != first.SessionID {
		t.Errorf("reuse hook: %+v", b.events.reused)
	}
	if len(b.events.revoked) != 1 || b.events.revoked[0].Reason != session.ReasonRefreshReuse {
		t.Errorf("revoke hook: %+v", b.events.revoked)
	}
}

func TestConcurrentRefreshExactlyOne(t *testing.T) {
	ctx := context.Background()
	b := setup(t, nil)
	tok := b.login(t)
	b.clock.Advance(time.Minute)

	const n = 10
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = b.m.Refresh(ctx, tok.RefreshToken)
		}()
	}
	close(start)
	wg.Wait()

	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, session.ErrInvalidToken):
			t.Errorf("unexpected error %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d refreshes succeeded, want exactly 1", ok)
	}
}

func TestRefreshGraceWindow(t *testing.T) {
	ctx := context.Background()
	b := setup(t, func(c *session.Config) { c.RefreshGrace = 5 * time.Second })
	tok := b.login(t)
	b.clock.Advance(time.Minute)
	if _, err := b.m.Refresh(ctx, tok.RefreshToken); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(2 * time.Second)
	if _, err := b.m.Refresh(ctx, tok.RefreshToken); err != nil {
		t.Errorf("second tab within the grace window: %v", err)
	}
	b.clock.Advance(5 * time.Second)
	if _, err := b.m.Refresh(ctx, tok.RefreshToken); !errors.Is(err, session.ErrTokenReused) {
		t.Errorf("after the grace window: got %v, want ErrTokenReused", err)
	}

	if _, err := session.New(withCfg(b.cfg, func(c *session.Config) { c.RefreshGrace = time.Minute })); !errors.Is(err, session.ErrInvalidConfig) {
		t.Errorf("grace above the cap: got %v", err)
	}
}

func withCfg(c session.Config, mod func(*session.Config)) session.Config {
	mod(&c)
	return c
}

func TestIdleTimeout(t *testing.T) {
	ctx := context.Background()
	b := setup(t, nil)
	tok := b.login(t)

	b.clock.Advance(15*time.Minute + time.Second)
	if _, err := b.m.Refresh(ctx, tok.RefreshToken); !errors.Is(err, session.ErrIdle) {
		t.Errorf("refresh after 15 idle minutes: got %v, want ErrIdle", err)
	}
	if _, err := b.m.Authenticate(ctx, tok.AccessToken); !errors.Is(err, session.ErrIdle) {
		t.Errorf("request after 15 idle minutes: got %v, want ErrIdle", err)
	}
}

func TestRefreshIsNotActivity(t *testing.T) {
	ctx := context.Background()
	b := setup(t, nil)
	tok := b.login(t)

	// A background loop refreshes every 4 minutes; nobody touches the app.
	rt := tok.RefreshToken
	for range 3 {
		b.clock.Advance(4 * time.Minute)
		next, err := b.m.Refresh(ctx, rt)
		if err != nil {
			t.Fatalf("refresh within the idle window: %v", err)
		}
		rt = next.RefreshToken
	}
	b.clock.Advance(4 * time.Minute)
	if _, err := b.m.Refresh(ctx, rt); !errors.Is(err, session.ErrIdle) {
		t.Errorf("refresh loop kept an idle session alive: %v", err)
	}
}

func TestActivityKeepsSessionAndIsThrottled(t *testing.T) {
	ctx := context.Background()
	b := setup(t, nil)
	tok := b.login(t)
	at := tok.AccessToken

	// One request every 10 s for 14 minutes: the access token is refreshed
	// as it nears expiry, and activity is written about once a minute.
	rt := tok.RefreshToken
	for i := range 6 * 14 {
		b.clock.Advance(10 * time.Second)
		if i%60 == 59 {
			next, err := b.m.Refresh(ctx, rt)
			if err != nil {
				t.Fatal(err)
			}
			at, rt = next.AccessToken, next.RefreshToken
		}
		if _, err := b.m.Authenticate(ctx, at); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if n := b.store.touchCount(); n < 13 || n > 15 {
		t.Errorf("%d activity writes for 84 requests over 14 minutes, want about 14", n)
	}

	// 20 minutes after login, the session is still alive: it was used.
	b.clock.Advance(6 * time.Minute)
	if _, err := b.m.Refresh(ctx, rt); err != nil {
		t.Errorf("refresh of an active session: %v", err)
	}
}

func TestConcurrentRequestsWriteActivityOnce(t *testing.T) {
	ctx := context.Background()
	b := setup(t, nil)
	tok := b.login(t)
	b.clock.Advance(2 * time.Minute)

	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.m.Authenticate(ctx, tok.AccessToken); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := b.store.touchCount(); n != 1 {
		t.Errorf("20 concurrent requests wrote activity %d times, want 1", n)
	}
}

// TestPassiveRequestsAreNotActivity: polling through the middleware, for
// as long as the token is valid, does not keep the session alive. The
// access token outlives the idle timeout here, so only idleness can end it.
func TestPassiveRequestsAreNotActivity(t *testing.T) {
	b := setup(t, func(c *session.Config) {
		c.PassiveRequest = func(r *http.Request) bool { return r.URL.Path == "/poll" }
		c.AccessTTL = time.Hour
	})
	tok := b.login(t)
	h := b.m.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for range 7 {
		b.clock.Advance(2 * time.Minute)
		if code := do(h, "/poll", tok.AccessToken); code != http.StatusOK {
			t.Fatalf("poll: %d", code)
		}
	}
	b.clock.Advance(2 * time.Minute)
	if code := do(h, "/poll", tok.AccessToken); code != http.StatusUnauthorized {
		t.Errorf("polling kept the session alive: %d", code)
	}
	if _, err := b.m.AuthenticatePassive(context.Background(), tok.AccessToken); !errors.Is(err, session.ErrIdle) {
		t.Errorf("after polling only: got %v, want ErrIdle", err)
	}
}

func TestAbsoluteLifetime(t *testing.T) {
	ctx := context.Background()
	b := setup(t, func(c *session.Config) { c.Lifetime = time.Hour })
	tok := b.login(t)
	rt, at := tok.RefreshToken, tok.AccessToken
	for elapsed := time.Duration(0); elapsed < 50*time.Minute; elapsed += 10 * time.Minute {
		b.clock.Advance(10 * time.Minute)
		if _, err := b.m.Authenticate(ctx, at); err != nil {
			t.Fatal(err)
		}
		next, err := b.m.Refresh(ctx, rt)
		if err != nil {
			t.Fatal(err)
		}
		rt, at = next.RefreshToken, next.AccessToken
		if !next.AccessExpiresAt.After(b.clock.Now()) || next.AccessExpiresAt.After(t0.Add(time.Hour)) {
			t.Errorf("access token outlives its session: %v", next.AccessExpiresAt)
		}
	}
	b.clock.Advance(10 * time.Minute)
	if _, err := b.m.Refresh(ctx, rt); !errors.Is(err, session.ErrExpired) {
		t.Errorf("refresh at the absolute end: got %v, want ErrExpired", err)
	}
}

func TestRevocationSeenWithinBound(t *testing.T) {
	ctx := context.Background()
	a := setup(t, nil)
	// A second instance on the same store with its own cache.
	cfg := a.cfg
	cfg.Hooks = session.Hooks{}
	other, err := session.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tok := a.login(t)
	if _, err := other.Authenticate(ctx, tok.AccessToken); err != nil {
		t.Fatal(err)
	}

	if err := a.m.Revoke(ctx, tok.SessionID, session.ReasonLogout); err != nil {
		t.Fatal(err)
	}
	if _, err := a.m.Authenticate(ctx, tok.AccessToken); !errors.Is(err, session.ErrRevoked) {
		t.Errorf("revoking instance: got %v, want ErrRevoked at once", err)
	}
	// The other instance's middleware may still accept within its
	// StateCacheTTL (10 s)…
	h := other.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	seen := time.Duration(0)
	for ; seen <= session.DefaultStateCacheTTL; seen += time.Second {
		if do(h, "/", tok.AccessToken) != http.StatusOK {
			break
		}
		a.clock.Advance(time.Second)
	}
	// …but not past it.
	if seen > session.DefaultStateCacheTTL {
		t.Errorf("other instance still accepts a revoked session after %v", seen)
	}
	if _, err := other.AuthenticatePassive(ctx, tok.AccessToken); !errors.Is(err, session.ErrRevoked) {
		t.Errorf("other instance: got %v, want ErrRevoked", err)
	}

	// With the cache off, the bound is zero.
	cfg.StateCacheTTL = -1
	strict, err := session.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tok2 := a.login(t)
	if _, err := strict.Authenticate(ctx, tok2.AccessToken); err != nil {
		t.Fatal(err)
	}
	if _, err := a.m.RevokeUser(ctx, "app1", "u1", session.ReasonAccountDisabled); err != nil {
		t.Fatal(err)
	}
	if _, err := strict.Authenticate(ctx, tok2.AccessToken); !errors.Is(err, session.ErrRevoked) {
		t.Errorf("uncached instance: got %v, want ErrRevoked at once", err)
	}
}

func TestRevokeUser(t *testing.T) {
	ctx := context.Background()
	b := setup(t, nil)
	s1, s2 := b.login(t), b.login(t)
	n, err := b.m.RevokeUser(ctx, "app1", "u1", session.ReasonPasswordChange)
	if err != nil || n != 2 {
		t.Fatalf("RevokeUser: %d, %v", n, err)
	}
	for _, tok := range []session.Tokens{s1, s2} {
		if _, err := b.m.Refresh(ctx, tok.RefreshToken); !errors.Is(err, session.ErrRevoked) {
			t.Errorf("refresh after password change: %v", err)
		}
	}
	if len(b.events.revoked) != 2 || b.events.revoked[0].Reason != session.ReasonPasswordChange {
		t.Errorf("revoke hooks: %+v", b.events.revoked)
	}
	if live, err := b.m.Sessions(ctx, "app1", "u1"); err != nil || len(live) != 0 {
		t.Errorf("Sessions after RevokeUser: %v, %v", live, err)
	}
	// A session opened after the change works.
	if _, err := b.m.Authenticate(ctx, b.login(t).AccessToken); err != nil {
		t.Error(err)
	}
}

func TestSessionsListsLiveOnly(t *testing.T) {
	ctx := context.Background()
	b := setup(t, nil)
	idle := b.login(t)
	b.clock.Advance(10 * time.Minute)
	live := b.login(t)
	b.clock.Advance(6 * time.Minute)

	got, err := b.m.Sessions(ctx, "app1", "u1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != live.SessionID {
		t.Errorf("Sessions: %+v, want only %s (not the idle %s)", got, live.SessionID, idle.SessionID)
	}
}

func TestStepUp(t *testing.T) {
	ctx := context.Background()
	b := setup(t, nil)
	tok := b.login(t, session.AMRPassword)
	h := b.m.Middleware(session.RequireMFA()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))

	if code := do(h, "/phi", tok.AccessToken); code != http.StatusForbidden {
		t.Errorf("password-only token on an MFA route: %d, want 403", code)
	}
	if err := b.m.StepUp(ctx, tok.SessionID, session.AMROTP); err != nil {
		t.Fatal(err)
	}
	// The old token keeps its old methods; the next one carries the new.
	if code := do(h, "/phi", tok.AccessToken); code != http.StatusForbidden {
		t.Errorf("pre-step-up token: %d, want 403", code)
	}
	at, _, err := b.m.IssueAccessToken(ctx, tok.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if code := do(h, "/phi", at); code != http.StatusOK {
		t.Errorf("stepped-up token: %d, want 200", code)
	}
	c, _ := b.m.Verify(at)
	if want := []string{"mfa", "otp", "pwd"}; !slices.Equal(c.AMR, want) {
		t.Errorf("amr %v, want %v", c.AMR, want)
	}
	next, err := b.m.Refresh(ctx, tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := b.m.Verify(next.AccessToken); !slices.Contains(c.AMR, session.AMRMultiFactor) {
		t.Errorf("refreshed token amr %v lacks mfa", c.AMR)
	}

	if err := b.m.Revoke(ctx, tok.SessionID, session.ReasonLogout); err != nil {
		t.Fatal(err)
	}
	if err := b.m.StepUp(ctx, tok.SessionID, session.AMRHardwareKey); !errors.Is(err, session.ErrRevoked) {
		t.Errorf("step-up of a revoked session: %v", err)
	}
}

func do(h http.Handler, path, token string) int {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

func TestMiddleware(t *testing.T) {
	b := setup(t, nil)
	tok := b.login(t)
	var got *session.Identity
	h := b.m.Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		got, _ = session.FromContext(r.Context())
	}))

	r := httptest.NewRequest(http.MethodGet, "/", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") != "Bearer" {
		t.Errorf("no token: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}

	r.Header.Set("Authorization", "Bearer "+tok.RefreshToken)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Header().Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("refresh token as bearer: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}

	if code := do(h, "/", tok.AccessToken); code != http.StatusOK {
		t.Fatalf("good token: %d", code)
	}
	if got == nil || got.UserID() != "u1" || got.Tenant() != "app1" || got.SessionID() != tok.SessionID ||
		got.Emergency() || !got.HasAMR(session.AMRPassword) || got.TokenID() == "" {
		t.Errorf("identity %+v", got)
	}

	// A store that cannot answer fails closed, and distinctly.
	b.store.mu.Lock()
	b.store.fail = errors.New("db down")
	b.store.mu.Unlock()
	b.clock.Advance(session.DefaultStateCacheTTL)
	if code := do(h, "/", tok.AccessToken); code != http.StatusServiceUnavailable {
		t.Errorf("store down: %d, want 503", code)
	}

	if err := got.Require(session.AMRMultiFactor); !errors.Is(err, session.ErrInsufficientAuth) {
		t.Errorf("Require(mfa) of a password session: %v", err)
	}
	if err := got.Require(session.AMRPassword); err != nil {
		t.Errorf("Require(pwd): %v", err)
	}

	noID := session.RequireAMR(session.AMRPassword)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	if code := do(noID, "/", ""); code != http.StatusUnauthorized {
		t.Errorf("RequireAMR without the middleware: %d, want 401", code)
	}
}

func TestEmergencyAccess(t *testing.T) {
	ctx := context.Background()
	b := setup(t, nil)
	req := session.EmergencyRequest{
		AppID: "app1", UserID: "dr1", Methods: []string{session.AMRPassword},
		Reason: "  patient in ED, on-call physician unavailable  ", GrantedBy: "charge-nurse",
		Duration: 30 * time.Minute,
	}

	bad := req
	bad.Reason = "   "
	if _, _, err := b.m.GrantEmergency(ctx, bad); !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("blank reason: got %v", err)
	}
	bad = req
	bad.Duration = 5 * time.Hour
	if _, _, err := b.m.GrantEmergency(ctx, bad); !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("5 h grant: got %v", err)
	}

	tok, g, err := b.m.GrantEmergency(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if g.Reason != "patient in ED, on-call physician unavailable" || g.SessionID != tok.SessionID || !g.ExpiresAt.Equal(t0.Add(30*time.Minute)) {
		t.Errorf("grant %+v", g)
	}
	if len(b.events.issued) != 1 || b.events.issued[0].GrantID != g.ID || b.events.issued[0].GrantedBy != "charge-nurse" {
		t.Errorf("issue hook %+v", b.events.issued)
	}

	for range 3 {
		b.clock.Advance(time.Minute)
		id, err := b.m.Authenticate(ctx, tok.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if !id.Emergency() || id.EmergencyGrantID() != g.ID {
			t.Errorf("identity not marked as emergency")
		}
	}
	if len(b.events.emergency) != 3 || b.events.emergency[2].SessionID != tok.SessionID {
		t.Errorf("use hook fired %d times, want 3", len(b.events.emergency))
	}

	list, err := b.m.EmergencyGrants(ctx, "app1", t0, t0.Add(time.Hour))
	if err != nil || len(list) != 1 || list[0].ID != g.ID {
		t.Errorf("EmergencyGrants: %+v, %v", list, err)
	}

	// The grant is time-boxed: its session ends with it, however active.
	rt := tok.RefreshToken
	for range 3 {
		b.clock.Advance(8 * time.Minute)
		next, err := b.m.Refresh(ctx, rt)
		if err != nil {
			t.Fatal(err)
		}
		rt = next.RefreshToken
		if _, err := b.m.Authenticate(ctx, next.AccessToken); err != nil {
			t.Fatal(err)
		}
	}
	b.clock.Advance(3 * time.Minute)
	if _, err := b.m.Refresh(ctx, rt); !errors.Is(err, session.ErrExpired) {
		t.Errorf("refresh after the grant's end: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	b := setup(t, nil)
	cases := map[string]func(*session.Config){
		"Store":            func(c *session.Config) { c.Store = nil },
		"Keys":             func(c *session.Config) { c.Keys = nil },
		"Issuer":           func(c *session.Config) { c.Issuer = "" },
		"Audience":         func(c *session.Config) { c.Audience = "" },
		"AccessTTL":        func(c *session.Config) { c.AccessTTL = 2 * time.Hour },
		"Leeway":           func(c *session.Config) { c.Leeway = time.Hour },
		"ActivityInterval": func(c *session.Config) { c.ActivityInterval = time.Hour },
		"EmergencyDuration": func(c *session.Config) {
			c.EmergencyDuration = 5 * time.Hour
		},
	}
	for field, mod := range cases {
		_, err := session.New(withCfg(b.cfg, mod))
		if !errors.Is(err, session.ErrInvalidConfig) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v", field, err)
		}
	}
}

func TestCreateValidation(t *testing.T) {
	b := setup(t, nil)
	for name, p := range map[string]session.CreateParams{
		"no app":     {UserID: "u", Methods: []string{"pwd"}},
		"no user":    {AppID: "a", Methods: []string{"pwd"}},
		"no methods": {AppID: "a", UserID: "u"},
	} {
		if _, err := b.m.Create(context.Background(), p); !errors.Is(err, session.ErrInvalidArgument) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func jwtSeg(t *testing.T, c jwt.MapClaims) string {
	t.Helper()
	s := forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil, c)
	return strings.Split(s, ".")[1]
}

// TestNoTokensInHooksOrErrors: events and error messages carry identifiers
// only, never an access or refresh token.
func TestNoTokensInHooksOrErrors(t *testing.T) {
	ctx := context.Background()
	b := setup(t, nil)
	first := b.login(t)
	b.clock.Advance(time.Minute)
	second, err := b.m.Refresh(ctx, first.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, e := range []error{
		func() error { _, err := b.m.Refresh(ctx, first.RefreshToken); return err }(),
		func() error { _, err := b.m.Refresh(ctx, second.RefreshToken); return err }(),
		func() error { _, err := b.m.Authenticate(ctx, second.AccessToken); return err }(),
		func() error { _, err := b.m.Verify(second.AccessToken + "x"); return err }(),
	} {
		if e == nil {
			t.Fatal("expected an error")
		}
		msgs = append(msgs, e.Error())
	}
	_, _, _ = b.m.GrantEmergency(ctx, session.EmergencyRequest{AppID: "app1", UserID: "u1", Methods: []string{"pwd"}, Reason: "r"})

	b.events.mu.Lock()
	dump := fmt.Sprintf("%+v %+v %+v %+v %v", b.events.reused, b.events.revoked, b.events.issued, b.events.emergency, msgs)
	b.events.mu.Unlock()
	if len(b.events.reused) == 0 || len(b.events.revoked) == 0 || len(b.events.issued) == 0 {
		t.Fatalf("hooks did not fire: %s", dump)
	}
	for _, tok := range []string{first.RefreshToken, second.RefreshToken, first.AccessToken, second.AccessToken} {
		for _, part := range strings.Split(tok, ".") {
			if len(part) > 8 && strings.Contains(dump, part) {
				t.Errorf("a token (or part of one) appears in hooks or errors: %s", dump)
			}
		}
	}
}

// racingStore revokes the session in the middle of a rotation, after the
// store has read it live: the rotation's stale read must not revive the
// session in the revoking instance's cache.
type racingStore struct {
	session.Store
	m *session.Manager
}

func (r *racingStore) RotateRefresh(ctx context.Context, p session.RotateParams) (session.RotateResult, error) {
	res, err := r.Store.RotateRefresh(ctx, p)
	if err == nil && res.Rotated {
		if err := r.m.Revoke(ctx, res.Session.ID, session.ReasonAdmin); err != nil {
			return res, err
		}
	}
	return res, err
}

func TestRevocationBeatsRacingRotation(t *testing.T) {
	ctx := context.Background()
	rs := &racingStore{}
	b := setup(t, func(c *session.Config) {
		rs.Store = c.Store
		c.Store = rs
	})
	rs.m = b.m
	tok := b.login(t)
	b.clock.Advance(time.Minute)

	next, err := b.m.Refresh(ctx, tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	// Passive, so no activity write re-reads the store: only the cache
	// decides.
	if _, err := b.m.AuthenticatePassive(ctx, next.AccessToken); !errors.Is(err, session.ErrRevoked) {
		t.Errorf("token from a rotation that raced a revocation: got %v, want ErrRevoked", err)
	}
}
