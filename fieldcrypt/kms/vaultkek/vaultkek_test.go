package vaultkek_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tink-crypto/tink-go/v2/core/registry"

	"github.com/chatsdk/compliance/fieldcrypt"
	"github.com/chatsdk/compliance/fieldcrypt/kms/vaultkek"
)

const token = "test-token"

// fakeVault serves the two transit endpoints the KEK uses, with AES-GCM
// under a key of its own that binds associated_data as Vault does.
func fakeVault(t *testing.T) (*httptest.Server, *atomic.Int64) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	var calls atomic.Int64

	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Header.Get("X-Vault-Token") != token {
			http.Error(w, `{"errors":["permission denied"]}`, http.StatusForbidden)
			return
		}
		var req map[string]string
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, `{"errors":["bad json"]}`, http.StatusBadRequest)
			return
		}
		if _, legacy := req["context"]; legacy {
			http.Error(w, `{"errors":["context sent to a non-derived key"]}`, http.StatusBadRequest)
			return
		}
		ad, _ := base64.StdEncoding.DecodeString(req["associated_data"])
		var data map[string]string
		switch r.URL.Path {
		case "/v1/transit/encrypt/fieldcrypt":
			pt, _ := base64.StdEncoding.DecodeString(req["plaintext"])
			nonce := make([]byte, gcm.NonceSize())
			_, _ = rand.Read(nonce)
			data = map[string]string{"ciphertext": "vault:v1:" + base64.StdEncoding.EncodeToString(gcm.Seal(nonce, nonce, pt, ad))}
		case "/v1/transit/decrypt/fieldcrypt":
			raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(req["ciphertext"], "vault:v1:"))
			if err != nil || len(raw) < gcm.NonceSize() {
				http.Error(w, `{"errors":["invalid ciphertext"]}`, http.StatusBadRequest)
				return
			}
			pt, err := gcm.Open(nil, raw[:gcm.NonceSize()], raw[gcm.NonceSize():], ad)
			if err != nil {
				http.Error(w, `{"errors":["cipher: message authentication failed"]}`, http.StatusBadRequest)
				return
			}
			data = map[string]string{"plaintext": base64.StdEncoding.EncodeToString(pt)}
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"data": data})
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func config(srv *httptest.Server) vaultkek.Config {
	return vaultkek.Config{Address: srv.URL, Token: token, TLS: srv.Client().Transport.(*http.Transport).TLSClientConfig}
}

func TestKEKWrapsKeysets(t *testing.T) {
	ctx := context.Background()
	srv, calls := fakeVault(t)
	kek, err := vaultkek.New(config(srv), "transit/keys/fieldcrypt")
	if err != nil {
		t.Fatal(err)
	}
	st := fieldcrypt.NewMemoryStore()
	kr, err := fieldcrypt.New(fieldcrypt.Config{Store: st, KEK: kek})
	if err != nil {
		t.Fatal(err)
	}
	loc := fieldcrypt.Location{Tenant: "a", Table: "t", Column: "c", Row: "1"}
	ct, err := kr.Encrypt(ctx, loc, []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := fieldcrypt.New(fieldcrypt.Config{Store: st, KEK: kek})
	if err != nil {
		t.Fatal(err)
	}
	before := calls.Load()
	for range 3 {
		if got, err := other.Decrypt(ctx, loc, ct); err != nil || string(got) != "secret" {
			t.Fatalf("got %q, %v", got, err)
		}
	}
	if n := calls.Load() - before; n != 1 {
		t.Fatalf("three decrypts made %d Vault calls, want 1 (the keyset load)", n)
	}

	ks, err := st.Get(ctx, fieldcrypt.Scope{Tenant: "a"}, fieldcrypt.PurposeAEAD)
	if err != nil {
		t.Fatal(err)
	}
	ks.Scope = fieldcrypt.Scope{Tenant: "b"}
	if err := st.Create(ctx, ks); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Encrypt(ctx, fieldcrypt.Location{Tenant: "b", Table: "t", Column: "c", Row: "1"}, []byte("x")); !errors.Is(err, fieldcrypt.ErrUnwrap) {
		t.Fatalf("keyset moved to another scope: got %v, want ErrUnwrap", err)
	}
}

func TestRegister(t *testing.T) {
	srv, _ := fakeVault(t)
	t.Cleanup(registry.ClearKMSClients)
	prefix, err := vaultkek.Register(config(srv))
	if err != nil {
		t.Fatal(err)
	}
	kek, err := fieldcrypt.KEKFromURI(prefix + "transit/keys/fieldcrypt")
	if err != nil {
		t.Fatal(err)
	}
	ct, err := kek.Encrypt([]byte("k"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := kek.Decrypt(ct, []byte("ad")); err != nil || string(pt) != "k" {
		t.Fatalf("got %q, %v", pt, err)
	}
	if _, err := kek.Decrypt(ct, []byte("other")); err == nil {
		t.Fatal("decrypted under other associated data")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []vaultkek.Config{
		{Address: "https://vault:8200"},
		{Address: "vault:8200", Token: token},
		{Address: "", Token: token},
	} {
		if _, err := vaultkek.New(cfg, "transit/keys/k"); !errors.Is(err, vaultkek.ErrConfig) {
			t.Errorf("New(%+v): got %v, want ErrConfig", cfg, err)
		}
	}
}

// A Vault address may carry credentials; an error about it must not.
func TestConfigErrorHidesAddressSecrets(t *testing.T) {
	for _, addr := range []string{"ftp://admin:s3cret@vault:8200", "https://admin:s3cret@vault:8200/%zz", "http://admin:s3cret@vault:port"} {
		_, err := vaultkek.New(vaultkek.Config{Address: addr, Token: token}, "transit/keys/k")
		if !errors.Is(err, vaultkek.ErrConfig) {
			t.Fatalf("New(%q): got %v, want ErrConfig", addr, err)
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("New(%q): error %q shows the password", addr, err)
		}
	}
}
