package retention_test

import (
	"context"
	"fmt"
	"time"

	"github.com/chatsdk/compliance/retention"
)

func Example() {
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	day := 24 * time.Hour

	store := retention.NewMemoryStore()
	store.Insert("message",
		retention.Row{ID: "m1", AppID: "clinic", Channel: "general", User: "ann", Time: now.Add(-40 * day)},
		retention.Row{ID: "m2", AppID: "clinic", Channel: "general", User: "bob", Time: now.Add(-40 * day)},
		retention.Row{ID: "m3", AppID: "clinic", Channel: "general", User: "ann", Time: now.Add(-10 * day)},
	)

	policies, _ := retention.NewPolicies(store, retention.PoliciesConfig{Now: clock})
	v, _ := policies.SetPeriod(ctx, "clinic", "", 30*day, "admin")
	fmt.Println("30 days from", v.EffectiveAt.Format(time.DateOnly)) // shorter than the default: a day's grace
	now = now.Add(day)

	_, _ = policies.PlaceHold(ctx, "clinic", retention.User("bob"), "litigation", "counsel")

	sweeper, _ := retention.NewSweeper(policies, retention.SweeperConfig{
		Targets: []retention.Target{{Table: "message", ID: "id", Time: "created_at", Channel: "channel_id", User: "user_id"}},
		OnBatch: func(_ context.Context, r retention.Record) error {
			fmt.Printf("deleted %d of %d due in %s/%s under policy v%d\n", r.Deleted, r.Scanned, r.AppID, r.Target, r.PolicyVersion)
			return nil
		},
	})
	if _, err := sweeper.Run(ctx); err != nil {
		fmt.Println(err)
	}
	for _, r := range store.Rows("message") {
		fmt.Println("kept", r.ID)
	}
	// Output:
	// 30 days from 2026-06-02
	// deleted 1 of 2 due in clinic/message under policy v1
	// kept m2
	// kept m3
}

func ExamplePolicies_Explain() {
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	policies, _ := retention.NewPolicies(retention.NewMemoryStore(), retention.PoliciesConfig{Now: func() time.Time { return now }})

	_, _ = policies.SetPeriod(ctx, "clinic", "triage", 7*day, "admin")
	_, _ = policies.LockMinimum(ctx, "clinic", 30*day, "security officer")
	now = now.Add(2 * day)

	v, _ := policies.Explain(ctx, retention.Row{AppID: "clinic", Channel: "triage", Time: now.Add(-10 * day)}, now)
	fmt.Println(v.Delete, v.Reason, int(v.Period/day), "days")
	// Output: false minimum 30 days
}

func ExampleSweeper_Forecast() {
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	store := retention.NewMemoryStore()
	policies, _ := retention.NewPolicies(store, retention.PoliciesConfig{Now: func() time.Time { return now }})
	_, _ = policies.SetPeriod(ctx, "clinic", "", 30*day, "admin")
	_, _ = policies.SetPeriod(ctx, "clinic", "triage", 7*day, "admin")
	now = now.Add(2 * day)

	store.Insert("message",
		retention.Row{ID: "m1", AppID: "clinic", Channel: "general", Time: now.Add(-31 * day)},
		retention.Row{ID: "m2", AppID: "clinic", Channel: "general", Time: now.Add(-25 * day)},
		retention.Row{ID: "m3", AppID: "clinic", Channel: "triage", Time: now.Add(-8 * day)},
	)
	sweeper, _ := retention.NewSweeper(policies, retention.SweeperConfig{
		Targets: []retention.Target{{Table: "message", ID: "id", Time: "created_at", Channel: "channel_id"}},
	})

	now7, _ := sweeper.Forecast(ctx, 7*day)
	due, _ := sweeper.DryRun(ctx)
	for i := range due {
		fmt.Printf("%s: %d due now, %d within a week\n", due[i].Scope, due[i].Due, now7[i].Due)
	}
	fmt.Println(len(store.Rows("message")), "rows, none deleted")
	// Output:
	// channel:triage: 1 due now, 1 within a week
	// tenant: 1 due now, 2 within a week
	// 3 rows, none deleted
}
