package chat

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"strconv"
	"time"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/fieldcrypt"
	"github.com/chatsdk/compliance/integrity"
	"github.com/chatsdk/compliance/lockout"
	"github.com/chatsdk/compliance/retention"
	"github.com/chatsdk/compliance/session"
)

// recordIntegrityFailure audits a message that failed its tag check or
// did not decrypt, naming which by its kind only.
func (s *Server) recordIntegrityFailure(r *http.Request, id *session.Identity, m Message, err error) error {
	kind := "tag_mismatch"
	switch {
	case errors.Is(err, integrity.ErrNotSealed):
		kind = "not_sealed"
	case errors.Is(err, fieldcrypt.ErrShredded):
		kind = "shredded"
	case errors.Is(err, fieldcrypt.ErrDecrypt):
		kind = "decrypt_failed"
	case !errors.Is(err, integrity.ErrMismatch):
		kind = "check_failed"
		s.log.Error("message check failed", "message", m.ID, "err", err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	return s.record(ctx, audit.Event{
		Tenant:        id.Tenant(),
		Actor:         id.UserID(),
		SessionID:     id.SessionID(),
		IP:            s.addrString(r),
		Type:          typeIntegrityFailed,
		Category:      audit.CategorySecurity,
		Action:        audit.ActionRead,
		ResourceType:  "message",
		ResourceID:    m.ID,
		Success:       false,
		FailureReason: kind,
		Metadata:      map[string]string{"channel": m.ChannelID},
	})
}

func (s *Server) addrString(r *http.Request) string {
	if a := s.clientAddr(r); a.IsValid() {
		return a.String()
	}
	return ""
}

type eventOut struct {
	Stream        string            `json:"stream"`
	Seq           uint64            `json:"seq"`
	Time          time.Time         `json:"time"`
	Actor         string            `json:"actor,omitempty"`
	SessionID     string            `json:"session_id,omitempty"`
	IP            string            `json:"ip,omitempty"`
	Type          string            `json:"type"`
	Category      audit.Category    `json:"category"`
	Action        string            `json:"action"`
	ResourceType  string            `json:"resource_type,omitempty"`
	ResourceID    string            `json:"resource_id,omitempty"`
	Subject       string            `json:"subject,omitempty"`
	Success       bool              `json:"success"`
	FailureReason string            `json:"failure_reason,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
}

func (s *Server) auditQuery(w http.ResponseWriter, r *http.Request) {
	id, _ := session.FromContext(r.Context())
	q := r.URL.Query()
	aq := audit.Query{
		Tenant:       id.Tenant(),
		Actor:        q.Get("actor"),
		Type:         q.Get("type"),
		ResourceType: q.Get("resource_type"),
		ResourceID:   q.Get("resource_id"),
		Cursor:       q.Get("cursor"),
	}
	for name, dst := range map[string]*time.Time{"since": &aq.Since, "until": &aq.Until} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				writeError(w, r, http.StatusBadRequest, "bad_time", name+" must be an RFC 3339 time")
				return
			}
			*dst = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, r, http.StatusBadRequest, "bad_limit", "limit must be a positive integer")
			return
		}
		aq.Limit = n
	}
	page, err := s.audit.Store().Query(r.Context(), aq)
	if errors.Is(err, audit.ErrBadCursor) {
		writeError(w, r, http.StatusBadRequest, "bad_cursor", "the cursor was not made by this server")
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	out := make([]eventOut, len(page.Entries))
	for i, e := range page.Entries {
		out[i] = eventOut{
			Stream: e.Stream, Seq: e.Seq, Time: e.Time, Actor: e.Actor, SessionID: e.SessionID, IP: e.IP,
			Type: e.Type, Category: e.Category, Action: e.Action, ResourceType: e.ResourceType,
			ResourceID: e.ResourceID, Subject: e.Subject, Success: e.Success, FailureReason: e.FailureReason,
			Metadata: e.Metadata,
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out, "next_cursor": page.Next})
}

func (s *Server) auditVerify(w http.ResponseWriter, r *http.Request) {
	id, _ := session.FromContext(r.Context())
	opts := audit.VerifyOptions{Stream: id.Tenant(), Verifier: s.verifier}
	if s.cfg.CheckpointFile != "" {
		cps, err := audit.ReadCheckpointFile(s.cfg.CheckpointFile)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.internal(w, r, err)
			return
		}
		for _, c := range cps {
			if c.Stream == id.Tenant() {
				opts.Checkpoints = append(opts.Checkpoints, c)
			}
		}
	}
	rep, err := audit.Verify(r.Context(), s.audit.Store(), opts)
	var f *audit.Failure
	if errors.As(err, &f) {
		writeJSON(w, http.StatusOK, map[string]any{
			"ok": false, "checked": rep.Entries, "head_seq": rep.Head.Seq,
			"failure": map[string]any{"seq": f.Seq, "kind": string(f.Kind)},
		})
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "checked": rep.Entries, "head_seq": rep.Head.Seq})
}

const day = 24 * time.Hour

func (s *Server) setRetention(w http.ResponseWriter, r *http.Request) {
	id, _ := session.FromContext(r.Context())
	var in struct {
		Days     int            `json:"days"`
		Channels map[string]int `json:"channels"`
	}
	if !decode(w, r, &in) {
		return
	}
	if in.Days < 0 || in.Days > 100*365 {
		writeError(w, r, http.StatusBadRequest, "bad_days", "days must be between 0 (unchanged) and 36500")
		return
	}
	for ch, d := range in.Channels {
		if d < 0 || d > 100*365 {
			writeError(w, r, http.StatusBadRequest, "bad_days", "a channel's days must be between 0 (no override) and 36500")
			return
		}
		if _, err := s.chat.Channel(r.Context(), id.Tenant(), ch); err != nil {
			writeError(w, r, http.StatusNotFound, "not_found", "no such channel")
			return
		}
	}
	n := noteOf(r)
	out := map[string]any{}
	if in.Days > 0 {
		v, err := s.policies.SetPeriod(r.Context(), id.Tenant(), "", time.Duration(in.Days)*day, id.UserID())
		if !s.retentionOK(w, r, err) {
			return
		}
		n.meta("days", strconv.Itoa(in.Days))
		out["effective_at"] = v.EffectiveAt
		out["version"] = v.Version
	}
	chans := map[string]any{}
	for ch, d := range in.Channels {
		v, err := s.policies.SetPeriod(r.Context(), id.Tenant(), ch, time.Duration(d)*day, id.UserID())
		if !s.retentionOK(w, r, err) {
			return
		}
		n.meta("channel:"+ch, strconv.Itoa(d))
		chans[ch] = map[string]any{"effective_at": v.EffectiveAt, "version": v.Version}
	}
	if len(chans) > 0 {
		out["channels"] = chans
	}
	n.detail(audit.Event{Type: typeRetentionPolicy, Category: audit.CategoryAdministrative, Action: audit.ActionUpdate, ResourceType: "retention_policy", ResourceID: id.Tenant(), Success: true})
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) retentionOK(w http.ResponseWriter, r *http.Request, err error) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, retention.ErrMinimumLocked):
		writeError(w, r, http.StatusConflict, "minimum_locked", "the tenant's locked minimum is longer")
	case errors.Is(err, retention.ErrInvalid):
		writeError(w, r, http.StatusBadRequest, "invalid", "the policy is not valid")
	case errors.Is(err, retention.ErrNotFound):
		writeError(w, r, http.StatusNotFound, "not_found", "no such hold")
	default:
		s.internal(w, r, err)
	}
	return false
}

func (s *Server) placeHold(w http.ResponseWriter, r *http.Request) {
	id, _ := session.FromContext(r.Context())
	var in struct {
		Scope  string `json:"scope"`
		ID     string `json:"id"`
		Reason string `json:"reason"`
	}
	if !decode(w, r, &in) {
		return
	}
	if in.Reason == "" || len(in.Reason) > 2000 {
		writeError(w, r, http.StatusBadRequest, "reason_required", "a hold needs a reason of at most 2000 bytes")
		return
	}
	var scope retention.Scope
	switch in.Scope {
	case "tenant", "app":
		scope = retention.Tenant
	case "channel":
		scope = retention.Channel(in.ID)
	case "user":
		scope = retention.User(in.ID)
	case "message", "resource":
		scope = retention.Resource(in.ID)
	default:
		writeError(w, r, http.StatusBadRequest, "bad_scope", "scope is tenant, channel, user or message")
		return
	}
	if scope.Kind != retention.ScopeTenant && in.ID == "" {
		writeError(w, r, http.StatusBadRequest, "bad_scope", "this scope needs an id")
		return
	}
	if len(in.ID) > maxIDLen {
		writeError(w, r, http.StatusBadRequest, "bad_id", "an id is at most 128 bytes")
		return
	}
	h, err := s.policies.PlaceHold(r.Context(), id.Tenant(), scope, in.Reason, id.UserID())
	if !s.retentionOK(w, r, err) {
		return
	}
	n := noteOf(r)
	n.meta("scope", scope.String())
	n.meta("reason", clip(in.Reason, 1000))
	n.detail(audit.Event{Type: typeHoldPlaced, Category: audit.CategoryAdministrative, Action: audit.ActionCreate, ResourceType: "legal_hold", ResourceID: h.ID, Success: true})
	writeJSON(w, http.StatusCreated, map[string]string{"id": h.ID})
}

func (s *Server) releaseHold(w http.ResponseWriter, r *http.Request) {
	id, _ := session.FromContext(r.Context())
	hold := r.PathValue("id")
	if !s.retentionOK(w, r, s.policies.ReleaseHold(r.Context(), id.Tenant(), hold, id.UserID())) {
		return
	}
	noteOf(r).detail(audit.Event{Type: typeHoldReleased, Category: audit.CategoryAdministrative, Action: audit.ActionDelete, ResourceType: "legal_hold", ResourceID: hold, Success: true})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) unlockUser(w http.ResponseWriter, r *http.Request) {
	id, _ := session.FromContext(r.Context())
	target := r.PathValue("id")
	var in struct {
		Reason string `json:"reason"`
	}
	if !decode(w, r, &in) {
		return
	}
	if in.Reason == "" || len(in.Reason) > 1000 {
		writeError(w, r, http.StatusBadRequest, "reason_required", "an unlock needs a reason of at most 1000 bytes")
		return
	}
	u, err := s.chat.UserByID(r.Context(), id.Tenant(), target)
	if errors.Is(err, ErrNotFound) {
		writeError(w, r, http.StatusNotFound, "not_found", "no such user")
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	// Password counters are keyed by the name typed, second-factor
	// counters by the user id: clear both.
	var cleared []lockout.CounterKey
	for _, account := range []string{u.Username, u.ID} {
		keys, err := s.guard.Unlock(r.Context(), lockout.UnlockRequest{AppID: u.AppID, Account: account, Actor: id.UserID(), Reason: in.Reason})
		if err != nil {
			s.internal(w, r, err)
			return
		}
		cleared = append(cleared, keys...)
	}
	n := noteOf(r)
	n.meta("counters_cleared", strconv.Itoa(len(cleared)))
	n.meta("reason", clip(in.Reason, 1000))
	n.detail(audit.Event{Type: typeAccountUnlocked, Category: audit.CategorySecurity, Action: "unlock", ResourceType: "user", ResourceID: u.ID, Success: true})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) breakGlass(w http.ResponseWriter, r *http.Request) {
	id, _ := session.FromContext(r.Context())
	var in struct {
		Reason string `json:"reason"`
	}
	if !decode(w, r, &in) {
		return
	}
	if in.Reason == "" || len(in.Reason) > session.MaxReasonLen {
		writeError(w, r, http.StatusBadRequest, "reason_required", "break-glass access needs a reason")
		return
	}
	t, g, err := s.sessions.GrantEmergency(r.Context(), session.EmergencyRequest{
		AppID:     id.Tenant(),
		UserID:    id.UserID(),
		Methods:   id.AMR(),
		Reason:    in.Reason,
		GrantedBy: id.UserID(),
	})
	if err != nil {
		s.internal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": t.AccessToken, "refresh_token": t.RefreshToken, "token_type": "Bearer",
		"expires_in": int64(t.AccessExpiresAt.Sub(s.now()).Seconds()), "grant_id": g.ID, "grant_expires_at": g.ExpiresAt,
	})
}
