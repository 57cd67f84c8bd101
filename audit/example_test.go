package audit_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/signature"

	"github.com/chatsdk/compliance/audit"
)

func Example() {
	ctx := context.Background()

	// The application holds the signing keyset; auditors get the public one.
	priv, _ := keyset.NewHandle(signature.ED25519KeyTemplate())
	signer, _ := signature.NewSigner(priv)
	pub, _ := priv.Public()
	verifier, _ := signature.NewVerifier(pub)

	store := audit.NewMemoryStore()
	log, err := audit.New(audit.Config{Store: store, Signer: signer})
	if err != nil {
		panic(err)
	}
	defer log.Close(ctx)

	entry, err := log.Record(ctx, audit.Event{
		Tenant:       "clinic-1",
		Time:         time.Date(2026, 5, 1, 9, 30, 0, 0, time.UTC),
		Actor:        "dr-lee",
		Type:         audit.TypeDataRead,
		Category:     audit.CategoryDataAccess,
		Action:       audit.ActionRead,
		ResourceType: "message",
		ResourceID:   "msg-42",
		Subject:      "patient-7",
		Success:      true,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println("seq", entry.Seq)

	if _, err := log.Checkpoint(ctx, "clinic-1"); err != nil {
		panic(err)
	}
	rep, err := audit.Verify(ctx, store, audit.VerifyOptions{Stream: "clinic-1", Verifier: verifier})
	fmt.Println("verified", rep.Entries, "entries,", rep.Checkpoints, "checkpoint, error:", err)
	// Output:
	// seq 1
	// verified 1 entries, 1 checkpoint, error: <nil>
}

func ExampleMiddleware() {
	store := audit.NewMemoryStore()
	log, _ := audit.New(audit.Config{Store: store})
	defer log.Close(context.Background())

	type userKey struct{}
	mw, err := audit.Middleware(audit.MiddlewareConfig{
		Recorder: log,
		// The application wires this to its session package's accessors.
		Actor: func(r *http.Request) (audit.Actor, bool) {
			a, ok := r.Context().Value(userKey{}).(audit.Actor)
			return a, ok
		},
		Classify: func(r *http.Request) (audit.Route, bool) {
			id, ok := strings.CutPrefix(r.URL.Path, "/messages/")
			if !ok {
				return audit.Route{}, false
			}
			return audit.Route{Type: audit.TypeDataRead, Category: audit.CategoryDataAccess,
				Action: audit.ActionRead, ResourceType: "message", ResourceID: id, Tenant: "clinic-1"}, true
		},
	})
	if err != nil {
		panic(err)
	}
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Value(userKey{}) == nil {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		fmt.Fprint(w, "message text")
	}))

	req := httptest.NewRequest(http.MethodGet, "/messages/m-1", nil)
	h.ServeHTTP(httptest.NewRecorder(), req.WithContext(context.WithValue(req.Context(), userKey{}, audit.Actor{UserID: "dr-lee", Tenant: "clinic-1"})))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/messages/m-1", nil))

	page, _ := store.Query(context.Background(), audit.Query{Tenant: "clinic-1"})
	for _, e := range page.Entries {
		fmt.Printf("seq %d actor=%q success=%v %s\n", e.Seq, e.Actor, e.Success, e.FailureReason)
	}
	// Output:
	// seq 2 actor="" success=false access denied
	// seq 1 actor="dr-lee" success=true
}

func ExampleDisclosures() {
	ctx := context.Background()
	store := audit.NewMemoryStore()
	at := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	for i, who := range []string{"dr-lee", "nurse-kim", "dr-lee"} {
		_, _ = store.Append(ctx, "clinic-1", []audit.Event{{
			Tenant: "clinic-1", Time: at.Add(time.Duration(i) * time.Hour), Actor: who,
			Type: audit.TypeDataRead, Category: audit.CategoryDataAccess, Action: audit.ActionRead,
			ResourceType: "message", ResourceID: fmt.Sprint("msg-", i), Subject: "patient-7",
			Success: true, RetainUntil: at.AddDate(6, 0, 0),
		}})
	}
	got, _ := audit.Disclosures(ctx, store, audit.DisclosureQuery{Tenant: "clinic-1", Subject: "patient-7"})
	for _, e := range got {
		fmt.Println(e.Time.Format("15:04"), e.Actor, e.ResourceID)
	}
	// Output:
	// 11:00 dr-lee msg-2
	// 10:00 nurse-kim msg-1
	// 09:00 dr-lee msg-0
}
