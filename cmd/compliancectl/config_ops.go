package main

import (
	"github.com/chatsdk/compliance/fieldcrypt"
	"strings"
)

// column returns the declared encrypted column table.column.
func (cfg *Config) column(table, column string) (ColumnConfig, error) {
	var names []string
	for _, c := range cfg.Fieldcrypt.Columns {
		if c.Table == table && c.Column == column {
			return c, nil
		}
		names = append(names, c.Table+"."+c.Column)
	}
	if len(names) == 0 {
		return ColumnConfig{}, usagef("no encrypted columns are declared: add fieldcrypt.columns to the configuration (--config)")
	}
	return ColumnConfig{}, usagef("column %s.%s is not declared; the configuration declares %s", table, column, strings.Join(names, ", "))
}

// parseScope reads "tenant" or "tenant/name".
func parseScope(s string) (fieldcrypt.Scope, error) {
	if s == "" {
		return fieldcrypt.Scope{}, usagef("--scope is required: a tenant (app-1) or a tenant and a narrower name (app-1/patient:42)")
	}
	tenant, name, _ := strings.Cut(s, "/")
	if tenant == "" {
		return fieldcrypt.Scope{}, usagef("--scope %q has no tenant: write app-1 or app-1/patient:42", s)
	}
	return fieldcrypt.Scope{Tenant: tenant, Name: name}, nil
}
