package mfa

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// b32 is the secret encoding of otpauth URLs: RFC 4648 base32, unpadded.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Setup is what an enrolment shows the user once: the otpauth URL, the
// same as a QR code, and the secret for manual entry. None of it is stored
// in the clear; it is never shown again.
type Setup struct {
	// URL is the otpauth:// key URI.
	URL string
	// Secret is the base32 secret, for typing into an app by hand.
	Secret string
	// QRCodePNG is a PNG image of URL as a QR code.
	QRCodePNG []byte
	// ExpiresAt is when the enrolment lapses unless confirmed.
	ExpiresAt time.Time
}

// String describes the Setup without its secret, its URL (which holds the
// secret) or its QR code, so a Setup that reaches a log gives nothing
// away. The fields themselves are unchanged.
func (s Setup) String() string {
	return fmt.Sprintf("mfa.Setup(expires %s, secret redacted)", s.ExpiresAt.Format(time.RFC3339))
}

// GoString is String, for the %#v verb.
func (s Setup) GoString() string { return s.String() }

// LogValue implements [slog.LogValuer]: the expiry only.
func (s Setup) LogValue() slog.Value {
	return slog.GroupValue(slog.Time("expires_at", s.ExpiresAt))
}

// EnrolParams are the arguments of [Authenticator.Enrol].
type EnrolParams struct {
	// TenantID and AccountID identify the account.
	TenantID, AccountID string
	// Label is the account name an authenticator app shows next to the
	// Issuer, such as an e-mail address. Defaults to AccountID.
	Label string
}

// Enrol starts a TOTP enrolment: it makes a fresh secret, stores it sealed
// as a pending enrolment (replacing an earlier pending one), and returns
// the Setup to show the user. The enrolment verifies nothing until
// [Authenticator.Confirm] accepts a first code. It returns
// ErrAlreadyEnrolled if the account has an active enrolment.
func (a *Authenticator) Enrol(ctx context.Context, p EnrolParams) (Setup, error) {
	if err := checkIDs(p.TenantID, p.AccountID); err != nil {
		return Setup{}, err
	}
	label := p.Label
	if label == "" {
		label = p.AccountID
	}
	if strings.ContainsRune(label, ':') {
		return Setup{}, fmt.Errorf("%w: label must not contain ':'", ErrInvalidInput)
	}

	secret := make([]byte, a.cfg.SecretSize)
	if _, err := io.ReadFull(a.cfg.Rand, secret); err != nil {
		return Setup{}, fmt.Errorf("mfa: make secret: %w", err)
	}
	var rawID [16]byte
	if _, err := io.ReadFull(a.cfg.Rand, rawID[:]); err != nil {
		return Setup{}, fmt.Errorf("mfa: make enrolment id: %w", err)
	}
	id := hex.EncodeToString(rawID[:])

	alg, _ := a.cfg.Algorithm.otp()
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      a.cfg.Issuer,
		AccountName: label,
		Period:      uint(a.cfg.Period / time.Second),
		Secret:      secret,
		Digits:      otp.Digits(a.cfg.Digits),
		Algorithm:   alg,
	})
	if err != nil {
		return Setup{}, fmt.Errorf("mfa: make key: %w", err)
	}
	img, err := key.Image(a.cfg.QRSize, a.cfg.QRSize)
	if err != nil {
		return Setup{}, fmt.Errorf("mfa: make QR code: %w", err)
	}
	var qr bytes.Buffer
	if err := png.Encode(&qr, img); err != nil {
		return Setup{}, fmt.Errorf("mfa: encode QR code: %w", err)
	}

	sealed, err := a.cfg.Sealer.Seal(ctx, Binding{p.TenantID, p.AccountID, id}, secret)
	if err != nil {
		return Setup{}, fmt.Errorf("mfa: seal secret: %w", err)
	}
	now := a.cfg.Now()
	err = a.cfg.Store.SavePending(ctx, Enrolment{
		TenantID:      p.TenantID,
		AccountID:     p.AccountID,
		ID:            id,
		State:         StatePending,
		SealedSecret:  sealed,
		Algorithm:     a.cfg.Algorithm,
		Digits:        a.cfg.Digits,
		PeriodSeconds: int(a.cfg.Period / time.Second),
		CreatedAt:     now,
	})
	if err != nil {
		return Setup{}, fmt.Errorf("mfa: save enrolment: %w", err)
	}
	a.emit(Event{Kind: EventEnrolmentStarted, TenantID: p.TenantID, AccountID: p.AccountID, At: now})
	return Setup{
		URL:       key.URL(),
		Secret:    key.Secret(),
		QRCodePNG: qr.Bytes(),
		ExpiresAt: now.Add(a.cfg.PendingTTL),
	}, nil
}

// CodeParams are the arguments of [Authenticator.Confirm],
// [Authenticator.Verify] and [Authenticator.VerifyRecoveryCode].
type CodeParams struct {
	// TenantID and AccountID identify the account.
	TenantID, AccountID string
	// Code is what the user typed. Spaces and, for recovery codes,
	// hyphens are ignored.
	Code string
}

// Confirmation is the outcome of a successful [Authenticator.Confirm].
type Confirmation struct {
	// Result describes the verification of the confirming code, which
	// counts as a TOTP verification.
	Result
	// RecoveryCodes is the account's first recovery code set, to show the
	// user once. Only their hashes are stored.
	RecoveryCodes []string
}

// String describes the Confirmation without its recovery codes, so one
// that reaches a log gives nothing away. The fields are unchanged.
func (c Confirmation) String() string {
	return fmt.Sprintf("mfa.Confirmation(method %s, step %d, %d recovery codes redacted)", c.Method, c.Step, len(c.RecoveryCodes))
}

// GoString is String, for the %#v verb.
func (c Confirmation) GoString() string { return c.String() }

// LogValue implements [slog.LogValuer]: the method, the step and how many
// recovery codes were issued.
func (c Confirmation) LogValue() slog.Value {
	return slog.GroupValue(slog.String("method", string(c.Method)), slog.Int64("step", c.Step),
		slog.Int("recovery_codes", len(c.RecoveryCodes)))
}

// Confirm checks a first code against the account's pending enrolment
// and, if it is right, makes the enrolment active and issues a recovery
// code set. It returns ErrNotEnrolled without a pending enrolment,
// ErrEnrolmentExpired after the pending TTL, and ErrInvalidCode for a
// wrong code.
func (a *Authenticator) Confirm(ctx context.Context, p CodeParams) (Confirmation, error) {
	if err := checkIDs(p.TenantID, p.AccountID); err != nil {
		return Confirmation{}, err
	}
	e, err := a.cfg.Store.Enrolment(ctx, p.TenantID, p.AccountID)
	if err != nil {
		return Confirmation{}, fmt.Errorf("mfa: load enrolment: %w", err)
	}
	if e.State != StatePending {
		return Confirmation{}, fmt.Errorf("%w: no pending enrolment", ErrNotEnrolled)
	}
	now := a.cfg.Now()
	if !now.Before(e.CreatedAt.Add(a.cfg.PendingTTL)) {
		return Confirmation{}, ErrEnrolmentExpired
	}

	step, err := a.match(ctx, e, p.Code, now)
	if err != nil {
		a.emitFailure(err, p.TenantID, p.AccountID, MethodTOTP, now)
		return Confirmation{}, err
	}

	codes, hashes, err := a.newRecoveryCodes(p.TenantID, p.AccountID)
	if err != nil {
		return Confirmation{}, err
	}
	err = a.cfg.Store.Activate(ctx, ActivateParams{
		TenantID:       p.TenantID,
		AccountID:      p.AccountID,
		EnrolmentID:    e.ID,
		Step:           step,
		At:             now,
		RecoveryHashes: hashes,
	})
	if err != nil {
		return Confirmation{}, fmt.Errorf("mfa: activate enrolment: %w", err)
	}
	a.emit(Event{Kind: EventEnrolled, TenantID: p.TenantID, AccountID: p.AccountID, Method: MethodTOTP, At: now})
	return Confirmation{
		Result:        Result{Method: MethodTOTP, At: now, Step: step},
		RecoveryCodes: codes,
	}, nil
}

// Verify checks a TOTP code against the account's active enrolment. A code
// of the current time step or of one step either side is accepted (skew of
// one step), and only if its step is later than every step accepted
// before: a code, once used, never passes again, even when two requests
// race with it. It returns ErrNotEnrolled without an active enrolment,
// ErrInvalidCode for a wrong code, and an error matching both
// ErrInvalidCode and ErrReplayed for a code already used.
//
// Verify does not throttle: six digits are guessable at scale, so the
// application must rate-limit failures per account (the lockout package).
func (a *Authenticator) Verify(ctx context.Context, p CodeParams) (Result, error) {
	if err := checkIDs(p.TenantID, p.AccountID); err != nil {
		return Result{}, err
	}
	e, err := a.cfg.Store.Enrolment(ctx, p.TenantID, p.AccountID)
	if err != nil {
		return Result{}, fmt.Errorf("mfa: load enrolment: %w", err)
	}
	if e.State != StateActive {
		return Result{}, fmt.Errorf("%w: enrolment not confirmed", ErrNotEnrolled)
	}
	now := a.cfg.Now()

	step, err := a.match(ctx, e, p.Code, now)
	if err != nil {
		a.emitFailure(err, p.TenantID, p.AccountID, MethodTOTP, now)
		return Result{}, err
	}

	err = a.cfg.Store.AdvanceStep(ctx, AdvanceParams{
		TenantID:    p.TenantID,
		AccountID:   p.AccountID,
		EnrolmentID: e.ID,
		Step:        step,
		At:          now,
	})
	if errors.Is(err, ErrReplayed) {
		a.emitFailure(errReplayed, p.TenantID, p.AccountID, MethodTOTP, now)
		return Result{}, errReplayed
	}
	if err != nil {
		return Result{}, fmt.Errorf("mfa: record time step: %w", err)
	}
	a.emit(Event{Kind: EventVerified, TenantID: p.TenantID, AccountID: p.AccountID, Method: MethodTOTP, At: now})
	return Result{Method: MethodTOTP, At: now, Step: step}, nil
}

// match returns the latest time step within the skew window, later than
// e.LastStep for an active enrolment, whose code equals code. The latest,
// because a code may by chance be the code of two steps in the window:
// recording the earlier one would let the same code pass again for the
// later one (RFC 6238 §5.2 forbids a second acceptance). Each
// candidate step is checked through totp.ValidateCustom with a skew of
// zero at that step's time, so the comparison is pquerna/otp's
// constant-time one and the step that matched is known. All candidates
// are checked whatever the outcome.
func (a *Authenticator) match(ctx context.Context, e Enrolment, code string, now time.Time) (int64, error) {
	// The stored parameters are checked as New checks the configured
	// ones: a row edited to one digit must not turn a code into a
	// one-in-ten guess.
	if e.Digits != 6 && e.Digits != 8 {
		return 0, fmt.Errorf("mfa: stored enrolment: %d digits", e.Digits)
	}
	code = strings.ReplaceAll(code, " ", "")
	if len(code) != e.Digits || strings.Trim(code, "0123456789") != "" {
		return 0, fmt.Errorf("%w: want %d digits", ErrInvalidCode, e.Digits)
	}
	alg, err := e.Algorithm.otp()
	if err != nil {
		return 0, fmt.Errorf("mfa: stored enrolment: %w", err)
	}
	if e.PeriodSeconds <= 0 {
		return 0, fmt.Errorf("mfa: stored enrolment: period %d", e.PeriodSeconds)
	}

	secret, err := a.cfg.Sealer.Open(ctx, Binding{e.TenantID, e.AccountID, e.ID}, e.SealedSecret)
	if err != nil {
		return 0, fmt.Errorf("mfa: open secret: %w", ErrUnseal)
	}
	encoded := b32.EncodeToString(secret)
	clear(secret)

	opts := totp.ValidateOpts{Period: uint(e.PeriodSeconds), Digits: otp.Digits(e.Digits), Algorithm: alg}
	period := int64(e.PeriodSeconds)
	current := floorDiv(now.Unix(), period)
	found, used := int64(-1), false
	for step := current - skew; step <= current+skew; step++ {
		if step < 0 {
			continue
		}
		ok, err := totp.ValidateCustom(code, encoded, time.Unix(step*period, 0), opts)
		if err != nil {
			return 0, fmt.Errorf("%w: %v", ErrInvalidCode, err)
		}
		switch {
		case !ok:
		case e.State == StateActive && step <= e.LastStep:
			used = true
		default:
			found = step
		}
	}
	switch {
	case found >= 0:
		return found, nil
	case used:
		return 0, errReplayed
	}
	return 0, ErrInvalidCode
}

// skew is how many time steps either side of the current one are accepted.
const skew = 1

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
