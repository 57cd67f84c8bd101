package audit_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/audittest"
)

// A trusted checkpoint of another stream would vouch for nothing; Verify
// must say so rather than verify as if no checkpoint had been trusted.
func TestVerifyRefusesATrustedCheckpointOfAnotherStream(t *testing.T) {
	ctx := context.Background()
	store := audit.NewMemoryStore()
	keys := audittest.NewKeys(t)
	_, err := store.Append(ctx, "t1", audittest.Events("t1", 0, 3))
	require.NoError(t, err)
	other := audit.Checkpoint{Stream: "t2", Seq: 10, Head: make([]byte, audit.HashSize), Time: time.Now()}
	require.NoError(t, audit.SignCheckpoint(keys.Signer, &other))

	_, err = audit.Verify(ctx, store, audit.VerifyOptions{Stream: "t1", Verifier: keys.Verifier, Trusted: &other})
	require.ErrorIs(t, err, audit.ErrConfig)
}
