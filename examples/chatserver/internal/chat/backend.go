package chat

import (
	"context"
	"iter"
	"time"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/fieldcrypt"
	"github.com/chatsdk/compliance/integrity"
	"github.com/chatsdk/compliance/lockout"
	"github.com/chatsdk/compliance/retention"
	"github.com/chatsdk/compliance/session"
	"github.com/chatsdk/compliance/session/mfa"
)

// MFAStore is what the server needs of an MFA store: enrolments and the
// tenants' enforcement policies. mfa.MemoryStore and mfapg.Store are both.
type MFAStore interface {
	mfa.Store
	mfa.PolicyStore
}

// Backend is every store the server uses, all in memory or all in
// Postgres.
type Backend struct {
	// Name is "memory" or "postgres", for logs.
	Name string
	// Chat holds users, channels, members and messages.
	Chat Store
	// The packages' stores: audit entries and checkpoints, wrapped
	// fieldcrypt keysets, integrity tags and digests, retention policies
	// and holds, sessions, MFA enrolments and policies, lockout counters.
	Audit     audit.Store
	Keysets   fieldcrypt.Store
	Integrity integrity.Store
	Retention retention.Store
	Sessions  session.Store
	MFA       MFAStore
	Lockout   lockout.Store
	// Target is the retention target of the messages table, without its
	// Deleter.
	Target retention.Target
	// Forget, called inside a retention batch, removes the integrity tags
	// (and, in memory, the rows) of the messages the batch deleted, with
	// the sealer bound to the batch's transaction where there is one.
	Forget func(ctx context.Context, sealer *integrity.Sealer, d retention.Deleted) error
	// AppendInBatch, when not nil, appends audit events inside the
	// transaction of the retention batch ctx belongs to, so the record of
	// a deletion commits with the deletion. It reports false when ctx has
	// no such transaction.
	AppendInBatch func(ctx context.Context, stream string, events []audit.Event) (bool, error)
	// Verify checks every stored message against its integrity tag and
	// its scope's digest, handing each finding to report, and reports
	// whether nothing was wrong. Deleted, added and altered rows all show.
	Verify func(ctx context.Context, sealer *integrity.Sealer, report func(context.Context, integrity.Finding)) (bool, error)
	// Close releases the backend's resources.
	Close func()
}

// NewMemoryBackend returns a Backend entirely in process memory, with now
// as the lockout store's clock (nil means time.Now).
func NewMemoryBackend(now func() time.Time) *Backend {
	is := integrity.NewMemoryStore()
	rs := retention.NewMemoryStore()
	chat := NewMemoryStore(is, rs)
	return &Backend{
		Name:      "memory",
		Chat:      chat,
		Audit:     audit.NewMemoryStore(),
		Keysets:   fieldcrypt.NewMemoryStore(),
		Integrity: is,
		Retention: rs,
		Sessions:  session.NewMemoryStore(),
		MFA:       mfa.NewMemoryStore(),
		Lockout:   lockout.NewMemoryStore(now),
		Target:    messagesTarget(MessagesTable),
		Forget: func(ctx context.Context, sealer *integrity.Sealer, d retention.Deleted) error {
			// The retention store has removed its rows already; drop ours
			// and their tags. Both are idempotent, as a Deleter must be.
			chat.deleteMessages(d.AppID, d.IDs)
			_, err := sealer.Forget(ctx, MessagesTable, d.AppID, d.IDs)
			return err
		},
		Verify: func(ctx context.Context, sealer *integrity.Sealer, report func(context.Context, integrity.Finding)) (bool, error) {
			sum, err := sealer.Verify(ctx, MessagesTable, chat.allRecords(), func(f integrity.Finding) { report(ctx, f) })
			return sum.OK(), err
		},
		Close: func() {},
	}
}

func messagesTarget(table string) retention.Target {
	return retention.Target{
		Name:    MessagesTable,
		Table:   table,
		ID:      "id",
		Tenant:  "app_id",
		Time:    "created_at",
		Channel: "channel_id",
		User:    "user_id",
	}
}

// allRecords yields the integrity record of every stored message.
func (m *MemoryStore) allRecords() iter.Seq2[integrity.Record, error] {
	m.mu.Lock()
	recs := make([]integrity.Record, 0, len(m.messages))
	for _, msg := range m.messages {
		c := *msg
		c.Body = append([]byte(nil), msg.Body...)
		recs = append(recs, messageRecord(c))
	}
	m.mu.Unlock()
	return func(yield func(integrity.Record, error) bool) {
		for _, r := range recs {
			if !yield(r, nil) {
				return
			}
		}
	}
}
