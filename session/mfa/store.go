package mfa

import (
	"context"
	"fmt"
	"time"

	"github.com/pquerna/otp"
)

// State is the state of an enrolment.
type State string

// The enrolment states.
const (
	// StatePending is an enrolment waiting for its first code.
	StatePending State = "pending"
	// StateActive is a confirmed enrolment that verifies codes.
	StateActive State = "active"
)

// Algorithm is a TOTP HMAC hash, spelled as in otpauth URLs.
type Algorithm string

// The TOTP algorithms of RFC 6238.
const (
	SHA1   Algorithm = "SHA1"
	SHA256 Algorithm = "SHA256"
	SHA512 Algorithm = "SHA512"
)

func (a Algorithm) otp() (otp.Algorithm, error) {
	switch a {
	case SHA1:
		return otp.AlgorithmSHA1, nil
	case SHA256:
		return otp.AlgorithmSHA256, nil
	case SHA512:
		return otp.AlgorithmSHA512, nil
	}
	return 0, fmt.Errorf("unsupported TOTP algorithm %q", string(a))
}

// Enrolment is an account's TOTP enrolment as a Store holds it. The secret
// is only ever present sealed.
type Enrolment struct {
	// TenantID and AccountID identify the account.
	TenantID  string
	AccountID string
	// ID identifies this enrolment; a new enrolment of the same account
	// gets a new ID, and the sealed secret is bound to it.
	ID string
	// State is pending until the first code is confirmed.
	State State
	// SealedSecret is the TOTP secret as the [Sealer] returned it.
	SealedSecret []byte
	// Algorithm, Digits and PeriodSeconds (the time step) are the TOTP
	// parameters the secret was enrolled with.
	Algorithm     Algorithm
	Digits        int
	PeriodSeconds int
	// CreatedAt is when the enrolment was started.
	CreatedAt time.Time
	// ActivatedAt is when the enrolment was confirmed; zero while pending.
	ActivatedAt time.Time
	// LastStep is the highest time step accepted so far; meaningful only
	// when the enrolment is active.
	LastStep int64
}

// ActivateParams are the arguments of [Store.Activate].
type ActivateParams struct {
	// TenantID and AccountID identify the account.
	TenantID, AccountID string
	// EnrolmentID is the pending enrolment to activate.
	EnrolmentID string
	// Step is the time step of the confirming code; it becomes LastStep.
	Step int64
	// At becomes ActivatedAt.
	At time.Time
	// RecoveryHashes replace the account's recovery codes.
	RecoveryHashes [][]byte
}

// AdvanceParams are the arguments of [Store.AdvanceStep].
type AdvanceParams struct {
	// TenantID and AccountID identify the account.
	TenantID, AccountID string
	// EnrolmentID is the active enrolment the code was checked against.
	EnrolmentID string
	// Step is the time step of the accepted code.
	Step int64
	// At is when the code was used.
	At time.Time
}

// RecoveryCodesParams are the arguments of [Store.ReplaceRecoveryCodes].
type RecoveryCodesParams struct {
	// TenantID and AccountID identify the account.
	TenantID, AccountID string
	// EnrolmentID is the active enrolment the codes belong to.
	EnrolmentID string
	// Hashes are the new codes' hashes.
	Hashes [][]byte
}

// UseRecoveryCodeParams are the arguments of [Store.UseRecoveryCode].
type UseRecoveryCodeParams struct {
	// TenantID and AccountID identify the account.
	TenantID, AccountID string
	// Hash is the submitted code's hash.
	Hash []byte
	// At is when the code was used.
	At time.Time
}

// Store holds enrolments and recovery code hashes. Every method must be
// safe for concurrent use, also by several processes sharing the storage:
// AdvanceStep and UseRecoveryCode are the replay defence and must be
// atomic. mfatest.Run checks an implementation against this contract.
type Store interface {
	// SavePending stores e, whose State is StatePending, replacing any
	// pending enrolment of the account. It returns ErrAlreadyEnrolled if
	// the account has an active enrolment.
	SavePending(ctx context.Context, e Enrolment) error
	// Enrolment returns the account's enrolment, pending or active, or
	// ErrNotEnrolled.
	Enrolment(ctx context.Context, tenantID, accountID string) (Enrolment, error)
	// Activate makes the pending enrolment p.EnrolmentID active with
	// LastStep p.Step and replaces the account's recovery codes with
	// p.RecoveryHashes, all or nothing. It returns ErrNotEnrolled if the
	// account has no pending enrolment with that ID.
	Activate(ctx context.Context, p ActivateParams) error
	// AdvanceStep raises LastStep of the active enrolment p.EnrolmentID to
	// p.Step in one atomic step, and returns ErrReplayed if LastStep is
	// already p.Step or higher: of several concurrent calls with one step,
	// exactly one succeeds. It returns ErrNotEnrolled if the account has
	// no active enrolment with that ID.
	AdvanceStep(ctx context.Context, p AdvanceParams) error
	// ReplaceRecoveryCodes replaces the account's recovery codes, used or
	// not, with p.Hashes. It returns ErrNotEnrolled if the account has no
	// active enrolment with ID p.EnrolmentID.
	ReplaceRecoveryCodes(ctx context.Context, p RecoveryCodesParams) error
	// UseRecoveryCode marks the account's unused code with hash p.Hash
	// used, atomically, and returns how many unused codes remain. It
	// returns ErrInvalidCode if there is no such unused code.
	UseRecoveryCode(ctx context.Context, p UseRecoveryCodeParams) (remaining int, err error)
	// RecoveryCodesLeft returns how many unused recovery codes the account
	// has.
	RecoveryCodesLeft(ctx context.Context, tenantID, accountID string) (int, error)
	// Delete removes the account's enrolment and recovery codes. Deleting
	// nothing is not an error.
	Delete(ctx context.Context, tenantID, accountID string) error
}

// TODO: a pending enrolment that is never confirmed stays in the Store
// (sealed, and refused by Confirm after the pending TTL) until the account
// enrols again or is disabled; sweeping them needs one more Store method.

// PolicyStore holds per-tenant enforcement policies.
type PolicyStore interface {
	// SetPolicy stores the tenant's policy, replacing any earlier one.
	SetPolicy(ctx context.Context, tenantID string, p Policy) error
	// Policy returns the tenant's policy, or ErrNoPolicy.
	Policy(ctx context.Context, tenantID string) (Policy, error)
}
