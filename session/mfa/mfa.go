package mfa

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"
)

// Errors returned by the package. Stores return them too (wrapped or not),
// so callers can branch with errors.Is whichever store is wired.
var (
	// ErrNotEnrolled means the account has no enrolment in the state the
	// operation needs: no enrolment at all, none pending for a
	// confirmation, or none active for a verification.
	ErrNotEnrolled = errors.New("mfa: not enrolled")
	// ErrAlreadyEnrolled means the account already has an active
	// enrolment; remove it with [Authenticator.Disable] before enrolling
	// again.
	ErrAlreadyEnrolled = errors.New("mfa: already enrolled")
	// ErrEnrolmentExpired means the pending enrolment was not confirmed in
	// time; start a new one.
	ErrEnrolmentExpired = errors.New("mfa: enrolment expired")
	// ErrInvalidCode means the code is wrong, malformed, or (for a recovery
	// code) unknown or already used. Every failed verification matches it.
	ErrInvalidCode = errors.New("mfa: invalid code")
	// ErrReplayed means the TOTP code is right but its time step was
	// already used (RFC 6238 §5.2). An error that matches ErrReplayed also
	// matches ErrInvalidCode.
	ErrReplayed = errors.New("mfa: code already used")
	// ErrNoPolicy is returned by a [PolicyStore] for a tenant that has no
	// policy of its own; the [Authenticator] then applies its default.
	ErrNoPolicy = errors.New("mfa: no policy for tenant")
	// ErrInvalidConfig means a [Config] field is missing or out of range;
	// the message names the field.
	ErrInvalidConfig = errors.New("mfa: invalid config")
	// ErrUnseal means a sealed secret did not open. It says nothing
	// more, on purpose.
	ErrUnseal = errors.New("mfa: cannot open sealed secret")
	// ErrInvalidInput means a tenant or account identifier is empty or too
	// long.
	ErrInvalidInput = errors.New("mfa: invalid input")
)

// errReplayed is what a replay returns: it matches both ErrReplayed and
// ErrInvalidCode.
var errReplayed = fmt.Errorf("%w: %w", ErrInvalidCode, ErrReplayed)

// Authentication method references (RFC 8176 §2) that the package speaks.
const (
	// AMRPassword is "pwd": a password.
	AMRPassword = "pwd"
	// AMROTP is "otp": a one-time password. Both a TOTP code and a
	// recovery code are one-time passwords.
	AMROTP = "otp"
	// AMRMFA is "mfa": authentication by more than one factor.
	AMRMFA = "mfa"
)

// Defaults applied by [New] to zero [Config] fields.
const (
	// DefaultPeriod is the TOTP time step (RFC 6238 §5.2 recommends 30 s).
	DefaultPeriod = 30 * time.Second
	// DefaultDigits is the code length most authenticator apps show.
	DefaultDigits = 6
	// DefaultSecretSize is the TOTP secret size in bytes: 160 bits, the
	// HMAC-SHA1 output size that RFC 4226 §4 recommends.
	DefaultSecretSize = 20
	// DefaultPendingTTL is how long an enrolment may wait for its
	// confirming code.
	DefaultPendingTTL = 15 * time.Minute
	// DefaultRecoveryCodes is how many recovery codes a set holds.
	DefaultRecoveryCodes = 10
	// DefaultGracePeriod is how long after account creation an account
	// may sign in without MFA under a policy that requires it: 7 days, as
	// the gap analysis this module answers asks (gap 5.2).
	DefaultGracePeriod = 7 * 24 * time.Hour
	// DefaultQRSize is the width and height in pixels of the QR code PNG.
	DefaultQRSize = 256
)

// maxIDLen bounds tenant and account identifiers.
const maxIDLen = 256

// Config configures an [Authenticator]. Zero fields take the documented
// defaults; [New] rejects values out of range with an error that names the
// field and matches [ErrInvalidConfig].
type Config struct {
	// Store holds enrolments and recovery codes. Required.
	Store Store
	// Sealer encrypts TOTP secrets before they reach the Store. Required.
	Sealer Sealer
	// Policies holds per-tenant enforcement policies. Nil means every
	// tenant gets the default policy (the DefaultPolicy field).
	Policies PolicyStore
	// DefaultPolicy applies to tenants without a policy of their own. Nil
	// means MFA required with a 7-day grace period ([DefaultGracePeriod]).
	DefaultPolicy *Policy
	// Issuer names the service in authenticator apps. Required; it must
	// not contain a colon (the otpauth label separator).
	Issuer string
	// Algorithm is the TOTP HMAC hash for new enrolments. Defaults to
	// SHA1, the only one every authenticator app supports.
	Algorithm Algorithm
	// Digits is the code length for new enrolments, 6 or 8. Defaults to 6.
	Digits int
	// Period is the TOTP time step for new enrolments, a whole number of
	// seconds. Defaults to 30 s.
	Period time.Duration
	// SecretSize is the TOTP secret size in bytes, at least 20 (160 bits).
	// Defaults to 20.
	SecretSize int
	// PendingTTL is how long an enrolment waits for its confirming code.
	// Defaults to 15 minutes.
	PendingTTL time.Duration
	// RecoveryCodes is the size of a recovery code set. Defaults to 10.
	RecoveryCodes int
	// QRSize is the QR code PNG's width and height in pixels. Defaults to
	// 256.
	QRSize int
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
	// Rand is the source of secrets and recovery codes. Defaults to
	// crypto/rand.Reader; tests may fix it.
	Rand io.Reader
	// OnEvent, when not nil, is called synchronously after each
	// enrolment, verification (passed, failed or replayed), regeneration
	// and removal, to feed an audit log or an alert. It must be quick and
	// safe for concurrent use. Events carry identifiers, never codes.
	OnEvent func(Event)
}

// Authenticator enrols accounts in TOTP, verifies TOTP and recovery codes,
// and answers the enforcement question for a tenant's account. It is safe
// for concurrent use, also by several processes sharing one Store: the
// replay check is the Store's atomic step advance.
type Authenticator struct {
	cfg    Config
	policy Policy
}

// New returns an Authenticator for cfg.
func New(cfg Config) (*Authenticator, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: Store is required", ErrInvalidConfig)
	}
	if cfg.Sealer == nil {
		return nil, fmt.Errorf("%w: Sealer is required", ErrInvalidConfig)
	}
	if cfg.Issuer == "" {
		return nil, fmt.Errorf("%w: Issuer is required", ErrInvalidConfig)
	}
	for _, r := range cfg.Issuer {
		if r == ':' {
			return nil, fmt.Errorf("%w: Issuer must not contain ':'", ErrInvalidConfig)
		}
	}
	if cfg.Algorithm == "" {
		cfg.Algorithm = SHA1
	}
	if _, err := cfg.Algorithm.otp(); err != nil {
		return nil, fmt.Errorf("%w: Algorithm: %w", ErrInvalidConfig, err)
	}
	if cfg.Digits == 0 {
		cfg.Digits = DefaultDigits
	}
	if cfg.Digits != 6 && cfg.Digits != 8 {
		return nil, fmt.Errorf("%w: Digits must be 6 or 8", ErrInvalidConfig)
	}
	if cfg.Period == 0 {
		cfg.Period = DefaultPeriod
	}
	if cfg.Period < time.Second || cfg.Period%time.Second != 0 {
		return nil, fmt.Errorf("%w: Period must be a positive whole number of seconds", ErrInvalidConfig)
	}
	if cfg.SecretSize == 0 {
		cfg.SecretSize = DefaultSecretSize
	}
	if cfg.SecretSize < DefaultSecretSize || cfg.SecretSize > 64 {
		return nil, fmt.Errorf("%w: SecretSize must be between 20 and 64 bytes", ErrInvalidConfig)
	}
	if cfg.PendingTTL == 0 {
		cfg.PendingTTL = DefaultPendingTTL
	}
	if cfg.PendingTTL < 0 {
		return nil, fmt.Errorf("%w: PendingTTL must be positive", ErrInvalidConfig)
	}
	if cfg.RecoveryCodes == 0 {
		cfg.RecoveryCodes = DefaultRecoveryCodes
	}
	if cfg.RecoveryCodes < 1 || cfg.RecoveryCodes > 100 {
		return nil, fmt.Errorf("%w: RecoveryCodes must be between 1 and 100", ErrInvalidConfig)
	}
	if cfg.QRSize == 0 {
		cfg.QRSize = DefaultQRSize
	}
	if cfg.QRSize < 64 || cfg.QRSize > 2048 {
		return nil, fmt.Errorf("%w: QRSize must be between 64 and 2048", ErrInvalidConfig)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}

	policy := DefaultPolicy()
	if cfg.DefaultPolicy != nil {
		policy = *cfg.DefaultPolicy
	}
	if err := policy.validate(); err != nil {
		return nil, fmt.Errorf("%w: DefaultPolicy: %w", ErrInvalidConfig, err)
	}
	return &Authenticator{cfg: cfg, policy: policy}, nil
}

// Method is how a verification succeeded.
type Method string

// The verification methods.
const (
	// MethodTOTP is a TOTP code from an authenticator app.
	MethodTOTP Method = "totp"
	// MethodRecoveryCode is a single-use recovery code.
	MethodRecoveryCode Method = "recovery_code"
)

// Result describes a successful verification.
type Result struct {
	// Method is how the account authenticated.
	Method Method
	// At is when the verification was made (the Authenticator's clock).
	At time.Time
	// Step is the TOTP time step the code belonged to; zero for a recovery
	// code.
	Step int64
	// RecoveryCodesLeft is how many unused recovery codes remain after a
	// recovery code was used; zero for a TOTP code.
	RecoveryCodesLeft int
}

// AMR returns the RFC 8176 method references this verification adds to
// a session: "otp" for a TOTP code and for a recovery code alike (both
// are one-time passwords). Combine it with the password's "pwd" through
// [CombineAMR] to get "mfa".
func (r Result) AMR() []string { return []string{AMROTP} }

// factor groups RFC 8176 methods by the factor they prove: something you
// know, have or are. Methods outside the table count as no factor.
var factor = map[string]int{
	"pwd": 1, "pin": 1, "kba": 1,
	"otp": 2, "hwk": 2, "swk": 2, "sms": 2, "tel": 2, "sc": 2,
	"fpt": 3, "face": 3, "iris": 3, "retina": 3, "vbm": 3,
}

// CombineAMR returns the union of the method references, in first-seen
// order without duplicates, with "mfa" appended when they prove at least
// two different factors (pwd and otp do; pwd and pin do not). It does not
// change its arguments.
func CombineAMR(sets ...[]string) []string {
	var out []string
	seen := map[string]bool{}
	factors := map[int]bool{}
	for _, set := range sets {
		for _, m := range set {
			if m == AMRMFA || seen[m] {
				continue
			}
			seen[m] = true
			out = append(out, m)
			if f, ok := factor[m]; ok {
				factors[f] = true
			}
		}
	}
	if len(factors) >= 2 {
		out = append(out, AMRMFA)
	}
	return out
}

func checkIDs(tenantID, accountID string) error {
	if tenantID == "" || len(tenantID) > maxIDLen {
		return fmt.Errorf("%w: tenant id must be 1 to %d bytes", ErrInvalidInput, maxIDLen)
	}
	if accountID == "" || len(accountID) > maxIDLen {
		return fmt.Errorf("%w: account id must be 1 to %d bytes", ErrInvalidInput, maxIDLen)
	}
	return nil
}

// Status reports an account's enrolment.
type Status struct {
	// Enrolled is true when the account has an active TOTP enrolment.
	Enrolled bool
	// Pending is true when an enrolment waits for its confirming code.
	Pending bool
	// ActivatedAt is when the active enrolment was confirmed.
	ActivatedAt time.Time
	// RecoveryCodesLeft is how many unused recovery codes remain.
	RecoveryCodesLeft int
}

// Status returns the account's enrolment status.
func (a *Authenticator) Status(ctx context.Context, tenantID, accountID string) (Status, error) {
	if err := checkIDs(tenantID, accountID); err != nil {
		return Status{}, err
	}
	e, err := a.cfg.Store.Enrolment(ctx, tenantID, accountID)
	if errors.Is(err, ErrNotEnrolled) {
		return Status{}, nil
	}
	if err != nil {
		return Status{}, fmt.Errorf("mfa: load enrolment: %w", err)
	}
	if e.State != StateActive {
		return Status{Pending: true}, nil
	}

	left, err := a.cfg.Store.RecoveryCodesLeft(ctx, tenantID, accountID)
	if err != nil {
		return Status{}, fmt.Errorf("mfa: count recovery codes: %w", err)
	}
	return Status{Enrolled: true, ActivatedAt: e.ActivatedAt, RecoveryCodesLeft: left}, nil
}

// Disable removes the account's enrolment, pending or active, and its
// recovery codes. The application should demand a fresh verification
// (step-up) before calling it. Disabling an account without an enrolment
// is not an error.
func (a *Authenticator) Disable(ctx context.Context, tenantID, accountID string) error {
	if err := checkIDs(tenantID, accountID); err != nil {
		return err
	}
	if err := a.cfg.Store.Delete(ctx, tenantID, accountID); err != nil {
		return fmt.Errorf("mfa: delete enrolment: %w", err)
	}
	a.emit(Event{Kind: EventDisabled, TenantID: tenantID, AccountID: accountID, At: a.cfg.Now()})
	return nil
}
