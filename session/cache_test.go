package session_test

import (
	"slices"
	"testing"

	"github.com/chatsdk/compliance/session"
)

// TestVerifyCacheHitsAreCopies: claims returned from a cache hit (not only
// from the first, full verification) share no slice with the cache, so a
// caller that edits them cannot change what the next request sees.
func TestVerifyCacheHitsAreCopies(t *testing.T) {
	b := setup(t, nil)
	tok := b.login(t)
	if _, err := b.m.Verify(tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	hit, err := b.m.Verify(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	hit.AMR[0] = session.AMRMultiFactor
	hit.Audience[0] = "other-api"

	again, err := b.m.Verify(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again.AMR, []string{session.AMRPassword}) || !slices.Equal(again.Audience, []string{"chat-api"}) {
		t.Errorf("cached claims changed through a hit's slices: amr %v, aud %v", again.AMR, again.Audience)
	}
}
