package chat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/chatsdk/compliance/integrity"
	"github.com/chatsdk/compliance/retention"
)

// Errors of the chat store.
var (
	// ErrExists means a user name is taken in its app.
	ErrExists = errors.New("chat: already exists")
	// ErrNotFound means no such user, channel or message in the app.
	ErrNotFound = errors.New("chat: not found")
)

// Roles of a user in an app. The first user of an app is its owner.
const (
	RoleOwner     = "owner"
	RoleAdmin     = "admin"
	RoleModerator = "moderator"
	RoleMember    = "member"
)

// MessagesTable is the table (and integrity domain, fieldcrypt table and
// retention target) of chat messages.
const MessagesTable = "chat_messages"

// User is an account of an app.
type User struct {
	ID           string
	AppID        string
	Username     string
	PasswordHash string
	Role         string
	CreatedAt    time.Time
}

// Channel is a conversation; only its members read it. Name is the
// fieldcrypt ciphertext of its name, which may say whose care it is about.
type Channel struct {
	ID        string
	AppID     string
	Name      []byte
	CreatedBy string
	CreatedAt time.Time
}

// Message is a stored message. Body is the fieldcrypt ciphertext of its
// text, bound to the row; the text itself is never stored.
type Message struct {
	ID        string
	AppID     string
	ChannelID string
	UserID    string
	Body      []byte
	CreatedAt time.Time
}

// SealFunc writes a message's integrity tag on the store it is given, which
// belongs to the same transaction as the message row where the backend has
// transactions.
type SealFunc func(ctx context.Context, st integrity.Store) error

// Store keeps the server's own data: users, channels, members and
// messages. Every method is safe for concurrent use.
type Store interface {
	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
	// CreateUser stores u, making it the app's owner when the app has no
	// user yet and a member otherwise, and returns it with its role. It
	// returns ErrExists when the user name is taken in the app.
	CreateUser(ctx context.Context, u User) (User, error)
	// UserByName and UserByID return a user of the app, or ErrNotFound.
	UserByName(ctx context.Context, app, username string) (User, error)
	UserByID(ctx context.Context, app, id string) (User, error)
	// SetPasswordHash replaces a user's password hash (a rehash after the
	// hashing parameters were raised).
	SetPasswordHash(ctx context.Context, app, id, hash string) error
	// Apps lists every app that has a user.
	Apps(ctx context.Context) ([]string, error)
	// CreateChannel stores c and makes its creator a member.
	CreateChannel(ctx context.Context, c Channel) error
	// Channel returns a channel of the app, or ErrNotFound.
	Channel(ctx context.Context, app, id string) (Channel, error)
	// AddMember makes a user of the app a member of a channel; adding a
	// member twice is not an error.
	AddMember(ctx context.Context, app, channel, user string) error
	// IsMember reports whether the user is a member of the channel.
	IsMember(ctx context.Context, app, channel, user string) (bool, error)
	// CreateMessage stores m and runs seal in the same transaction: both
	// or neither are kept.
	CreateMessage(ctx context.Context, m Message, seal SealFunc) error
	// Messages returns up to limit of the newest messages of a channel,
	// oldest first.
	Messages(ctx context.Context, app, channel string, limit int) ([]Message, error)
}

// newID returns a random identifier: 128 bits in hex.
func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// MemoryStore is a Store in process memory. It also feeds the retention
// package's memory store, which keeps the rows a sweep deletes.
type MemoryStore struct {
	mu        sync.Mutex
	integrity integrity.Store
	retention *retention.MemoryStore
	users     map[string]*User // app/id
	names     map[string]string
	channels  map[string]*Channel // app/id
	members   map[string]bool     // app/channel/user
	messages  map[string]*Message // app/id
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore whose messages are sealed on
// is and listed for sweeps in rs.
func NewMemoryStore(is integrity.Store, rs *retention.MemoryStore) *MemoryStore {
	return &MemoryStore{
		integrity: is,
		retention: rs,
		users:     map[string]*User{},
		names:     map[string]string{},
		channels:  map[string]*Channel{},
		members:   map[string]bool{},
		messages:  map[string]*Message{},
	}
}

func key(parts ...string) string {
	// The parts are app ids from the URL and random hex ids; a NUL cannot
	// occur in them, so joining with it is unambiguous.
	out := ""
	for i, p := range parts {
		if i > 0 {
			out += "\x00"
		}
		out += p
	}
	return out
}

// Ping implements Store.
func (m *MemoryStore) Ping(context.Context) error { return nil }

// CreateUser implements Store.
func (m *MemoryStore) CreateUser(_ context.Context, u User) (User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	if _, ok := m.names[key(u.AppID, u.Username)]; ok {
		return User{}, ErrExists
	}
	u.Role = RoleMember
	first := true
	for _, o := range m.users {
		if o.AppID == u.AppID {
			first = false
			break
		}
	}
	if first {
		u.Role = RoleOwner
	}
	m.users[key(u.AppID, u.ID)] = &u
	m.names[key(u.AppID, u.Username)] = u.ID
	return u, nil
}

// UserByName implements Store.
func (m *MemoryStore) UserByName(_ context.Context, app, username string) (User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.names[key(app, username)]
	if !ok {
		return User{}, ErrNotFound
	}
	return *m.users[key(app, id)], nil
}

// UserByID implements Store.
func (m *MemoryStore) UserByID(_ context.Context, app, id string) (User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[key(app, id)]
	if !ok {
		return User{}, ErrNotFound
	}
	return *u, nil
}

// SetPasswordHash implements Store.
func (m *MemoryStore) SetPasswordHash(_ context.Context, app, id, hash string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[key(app, id)]
	if !ok {
		return ErrNotFound
	}
	u.PasswordHash = hash
	return nil
}

// Apps implements Store.
func (m *MemoryStore) Apps(context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, u := range m.users {
		if !seen[u.AppID] {
			seen[u.AppID] = true
			out = append(out, u.AppID)
		}
	}
	sort.Strings(out)
	return out, nil
}

// CreateChannel implements Store.
func (m *MemoryStore) CreateChannel(_ context.Context, c Channel) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.channels[key(c.AppID, c.ID)] = &c
	m.members[key(c.AppID, c.ID, c.CreatedBy)] = true
	return nil
}

// Channel implements Store.
func (m *MemoryStore) Channel(_ context.Context, app, id string) (Channel, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.channels[key(app, id)]
	if !ok {
		return Channel{}, ErrNotFound
	}
	return *c, nil
}

// AddMember implements Store.
func (m *MemoryStore) AddMember(_ context.Context, app, channel, user string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.users[key(app, user)]; !ok {
		return ErrNotFound
	}
	if _, ok := m.channels[key(app, channel)]; !ok {
		return ErrNotFound
	}
	m.members[key(app, channel, user)] = true
	return nil
}

// IsMember implements Store.
func (m *MemoryStore) IsMember(_ context.Context, app, channel, user string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.members[key(app, channel, user)], nil
}

// CreateMessage implements Store. The memory integrity store has no
// transaction to share, so the tag is written first under the store's lock
// and the message kept only if that succeeded. The row is listed for
// sweeps after the lock is released: a sweep holds the retention store's
// lock while it calls back into this store, so taking the locks in the
// other order could deadlock.
func (m *MemoryStore) CreateMessage(ctx context.Context, msg Message, seal SealFunc) error {
	m.mu.Lock()
	if err := seal(ctx, m.integrity); err != nil {
		m.mu.Unlock()
		return err
	}
	msg.Body = append([]byte(nil), msg.Body...)
	m.messages[key(msg.AppID, msg.ID)] = &msg
	m.mu.Unlock()

	m.retention.Insert(MessagesTable, retention.Row{
		ID: msg.ID, AppID: msg.AppID, Time: msg.CreatedAt, Channel: msg.ChannelID, User: msg.UserID,
	})
	return nil
}

// Messages implements Store.
func (m *MemoryStore) Messages(_ context.Context, app, channel string, limit int) ([]Message, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Message
	for _, msg := range m.messages {
		if msg.AppID == app && msg.ChannelID == channel {
			c := *msg
			c.Body = append([]byte(nil), msg.Body...)
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, nil
}

// deleteMessages removes messages a retention sweep deleted from the
// retention store's copy of the table.
func (m *MemoryStore) deleteMessages(app string, ids []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		delete(m.messages, key(app, id))
	}
}

// InsecureSetBody overwrites a stored message's ciphertext, as someone
// with write access to the storage could. For tests.
func (m *MemoryStore) InsecureSetBody(app, id string, body []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if msg, ok := m.messages[key(app, id)]; ok {
		msg.Body = body
	}
}
