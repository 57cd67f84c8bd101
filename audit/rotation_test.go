package audit_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/signature"

	"github.com/chatsdk/compliance/audit"
	"github.com/chatsdk/compliance/audit/audittest"
)

func TestSigningKeyRotatesWithOverlap(t *testing.T) {
	ctx := context.Background()
	store := audit.NewMemoryStore()

	// Key A signs the first checkpoint.
	mgr := keyset.NewManager()
	oldID, err := mgr.Add(signature.ED25519KeyTemplate())
	require.NoError(t, err)
	require.NoError(t, mgr.SetPrimary(oldID))
	before, err := mgr.Handle()
	require.NoError(t, err)
	signerA, err := signature.NewSigner(before)
	require.NoError(t, err)
	logA, err := audit.New(audit.Config{Store: store, Signer: signerA})
	require.NoError(t, err)
	_, err = logA.Record(ctx, audittest.Event("t1", 0))
	require.NoError(t, err)
	_, err = logA.Checkpoint(ctx, "t1")
	require.NoError(t, err)

	// Rotate: key B becomes primary, key A stays in the keyset.
	newID, err := mgr.Add(signature.ED25519KeyTemplate())
	require.NoError(t, err)
	require.NoError(t, mgr.SetPrimary(newID))
	after, err := mgr.Handle()
	require.NoError(t, err)
	signerB, err := signature.NewSigner(after)
	require.NoError(t, err)
	logB, err := audit.New(audit.Config{Store: store, Signer: signerB})
	require.NoError(t, err)
	_, err = logB.Record(ctx, audittest.Event("t1", 1))
	require.NoError(t, err)
	_, err = logB.Checkpoint(ctx, "t1")
	require.NoError(t, err)

	// The public keyset with both keys verifies both checkpoints.
	pub, err := after.Public()
	require.NoError(t, err)
	both, err := signature.NewVerifier(pub)
	require.NoError(t, err)
	rep, err := audit.Verify(ctx, store, audit.VerifyOptions{Stream: "t1", Verifier: both})
	require.NoError(t, err)
	require.Equal(t, 2, rep.Checkpoints)

	// Once key A is deleted, its checkpoints no longer verify: retire a key
	// only after re-signing (or no longer needing) what it signed.
	require.NoError(t, mgr.Delete(oldID))
	onlyB, err := mgr.Handle()
	require.NoError(t, err)
	pubB, err := onlyB.Public()
	require.NoError(t, err)
	verifierB, err := signature.NewVerifier(pubB)
	require.NoError(t, err)
	_, err = audit.Verify(ctx, store, audit.VerifyOptions{Stream: "t1", Verifier: verifierB})
	var f *audit.Failure
	require.ErrorAs(t, err, &f)
	require.Equal(t, audit.FailForgedCheckpoint, f.Kind)
}
