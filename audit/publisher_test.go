package audit_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/audittest"
)

func TestHTTPPublisher(t *testing.T) {
	keys := audittest.NewKeys(t)
	var got []audit.Checkpoint
	fail := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c audit.Checkpoint
		if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&c) != nil {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		if fail {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		got = append(got, c)
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()

	pub := &audit.HTTPPublisher{URL: srv.URL, Client: &http.Client{Timeout: 5 * time.Second}}
	c := audit.Checkpoint{Stream: "t1", Seq: 7, Head: make([]byte, audit.HashSize), Time: time.Now()}
	require.NoError(t, audit.SignCheckpoint(keys.Signer, &c))
	require.NoError(t, pub.Publish(context.Background(), c))
	require.Len(t, got, 1)
	require.NoError(t, audit.VerifyCheckpoint(keys.Verifier, &got[0]), "the published copy still verifies")

	fail = true
	require.Error(t, pub.Publish(context.Background(), c), "a non-2xx status is a failure")
}

func TestLogReportsPublishFailures(t *testing.T) {
	keys := audittest.NewKeys(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	var streams []string
	log, err := audit.New(audit.Config{Store: audit.NewMemoryStore(), Signer: keys.Signer, CheckpointEvery: 1,
		Publisher: &audit.HTTPPublisher{URL: srv.URL}, OnError: func(stream string, _ error) { streams = append(streams, stream) }})
	require.NoError(t, err)
	_, err = log.Record(context.Background(), audittest.Event("t1", 0))
	require.NoError(t, err, "the entry is durable even when its checkpoint cannot be published")
	require.Equal(t, []string{"t1"}, streams)
}
