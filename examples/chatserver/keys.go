package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"

	"github.com/chatsdk/compliance/examples/chatserver/internal/chat"
	"github.com/chatsdk/compliance/fieldcrypt"
	"github.com/chatsdk/compliance/fieldcrypt/kms/awskek"
	"github.com/chatsdk/compliance/fieldcrypt/kms/vaultkek"
	"github.com/chatsdk/compliance/session"
)

// keysFile is the on-disk form of the server's keys: each wrapped under
// the KEK with its purpose as associated data, so nothing in it is usable
// without the KEK and no entry can stand in for another.
type keysFile struct {
	MAC         []byte `json:"mac_keyset"`
	AuditSigner []byte `json:"audit_signer_keyset"`
	SessionKey  []byte `json:"session_ed25519_seed"`
	SessionKID  string `json:"session_kid"`
}

const (
	adMAC     = "chatserver.keys.mac.v1"
	adAudit   = "chatserver.keys.audit.v1"
	adSession = "chatserver.keys.session.v1"
)

// loadKeys reads the KEK from a KMS or a development keyset file, then the
// server's keys from the keys file, which it creates on first use.
func loadKeys(o options, logger *slog.Logger) (chat.Keys, error) {
	var (
		kek tink.AEAD
		err error
	)
	switch {
	case o.kekURI != "" && o.kekFile != "":
		return chat.Keys{}, errors.New("give -kek-uri or -kek-file, not both")
	case o.kekURI != "":
		kek, err = kmsKEK(o.kekURI)
	case o.kekFile != "":
		if _, statErr := os.Stat(o.kekFile); errors.Is(statErr, fs.ErrNotExist) {
			if err := fieldcrypt.InsecureWriteCleartextKEK(o.kekFile); err != nil {
				return chat.Keys{}, err
			}
			logger.Warn("DEVELOPMENT KEK: wrote a new cleartext key-encryption key; whoever reads the file can decrypt everything; use -kek-uri with a KMS for real data", "file", o.kekFile)
		}
		kek, err = fieldcrypt.InsecureKEKFromCleartextFile(o.kekFile)
	default:
		return chat.Keys{}, errors.New("with -database-url the keys come from outside the database: give -kek-uri (a KMS key) or, for development, -kek-file")
	}
	if err != nil {
		return chat.Keys{}, fmt.Errorf("kek: %w", err)
	}

	raw, err := os.ReadFile(o.keysFile)
	if errors.Is(err, fs.ErrNotExist) {
		keys, err := chat.GenerateDevelopmentKeys()
		if err != nil {
			return chat.Keys{}, err
		}
		// Only the MAC and audit keysets of the generated set are kept;
		// the session key is a fresh seed stored wrapped below.
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return chat.Keys{}, err
		}
		f := keysFile{SessionKID: "k1"}
		if f.MAC, err = wrapKeyset(keys.MAC, kek, adMAC); err != nil {
			return chat.Keys{}, err
		}
		if f.AuditSigner, err = wrapKeyset(keys.AuditSigner, kek, adAudit); err != nil {
			return chat.Keys{}, err
		}
		if f.SessionKey, err = kek.Encrypt(priv.Seed(), []byte(adSession)); err != nil {
			return chat.Keys{}, err
		}
		out, err := json.MarshalIndent(f, "", "  ")
		if err != nil {
			return chat.Keys{}, err
		}
		if err := os.WriteFile(o.keysFile, out, 0o600); err != nil {
			return chat.Keys{}, err
		}
		logger.Info("created a new keys file, wrapped under the KEK", "file", o.keysFile)
		raw = out
	} else if err != nil {
		return chat.Keys{}, err
	}

	var f keysFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return chat.Keys{}, fmt.Errorf("keys file: %w", err)
	}
	keys := chat.Keys{KEK: kek}
	if keys.MAC, err = keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(f.MAC)), kek, []byte(adMAC)); err != nil {
		return chat.Keys{}, fmt.Errorf("keys file: mac keyset: %w", err)
	}
	if keys.AuditSigner, err = keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(f.AuditSigner)), kek, []byte(adAudit)); err != nil {
		return chat.Keys{}, fmt.Errorf("keys file: audit keyset: %w", err)
	}
	seed, err := kek.Decrypt(f.SessionKey, []byte(adSession))
	if err != nil || len(seed) != ed25519.SeedSize {
		return chat.Keys{}, errors.New("keys file: session key does not unwrap under this KEK")
	}
	if keys.Session, err = sessionKey(f.SessionKID, seed); err != nil {
		return chat.Keys{}, err
	}
	return keys, nil
}

// kmsKEK returns the KMS key at uri: "aws-kms://…" through awskek, with the
// AWS SDK's default credentials; "hcvault://…" through vaultkek, with the
// Vault at $VAULT_ADDR and the token in $VAULT_TOKEN; anything else through
// whatever Tink KMS client is registered.
func kmsKEK(uri string) (tink.AEAD, error) {
	switch {
	case strings.HasPrefix(uri, awskek.URIPrefix):
		return awskek.New(uri)
	case strings.HasPrefix(uri, "hcvault://"):
		if _, err := vaultkek.Register(vaultkek.Config{Address: os.Getenv("VAULT_ADDR"), Token: os.Getenv("VAULT_TOKEN")}); err != nil {
			return nil, err
		}
	}
	return fieldcrypt.KEKFromURI(uri)
}

func wrapKeyset(h *keyset.Handle, kek tink.AEAD, ad string) ([]byte, error) {
	var buf bytes.Buffer
	if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&buf), kek, []byte(ad)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func sessionKey(kid string, seed []byte) (session.Key, error) {
	return session.NewEd25519Key(kid, ed25519.NewKeyFromSeed(seed))
}
