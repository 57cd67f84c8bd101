// Package sessiontest is the conformance suite of [session.Store]. Every
// store, the memory store and sessionpg included, runs it:
//
//	func TestConformance(t *testing.T) {
//		sessiontest.Run(t, func(t *testing.T) session.Store { return newStore(t) })
//	}
//
// Each clause of the Store contract is one subtest. newStore must return an
// empty store that nothing else uses; it is called once per subtest.
package sessiontest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chatsdk/compliance/session"
)

// base is the suite's clock origin, at microsecond precision like Postgres.
var base = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// Run runs the suite against the stores newStore returns.
func Run(t *testing.T, newStore func(t *testing.T) session.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s session.Store)
	}{
		{"CreateThenGet", testCreateThenGet},
		{"SessionNotFound", testNotFound},
		{"CreateIsAllOrNothing", testCreateDuplicate},
		{"RotateReplacesToken", testRotate},
		{"RotateUnknownToken", testRotateUnknown},
		{"RotateReusedToken", testRotateReused},
		{"RotateConcurrentExactlyOne", testRotateConcurrent},
		{"RotateNoGraceIgnoresClocks", testRotateNoGraceIgnoresClocks},
		{"RotateGraceWindow", testRotateGrace},
		{"RotateRefusesDeadSession", testRotateDead},
		{"RotateRefusalKeepsTokenUnused", testRotateRefusalUnused},
		{"TouchRecordsActivity", testTouch},
		{"TouchNeverRevivesOrRewinds", testTouchNoRevive},
		{"SetAMR", testSetAMR},
		{"Revoke", testRevoke},
		{"RevokeUser", testRevokeUser},
		{"UserSessions", testUserSessions},
		{"EmergencyGrants", testEmergencyGrants},
		{"Purge", testPurge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

func hash(t *testing.T) []byte {
	t.Helper()
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b[:])
	return h[:]
}

var idSeq struct {
	sync.Mutex
	n int
}

func newID(prefix string) string {
	idSeq.Lock()
	defer idSeq.Unlock()
	idSeq.n++
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), idSeq.n)
}

// fixture is a stored session and its first refresh hash.
type fixture struct {
	s    session.Session
	hash []byte
}

func create(t *testing.T, st session.Store, appID, userID string, mod func(*session.NewSession)) fixture {
	t.Helper()
	ns := session.NewSession{
		Session: session.Session{
			ID: newID("s"), AppID: appID, UserID: userID, AMR: []string{"pwd"},
			CreatedAt: base, LastSeenAt: base, ExpiresAt: base.Add(24 * time.Hour),
		},
		RefreshHash: hash(t),
	}
	if mod != nil {
		mod(&ns)
	}
	if err := st.CreateSession(context.Background(), ns); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	return fixture{s: ns.Session, hash: ns.RefreshHash}
}

func get(t *testing.T, st session.Store, id string) session.Session {
	t.Helper()
	s, err := st.Session(context.Background(), id)
	if err != nil {
		t.Fatalf("Session(%s): %v", id, err)
	}
	return s
}

// same fails t when got and want differ in any field.
func same(t *testing.T, got, want session.Session) {
	t.Helper()
	switch {
	case got.ID != want.ID, got.AppID != want.AppID, got.UserID != want.UserID:
		t.Errorf("ids: got %s/%s/%s, want %s/%s/%s", got.ID, got.AppID, got.UserID, want.ID, want.AppID, want.UserID)
	case !slices.Equal(got.AMR, want.AMR):
		t.Errorf("AMR: got %v, want %v", got.AMR, want.AMR)
	case !got.CreatedAt.Equal(want.CreatedAt), !got.LastSeenAt.Equal(want.LastSeenAt), !got.ExpiresAt.Equal(want.ExpiresAt):
		t.Errorf("times: got %v/%v/%v, want %v/%v/%v", got.CreatedAt, got.LastSeenAt, got.ExpiresAt, want.CreatedAt, want.LastSeenAt, want.ExpiresAt)
	case !got.RevokedAt.Equal(want.RevokedAt), got.RevokeReason != want.RevokeReason:
		t.Errorf("revoked: got %v %q, want %v %q", got.RevokedAt, got.RevokeReason, want.RevokedAt, want.RevokeReason)
	case got.EmergencyGrantID != want.EmergencyGrantID:
		t.Errorf("grant: got %q, want %q", got.EmergencyGrantID, want.EmergencyGrantID)
	}
}

// rotate rotates old to next at now; a zero grace means no grace window.
func rotate(t *testing.T, st session.Store, old, next []byte, now time.Time, grace time.Duration) session.RotateResult {
	t.Helper()
	var cutoff time.Time
	if grace > 0 {
		cutoff = now.Add(-grace)
	}
	res, err := st.RotateRefresh(context.Background(), session.RotateParams{
		OldHash: old, NewHash: next, Now: now,
		IdleCutoff: now.Add(-15 * time.Minute), GraceCutoff: cutoff,
	})
	if err != nil {
		t.Fatalf("RotateRefresh: %v", err)
	}
	return res
}

func testCreateThenGet(t *testing.T, st session.Store) {
	f := create(t, st, "app1", "u1", func(ns *session.NewSession) {
		ns.Session.AMR = []string{"mfa", "otp", "pwd"}
		ns.Session.EmergencyGrantID = "g1"
		ns.Grant = &session.EmergencyGrant{
			ID: "g1", AppID: "app1", UserID: "u1", Reason: "why", SessionID: ns.Session.ID,
			CreatedAt: base, ExpiresAt: base.Add(time.Hour),
		}
	})
	same(t, get(t, st, f.s.ID), f.s)
}

func testNotFound(t *testing.T, st session.Store) {
	ctx := context.Background()
	if _, err := st.Session(ctx, "nope"); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Session: got %v, want ErrNotFound", err)
	}
	if _, err := st.Touch(ctx, "nope", base, base); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Touch: got %v, want ErrNotFound", err)
	}
	if _, err := st.SetAMR(ctx, "nope", []string{"pwd"}); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("SetAMR: got %v, want ErrNotFound", err)
	}
	if _, err := st.Revoke(ctx, "nope", base, session.ReasonLogout); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Revoke: got %v, want ErrNotFound", err)
	}
}

func testCreateDuplicate(t *testing.T, st session.Store) {
	f := create(t, st, "app1", "u1", nil)
	ns := session.NewSession{Session: f.s, RefreshHash: hash(t)}
	if err := st.CreateSession(context.Background(), ns); err == nil {
		t.Fatal("CreateSession with a duplicate id: got nil error")
	}
	// Nothing of the failed call may remain: its refresh hash is unknown.
	if res := rotate(t, st, ns.RefreshHash, hash(t), base.Add(time.Second), 0); res.Known {
		t.Error("the failed create's refresh hash is known")
	}

	// A duplicate refresh hash fails the whole create: no session, no grant.
	dup := session.NewSession{
		Session:     session.Session{ID: newID("s"), AppID: "app1", UserID: "u2", AMR: []string{"pwd"}, CreatedAt: base, LastSeenAt: base, ExpiresAt: base.Add(time.Hour), EmergencyGrantID: "gdup"},
		RefreshHash: f.hash,
		Grant:       &session.EmergencyGrant{ID: "gdup", AppID: "app1", UserID: "u2", Reason: "r", CreatedAt: base, ExpiresAt: base.Add(time.Hour)},
	}
	dup.Grant.SessionID = dup.Session.ID
	if err := st.CreateSession(context.Background(), dup); err == nil {
		t.Fatal("CreateSession with a duplicate refresh hash: got nil error")
	}
	if _, err := st.Session(context.Background(), dup.Session.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("session of the failed create: %v, want ErrNotFound", err)
	}
	if gs, _ := st.EmergencyGrants(context.Background(), "app1", base.Add(-time.Hour), base.Add(time.Hour)); len(gs) != 0 {
		t.Errorf("grant of the failed create stored: %+v", gs)
	}
}

func testRotate(t *testing.T, st session.Store) {
	f := create(t, st, "app1", "u1", nil)
	h2, h3 := hash(t), hash(t)

	res := rotate(t, st, f.hash, h2, base.Add(time.Minute), 0)
	if !res.Rotated || !res.Known || res.Reused {
		t.Fatalf("first rotation: got %+v", res)
	}
	same(t, res.Session, f.s)

	if res := rotate(t, st, h2, h3, base.Add(2*time.Minute), 0); !res.Rotated {
		t.Fatalf("rotating the new token: got %+v", res)
	}
}

func testRotateUnknown(t *testing.T, st session.Store) {
	create(t, st, "app1", "u1", nil)
	if res := rotate(t, st, hash(t), hash(t), base, 0); res.Known || res.Rotated || res.Reused {
		t.Errorf("unknown token: got %+v", res)
	}
}

func testRotateReused(t *testing.T, st session.Store) {
	f := create(t, st, "app1", "u1", nil)
	rotate(t, st, f.hash, hash(t), base.Add(time.Minute), 0)

	res := rotate(t, st, f.hash, hash(t), base.Add(2*time.Minute), 0)
	if res.Rotated || !res.Known || !res.Reused {
		t.Fatalf("second use: got %+v, want Known and Reused", res)
	}
	if res.Session.ID != f.s.ID {
		t.Errorf("second use: session %q, want %q", res.Session.ID, f.s.ID)
	}

	// Reuse is reported even once the session is dead.
	if _, err := st.Revoke(context.Background(), f.s.ID, base.Add(3*time.Minute), session.ReasonRefreshReuse); err != nil {
		t.Fatal(err)
	}
	if res := rotate(t, st, f.hash, hash(t), base.Add(4*time.Minute), 0); !res.Reused {
		t.Errorf("reuse after revocation: got %+v, want Reused", res)
	}
}

// testRotateConcurrent races ten rotations of one token whose callers'
// clocks disagree: the later a caller starts, the earlier its clock, as
// happens between instances. Exactly one may win.
func testRotateConcurrent(t *testing.T, st session.Store) {
	f := create(t, st, "app1", "u1", nil)

	const n = 10
	results := make([]session.RotateResult, n)
	errs := make([]error, n)
	next := make([][]byte, n)
	for i := range next {
		next[i] = hash(t)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			now := base.Add(time.Minute + time.Duration(n-i)*time.Millisecond)
			results[i], errs[i] = st.RotateRefresh(context.Background(), session.RotateParams{
				OldHash: f.hash, NewHash: next[i], Now: now, IdleCutoff: now.Add(-15 * time.Minute),
			})
		}()
	}
	close(start)
	wg.Wait()

	rotated, reused := 0, 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if results[i].Rotated {
			rotated++
		}
		if results[i].Reused {
			reused++
		}
	}
	if rotated != 1 || reused != n-1 {
		t.Errorf("got %d rotated and %d reused, want 1 and %d", rotated, reused, n-1)
	}
}

// testRotateNoGraceIgnoresClocks: without a grace window a used token is a
// replay even when the second caller's clock is behind the first's.
func testRotateNoGraceIgnoresClocks(t *testing.T, st session.Store) {
	f := create(t, st, "app1", "u1", nil)
	rotate(t, st, f.hash, hash(t), base.Add(time.Minute), 0)
	if res := rotate(t, st, f.hash, hash(t), base.Add(time.Minute-time.Second), 0); res.Rotated || !res.Reused {
		t.Errorf("replay with an earlier clock: got %+v, want Reused", res)
	}
}

func testRotateGrace(t *testing.T, st session.Store) {
	f := create(t, st, "app1", "u1", nil)
	used := base.Add(time.Minute)
	rotate(t, st, f.hash, hash(t), used, 5*time.Second)

	if res := rotate(t, st, f.hash, hash(t), used.Add(2*time.Second), 5*time.Second); !res.Rotated {
		t.Errorf("within the grace window: got %+v, want Rotated", res)
	}
	// The grace window runs from the first use, not from the last.
	if res := rotate(t, st, f.hash, hash(t), used.Add(6*time.Second), 5*time.Second); res.Rotated || !res.Reused {
		t.Errorf("after the grace window: got %+v, want Reused", res)
	}
}

func testRotateDead(t *testing.T, st session.Store) {
	ctx := context.Background()
	cases := []struct {
		name string
		now  time.Time
		mod  func(f fixture)
	}{
		{"idle", base.Add(16 * time.Minute), nil},
		{"expired", base.Add(24 * time.Hour), func(f fixture) {
			// Kept active, so only the absolute lifetime ends it.
			if _, err := st.Touch(ctx, f.s.ID, base.Add(24*time.Hour-time.Minute), base.Add(-time.Hour)); err != nil {
				t.Fatal(err)
			}
		}},
		{"revoked", base.Add(time.Minute), func(f fixture) {
			if _, err := st.Revoke(ctx, f.s.ID, base.Add(time.Second), session.ReasonLogout); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		f := create(t, st, "app1", "u-"+c.name, nil)
		if c.mod != nil {
			c.mod(f)
		}
		res := rotate(t, st, f.hash, hash(t), c.now, 0)
		if res.Rotated || !res.Known || res.Reused || res.Session.ID != f.s.ID {
			t.Errorf("%s: got %+v, want Known only", c.name, res)
		}
	}
}

func testRotateRefusalUnused(t *testing.T, st session.Store) {
	f := create(t, st, "app1", "u1", nil)
	late := base.Add(16 * time.Minute)
	rotate(t, st, f.hash, hash(t), late, 0)

	// Refused for idleness, the token was not consumed: presenting it
	// again is not a reuse.
	if res := rotate(t, st, f.hash, hash(t), late.Add(time.Second), 0); res.Reused {
		t.Errorf("after a refused rotation: got %+v, want not Reused", res)
	}
}

func testTouch(t *testing.T, st session.Store) {
	f := create(t, st, "app1", "u1", nil)
	now := base.Add(10 * time.Minute)
	s, err := st.Touch(context.Background(), f.s.ID, now, now.Add(-15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !s.LastSeenAt.Equal(now) {
		t.Errorf("returned LastSeenAt %v, want %v", s.LastSeenAt, now)
	}
	if got := get(t, st, f.s.ID).LastSeenAt; !got.Equal(now) {
		t.Errorf("stored LastSeenAt %v, want %v", got, now)
	}
	// Activity keeps the family refreshable past the first idle deadline.
	if res := rotate(t, st, f.hash, hash(t), base.Add(20*time.Minute), 0); !res.Rotated {
		t.Errorf("rotation after activity: got %+v", res)
	}
}

func testTouchNoRevive(t *testing.T, st session.Store) {
	ctx := context.Background()
	f := create(t, st, "app1", "u1", nil)

	late := base.Add(16 * time.Minute)
	s, err := st.Touch(ctx, f.s.ID, late, late.Add(-15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !s.LastSeenAt.Equal(base) {
		t.Errorf("idle session touched: LastSeenAt %v, want %v", s.LastSeenAt, base)
	}

	g := create(t, st, "app1", "u2", nil)
	if _, err := st.Touch(ctx, g.s.ID, base.Add(5*time.Minute), base.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if s, _ := st.Touch(ctx, g.s.ID, base.Add(2*time.Minute), base.Add(-time.Hour)); !s.LastSeenAt.Equal(base.Add(5 * time.Minute)) {
		t.Errorf("touch moved LastSeenAt back to %v", s.LastSeenAt)
	}

	if _, err := st.Revoke(ctx, g.s.ID, base.Add(6*time.Minute), session.ReasonLogout); err != nil {
		t.Fatal(err)
	}
	if s, _ := st.Touch(ctx, g.s.ID, base.Add(7*time.Minute), base.Add(-time.Hour)); !s.LastSeenAt.Equal(base.Add(5 * time.Minute)) {
		t.Errorf("revoked session touched: LastSeenAt %v", s.LastSeenAt)
	}
}

func testSetAMR(t *testing.T, st session.Store) {
	ctx := context.Background()
	f := create(t, st, "app1", "u1", nil)
	want := []string{"mfa", "otp", "pwd"}
	s, err := st.SetAMR(ctx, f.s.ID, want)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.AMR, want) || !slices.Equal(get(t, st, f.s.ID).AMR, want) {
		t.Errorf("AMR: got %v, want %v", s.AMR, want)
	}

	if _, err := st.Revoke(ctx, f.s.ID, base, session.ReasonLogout); err != nil {
		t.Fatal(err)
	}
	if s, _ := st.SetAMR(ctx, f.s.ID, []string{"hwk"}); !slices.Equal(s.AMR, want) {
		t.Errorf("revoked session's AMR changed to %v", s.AMR)
	}
}

func testRevoke(t *testing.T, st session.Store) {
	ctx := context.Background()
	f := create(t, st, "app1", "u1", nil)
	at := base.Add(time.Minute)

	done, err := st.Revoke(ctx, f.s.ID, at, session.ReasonAdmin)
	if err != nil || !done {
		t.Fatalf("first Revoke: %v, %v", done, err)
	}
	done, err = st.Revoke(ctx, f.s.ID, at.Add(time.Minute), session.ReasonLogout)
	if err != nil || done {
		t.Fatalf("second Revoke: %v, %v; want false, nil", done, err)
	}
	want := f.s
	want.RevokedAt, want.RevokeReason = at, session.ReasonAdmin
	same(t, get(t, st, f.s.ID), want)
}

func testRevokeUser(t *testing.T, st session.Store) {
	ctx := context.Background()
	a := create(t, st, "app1", "u1", nil)
	b := create(t, st, "app1", "u1", nil)
	done := create(t, st, "app1", "u1", nil)
	other := create(t, st, "app1", "u2", nil)
	tenant := create(t, st, "app2", "u1", nil)
	if _, err := st.Revoke(ctx, done.s.ID, base, session.ReasonLogout); err != nil {
		t.Fatal(err)
	}

	ids, err := st.RevokeUser(ctx, "app1", "u1", base.Add(time.Minute), session.ReasonPasswordChange)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{a.s.ID, b.s.ID}
	slices.Sort(want)
	slices.Sort(ids)
	if !slices.Equal(ids, want) {
		t.Errorf("revoked %v, want %v", ids, want)
	}
	if s := get(t, st, a.s.ID); s.RevokeReason != session.ReasonPasswordChange {
		t.Errorf("reason %q", s.RevokeReason)
	}
	if s := get(t, st, done.s.ID); s.RevokeReason != session.ReasonLogout {
		t.Errorf("an already revoked session was revoked again: reason %q", s.RevokeReason)
	}
	for _, f := range []fixture{other, tenant} {
		if s := get(t, st, f.s.ID); !s.RevokedAt.IsZero() {
			t.Errorf("session of %s/%s revoked", f.s.AppID, f.s.UserID)
		}
	}
}

func testUserSessions(t *testing.T, st session.Store) {
	ctx := context.Background()
	at := func(d time.Duration) func(*session.NewSession) {
		return func(ns *session.NewSession) {
			ns.Session.CreatedAt = base.Add(d)
			ns.Session.LastSeenAt = base.Add(d)
		}
	}
	older := create(t, st, "app1", "u1", at(0))
	newer := create(t, st, "app1", "u1", at(time.Minute))
	revoked := create(t, st, "app1", "u1", at(2*time.Minute))
	expired := create(t, st, "app1", "u1", func(ns *session.NewSession) { ns.Session.ExpiresAt = base.Add(time.Hour) })
	create(t, st, "app1", "u2", nil)
	create(t, st, "app2", "u1", nil)
	if _, err := st.Revoke(ctx, revoked.s.ID, base.Add(3*time.Minute), session.ReasonLogout); err != nil {
		t.Fatal(err)
	}

	got, err := st.UserSessions(ctx, "app1", "u1", base.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range got {
		ids = append(ids, s.ID)
	}
	if want := []string{newer.s.ID, older.s.ID}; !slices.Equal(ids, want) {
		t.Errorf("got %v, want %v (newest first; not %s revoked nor %s expired)", ids, want, revoked.s.ID, expired.s.ID)
	}
	if len(got) == 2 {
		same(t, got[0], newer.s)
	}
}

func testEmergencyGrants(t *testing.T, st session.Store) {
	ctx := context.Background()
	var want []session.EmergencyGrant
	for i, app := range []string{"app1", "app2", "app1", "app1"} {
		at := base.Add(time.Duration(3-i) * time.Minute) // stored newest first
		f := create(t, st, app, "u1", func(ns *session.NewSession) {
			ns.Session.CreatedAt = at
			ns.Session.LastSeenAt = at
			ns.Session.EmergencyGrantID = newID("g")
			ns.Grant = &session.EmergencyGrant{
				ID: ns.Session.EmergencyGrantID, AppID: app, UserID: "u1", GrantedBy: "boss",
				Reason: fmt.Sprintf("reason %d", i), SessionID: ns.Session.ID,
				CreatedAt: at, ExpiresAt: at.Add(time.Hour),
			}
		})
		if app == "app1" && i != 0 {
			want = append([]session.EmergencyGrant{{
				ID: f.s.EmergencyGrantID, AppID: app, UserID: "u1", GrantedBy: "boss",
				Reason: fmt.Sprintf("reason %d", i), SessionID: f.s.ID, CreatedAt: at, ExpiresAt: at.Add(time.Hour),
			}}, want...)
		}
	}

	// [base, base+3m) excludes the grant made at base+3m.
	got, err := st.EmergencyGrants(ctx, "app1", base, base.Add(3*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d grants, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.AppID != w.AppID || g.UserID != w.UserID || g.GrantedBy != w.GrantedBy ||
			g.Reason != w.Reason || g.SessionID != w.SessionID || !g.CreatedAt.Equal(w.CreatedAt) || !g.ExpiresAt.Equal(w.ExpiresAt) {
			t.Errorf("grant %d: got %+v, want %+v", i, g, w)
		}
	}
}

func testPurge(t *testing.T, st session.Store) {
	ctx := context.Background()
	old := create(t, st, "app1", "u1", func(ns *session.NewSession) {
		ns.Session.ExpiresAt = base.Add(time.Hour)
		ns.Session.EmergencyGrantID = newID("g")
		ns.Grant = &session.EmergencyGrant{
			ID: ns.Session.EmergencyGrantID, AppID: "app1", UserID: "u1", Reason: "r",
			SessionID: ns.Session.ID, CreatedAt: base, ExpiresAt: base.Add(time.Hour),
		}
	})
	live := create(t, st, "app1", "u1", nil)

	n, err := st.Purge(ctx, base.Add(2*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("Purge: %d, %v; want 1", n, err)
	}
	if _, err := st.Session(ctx, old.s.ID); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("purged session: %v", err)
	}
	if res := rotate(t, st, old.hash, hash(t), base.Add(time.Minute), 0); res.Known {
		t.Error("purged session's refresh token still known")
	}
	get(t, st, live.s.ID)
	if gs, _ := st.EmergencyGrants(ctx, "app1", base, base.Add(time.Hour)); len(gs) != 1 {
		t.Errorf("grants after purge: %d, want 1 (grants are kept for review)", len(gs))
	}
}
