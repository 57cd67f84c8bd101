package retention

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors returned by the package and by every Store. Adapters wrap their
// driver's errors in these so callers can branch with errors.Is.
var (
	// ErrInvalid reports a value that breaks a documented rule: an empty
	// tenant, a negative period, an unknown scope kind.
	ErrInvalid = errors.New("retention: invalid argument")
	// ErrMinimumLocked reports an attempt to lower a locked minimum.
	ErrMinimumLocked = errors.New("retention: locked minimum can only be extended")
	// ErrNotFound reports a hold that does not exist or is not the tenant's.
	ErrNotFound = errors.New("retention: not found")
	// ErrBusy reports that another instance holds the sweep of a target:
	// this instance skips it.
	ErrBusy = errors.New("retention: target is being swept by another instance")
	// ErrTimeout reports a batch that hit its statement or lock timeout
	// more often than the sweeper retries.
	ErrTimeout = errors.New("retention: batch timed out")
	// ErrHook reports a batch rolled back because its deleter or batch hook
	// failed.
	ErrHook = errors.New("retention: batch hook failed")
	// ErrPolicyChanged reports a batch that deleted nothing because the
	// tenant's policies changed after the sweeper read them
	// (BatchParams.CheckPolicy): the sweeper reads them again and retries.
	ErrPolicyChanged = errors.New("retention: policy changed since it was read")
)

// DefaultPeriod is the retention period of a tenant that has none of its
// own: 2,555 days, about seven years.
const DefaultPeriod = 2555 * 24 * time.Hour

// DefaultGrace is how long a shortened period waits before it takes effect.
const DefaultGrace = 24 * time.Hour

// ScopeKind names what a legal hold or a policy covers.
type ScopeKind string

// The scope kinds. Policies exist for tenants and channels; holds for all
// four.
const (
	ScopeTenant   ScopeKind = "tenant"
	ScopeChannel  ScopeKind = "channel"
	ScopeUser     ScopeKind = "user"
	ScopeResource ScopeKind = "resource"
)

// Scope is a part of a tenant's data: the whole tenant (ID empty), one
// channel, one user or one resource (one row, by the target's resource
// column).
type Scope struct {
	Kind ScopeKind
	ID   string
}

// Tenant is the scope of a whole tenant.
var Tenant = Scope{Kind: ScopeTenant}

// Channel returns the scope of one channel.
func Channel(id string) Scope { return Scope{Kind: ScopeChannel, ID: id} }

// User returns the scope of one user.
func User(id string) Scope { return Scope{Kind: ScopeUser, ID: id} }

// Resource returns the scope of one resource.
func Resource(id string) Scope { return Scope{Kind: ScopeResource, ID: id} }

// String returns "tenant" or "kind:id", the form stored in checkpoints and
// reports.
func (s Scope) String() string {
	if s.Kind == ScopeTenant {
		return string(ScopeTenant)
	}
	return string(s.Kind) + ":" + s.ID
}

func (s Scope) validate() error {
	switch s.Kind {
	case ScopeTenant:
		if s.ID != "" {
			return fmt.Errorf("%w: a tenant scope has no id", ErrInvalid)
		}
	case ScopeChannel, ScopeUser, ScopeResource:
		if s.ID == "" {
			return fmt.Errorf("%w: %s scope without an id", ErrInvalid, s.Kind)
		}
	default:
		return fmt.Errorf("%w: unknown scope kind %q", ErrInvalid, s.Kind)
	}
	return nil
}

// Hold is a legal hold: while it is active (not released) no row in its
// scope is deleted, whatever the policy says.
type Hold struct {
	// ID identifies the hold; the store assigns it.
	ID string
	// AppID is the tenant.
	AppID string
	// Scope is what the hold covers.
	Scope Scope
	// Reason and Author say why and by whom; they are stored, never logged.
	Reason, Author string
	// CreatedAt is when the hold was placed.
	CreatedAt time.Time
	// ReleasedAt is when it was released; zero while active.
	ReleasedAt time.Time
	// ReleasedBy is who released it.
	ReleasedBy string
}

// Active reports whether the hold has not been released.
func (h Hold) Active() bool { return h.ReleasedAt.IsZero() }

// PolicyKind distinguishes a retention period from a locked minimum.
type PolicyKind string

// The policy kinds.
const (
	// KindPeriod is a retention period for a tenant or a channel.
	KindPeriod PolicyKind = "period"
	// KindMinimum is a tenant's locked minimum: no scope's period is
	// shorter, and it can only be extended.
	KindMinimum PolicyKind = "minimum"
)

// PolicyVersion is one change to a tenant's policies. Versions are never
// edited; a change appends a version.
type PolicyVersion struct {
	// AppID is the tenant.
	AppID string
	// Version numbers a tenant's changes from 1, in order.
	Version int64
	// Kind is a period or a locked minimum.
	Kind PolicyKind
	// Channel is the channel a period override applies to; empty for the
	// tenant-wide period and for a minimum.
	Channel string
	// Period is the retention period (or minimum). For a channel override,
	// zero removes the override.
	Period time.Duration
	// Author is who made the change.
	Author string
	// SetAt is when the change was made.
	SetAt time.Time
	// EffectiveAt is when it takes effect: SetAt, or SetAt plus the grace
	// period when the change shortens retention.
	EffectiveAt time.Time
}

// Target is a table the application lets the sweeper delete from. Column
// names are identifiers, never values: they come from code, not from users.
type Target struct {
	// Name identifies the target in checkpoints, leases and reports.
	// Defaults to Table.
	Name string
	// Table is the table, optionally schema-qualified ("chat.message").
	Table string
	// ID is the primary key column. Required.
	ID string
	// Tenant is the tenant column. Defaults to "app_id".
	Tenant string
	// Time is the column retention is measured from. Required.
	Time string
	// Channel is the channel column; empty if the table has none. Such a
	// table cannot tell channels apart, so it errs on the side of keeping:
	// its rows are kept as long as the longest of the tenant's period and
	// its channel overrides, and a channel hold on the tenant holds the
	// whole target.
	Channel string
	// User is the user column; empty if the table has none, in which case
	// a user hold on the tenant holds the whole target.
	User string
	// Resource is the column a resource hold is matched on. Defaults to ID.
	Resource string
	// Deleter, when not nil, removes what lives outside the table for the
	// rows of a batch (attachments, search entries, keys to shred). It runs
	// inside the batch, before the batch hook and before commit; an error
	// rolls the batch back. It may be called again for the same rows if a
	// later step fails, so it must be idempotent.
	Deleter func(ctx context.Context, d Deleted) error
}

// Deleted is what a Target's Deleter is given: the rows of one batch.
type Deleted struct {
	// Target is the Target's Name.
	Target string
	// AppID is the tenant whose rows they were.
	AppID string
	// IDs are the deleted rows' ids in their text form.
	IDs []string
}

func (t Target) withDefaults() Target {
	if t.Name == "" {
		t.Name = t.Table
	}
	if t.Tenant == "" {
		t.Tenant = "app_id"
	}
	if t.Resource == "" {
		t.Resource = t.ID
	}
	return t
}

func (t Target) validate() error {
	switch {
	case t.Table == "":
		return fmt.Errorf("%w: target without a table", ErrInvalid)
	case t.ID == "":
		return fmt.Errorf("%w: target %s without an id column", ErrInvalid, t.Table)
	case t.Time == "":
		return fmt.Errorf("%w: target %s without a time column", ErrInvalid, t.Table)
	}
	return nil
}

// Cursor is a position in a target's keyset order (time, then id).
type Cursor struct {
	// Time is the last row's time column.
	Time time.Time
	// ID is the last row's id, in its text form.
	ID string
}

// BatchParams says which rows one batch may delete: at most Limit rows of
// one tenant and scope, older than Cutoff, after the stored checkpoint, in
// (time, id) order, minus every row an active hold covers.
type BatchParams struct {
	Target Target
	AppID  string
	// Scope is the policy scope swept: ScopeTenant or a channel.
	Scope Scope
	// Exclude lists channels with an override of their own, which a
	// tenant-scope batch must leave alone.
	Exclude []string
	// Cutoff: rows whose time is before it are due.
	Cutoff time.Time
	// Limit is the most rows the batch scans.
	Limit int
	// IDs asks for every deleted id in BatchResult.IDs; without it the
	// store returns only the first and last.
	IDs bool
	// Owner identifies the sweeping instance; LeaseUntil is when its lease
	// on the tenant's rows of the target expires if it stops renewing it,
	// by the clock Now is read from. A store shared by several processes
	// should measure the lease by its own clock instead, for
	// LeaseUntil - Now from its now, so that the instances' clocks need not
	// agree (retentionpg does).
	Owner      string
	Now        time.Time
	LeaseUntil time.Time
	// CheckPolicy asks the store to delete nothing and fail with
	// ErrPolicyChanged when the tenant's newest policy version (in force or
	// not; zero when it has none) is no longer PolicyVersion, the newest
	// when Cutoff was computed. The check is part of the batch, so a period
	// lengthened after the sweeper read it is never applied late: a store
	// shared by several processes makes a policy change wait for the
	// tenant's batches in flight, as a hold does. A store that ignores it
	// applies a change from the sweeper's next read instead.
	CheckPolicy   bool
	PolicyVersion int64
	// StatementTimeout and LockTimeout bound the batch's statements where
	// the store supports them (zero: no bound).
	StatementTimeout, LockTimeout time.Duration
	// OnBatch, when not nil, runs inside the batch after the rows are
	// deleted and before the batch (and its checkpoint) commits. An error
	// rolls everything back and is returned.
	OnBatch func(ctx context.Context, r BatchResult) error
}

// BatchResult is what one batch did.
type BatchResult struct {
	// Scanned is how many due rows the batch looked at, deleted or not.
	Scanned int
	// Deleted is how many rows it removed.
	Deleted int
	// MinID and MaxID are the smallest and largest ids removed, in the id
	// column's own order, or as text for a type without one such as uuid
	// ("" if none).
	MinID, MaxID string
	// IDs are all the ids removed, in keyset order, if BatchParams.IDs
	// asked for them.
	IDs []string
	// MinTime and MaxTime bound the deleted rows' times (zero if none).
	MinTime, MaxTime time.Time
	// Cursor is where the next batch starts.
	Cursor Cursor
	// Done reports that the scope has no more due rows after this batch:
	// the checkpoint was cleared.
	Done bool
}

// CountParams selects the rows a dry run counts: the same rows a batch with
// the same fields would consider, from the start.
type CountParams struct {
	// Target, AppID, Scope, Exclude and Cutoff mean what they mean in
	// BatchParams.
	Target  Target
	AppID   string
	Scope   Scope
	Exclude []string
	Cutoff  time.Time
}

// Counts is a dry run's answer: due rows, and how many of them a hold keeps.
type Counts struct {
	Due, Held int64
}

// Store keeps policies, holds, checkpoints and leases, and deletes batches.
// Implementations must be safe for concurrent use, and several processes
// may share one store: the lease and the hold check are the store's.
type Store interface {
	// UpdatePolicy appends a version to the tenant's policies: it calls
	// change with the tenant's versions so far, oldest first, with no other
	// change to the tenant's policies in between, and stores the version
	// change returns (the store numbers it). An error from change is
	// returned unchanged.
	UpdatePolicy(ctx context.Context, appID string, change func(history []PolicyVersion) (PolicyVersion, error)) (PolicyVersion, error)
	// Policies returns the tenant's versions, oldest first.
	Policies(ctx context.Context, appID string) ([]PolicyVersion, error)
	// PolicyTenants lists the tenants that have at least one version.
	PolicyTenants(ctx context.Context) ([]string, error)

	// PlaceHold stores an active hold and returns it with its ID. When it
	// returns, no batch that has not yet committed deletes a row the hold
	// covers.
	PlaceHold(ctx context.Context, h Hold) (Hold, error)
	// ReleaseHold releases an active hold of the tenant.
	ReleaseHold(ctx context.Context, appID, id, by string, at time.Time) error
	// Holds returns the tenant's holds, active and released, oldest first.
	Holds(ctx context.Context, appID string) ([]Hold, error)

	// SweepBatch deletes one batch, as BatchParams says, checking the holds
	// in the same step as the delete, and moves the scope's checkpoint.
	// It returns ErrBusy when another owner's lease on the tenant's rows of
	// the target has not expired. Leases are per tenant and target, so
	// that every table carries the tenant and can be sharded by it. With
	// p.CheckPolicy it returns ErrPolicyChanged, deleting nothing, when the
	// tenant's policies have a version newer than p.PolicyVersion.
	SweepBatch(ctx context.Context, p BatchParams) (BatchResult, error)
	// ReleaseLease gives up owner's leases on a target, for every tenant.
	ReleaseLease(ctx context.Context, target, owner string) error
	// Count counts due and held rows without deleting anything.
	Count(ctx context.Context, p CountParams) (Counts, error)
}
