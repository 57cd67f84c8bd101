package chat

import (
	"context"
	"errors"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/fieldcrypt"
	"github.com/chatsdk/compliance/integrity"
	"github.com/chatsdk/compliance/internal/canon"
	"github.com/chatsdk/compliance/lockout"
	"github.com/chatsdk/compliance/session"
	"github.com/chatsdk/compliance/session/mfa"
	"github.com/chatsdk/compliance/session/password"
)

// Limits of request fields.
const (
	maxNameLen = 64
	maxTextLen = 16 << 10
)

// appPattern is what an app id (a tenant) may look like.
var appPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

func (s *Server) appParam(w http.ResponseWriter, r *http.Request) (string, bool) {
	app := r.PathValue("app")
	if !appPattern.MatchString(app) {
		writeError(w, r, http.StatusBadRequest, "bad_app", "an app id is 1 to 63 lower-case letters, digits, _ or -")
		return "", false
	}
	noteOf(r).Tenant = app
	return app, true
}

type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
	OTP      string `json:"otp,omitempty"`
}

func validUsername(u string) bool {
	return u != "" && len(u) <= maxNameLen && usernameOK(u) && strings.TrimSpace(u) == u
}

func (s *Server) signup(w http.ResponseWriter, r *http.Request) {
	app, ok := s.appParam(w, r)
	if !ok {
		return
	}
	var in credentials
	if !decode(w, r, &in) {
		return
	}
	if !validUsername(in.Username) {
		writeError(w, r, http.StatusBadRequest, "bad_username", "a user name is 1 to 64 bytes of one script, in NFC, without control or invisible characters or surrounding space")
		return
	}
	viol, err := s.pwPolicy.Check(r.Context(), password.Candidate{Password: in.Password, ContextWords: []string{in.Username, app, "chat"}})
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if len(viol) > 0 {
		codes := make([]string, len(viol))
		for i, v := range viol {
			codes[i] = string(v.Code)
		}
		noteOf(r).Reason = "weak_password"
		writeJSON(w, http.StatusUnprocessableEntity, errorBody{Error: "weak_password", Message: "the password breaks the password policy", Violations: codes})
		return
	}
	hash, err := s.hasher.Hash(in.Password)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	u, err := s.chat.CreateUser(r.Context(), User{ID: newID(), AppID: app, Username: in.Username, PasswordHash: hash, CreatedAt: canon.TruncateTime(s.now())})
	if errors.Is(err, ErrExists) {
		writeError(w, r, http.StatusConflict, "exists", "that user name is taken")
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	n := noteOf(r)
	n.Actor = u.ID
	n.meta("role", u.Role)
	n.detail(audit.Event{Type: audit.TypeUserCreated, Category: audit.CategoryAdministrative, Action: audit.ActionCreate, ResourceType: "user", ResourceID: u.ID, Success: true})
	writeJSON(w, http.StatusCreated, map[string]string{"id": u.ID, "role": u.Role})
}

type tokenBody struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
}

func (s *Server) tokenBody(t session.Tokens) tokenBody {
	return tokenBody{
		AccessToken:  t.AccessToken,
		RefreshToken: t.RefreshToken,
		TokenType:    "Bearer",
		ExpiresIn:    int64(math.Ceil(t.AccessExpiresAt.Sub(s.now()).Seconds())),
	}
}

// lockedError answers a refused attempt: 429 with Retry-After, the same
// for every account, existing or not.
func lockedError(w http.ResponseWriter, r *http.Request, err error) bool {
	var le *lockout.LockedError
	if !errors.As(err, &le) {
		return false
	}
	if !le.Hard && le.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(le.RetryAfter.Seconds())), 10))
	}
	writeError(w, r, http.StatusTooManyRequests, "locked", "too many failed attempts; try again later")
	return true
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	app, ok := s.appParam(w, r)
	if !ok {
		return
	}
	var in credentials
	if !decode(w, r, &in) {
		return
	}
	n := noteOf(r)
	var u User
	defer func() {
		// A refused log-in also gets an auth.login_failed event, naming
		// the account when the password was right (a missing or wrong
		// second factor). A name that matched nothing is not recorded.
		if n.Reason != "" {
			n.detail(audit.Event{Type: audit.TypeLoginFailed, Category: audit.CategoryAuthentication, Action: audit.ActionLogin, ResourceType: "user", ResourceID: u.ID, Success: false})
		}
	}()
	if in.Username == "" || len(in.Username) > lockout.MaxAccountLen {
		writeError(w, r, http.StatusUnauthorized, "invalid_credentials", "wrong user name or password")
		return
	}

	// Password, under the lockout guard. An unknown name costs the same
	// hash work and the same counters as a real one.
	ip := s.clientAddr(r)
	err := s.guard.Check(r.Context(), lockout.Attempt{AppID: app, Account: in.Username, IP: ip}, func(ctx context.Context) (bool, error) {
		found, err := s.chat.UserByName(ctx, app, in.Username)
		if errors.Is(err, ErrNotFound) {
			s.hasher.DummyVerify(in.Password)
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if err := s.hasher.Verify(in.Password, found.PasswordHash); err != nil {
			if errors.Is(err, password.ErrMismatch) {
				return false, nil
			}
			return false, err
		}
		u = found
		return true, nil
	})
	if lockedError(w, r, err) {
		return
	}
	if errors.Is(err, lockout.ErrInvalidCredential) {
		writeError(w, r, http.StatusUnauthorized, "invalid_credentials", "wrong user name or password")
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	n.Actor = u.ID

	// Upgrade a hash made with older parameters while the password is at
	// hand. A failure only delays the upgrade to the next log-in.
	if s.hasher.NeedsRehash(u.PasswordHash) {
		if h, err := s.hasher.Hash(in.Password); err == nil {
			if err := s.chat.SetPasswordHash(r.Context(), app, u.ID, h); err != nil {
				s.log.Warn("password rehash not stored", "user", u.ID, "err", err)
			}
		}
	}

	// Second factor, when the account has one.
	methods := []string{session.AMRPassword}
	d, err := s.mfa.Requirement(r.Context(), mfa.RequirementParams{TenantID: app, AccountID: u.ID, AccountCreatedAt: u.CreatedAt})
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if d.Action == mfa.ActionVerify {
		if in.OTP == "" {
			writeError(w, r, http.StatusUnauthorized, "mfa_required", "this account needs its one-time code (otp)")
			return
		}
		factor, verify := lockout.FactorTOTP, s.mfa.Verify
		if len(strings.TrimSpace(in.OTP)) > 8 {
			factor, verify = lockout.FactorRecovery, s.mfa.VerifyRecoveryCode
		}
		var res mfa.Result
		err := s.guard.Check(r.Context(), lockout.Attempt{AppID: app, Account: u.ID, Factor: factor, IP: ip}, func(ctx context.Context) (bool, error) {
			var err error
			res, err = verify(ctx, mfa.CodeParams{TenantID: app, AccountID: u.ID, Code: in.OTP})
			if errors.Is(err, mfa.ErrInvalidCode) {
				return false, nil
			}
			return err == nil, err
		})
		if lockedError(w, r, err) {
			return
		}
		if errors.Is(err, lockout.ErrInvalidCredential) {
			writeError(w, r, http.StatusUnauthorized, "invalid_credentials", "wrong one-time code")
			return
		}
		if err != nil {
			s.internal(w, r, err)
			return
		}
		methods = mfa.CombineAMR(methods, res.AMR())
	}

	t, err := s.sessions.Create(r.Context(), session.CreateParams{AppID: app, UserID: u.ID, Methods: methods})
	if err != nil {
		s.internal(w, r, err)
		return
	}
	n.SessionID = t.SessionID
	writeJSON(w, http.StatusOK, s.tokenBody(t))
}

func (s *Server) refresh(w http.ResponseWriter, r *http.Request) {
	var in struct {
		RefreshToken string `json:"refresh_token"`
	}
	if !decode(w, r, &in) {
		return
	}
	t, err := s.sessions.Refresh(r.Context(), in.RefreshToken)
	if err != nil {
		if errors.Is(err, session.ErrTokenReused) {
			noteOf(r).Reason = "refresh_reused"
		}
		if errors.Is(err, session.ErrIdle) {
			writeError(w, r, http.StatusUnauthorized, "session_idle", "the session ended after a period without activity; log in again")
			return
		}
		if isTokenError(err) {
			writeError(w, r, http.StatusUnauthorized, "invalid_token", "the refresh token is expired, revoked or already used")
			return
		}
		s.internal(w, r, err)
		return
	}
	n := noteOf(r)
	if c, err := s.sessions.Verify(t.AccessToken); err == nil {
		n.Tenant, n.Actor = c.Tenant, c.Subject
	}
	n.SessionID = t.SessionID
	writeJSON(w, http.StatusOK, s.tokenBody(t))
}

func isTokenError(err error) bool {
	for _, e := range []error{session.ErrInvalidToken, session.ErrTokenReused, session.ErrRevoked, session.ErrExpired, session.ErrIdle, session.ErrNotFound} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	id, _ := session.FromContext(r.Context())
	if err := s.sessions.Revoke(r.Context(), id.SessionID(), session.ReasonLogout); err != nil {
		s.internal(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) mfaEnrol(w http.ResponseWriter, r *http.Request) {
	id, _ := session.FromContext(r.Context())
	u, err := s.chat.UserByID(r.Context(), id.Tenant(), id.UserID())
	if err != nil {
		s.internal(w, r, err)
		return
	}
	setup, err := s.mfa.Enrol(r.Context(), mfa.EnrolParams{TenantID: u.AppID, AccountID: u.ID, Label: u.Username})
	if errors.Is(err, mfa.ErrAlreadyEnrolled) {
		writeError(w, r, http.StatusConflict, "exists", "this account is enrolled already")
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"secret": setup.Secret, "otpauth_url": setup.URL, "qr_png": qrDataURL(setup.QRCodePNG)})
}

func (s *Server) mfaConfirm(w http.ResponseWriter, r *http.Request) {
	id, _ := session.FromContext(r.Context())
	var in struct {
		Code string `json:"code"`
	}
	if !decode(w, r, &in) {
		return
	}
	var conf mfa.Confirmation
	a := lockout.Attempt{AppID: id.Tenant(), Account: id.UserID(), Factor: lockout.FactorTOTP, IP: s.clientAddr(r)}
	err := s.guard.Check(r.Context(), a, func(ctx context.Context) (bool, error) {
		var err error
		conf, err = s.mfa.Confirm(ctx, mfa.CodeParams{TenantID: id.Tenant(), AccountID: id.UserID(), Code: in.Code})
		if errors.Is(err, mfa.ErrInvalidCode) {
			return false, nil
		}
		return err == nil, err
	})
	switch {
	case lockedError(w, r, err):
		return
	case errors.Is(err, lockout.ErrInvalidCredential):
		writeError(w, r, http.StatusUnauthorized, "invalid_code", "wrong one-time code")
		return
	case errors.Is(err, mfa.ErrNotEnrolled), errors.Is(err, mfa.ErrEnrolmentExpired):
		writeError(w, r, http.StatusConflict, "not_enrolled", "start an enrolment first (POST /v1/mfa/totp)")
		return
	case err != nil:
		s.internal(w, r, err)
		return
	}

	// The session has now proved a second factor: raise it and hand back
	// an access token that says so.
	if err := s.sessions.StepUp(r.Context(), id.SessionID(), conf.AMR()...); err != nil {
		s.internal(w, r, err)
		return
	}
	tok, exp, err := s.sessions.IssueAccessToken(r.Context(), id.SessionID())
	if err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"recovery_codes": conf.RecoveryCodes,
		"access_token":   tok,
		"token_type":     "Bearer",
		"expires_in":     int64(math.Ceil(exp.Sub(s.now()).Seconds())),
	})
}

func (s *Server) createChannel(w http.ResponseWriter, r *http.Request) {
	id, _ := session.FromContext(r.Context())
	var in struct {
		Name string `json:"name"`
	}
	if !decode(w, r, &in) {
		return
	}
	if in.Name == "" || len(in.Name) > maxNameLen || !utf8.ValidString(in.Name) {
		writeError(w, r, http.StatusBadRequest, "bad_name", "a channel name is 1 to 64 bytes of UTF-8")
		return
	}
	c := Channel{ID: newID(), AppID: id.Tenant(), CreatedBy: id.UserID(), CreatedAt: canon.TruncateTime(s.now())}
	name, err := s.keyring.Encrypt(r.Context(), fieldcrypt.Location{Tenant: c.AppID, Table: "chat_channels", Column: "name", Row: c.ID}, []byte(in.Name))
	if err != nil {
		s.internal(w, r, err)
		return
	}
	c.Name = name
	if err := s.chat.CreateChannel(r.Context(), c); err != nil {
		s.internal(w, r, err)
		return
	}
	noteOf(r).detail(audit.Event{Type: audit.TypeDataCreated, Category: audit.CategoryDataModification, Action: audit.ActionCreate, ResourceType: "channel", ResourceID: c.ID, Success: true})
	writeJSON(w, http.StatusCreated, map[string]string{"id": c.ID})
}

// member checks the minimum-necessary rule: only a channel's members (or a
// break-glass session, audited on every use) reach its messages. It
// answers and notes the denial itself when the caller may not.
func (s *Server) member(w http.ResponseWriter, r *http.Request, id *session.Identity, channel string) bool {
	n := noteOf(r)
	if _, err := s.chat.Channel(r.Context(), id.Tenant(), channel); errors.Is(err, ErrNotFound) {
		writeError(w, r, http.StatusNotFound, "not_found", "no such channel")
		return false
	} else if err != nil {
		s.internal(w, r, err)
		return false
	}
	ok, err := s.chat.IsMember(r.Context(), id.Tenant(), channel, id.UserID())
	if err != nil {
		s.internal(w, r, err)
		return false
	}
	if ok {
		return true
	}
	if id.Emergency() {
		n.meta("access", "emergency")
		return true
	}
	n.deny()
	writeError(w, r, http.StatusForbidden, "not_member", "only members of the channel may do that")
	return false
}

func (s *Server) addMember(w http.ResponseWriter, r *http.Request) {
	id, _ := session.FromContext(r.Context())
	channel := r.PathValue("id")
	var in struct {
		UserID string `json:"user_id"`
	}
	if !decode(w, r, &in) {
		return
	}
	if !s.member(w, r, id, channel) {
		return
	}
	// Minimum necessary: members read, but only the channel's creator or
	// a moderator, admin or owner of the app adds people to it.
	if ok, err := s.mayManage(r.Context(), id, channel); err != nil {
		s.internal(w, r, err)
		return
	} else if !ok {
		noteOf(r).deny()
		writeError(w, r, http.StatusForbidden, "forbidden", "only the channel's creator or a moderator adds members")
		return
	}
	err := s.chat.AddMember(r.Context(), id.Tenant(), channel, in.UserID)
	if errors.Is(err, ErrNotFound) {
		writeError(w, r, http.StatusNotFound, "not_found", "no such user in this app")
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	n := noteOf(r)
	n.meta("member", in.UserID)
	n.detail(audit.Event{Type: audit.TypeDataUpdated, Category: audit.CategoryDataModification, Action: audit.ActionUpdate, ResourceType: "channel", ResourceID: channel, Success: true})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) mayManage(ctx context.Context, id *session.Identity, channel string) (bool, error) {
	c, err := s.chat.Channel(ctx, id.Tenant(), channel)
	if err != nil {
		return false, err
	}
	if c.CreatedBy == id.UserID() {
		return true, nil
	}
	u, err := s.chat.UserByID(ctx, id.Tenant(), id.UserID())
	if err != nil {
		return false, err
	}
	return u.Role == RoleOwner || u.Role == RoleAdmin || u.Role == RoleModerator, nil
}

// textLocation is where a message's text is encrypted: bound to its
// tenant, table, column and row.
func textLocation(app, id string) fieldcrypt.Location {
	return fieldcrypt.Location{Tenant: app, Table: MessagesTable, Column: "body", Row: id}
}

// messageRecord is what a message's integrity tag covers: every column of
// the row but its id and tenant (which the record names), the ciphertext
// included, so a row edited or an older ciphertext replayed fails.
func messageRecord(m Message) integrity.Record {
	return integrity.Record{
		Domain: MessagesTable,
		Tenant: m.AppID,
		ID:     m.ID,
		Scope:  integrity.DayScope(m.ChannelID, m.CreatedAt),
		Fields: []canon.Value{
			canon.String(m.ChannelID),
			canon.String(m.UserID),
			canon.Bytes(m.Body),
			canon.Time(m.CreatedAt),
		},
	}
}

func (s *Server) postMessage(w http.ResponseWriter, r *http.Request) {
	id, _ := session.FromContext(r.Context())
	channel := r.PathValue("id")
	var in struct {
		Text string `json:"text"`
	}
	if !decode(w, r, &in) {
		return
	}
	if !s.member(w, r, id, channel) {
		return
	}
	if in.Text == "" || len(in.Text) > maxTextLen || !utf8.ValidString(in.Text) {
		writeError(w, r, http.StatusBadRequest, "bad_text", "a message is 1 byte to 16 KiB of UTF-8")
		return
	}

	m := Message{ID: newID(), AppID: id.Tenant(), ChannelID: channel, UserID: id.UserID(), CreatedAt: canon.TruncateTime(s.now())}
	body, err := s.sealText(r.Context(), m, in.Text)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	m.Body = body
	err = s.chat.CreateMessage(r.Context(), m, func(ctx context.Context, st integrity.Store) error {
		return s.sealer.WithStore(st).Seal(ctx, messageRecord(m))
	})
	if err != nil {
		s.internal(w, r, err)
		return
	}
	n := noteOf(r)
	n.meta("channel", channel)
	n.detail(audit.Event{Type: audit.TypeDataCreated, Category: audit.CategoryDataModification, Action: audit.ActionCreate, ResourceType: "message", ResourceID: m.ID, Success: true})
	writeJSON(w, http.StatusCreated, map[string]string{"id": m.ID, "created_at": m.CreatedAt.UTC().Format(time.RFC3339Nano)})
}

// sealText encrypts a message's text at its row, or, on a server that is
// insecurely unprotected for a benchmark, returns it as it is.
func (s *Server) sealText(ctx context.Context, m Message, text string) ([]byte, error) {
	if s.cfg.InsecureUnprotected {
		return []byte(text), nil
	}
	return s.keyring.Encrypt(ctx, textLocation(m.AppID, m.ID), []byte(text))
}

// openText is the inverse of sealText.
func (s *Server) openText(ctx context.Context, m Message) ([]byte, error) {
	if s.cfg.InsecureUnprotected {
		return m.Body, nil
	}
	return s.keyring.Decrypt(ctx, textLocation(m.AppID, m.ID), m.Body)
}

type messageOut struct {
	ID        string `json:"id"`
	UserID    string `json:"user_id"`
	Text      string `json:"text,omitempty"`
	CreatedAt string `json:"created_at"`
	Integrity string `json:"integrity"`
}

func (s *Server) readMessages(w http.ResponseWriter, r *http.Request) {
	id, _ := session.FromContext(r.Context())
	channel := r.PathValue("id")
	if !s.member(w, r, id, channel) {
		return
	}
	msgs, err := s.chat.Messages(r.Context(), id.Tenant(), channel, 200)
	if err != nil {
		s.internal(w, r, err)
		return
	}

	// Verify on read: a message shows its text only if its tag checks and
	// its ciphertext decrypts at its own row. Each failure is audited.
	// The tags of the whole page are read in one round trip.
	recs := make([]integrity.Record, len(msgs))
	for i, m := range msgs {
		recs[i] = messageRecord(m)
	}
	checks, err := s.sealer.CheckAll(r.Context(), recs)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := make([]messageOut, 0, len(msgs))
	failed := 0
	for i, m := range msgs {
		o := messageOut{ID: m.ID, UserID: m.UserID, CreatedAt: m.CreatedAt.UTC().Format(time.RFC3339Nano), Integrity: "ok"}
		err := checks[i]
		var pt []byte
		if err == nil {
			pt, err = s.openText(r.Context(), m)
		}
		if err != nil {
			o.Integrity = "failed"
			failed++
			if aerr := s.recordIntegrityFailure(r, id, m, err); aerr != nil {
				writeError(w, r, http.StatusServiceUnavailable, "audit_unavailable", "the request could not be audited")
				return
			}
		} else {
			o.Text = string(pt)
		}
		out = append(out, o)
	}
	if failed > 0 {
		s.log.Warn("messages failed their integrity check on read", "channel", channel, "failed", failed)
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": out})
}
