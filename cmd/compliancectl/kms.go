package main

import (
	"errors"
	"net/url"
	"strings"

	"github.com/chatsdk/compliance/fieldcrypt/kms/awskek"
	"github.com/chatsdk/compliance/fieldcrypt/kms/vaultkek"
)

// registerKMS registers the Tink KMS client a KEK URI needs: AWS KMS with
// the SDK's default credential chain, or Vault at VAULT_ADDR (defaulting to
// https:// and the URI's host) with VAULT_TOKEN.
func registerKMS(uri string, getenv func(string) string) error {
	switch {
	case strings.HasPrefix(uri, awskek.URIPrefix):
		return awskek.Register(uri)
	case strings.HasPrefix(uri, "hcvault://"):
		token := getenv("VAULT_TOKEN")
		if token == "" {
			return errors.New("a hcvault:// KEK needs VAULT_TOKEN set to a token allowed to encrypt and decrypt with the transit key")
		}
		addr := getenv("VAULT_ADDR")
		if addr == "" {
			u, err := url.Parse(uri)
			if err != nil {
				return errors.New("the hcvault:// URI does not parse")
			}
			addr = "https://" + u.Host
		}
		_, err := vaultkek.Register(vaultkek.Config{Address: addr, Token: token})
		return err
	}
	return errors.New("the KEK URI must start with aws-kms:// or hcvault://")
}
