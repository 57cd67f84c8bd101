package importrules

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"testing"
)

func TestCheckFindsEachKindOfViolation(t *testing.T) {
	m := Module + "/"
	pkgs := []Package{
		{ImportPath: m + "audit", Deps: []string{"context", m + "internal/canon"}},
		{ImportPath: m + "audit/auditpg", Deps: []string{m + "audit", "github.com/jackc/pgx/v5"}},
		{ImportPath: m + "retention", Deps: []string{m + "audit"}},
		{ImportPath: m + "session/mfa", Deps: []string{m + "session", "github.com/jackc/pgx/v5/pgconn"}},
		{ImportPath: m + "lockout/lockoutpg", Deps: []string{m + "session/password"}},
		{ImportPath: m + "integrity", Deps: []string{m + "internal/pgtest"}},
		{ImportPath: m + "examples/chatserver", Deps: []string{m + "audit", m + "retention", "github.com/jackc/pgx/v5"}},
		{ImportPath: m + "loadtest", Deps: []string{m + "audit/auditpg", "github.com/jackc/pgx/v5/pgxpool"}},
		{ImportPath: m + "internal/pgtest", Deps: []string{"github.com/jackc/pgx/v5"}},
	}
	got := Check(pkgs)
	want := []Violation{
		{m + "integrity", m + "internal/pgtest", "internal/pgtest is for tests only"},
		{m + "lockout/lockoutpg", m + "session/password", "a top-level package must not import another (declare an interface instead)"},
		{m + "retention", m + "audit", "a top-level package must not import another (declare an interface instead)"},
		{m + "session/mfa", "github.com/jackc/pgx/v5/pgconn", "only a …pg adapter may depend on pgx"},
	}
	if len(got) != len(want) {
		t.Fatalf("Check found %d violations, want %d:\n%v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("violation %d = %v, want %v", i, got[i], want[i])
		}
	}
}

// TestModuleFollowsTheRules runs the check over the module as it is.
func TestModuleFollowsTheRules(t *testing.T) {
	cmd := exec.Command("go", "list", "-json=ImportPath,Deps", Module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}

	var pkgs []Package
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p Package
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list returned no packages")
	}
	for _, v := range Check(pkgs) {
		t.Error(v)
	}
}
