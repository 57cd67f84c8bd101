package audit

import (
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Category groups event types the way an auditor reads them.
type Category string

// The categories of the audit log.
const (
	CategoryAuthentication   Category = "authentication"
	CategoryAuthorization    Category = "authorization"
	CategoryDataAccess       Category = "data_access"
	CategoryDataModification Category = "data_modification"
	CategoryAdministrative   Category = "administrative"
	CategorySecurity         Category = "security"
	CategorySystem           Category = "system"
)

// Valid reports whether c is one of the categories above.
func (c Category) Valid() bool {
	switch c {
	case CategoryAuthentication, CategoryAuthorization, CategoryDataAccess,
		CategoryDataModification, CategoryAdministrative, CategorySecurity, CategorySystem:
		return true
	}
	return false
}

// Example event types. Applications may record any dotted type; these are
// the ones the module's own packages and the example server use.
const (
	TypeLogin            = "auth.login"
	TypeLoginFailed      = "auth.login_failed"
	TypeLogout           = "auth.logout"
	TypeMFAVerified      = "auth.mfa_verified"
	TypeAccessDenied     = "authz.denied"
	TypeDataRead         = "data.read"
	TypeDataCreated      = "data.created"
	TypeDataUpdated      = "data.updated"
	TypeDataDeleted      = "data.deleted"
	TypeDataExported     = "data.exported"
	TypeUserCreated      = "admin.user_created"
	TypeUserDeleted      = "admin.user_deleted"
	TypeRoleChanged      = "admin.role_changed"
	TypeEmergencyAccess  = "security.emergency_access"
	TypeAccountLocked    = "security.account_locked"
	TypeKeyRotated       = "security.key_rotated"
	TypeRetentionSweep   = "system.retention_sweep"
	TypeAuditCheckpoint  = "system.audit_checkpoint"
	TypeAuditVerified    = "system.audit_verified"
	TypeAuditPartitioned = "system.audit_partition_dropped"
)

// Common actions.
const (
	ActionRead   = "read"
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionDelete = "delete"
	ActionLogin  = "login"
	ActionDeny   = "deny"
)

// Limits on an event's fields, so one entry cannot bloat the log.
const (
	MaxFieldLen    = 1024 // bytes of any one string field
	MaxMetadata    = 32   // metadata pairs
	MaxMetadataLen = 4096 // bytes of all metadata keys and values together
)

// Event is what happened: who did what to which resource, when, from where,
// and whether it worked. The fields follow the audit_log table of the gap
// analysis. An Event must not carry PHI: resource and subject identifiers,
// never message text or names.
type Event struct {
	// Tenant is the application (app_id) the event belongs to. Required.
	Tenant string `json:"tenant"`
	// Time is when the event happened. Zero means the Log's clock at Record.
	// It is kept at microsecond precision in UTC.
	Time time.Time `json:"time"`
	// Actor is the user or service that acted; empty for an unknown actor
	// (a failed login for a name that does not exist).
	Actor string `json:"actor,omitempty"`
	// SessionID is the actor's session, if any.
	SessionID string `json:"session_id,omitempty"`
	// IP is the client address, as a string (see the middleware for how it
	// is chosen behind proxies).
	IP string `json:"ip,omitempty"`
	// UserAgent is the client's User-Agent header.
	UserAgent string `json:"user_agent,omitempty"`
	// Type is the dotted event type, e.g. [TypeDataRead]. Required.
	Type string `json:"type"`
	// Category is the event's category. Required.
	Category Category `json:"category"`
	// Action is the verb: read, create, update, delete, … Required.
	Action string `json:"action"`
	// ResourceType and ResourceID name the object acted on.
	ResourceType string `json:"resource_type,omitempty"`
	ResourceID   string `json:"resource_id,omitempty"`
	// Subject is the person whose data the resource holds (a patient), for
	// the accounting of disclosures. Empty when not applicable.
	Subject string `json:"subject,omitempty"`
	// Success is whether the action succeeded.
	Success bool `json:"success"`
	// FailureReason says why it failed, in words that carry no PHI.
	FailureReason string `json:"failure_reason,omitempty"`
	// Metadata holds extra identifiers. It is hashed as sorted pairs, so map
	// order does not matter; nil and empty are the same.
	Metadata map[string]string `json:"metadata,omitempty"`
	// RetainUntil is the earliest time the entry may be removed. Zero means
	// Time plus the Log's retention.
	RetainUntil time.Time `json:"retain_until"`
}

// validate checks an event's required fields and limits. It names the
// field, never its value, in the error.
func (e *Event) validate() error {
	if e.Tenant == "" {
		return fmt.Errorf("%w: tenant is empty", ErrInvalidEvent)
	}
	if e.Type == "" {
		return fmt.Errorf("%w: type is empty", ErrInvalidEvent)
	}
	if e.Action == "" {
		return fmt.Errorf("%w: action is empty", ErrInvalidEvent)
	}
	if !e.Category.Valid() {
		return fmt.Errorf("%w: unknown category", ErrInvalidEvent)
	}
	fields := []struct {
		name, v string
	}{
		{"tenant", e.Tenant}, {"actor", e.Actor}, {"session id", e.SessionID}, {"ip", e.IP},
		{"user agent", e.UserAgent}, {"type", e.Type}, {"action", e.Action},
		{"resource type", e.ResourceType}, {"resource id", e.ResourceID},
		{"subject", e.Subject}, {"failure reason", e.FailureReason},
	}
	for _, f := range fields {
		if len(f.v) > MaxFieldLen {
			return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalidEvent, f.name, MaxFieldLen)
		}
		if !utf8.ValidString(f.v) || strings.IndexByte(f.v, 0) >= 0 {
			return fmt.Errorf("%w: %s is not valid UTF-8 or holds a NUL byte", ErrInvalidEvent, f.name)
		}
	}
	if len(e.Metadata) > MaxMetadata {
		return fmt.Errorf("%w: more than %d metadata pairs", ErrInvalidEvent, MaxMetadata)
	}
	n := 0
	for k, v := range e.Metadata {
		n += len(k) + len(v)
		if k == "" || !utf8.ValidString(k+v) || strings.IndexByte(k+v, 0) >= 0 {
			return fmt.Errorf("%w: metadata key empty, or not valid UTF-8, or holds a NUL byte", ErrInvalidEvent)
		}
	}
	if n > MaxMetadataLen {
		return fmt.Errorf("%w: metadata longer than %d bytes", ErrInvalidEvent, MaxMetadataLen)
	}
	if e.Time.IsZero() || e.RetainUntil.IsZero() {
		return fmt.Errorf("%w: time or retain-until is zero", ErrInvalidEvent)
	}
	return nil
}

// Validate reports whether e is complete enough to be appended as it is:
// required fields set, limits kept, Time and RetainUntil not zero. Stores
// call it on every event they append; [Log.Record] fills in the times first.
func (e *Event) Validate() error { return e.validate() }

// sortedKeys returns the metadata keys in byte order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
