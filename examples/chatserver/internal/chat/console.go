package chat

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/examples/chatserver/internal/web"
	"github.com/chatsdk/compliance/lockout"
	"github.com/chatsdk/compliance/session"
)

// typeAdminViewed is the audit type of the admin console's read routes.
const typeAdminViewed = "admin.viewed"

// lockLookback is how far back the locked-accounts route looks for lock
// events; a lock older than this that still holds (a hard lock) is not
// listed.
//
// TODO: list locks from the lockout store once it can enumerate locked
// counters; the audit log is the only index of them today.
const lockLookback = 30 * 24 * time.Hour

// grantLookback bounds the emergency grants the console lists: a grant
// lasts at most session.Config.EmergencyMax (4 hours by default).
const grantLookback = 24 * time.Hour

// consoleRoutes adds the web pages (GET / and GET /ui/…) and the read
// routes the admin console needs beside the write routes of routes().
func (s *Server) consoleRoutes(mux *http.ServeMux, handle func(string, access, class, http.HandlerFunc)) {
	pages := web.Handler(web.Config{IdleTimeout: s.idleTimeout()})
	mux.Handle("GET /{$}", pages)
	mux.Handle("GET /ui/", pages)

	adm, read := audit.CategoryAdministrative, audit.ActionRead
	handle("GET /v1/admin/audit/checkpoint", admin, class{typeAdminViewed, adm, read, "audit_checkpoint"}, s.latestCheckpoint)
	handle("GET /v1/admin/retention", admin, class{typeAdminViewed, adm, read, "retention_policy"}, s.getRetention)
	handle("GET /v1/admin/holds", admin, class{typeAdminViewed, adm, read, "legal_hold"}, s.listHolds)
	handle("GET /v1/admin/locked", admin, class{typeAdminViewed, adm, read, "account"}, s.listLocked)
	handle("GET /v1/admin/break-glass", admin, class{typeAdminViewed, adm, read, "emergency_grant"}, s.listGrants)
}

// idleTimeout is the sessions' automatic logoff, which the pages time on
// their own as well.
func (s *Server) idleTimeout() time.Duration {
	if s.cfg.IdleTimeout > 0 {
		return s.cfg.IdleTimeout
	}
	return session.DefaultIdleTimeout
}

// qrDataURL is the enrolment's QR code as a data: URL, which the pages'
// Content-Security-Policy admits as an image and nothing else.
func qrDataURL(png []byte) string {
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)
}

// latestCheckpoint answers the newest signed checkpoint of the caller's
// audit stream, or null when none was made yet.
func (s *Server) latestCheckpoint(w http.ResponseWriter, r *http.Request) {
	// TODO: ask the store for the newest checkpoint alone once
	// audit.Store can; this reads all of them, one per CheckpointEvery
	// entries, on every visit to the console.
	id, _ := session.FromContext(r.Context())
	cps, err := s.audit.Store().Checkpoints(r.Context(), id.Tenant())
	if err != nil {
		s.internal(w, r, err)
		return
	}
	if len(cps) == 0 {
		writeJSON(w, http.StatusOK, map[string]any{"checkpoint": nil})
		return
	}
	c := cps[len(cps)-1]
	kind := string(c.Kind)
	if kind == "" {
		kind = string(audit.KindHead)
	}
	writeJSON(w, http.StatusOK, map[string]any{"checkpoint": map[string]any{
		"seq": c.Seq, "time": c.Time, "kind": kind, "head": hex.EncodeToString(c.Head),
	}})
}

// getRetention answers the retention policy in force now, in days.
func (s *Server) getRetention(w http.ResponseWriter, r *http.Request) {
	id, _ := session.FromContext(r.Context())
	res, err := s.policies.Resolve(r.Context(), id.Tenant(), s.now())
	if err != nil {
		s.internal(w, r, err)
		return
	}
	chans := map[string]int{}
	for ch, p := range res.Channels {
		chans[ch] = int(p / day)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"version": res.Version, "days": int(res.Tenant / day), "minimum_days": int(res.Minimum / day), "channels": chans,
	})
}

// listHolds answers the tenant's active legal holds, oldest first.
func (s *Server) listHolds(w http.ResponseWriter, r *http.Request) {
	id, _ := session.FromContext(r.Context())
	hs, err := s.policies.Holds(r.Context(), id.Tenant())
	if err != nil {
		s.internal(w, r, err)
		return
	}
	type holdOut struct {
		ID        string    `json:"id"`
		Scope     string    `json:"scope"`
		ScopeID   string    `json:"scope_id,omitempty"`
		Reason    string    `json:"reason"`
		Author    string    `json:"author"`
		CreatedAt time.Time `json:"created_at"`
	}
	out := []holdOut{}
	for _, h := range hs {
		if h.Active() {
			out = append(out, holdOut{ID: h.ID, Scope: string(h.Scope.Kind), ScopeID: h.Scope.ID, Reason: h.Reason, Author: h.Author, CreatedAt: h.CreatedAt})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	writeJSON(w, http.StatusOK, map[string]any{"holds": out})
}

// listLocked answers the tenant's accounts that are locked now. Lock
// events in the audit log name the candidates (a password lock names the
// user name typed, a second-factor lock the user id); the lockout store
// says whether each lock still holds.
func (s *Server) listLocked(w http.ResponseWriter, r *http.Request) {
	id, _ := session.FromContext(r.Context())
	type lockedOut struct {
		UserID   string    `json:"user_id,omitempty"`
		Username string    `json:"username,omitempty"`
		Account  string    `json:"account"`
		Factor   string    `json:"factor"`
		Until    time.Time `json:"until,omitzero"`
		Hard     bool      `json:"hard"`
	}
	out := []lockedOut{}
	seen := map[string]bool{}
	q := audit.Query{Tenant: id.Tenant(), Type: audit.TypeAccountLocked, Since: s.now().Add(-lockLookback), Limit: 1000}
	for range 10 { // at most 10,000 lock events
		page, err := s.audit.Store().Query(r.Context(), q)
		if err != nil {
			s.internal(w, r, err)
			return
		}
		for _, e := range page.Entries {
			factor := lockout.Factor(e.Metadata["factor"])
			if factor == "" {
				factor = lockout.FactorPassword
			}
			key := string(factor) + "/" + e.ResourceID
			if e.ResourceID == "" || seen[key] {
				continue
			}
			seen[key] = true
			st, err := s.guard.Status(r.Context(), lockout.Attempt{AppID: id.Tenant(), Account: e.ResourceID, Factor: factor})
			if err != nil {
				s.internal(w, r, err)
				return
			}
			if !st.Locked {
				continue
			}
			o := lockedOut{Account: e.ResourceID, Factor: string(factor), Until: st.Until, Hard: st.Hard}
			u, err := s.lockedUser(r.Context(), id.Tenant(), factor, e.ResourceID)
			switch {
			case err == nil:
				o.UserID, o.Username = u.ID, u.Username
			case !errors.Is(err, ErrNotFound):
				s.internal(w, r, err)
				return
			}
			out = append(out, o)
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
	writeJSON(w, http.StatusOK, map[string]any{"locked": out})
}

// lockedUser is the user whose counter a lock event names. A password
// counter is keyed by the user name typed, which may be anything
// (another user's id included), a second-factor counter by the user id;
// looking a name up as an id, or the other way round, would list a user
// who is not locked.
func (s *Server) lockedUser(ctx context.Context, tenant string, f lockout.Factor, account string) (User, error) {
	if f == lockout.FactorPassword {
		return s.chat.UserByName(ctx, tenant, account)
	}
	return s.chat.UserByID(ctx, tenant, account)
}

// listGrants answers the tenant's emergency grants that have not expired.
func (s *Server) listGrants(w http.ResponseWriter, r *http.Request) {
	id, _ := session.FromContext(r.Context())
	now := s.now()
	gs, err := s.sessions.EmergencyGrants(r.Context(), id.Tenant(), now.Add(-grantLookback), now.Add(time.Second))
	if err != nil {
		s.internal(w, r, err)
		return
	}
	type grantOut struct {
		ID        string    `json:"id"`
		UserID    string    `json:"user_id"`
		GrantedBy string    `json:"granted_by,omitempty"`
		Reason    string    `json:"reason"`
		CreatedAt time.Time `json:"created_at"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	out := []grantOut{}
	for _, g := range gs {
		if g.ExpiresAt.After(now) {
			out = append(out, grantOut{ID: g.ID, UserID: g.UserID, GrantedBy: g.GrantedBy, Reason: g.Reason, CreatedAt: g.CreatedAt, ExpiresAt: g.ExpiresAt})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"grants": out})
}
