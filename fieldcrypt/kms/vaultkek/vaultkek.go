// Package vaultkek makes a HashiCorp Vault transit key the key-encryption
// key (KEK) of fieldcrypt, through Tink's Vault client (tink-go-hcvault).
// It lives apart from fieldcrypt so that only applications that use Vault
// pull in its API client.
//
// The KEK is called once per keyset load, create or change, never per
// field. The associated data fieldcrypt binds to each wrapped keyset (its
// scope) is sent as the transit "associated_data" parameter, which needs a
// Vault that supports it for the key type (aes256-gcm96 or
// chacha20-poly1305); Tink's older mode, which sent it as "context" and is
// ignored by non-derived keys, is not used, so the binding cannot be lost
// silently.
//
// Wire it as
//
//	kek, err := vaultkek.New(vaultkek.Config{Address: "https://vault:8200", Token: token}, "transit/keys/fieldcrypt")
//	kr, err := fieldcrypt.New(fieldcrypt.Config{Store: store, KEK: kek})
//
// or register it once with [Register] and use fieldcrypt.KEKFromURI with
// "hcvault://vault:8200/transit/keys/fieldcrypt". The Vault policy of the
// token needs update on transit/encrypt/<key> and transit/decrypt/<key>.
package vaultkek

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/hashicorp/vault/api"
	"github.com/tink-crypto/tink-go-hcvault/v2/integration/hcvault"
	"github.com/tink-crypto/tink-go/v2/core/registry"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// Config is how to reach Vault.
type Config struct {
	// Address is Vault's URL, such as "https://vault.internal:8200".
	// Required.
	Address string
	// Token authenticates to Vault. Required.
	Token string
	// TLS configures the connection; nil means the system's roots.
	TLS *tls.Config
}

// ErrConfig means a Config field is missing or invalid.
var ErrConfig = errors.New("vaultkek: invalid config")

// New returns the transit key at keyPath ("transit/keys/<name>", or the
// mount path of another transit engine) as a KEK.
func New(cfg Config, keyPath string) (tink.AEAD, error) {
	c, prefix, err := client(cfg)
	if err != nil {
		return nil, err
	}
	a, err := c.GetAEAD(prefix + strings.TrimPrefix(keyPath, "/"))
	if err != nil {
		return nil, fmt.Errorf("vaultkek: %w", err)
	}
	return a, nil
}

// Register registers a Tink KMS client for "hcvault://<host>/…" key URIs
// of the Vault at cfg.Address, so that fieldcrypt.KEKFromURI resolves them.
// It returns the URI prefix. Call it once at start-up.
func Register(cfg Config) (string, error) {
	c, prefix, err := client(cfg)
	if err != nil {
		return "", err
	}
	registry.RegisterKMSClient(c)
	return prefix, nil
}

func client(cfg Config) (registry.KMSClient, string, error) {
	if cfg.Token == "" {
		return nil, "", fmt.Errorf("%w: Token is empty", ErrConfig)
	}
	u, err := url.Parse(cfg.Address)
	if err != nil {
		// Neither the address nor url's error, which quotes it: it may
		// hold a password.
		return nil, "", fmt.Errorf("%w: Address is not a URL", ErrConfig)
	}
	if u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, "", fmt.Errorf("%w: Address %q is not an http(s) URL", ErrConfig, u.Redacted())
	}

	vc := api.DefaultConfig()
	vc.Address = cfg.Address
	if cfg.TLS != nil {
		tr, ok := vc.HttpClient.Transport.(*http.Transport)
		if !ok {
			return nil, "", fmt.Errorf("%w: the Vault client has no TLS transport to configure", ErrConfig)
		}
		tr.TLSClientConfig = cfg.TLS.Clone()
	}
	c, err := api.NewClient(vc)
	if err != nil {
		return nil, "", fmt.Errorf("vaultkek: %w", err)
	}
	c.SetToken(cfg.Token)

	prefix := "hcvault://" + u.Host + "/"
	kc, err := hcvault.NewClientWithAEADOptions(prefix, c.Logical())
	if err != nil {
		return nil, "", fmt.Errorf("vaultkek: %w", err)
	}
	return kc, prefix, nil
}
