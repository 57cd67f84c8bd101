package chat

import (
	"context"
	"strconv"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/lockout"
	"github.com/chatsdk/compliance/retention"
	"github.com/chatsdk/compliance/session"
	"github.com/chatsdk/compliance/session/mfa"
)

// Event types the server records beyond the audit package's own.
const (
	typeRefreshReused   = "security.refresh_reused"
	typeSessionRevoked  = "auth.session_revoked"
	typeIntegrityFailed = "security.integrity_failed"
	typeMFA             = "auth.mfa"
	typeAccountUnlocked = "security.account_unlocked"
	typeRetentionPolicy = "admin.retention_policy"
	typeHoldPlaced      = "admin.hold_placed"
	typeHoldReleased    = "admin.hold_released"
	typeAuditQueried    = "admin.audit_queried"
	typeSignup          = "auth.signup"
	typeRefresh         = "auth.refresh"
)

// systemTenant is the audit stream of events no tenant can be named for,
// such as a refresh with an unknown token.
const systemTenant = "_system"

// record appends e to the audit log and waits until it is durable. A hook
// that cannot record returns the error so that its caller fails closed.
func (s *Server) record(ctx context.Context, e audit.Event) error {
	if e.Tenant == "" {
		e.Tenant = systemTenant
	}
	if _, err := s.audit.Record(ctx, e); err != nil {
		s.log.Error("audit record failed", "type", e.Type, "err", err)
		return err
	}
	return nil
}

func (s *Server) onLock(ctx context.Context, e lockout.LockEvent) error {
	return s.record(ctx, audit.Event{
		Tenant:        e.AppID,
		IP:            e.IP,
		Type:          audit.TypeAccountLocked,
		Category:      audit.CategorySecurity,
		Action:        "lock",
		ResourceType:  "account",
		ResourceID:    e.Account,
		Success:       true,
		FailureReason: "",
		Metadata: map[string]string{
			"counter":     string(e.Kind),
			"factor":      string(e.Factor),
			"consecutive": strconv.Itoa(e.Consecutive),
			"hard":        strconv.FormatBool(e.Hard),
		},
	})
}

func (s *Server) onMFAEvent(e mfa.Event) {
	// TODO: mfa.Config.OnEvent has no context and returns no error, so an
	// event that cannot be recorded cannot fail the call; it is logged.
	_ = s.record(context.Background(), audit.Event{
		Tenant:       e.TenantID,
		Actor:        e.AccountID,
		Type:         typeMFA,
		Category:     audit.CategoryAuthentication,
		Action:       string(e.Kind),
		ResourceType: "user",
		ResourceID:   e.AccountID,
		Success:      e.Kind != mfa.EventFailed && e.Kind != mfa.EventReplayed,
		Metadata:     map[string]string{"method": string(e.Method)},
	})
}

// TODO: session.Hooks return no error, so a reuse, revocation or
// break-glass event that cannot be recorded cannot fail the call that
// caused it; record logs the failure.
func (s *Server) onRefreshReused(ctx context.Context, e session.ReuseEvent) {
	_ = s.record(ctx, audit.Event{
		Tenant:        e.AppID,
		Actor:         e.UserID,
		SessionID:     e.SessionID,
		Type:          typeRefreshReused,
		Category:      audit.CategorySecurity,
		Action:        "revoke",
		ResourceType:  "session",
		ResourceID:    e.SessionID,
		Success:       false,
		FailureReason: "rotated refresh token presented again; session revoked",
	})
}

func (s *Server) onSessionRevoked(ctx context.Context, e session.RevokeEvent) {
	_ = s.record(ctx, audit.Event{
		Tenant:       e.AppID,
		Actor:        e.UserID,
		SessionID:    e.SessionID,
		Type:         typeSessionRevoked,
		Category:     audit.CategoryAuthentication,
		Action:       "revoke",
		ResourceType: "session",
		ResourceID:   e.SessionID,
		Success:      true,
		Metadata:     map[string]string{"reason": string(e.Reason)},
	})
}

func (s *Server) onEmergencyIssued(ctx context.Context, e session.EmergencyEvent) {
	_ = s.record(ctx, audit.Event{
		Tenant:       e.AppID,
		Actor:        e.GrantedBy,
		SessionID:    e.SessionID,
		Type:         audit.TypeEmergencyAccess,
		Category:     audit.CategorySecurity,
		Action:       "grant",
		ResourceType: "emergency_grant",
		ResourceID:   e.GrantID,
		Subject:      e.UserID,
		Success:      true,
		// The reason is the user's free text: it belongs in the audit
		// trail (never in a log), and is cut to the field limit.
		Metadata: map[string]string{"reason": clip(e.Reason, 1000), "expires_at": e.ExpiresAt.UTC().Format("2006-01-02T15:04:05Z")},
	})
}

func (s *Server) onEmergencyUsed(ctx context.Context, e session.EmergencyEvent) {
	_ = s.record(ctx, audit.Event{
		Tenant:       e.AppID,
		Actor:        e.UserID,
		SessionID:    e.SessionID,
		Type:         audit.TypeEmergencyAccess,
		Category:     audit.CategorySecurity,
		Action:       "use",
		ResourceType: "emergency_grant",
		ResourceID:   e.GrantID,
		Success:      true,
	})
}

// onSweepBatch records a retention batch. On Postgres the entry is
// appended in the batch's own transaction, so the deletion and its record
// commit together or not at all; in memory an error still rolls the batch
// back.
func (s *Server) onSweepBatch(ctx context.Context, r retention.Record) error {
	e := audit.Event{
		Tenant:       r.AppID,
		Actor:        "retention:" + r.Owner,
		Type:         audit.TypeRetentionSweep,
		Category:     audit.CategorySystem,
		Action:       audit.ActionDelete,
		ResourceType: r.Target,
		ResourceID:   r.Scope.String(),
		Success:      true,
		Metadata: map[string]string{
			"deleted":        strconv.Itoa(r.Deleted),
			"held":           strconv.Itoa(r.Held),
			"min_id":         r.MinID,
			"max_id":         r.MaxID,
			"policy_version": strconv.FormatInt(r.PolicyVersion, 10),
			"cutoff":         r.Cutoff.UTC().Format("2006-01-02T15:04:05Z"),
		},
	}
	if in := s.cfg.Backend.AppendInBatch; in != nil {
		if err := s.audit.Prepare(&e); err != nil {
			return err
		}
		// The Log's default stream is the tenant.
		if done, err := in(ctx, e.Tenant, []audit.Event{e}); done {
			if err != nil {
				s.log.Error("audit record in sweep batch failed", "err", err)
			}
			return err
		}
	}
	return s.record(ctx, e)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && (s[n]&0xC0) == 0x80 {
		n--
	}
	return s[:n]
}
