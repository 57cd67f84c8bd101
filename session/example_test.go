package session_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/chatsdk/compliance/session"
)

func Example() {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }

	key, _ := session.GenerateEd25519Key("2026-03")
	ring, _ := session.NewKeyRing(key)
	m, err := session.New(session.Config{
		Store: session.NewMemoryStore(), Keys: ring,
		Issuer: "https://auth.example", Audience: "chat-api", Now: clock,
	})
	if err != nil {
		panic(err)
	}

	// After a password check, open a session.
	tok, _ := m.Create(ctx, session.CreateParams{AppID: "clinic-1", UserID: "dr-who", Methods: []string{session.AMRPassword}})

	// Requests carry the access token; MFA-only routes need a step-up.
	h := m.Middleware(session.RequireMFA()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := session.FromContext(r.Context())
		fmt.Println("served", id.UserID(), "of", id.Tenant(), "with", id.AMR())
	})))
	call := func(token string) {
		r := httptest.NewRequest(http.MethodGet, "/messages", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println("status", w.Code)
	}
	call(tok.AccessToken)

	// After a TOTP check, step up and refresh.
	_ = m.StepUp(ctx, tok.SessionID, session.AMROTP)
	now = now.Add(time.Minute)
	next, _ := m.Refresh(ctx, tok.RefreshToken)
	call(next.AccessToken)

	// The old refresh token was rotated away: replaying it ends the session.
	_, err = m.Refresh(ctx, tok.RefreshToken)
	fmt.Println("replay:", errors.Is(err, session.ErrTokenReused))
	call(next.AccessToken)

	// Output:
	// status 403
	// served dr-who of clinic-1 with [mfa otp pwd]
	// status 200
	// replay: true
	// status 401
}

func ExampleManager_GrantEmergency() {
	ctx := context.Background()
	key, _ := session.GenerateEd25519Key("k1")
	ring, _ := session.NewKeyRing(key)
	m, _ := session.New(session.Config{
		Store: session.NewMemoryStore(), Keys: ring, Issuer: "https://auth.example", Audience: "chat-api",
		Hooks: session.Hooks{
			EmergencyIssued: func(_ context.Context, e session.EmergencyEvent) {
				fmt.Println("audit: emergency access granted to", e.UserID, "until +", e.ExpiresAt.Sub(e.At))
			},
			EmergencyUsed: func(_ context.Context, e session.EmergencyEvent) {
				fmt.Println("audit: emergency access used by", e.UserID)
			},
		},
	})

	tok, _, err := m.GrantEmergency(ctx, session.EmergencyRequest{
		AppID: "clinic-1", UserID: "dr-who", Methods: []string{session.AMRPassword},
		Reason: "patient unresponsive, treating physician unreachable", Duration: 30 * time.Minute,
	})
	if err != nil {
		panic(err)
	}
	id, _ := m.Authenticate(ctx, tok.AccessToken)
	fmt.Println("emergency:", id.Emergency())

	// Output:
	// audit: emergency access granted to dr-who until + 30m0s
	// audit: emergency access used by dr-who
	// emergency: true
}
