package session

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TokenType is the typ header of every access token (RFC 9068). A JWT of
// another type, such as an ID token signed with the same key, is refused.
const TokenType = "at+jwt"

// Claims are the claims of a verified access token.
type Claims struct {
	// Issuer, Subject (the user id), Audience, ID (jti) and the times are
	// the registered claims.
	Issuer    string
	Subject   string
	Audience  []string
	ID        string
	IssuedAt  time.Time
	ExpiresAt time.Time
	// Tenant is the application (tenant) id, claim tid.
	Tenant string
	// SessionID is the server-side session the token belongs to, claim sid.
	SessionID string
	// AMR are the authentication methods of the session when the token was
	// issued (RFC 8176), claim amr.
	AMR []string
	// EmergencyGrantID is the break-glass grant the session was opened
	// under, claim emg; empty for an ordinary session.
	EmergencyGrantID string
}

// wireClaims is the JSON form of an access token's claims. It implements
// jwt.Claims itself rather than embedding jwt.RegisteredClaims: plain
// integer times and an aud array decode in one pass, where the library's
// NumericDate and ClaimStrings each run a nested JSON decode. It accepts
// only what this package issues: integer exp, iat and nbf, and aud as an
// array.
type wireClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  []string `json:"aud"`
	ExpiresAt *int64   `json:"exp"`
	IssuedAt  *int64   `json:"iat"`
	NotBefore *int64   `json:"nbf,omitempty"`
	ID        string   `json:"jti"`
	Tenant    string   `json:"tid"`
	SessionID string   `json:"sid"`
	AMR       []string `json:"amr,omitempty"`
	Emergency string   `json:"emg,omitempty"`
}

func numericDate(sec *int64) *jwt.NumericDate {
	if sec == nil {
		return nil
	}
	return jwt.NewNumericDate(time.Unix(*sec, 0))
}

// GetExpirationTime implements jwt.Claims.
func (c *wireClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	return numericDate(c.ExpiresAt), nil
}

// GetIssuedAt implements jwt.Claims.
func (c *wireClaims) GetIssuedAt() (*jwt.NumericDate, error) { return numericDate(c.IssuedAt), nil }

// GetNotBefore implements jwt.Claims.
func (c *wireClaims) GetNotBefore() (*jwt.NumericDate, error) { return numericDate(c.NotBefore), nil }

// GetIssuer implements jwt.Claims.
func (c *wireClaims) GetIssuer() (string, error) { return c.Issuer, nil }

// GetSubject implements jwt.Claims.
func (c *wireClaims) GetSubject() (string, error) { return c.Subject, nil }

// GetAudience implements jwt.Claims.
func (c *wireClaims) GetAudience() (jwt.ClaimStrings, error) { return c.Audience, nil }

// Validate is called by the jwt parser after the registered claims pass:
// it makes the claims this package relies on mandatory.
func (c *wireClaims) Validate() error {
	switch {
	case c.Subject == "":
		return errors.New("sub missing")
	case c.Tenant == "":
		return errors.New("tid missing")
	case c.SessionID == "":
		return errors.New("sid missing")
	case c.ID == "":
		return errors.New("jti missing")
	case c.IssuedAt == nil:
		return errors.New("iat missing")
	}
	return nil
}

// signer signs and verifies access tokens with one key ring. It is
// replaced whole when the keys rotate, cache included.
type signer struct {
	ring   *KeyRing
	parser *jwt.Parser
	leeway time.Duration
	now    func() time.Time

	// verified remembers tokens that passed full verification, by their
	// exact text, so a client sending the same access token on every
	// request pays for the signature check once. Only a token string that
	// was itself verified can hit; an entry is used only until the token's
	// exp (plus leeway), the same rule the parser applies.
	mu       sync.RWMutex
	verified map[string]Claims
	max      int
}

func newSigner(ring *KeyRing, issuer, audience string, leeway time.Duration, now func() time.Time, cacheSize int) *signer {
	p := jwt.NewParser(
		jwt.WithValidMethods(ring.Algorithms()),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
		jwt.WithStrictDecoding(),
	)
	s := &signer{ring: ring, parser: p, leeway: leeway, now: now, max: cacheSize}
	if cacheSize > 0 {
		s.verified = make(map[string]Claims)
	}
	return s
}

// keyfunc picks the verification key by kid, and refuses a token whose
// type or algorithm does not match that key: an HS256 token can never be
// checked against an Ed25519 public key, whatever the header says.
func (s *signer) keyfunc(t *jwt.Token) (any, error) {
	if typ, _ := t.Header["typ"].(string); typ != TokenType && typ != "application/"+TokenType {
		return nil, errors.New("wrong typ")
	}
	kid, _ := t.Header["kid"].(string)
	k, ok := s.ring.byID[kid]
	if !ok {
		return nil, errors.New("unknown kid")
	}
	if t.Method == nil || t.Method.Alg() != k.alg {
		return nil, errors.New("algorithm does not match key")
	}
	return k.verify, nil
}

// sign returns a signed access token for c.
func (s *signer) sign(c *wireClaims) (string, error) {
	k := s.ring.signing
	t := jwt.NewWithClaims(k.method, c)
	t.Header["typ"] = TokenType
	t.Header["kid"] = k.id
	out, err := t.SignedString(k.sign)
	if err != nil {
		return "", fmt.Errorf("session: sign access token: %w", err)
	}
	return out, nil
}

// verify checks an access token's signature and claims, or finds it among
// the tokens already verified.
func (s *signer) verify(token string) (Claims, error) {
	if s.max > 0 {
		s.mu.RLock()
		c, ok := s.verified[token]
		s.mu.RUnlock()
		if ok {
			if !s.now().Before(c.ExpiresAt.Add(s.leeway)) {
				return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, ErrTokenExpired)
			}
			c.AMR = slices.Clone(c.AMR)
			c.Audience = slices.Clone(c.Audience)
			return c, nil
		}
	}

	c, err := s.verifyFull(token)
	if err != nil || s.max <= 0 {
		return c, err
	}
	s.remember(token, c)
	return c, nil
}

// remember caches a verified token, first dropping expired entries, or
// everything, when the cache is full.
func (s *signer) remember(token string, c Claims) {
	c.AMR = slices.Clone(c.AMR)
	c.Audience = slices.Clone(c.Audience)
	s.mu.Lock()
	defer s.mu.Unlock()

	if len(s.verified) >= s.max {
		now := s.now()
		for k, v := range s.verified {
			if now.After(v.ExpiresAt.Add(s.leeway)) {
				delete(s.verified, k)
			}
		}
		if len(s.verified) >= s.max {
			// TODO: evict the oldest instead; clearing costs one full
			// verification per live token.
			clear(s.verified)
		}
	}
	s.verified[token] = c
}

// verifyFull parses and checks a token with the jwt library.
func (s *signer) verifyFull(token string) (Claims, error) {
	var wc wireClaims
	_, err := s.parser.ParseWithClaims(token, &wc, s.keyfunc)
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, ErrTokenExpired)
		}
		return Claims{}, ErrInvalidToken
	}
	c := Claims{
		Issuer:           wc.Issuer,
		Subject:          wc.Subject,
		Audience:         wc.Audience,
		ID:               wc.ID,
		Tenant:           wc.Tenant,
		SessionID:        wc.SessionID,
		AMR:              wc.AMR,
		EmergencyGrantID: wc.Emergency,
		IssuedAt:         time.Unix(*wc.IssuedAt, 0).UTC(),
		ExpiresAt:        time.Unix(*wc.ExpiresAt, 0).UTC(),
	}
	return c, nil
}

// randomID returns n random bytes, base64url encoded without padding.
func randomID(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("session: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
