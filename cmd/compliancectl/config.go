package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/chatsdk/compliance/fieldcrypt"
	"github.com/chatsdk/compliance/integrity"
	"github.com/chatsdk/compliance/integrity/integritypg"
	"github.com/chatsdk/compliance/internal/canon"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/signature"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// Config is the operator's description of what the database holds that the
// tool cannot discover: the tenants, where the keys are, and which
// application tables are sealed, swept and encrypted. It is a JSON file
// (--config or COMPLIANCECTL_CONFIG); unknown fields are an error, so a
// typo does not silently drop a table.
//
//	{
//	  "tenants": ["app-1"],
//	  "keys": {
//	    "kek_uri": "aws-kms://arn:aws:kms:…",
//	    "audit_public_keyset": "audit-public.json",
//	    "integrity_keyset": "integrity-mac.bin"
//	  },
//	  "integrity": {"tables": [{"domain": "message", "columns": [
//	    {"name": "body", "kind": "string"}, {"name": "created_at", "kind": "time"}]}]},
//	  "retention": {"targets": [{"table": "message", "id": "id", "time": "created_at", "channel": "channel_id"}]},
//	  "fieldcrypt": {"columns": [{"table": "message", "column": "body", "ciphertext": "body_enc", "id_type": "bigint"}]}
//	}
type Config struct {
	// Tenants are the tenants (and so the audit streams) that commands
	// without --app cover.
	Tenants []string `json:"tenants"`
	// Keys says where the keys are.
	Keys KeysConfig `json:"keys"`
	// Integrity declares the sealed tables.
	Integrity struct {
		Tables []TableConfig `json:"tables"`
	} `json:"integrity"`
	// Retention declares the tables the sweeper may delete from.
	Retention struct {
		Targets []TargetConfig `json:"targets"`
		// DefaultDays is the retention period, in days, of a tenant with
		// none of its own. Zero means the package's default (2,555 days).
		DefaultDays int `json:"default_days"`
	} `json:"retention"`
	// Fieldcrypt declares the encrypted columns.
	Fieldcrypt struct {
		Columns []ColumnConfig `json:"columns"`
	} `json:"fieldcrypt"`
	// Policy is the application's authentication policy, for the evidence
	// report; nil means the packages' defaults.
	Policy *PolicyConfig `json:"policy"`
	// Evidence names audit types the evidence report counts.
	Evidence struct {
		// TokenReuseType is the audit type the application records when a
		// refresh token is reused. Defaults to "security.refresh_reused".
		TokenReuseType string `json:"token_reuse_type"`
	} `json:"evidence"`
}

// PolicyConfig declares the application's lockout and session settings
// (lockout.Policy and session.Config); zero fields mean the defaults.
type PolicyConfig struct {
	LockoutMaxFailures   int `json:"lockout_max_failures"`
	LockoutWindowMinutes int `json:"lockout_window_minutes"`
	LockoutHardCap       int `json:"lockout_hard_cap"`
	SessionIdleMinutes   int `json:"session_idle_minutes"`
	SessionLifetimeHours int `json:"session_lifetime_hours"`
}

// KeysConfig names the key material. Secret keysets are stored encrypted
// under the KEK; only public keys are read in the clear.
type KeysConfig struct {
	// KEKURI is a KMS key (aws-kms://…, hcvault://…) that wraps the field
	// keysets and the integrity keyset.
	KEKURI string `json:"kek_uri"`
	// InsecureKEKFile is a cleartext Tink keyset used as the KEK instead,
	// for development only.
	InsecureKEKFile string `json:"insecure_kek_file"`
	// AuditPublicKeyset is the Tink public keyset (JSON or binary) that
	// verifies audit checkpoints.
	AuditPublicKeyset string `json:"audit_public_keyset"`
	// IntegrityKeyset is the integrity MAC keyset, a Tink keyset file
	// (binary or JSON) encrypted under the KEK.
	IntegrityKeyset string `json:"integrity_keyset"`
	// IntegrityKeysetAD is the associated data the integrity keyset was
	// encrypted with, if any.
	IntegrityKeysetAD string `json:"integrity_keyset_associated_data"`
}

// TableConfig is an integritypg.Table in the configuration.
type TableConfig struct {
	Domain       string `json:"domain"`
	Schema       string `json:"schema"`
	Name         string `json:"name"`
	IDColumn     string `json:"id_column"`
	TenantColumn string `json:"tenant_column"`
	Columns      []struct {
		Name string `json:"name"`
		// Kind is string, bytes, int, bool or time.
		Kind string `json:"kind"`
	} `json:"columns"`
}

// TargetConfig is a retention.Target in the configuration.
type TargetConfig struct {
	Name     string `json:"name"`
	Table    string `json:"table"`
	ID       string `json:"id"`
	Tenant   string `json:"tenant"`
	Time     string `json:"time"`
	Channel  string `json:"channel"`
	User     string `json:"user"`
	Resource string `json:"resource"`
	// IntegrityDomain, when set, is the integrity domain of the table's
	// rows: the sweep forgets the tags of the rows it deletes, in the same
	// transaction, so that integrity verify does not report them missing.
	IntegrityDomain string `json:"integrity_domain"`
}

// ColumnConfig is an encrypted column (fieldcryptpg.ColumnConfig).
type ColumnConfig struct {
	Schema     string `json:"schema"`
	Table      string `json:"table"`
	Column     string `json:"column"`
	ID         string `json:"id"`
	IDType     string `json:"id_type"`
	Tenant     string `json:"tenant"`
	Scope      string `json:"scope"`
	Ciphertext string `json:"ciphertext"`
}

// config loads the configuration once. A command that needs it and finds
// none gets a usage error that says what to add.
func (e *env) config() (*Config, error) {
	if e.cfg != nil {
		return e.cfg, nil
	}
	path := e.configPath
	if path == "" {
		path = e.getenv(envConfig)
	}
	if path == "" {
		e.cfg = &Config{}
		return e.cfg, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("cannot read the configuration: %v; check --config or %s", err, envConfig)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		return nil, usagef("configuration %s: %v", path, err)
	}
	e.cfg = &cfg
	return e.cfg, nil
}

// tenants returns the --app values given, or the configured tenants.
func (e *env) tenants(apps []string) ([]string, error) {
	if len(apps) > 0 {
		return apps, nil
	}
	cfg, err := e.config()
	if err != nil {
		return nil, err
	}
	if len(cfg.Tenants) == 0 {
		// TODO: list streams from the database once auditpg exposes them.
		return nil, usagef("no tenant given: pass --app TENANT or list \"tenants\" in the configuration (--config)")
	}
	return cfg.Tenants, nil
}

// auditVerifier reads the public keyset that verifies audit checkpoints,
// from path or the configuration.
func (e *env) auditVerifier(path string) (tink.Verifier, error) {
	h, path, err := e.auditPublicKeyset(path)
	if err != nil {
		return nil, err
	}
	v, err := signature.NewVerifier(h)
	if err != nil {
		return nil, usagef("%s holds no signature verification key: %v", path, err)
	}
	return v, nil
}

// auditPublicKeyset reads the Tink public keyset of the audit checkpoint
// signer, JSON or binary, from path or, when path is empty, the
// configuration, and returns it with the path it came from.
func (e *env) auditPublicKeyset(path string) (*keyset.Handle, string, error) {
	if path == "" {
		cfg, err := e.config()
		if err != nil {
			return nil, "", err
		}
		path = cfg.Keys.AuditPublicKeyset
	}
	if path == "" {
		return nil, "", usagef("no audit public key: pass --public-key FILE (the Tink public keyset of the checkpoint signer) or set keys.audit_public_keyset in the configuration")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", usagef("cannot read the audit public key: %v", err)
	}
	h, err := keyset.ReadWithNoSecrets(keyset.NewJSONReader(bytes.NewReader(data)))
	if err != nil {
		h, err = keyset.ReadWithNoSecrets(keyset.NewBinaryReader(bytes.NewReader(data)))
	}
	if err != nil {
		return nil, "", usagef("%s is not a Tink public keyset (JSON or binary): export it with the signer's public keyset handle (handle.Public()) and keyset.WriteWithNoSecrets", path)
	}
	return h, path, nil
}

// kek returns the key-encryption key named by the configuration.
func (e *env) kek() (tink.AEAD, error) {
	cfg, err := e.config()
	if err != nil {
		return nil, err
	}
	k := cfg.Keys
	switch {
	case k.KEKURI != "" && k.InsecureKEKFile != "":
		return nil, usagef("the configuration names both keys.kek_uri and keys.insecure_kek_file: keep one")
	case k.KEKURI != "":
		kek, err := kekFromURI(k.KEKURI, e.getenv)
		if err != nil {
			return nil, usagef("KEK %s: %v; check keys.kek_uri and the KMS credentials", redactURI(k.KEKURI), err)
		}
		return kek, nil
	case k.InsecureKEKFile != "":
		kek, err := fieldcrypt.InsecureKEKFromCleartextFile(k.InsecureKEKFile)
		if err != nil {
			return nil, usagef("development KEK %s: %v", k.InsecureKEKFile, err)
		}
		return kek, nil
	}
	return nil, usagef("no KEK: set keys.kek_uri (aws-kms://… or hcvault://…) in the configuration, or keys.insecure_kek_file for development")
}

// integrityKeys reads the integrity MAC keyset, decrypted with the KEK.
func (e *env) integrityKeys() (*integrity.Keys, error) {
	cfg, err := e.config()
	if err != nil {
		return nil, err
	}
	path := cfg.Keys.IntegrityKeyset
	if path == "" {
		return nil, usagef("no integrity key: set keys.integrity_keyset in the configuration to the MAC keyset file encrypted under the KEK")
	}
	kek, err := e.kek()
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("cannot read the integrity keyset: %v", err)
	}
	ad := []byte(cfg.Keys.IntegrityKeysetAD)
	h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(data)), kek, ad)
	if err != nil {
		h, err = keyset.ReadWithAssociatedData(keyset.NewJSONReader(bytes.NewReader(data)), kek, ad)
	}
	if err != nil {
		return nil, usagef("%s does not decrypt under the KEK: check keys.integrity_keyset, keys.integrity_keyset_associated_data and the KEK", path)
	}
	keys, err := integrity.NewKeys(h)
	if err != nil {
		return nil, usagef("%s: %v", path, err)
	}
	return keys, nil
}

// integrityTable returns the declared table of a domain.
func (cfg *Config) integrityTable(name string) (integritypg.Table, error) {
	var names []string
	for _, t := range cfg.Integrity.Tables {
		names = append(names, t.Domain)
		if t.Domain != name {
			continue
		}
		out := integritypg.Table{Domain: t.Domain, Schema: t.Schema, Name: t.Name, IDColumn: t.IDColumn, TenantColumn: t.TenantColumn}
		for _, c := range t.Columns {
			k, ok := kinds[c.Kind]
			if !ok {
				return out, usagef("integrity table %s, column %s: kind %q is not one of string, bytes, int, bool, time", t.Domain, c.Name, c.Kind)
			}
			out.Columns = append(out.Columns, integritypg.Column{Name: c.Name, Kind: k})
		}
		return out, nil
	}
	if len(names) == 0 {
		return integritypg.Table{}, usagef("no integrity tables are declared: add integrity.tables to the configuration (--config)")
	}
	return integritypg.Table{}, usagef("integrity target %q is not declared; the configuration declares %s", name, strings.Join(names, ", "))
}

var kinds = map[string]canon.Kind{
	"string": canon.KindString,
	"bytes":  canon.KindBytes,
	"int":    canon.KindInt,
	"bool":   canon.KindBool,
	"time":   canon.KindTime,
}

// redactURI keeps a KMS URI's scheme and host, enough to say which KMS.
func redactURI(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		if j := strings.IndexAny(rest, "/:"); j >= 0 {
			rest = rest[:j]
		}
		return u[:i+3] + rest + "/…"
	}
	return "(unparsable URI)"
}

var errNoKMS = errors.New("no KMS client is registered for this URI")

// kekFromURI resolves a KMS URI through the clients registered in kms.go.
func kekFromURI(uri string, getenv func(string) string) (tink.AEAD, error) {
	if err := registerKMS(uri, getenv); err != nil {
		return nil, err
	}
	kek, err := fieldcrypt.KEKFromURI(uri)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", errNoKMS, err)
	}
	return kek, nil
}
