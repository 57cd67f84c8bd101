package mfa

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Policy is a tenant's MFA enforcement policy.
type Policy struct {
	// Required means every account of the tenant must use a second
	// factor once its grace period has passed.
	Required bool
	// GracePeriod is how long after account creation an account that has
	// not enrolled may still sign in with its password alone. Zero means
	// no grace: enrolment is due at once.
	GracePeriod time.Duration
}

// DefaultPolicy returns the policy of a tenant that has none: MFA
// required, with a grace period of [DefaultGracePeriod] (7 days).
func DefaultPolicy() Policy { return Policy{Required: true, GracePeriod: DefaultGracePeriod} }

func (p Policy) validate() error {
	if p.GracePeriod < 0 {
		return errors.New("GracePeriod must not be negative")
	}
	return nil
}

// Action is what the application should do with a signing-in account.
type Action int

// The actions, from least to most demanding.
const (
	// ActionNone: MFA is not required and the account has not enrolled;
	// a password suffices.
	ActionNone Action = iota
	// ActionVerify: the account has enrolled; demand a TOTP or recovery
	// code (amr "otp", so the session carries "mfa"). An enrolled account
	// is always asked, whatever its tenant's policy.
	ActionVerify
	// ActionEnrolSoon: MFA is required, the account has not enrolled, and
	// it is inside its grace period; let it in on its password and prompt
	// it to enrol before Decision.GraceEnds.
	ActionEnrolSoon
	// ActionEnrolNow: MFA is required, the account has not enrolled, and
	// its grace period is over; allow nothing but enrolment.
	ActionEnrolNow
)

// String returns the action's name.
func (a Action) String() string {
	switch a {
	case ActionNone:
		return "none"
	case ActionVerify:
		return "verify"
	case ActionEnrolSoon:
		return "enrol_soon"
	case ActionEnrolNow:
		return "enrol_now"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// Decision is the enforcement answer for one account at one time.
type Decision struct {
	// Action is what the application should do.
	Action Action
	// Required is the tenant policy's Required.
	Required bool
	// Enrolled is true when the account has an active enrolment.
	Enrolled bool
	// GraceEnds is when an unenrolled account's grace period ends (account
	// creation plus the grace period); zero unless Required and not
	// Enrolled.
	GraceEnds time.Time
}

// InGrace reports whether the account may still sign in without MFA only
// because of its grace period.
func (d Decision) InGrace() bool { return d.Action == ActionEnrolSoon }

// RequiredAMR returns the RFC 8176 methods, beyond the password, that a
// session must carry before the account may use protected routes: ["otp"]
// for ActionVerify, none otherwise. Under ActionEnrolNow no method
// suffices until the account enrols.
func (d Decision) RequiredAMR() []string {
	if d.Action == ActionVerify {
		return []string{AMROTP}
	}
	return nil
}

// Satisfied reports whether a session whose RFC 8176 methods are amr may
// use protected routes under this decision: always for ActionNone and
// ActionEnrolSoon, with "otp" (or "mfa") for ActionVerify, never for
// ActionEnrolNow.
func (d Decision) Satisfied(amr []string) bool {
	switch d.Action {
	case ActionNone, ActionEnrolSoon:
		return true
	case ActionVerify:
		for _, m := range amr {
			if m == AMROTP || m == AMRMFA {
				return true
			}
		}
	}
	return false
}

// RequirementParams are the arguments of [Authenticator.Requirement].
type RequirementParams struct {
	// TenantID and AccountID identify the account.
	TenantID, AccountID string
	// AccountCreatedAt is when the account was created; the grace period
	// runs from it.
	AccountCreatedAt time.Time
	// At is the time to decide for. Zero means now (the Authenticator's
	// clock).
	At time.Time
}

// Requirement answers whether the account must use MFA now (or at p.At),
// may still enrol within its grace period, or need not. It reads the
// tenant's policy (or the default) and the account's current enrolment.
func (a *Authenticator) Requirement(ctx context.Context, p RequirementParams) (Decision, error) {
	if err := checkIDs(p.TenantID, p.AccountID); err != nil {
		return Decision{}, err
	}
	policy, err := a.Policy(ctx, p.TenantID)
	if err != nil {
		return Decision{}, err
	}
	st, err := a.Status(ctx, p.TenantID, p.AccountID)
	if err != nil {
		return Decision{}, err
	}
	at := p.At
	if at.IsZero() {
		at = a.cfg.Now()
	}
	return decide(policy, st.Enrolled, p.AccountCreatedAt, at), nil
}

// decide is Requirement's rule, apart from the stores so it can be tested
// as a table.
func decide(p Policy, enrolled bool, created, now time.Time) Decision {
	d := Decision{Required: p.Required, Enrolled: enrolled}
	switch {
	case enrolled:
		d.Action = ActionVerify
	case !p.Required:
		d.Action = ActionNone
	default:
		d.GraceEnds = created.Add(p.GracePeriod)
		if now.Before(d.GraceEnds) {
			d.Action = ActionEnrolSoon
		} else {
			d.Action = ActionEnrolNow
		}
	}
	return d
}

// Policy returns the tenant's policy, or the default policy if the tenant
// has none or no PolicyStore is configured.
func (a *Authenticator) Policy(ctx context.Context, tenantID string) (Policy, error) {
	if a.cfg.Policies == nil {
		return a.policy, nil
	}
	p, err := a.cfg.Policies.Policy(ctx, tenantID)
	if errors.Is(err, ErrNoPolicy) {
		return a.policy, nil
	}
	if err != nil {
		return Policy{}, fmt.Errorf("mfa: load policy: %w", err)
	}
	return p, nil
}

// SetPolicy stores the tenant's policy. It fails if no PolicyStore is
// configured.
func (a *Authenticator) SetPolicy(ctx context.Context, tenantID string, p Policy) error {
	if tenantID == "" || len(tenantID) > maxIDLen {
		return fmt.Errorf("%w: tenant id must be 1 to %d bytes", ErrInvalidInput, maxIDLen)
	}
	if err := p.validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	if a.cfg.Policies == nil {
		return fmt.Errorf("%w: no PolicyStore configured", ErrInvalidConfig)
	}
	if err := a.cfg.Policies.SetPolicy(ctx, tenantID, p); err != nil {
		return fmt.Errorf("mfa: save policy: %w", err)
	}
	return nil
}
