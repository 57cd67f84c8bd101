package mfa

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/chatsdk/compliance/internal/canon"
)

// recoveryBytes is the entropy of one recovery code: 80 bits, written as
// 16 base32 characters.
const recoveryBytes = 10

// recoveryAlphabet is RFC 4648 base32 in lower case.
var recoveryEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// recoveryDomain is the canonical encoding's domain for a code's hash.
const recoveryDomain = "mfa.recovery-code.v1"

// HashRecoveryCode returns the hash under which a recovery code is stored
// for an account: SHA-256 over the canonical encoding of the tenant, the
// account and the normalised code. A code carries 80 random bits, so a
// fast hash suffices (no guessing attack on 2^80 values is practical), and
// binding the account means a hash copied to another account matches
// nothing there. Normalising ignores case, spaces and hyphens. It is
// exported for stores and tools that import codes; the Authenticator
// calls it itself.
func HashRecoveryCode(tenantID, accountID, code string) []byte {
	h := sha256.Sum256(canon.Encode(recoveryDomain,
		canon.String(tenantID), canon.String(accountID), canon.String(normaliseRecoveryCode(code))))
	return h[:]
}

func normaliseRecoveryCode(code string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == ' ':
			return -1
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return r
	}, code)
}

// newRecoveryCodes returns a fresh set of codes, formatted for display as
// four groups of four characters, and their hashes.
func (a *Authenticator) newRecoveryCodes(tenantID, accountID string) ([]string, [][]byte, error) {
	codes := make([]string, a.cfg.RecoveryCodes)
	hashes := make([][]byte, a.cfg.RecoveryCodes)
	var raw [recoveryBytes]byte
	for i := range codes {
		if _, err := io.ReadFull(a.cfg.Rand, raw[:]); err != nil {
			return nil, nil, fmt.Errorf("mfa: make recovery code: %w", err)
		}
		s := recoveryEncoding.EncodeToString(raw[:])
		codes[i] = s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
		hashes[i] = HashRecoveryCode(tenantID, accountID, s)
	}
	return codes, hashes, nil
}

// VerifyRecoveryCode uses one of the account's recovery codes. Each code
// passes once: two concurrent submissions of one code cannot both pass.
// It returns ErrInvalidCode for an unknown or used code. The application
// should prompt the user to regenerate codes when few are left, and
// rate-limit failures as for TOTP codes.
func (a *Authenticator) VerifyRecoveryCode(ctx context.Context, p CodeParams) (Result, error) {
	if err := checkIDs(p.TenantID, p.AccountID); err != nil {
		return Result{}, err
	}
	now := a.cfg.Now()
	norm := normaliseRecoveryCode(p.Code)
	if len(norm) != 16 {
		a.emitFailure(ErrInvalidCode, p.TenantID, p.AccountID, MethodRecoveryCode, now)
		return Result{}, fmt.Errorf("%w: want 16 characters", ErrInvalidCode)
	}

	left, err := a.cfg.Store.UseRecoveryCode(ctx, UseRecoveryCodeParams{
		TenantID:  p.TenantID,
		AccountID: p.AccountID,
		Hash:      HashRecoveryCode(p.TenantID, p.AccountID, norm),
		At:        now,
	})
	if errors.Is(err, ErrInvalidCode) {
		a.emitFailure(ErrInvalidCode, p.TenantID, p.AccountID, MethodRecoveryCode, now)
		return Result{}, ErrInvalidCode
	}
	if err != nil {
		return Result{}, fmt.Errorf("mfa: use recovery code: %w", err)
	}
	a.emit(Event{Kind: EventVerified, TenantID: p.TenantID, AccountID: p.AccountID, Method: MethodRecoveryCode, At: now, RecoveryCodesLeft: left})
	return Result{Method: MethodRecoveryCode, At: now, RecoveryCodesLeft: left}, nil
}

// RegenerateRecoveryCodes replaces the account's recovery codes, used or
// not, with a fresh set and returns it, to show the user once. The
// application should demand a fresh verification (step-up) first. It
// returns ErrNotEnrolled without an active enrolment.
func (a *Authenticator) RegenerateRecoveryCodes(ctx context.Context, tenantID, accountID string) ([]string, error) {
	if err := checkIDs(tenantID, accountID); err != nil {
		return nil, err
	}
	e, err := a.cfg.Store.Enrolment(ctx, tenantID, accountID)
	if err != nil {
		return nil, fmt.Errorf("mfa: load enrolment: %w", err)
	}
	if e.State != StateActive {
		return nil, fmt.Errorf("%w: enrolment not confirmed", ErrNotEnrolled)
	}

	codes, hashes, err := a.newRecoveryCodes(tenantID, accountID)
	if err != nil {
		return nil, err
	}
	err = a.cfg.Store.ReplaceRecoveryCodes(ctx, RecoveryCodesParams{
		TenantID: tenantID, AccountID: accountID, EnrolmentID: e.ID, Hashes: hashes,
	})
	if err != nil {
		return nil, fmt.Errorf("mfa: replace recovery codes: %w", err)
	}
	a.emit(Event{Kind: EventRecoveryCodesRegenerated, TenantID: tenantID, AccountID: accountID, At: a.cfg.Now()})
	return codes, nil
}
