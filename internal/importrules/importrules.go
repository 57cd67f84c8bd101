// Package importrules checks the module's two import rules (DESIGN.md,
// rules 1 and 2) over the output of go list:
//
//   - no top-level package imports another top-level package, directly or
//     through its dependencies: packages that need each other declare an
//     interface and the application wires them;
//   - core packages never depend on pgx: only a Postgres adapter, a package
//     whose last path element ends in "pg", may.
//
// The folders internal, cmd, examples, bench and loadtest are exempt from
// both rules: they exist to share code or to wire packages together. A third rule keeps
// the test helper internal/pgtest out of every non-test package. The check
// runs as a test in CI.
package importrules

import (
	"fmt"
	"sort"
	"strings"
)

// Module is the module path the rules apply to.
const Module = "github.com/chatsdk/compliance"

// pgxPrefix is the import path prefix of the Postgres driver.
const pgxPrefix = "github.com/jackc/pgx"

// exempt are the top-level folders whose packages may import any package
// of the module: they hold wiring (cmd, examples, bench, loadtest) or
// shared code that no user imports (internal).
var exempt = map[string]bool{"internal": true, "cmd": true, "examples": true, "bench": true, "loadtest": true}

// Package is the part of go list's output the rules read.
type Package struct {
	ImportPath string
	Deps       []string // transitive dependencies, as go list reports them
}

// Violation is one broken rule.
type Violation struct {
	Package string
	Dep     string
	Rule    string
}

// String describes the violation in one line.
func (v Violation) String() string {
	return fmt.Sprintf("%s depends on %s: %s", v.Package, v.Dep, v.Rule)
}

// topLevel returns the first path element of a package of the module, or ""
// for a package outside it or the module root.
func topLevel(path string) string {
	rest, ok := strings.CutPrefix(path, Module+"/")
	if !ok {
		return ""
	}
	first, _, _ := strings.Cut(rest, "/")
	return first
}

// isAdapter reports whether the package is a Postgres adapter, by the
// naming convention auditpg, fieldcryptpg, …
func isAdapter(path string) bool {
	last := path[strings.LastIndex(path, "/")+1:]
	return strings.HasSuffix(last, "pg")
}

// Check returns every violation in pkgs, sorted.
func Check(pkgs []Package) []Violation {
	var out []Violation
	for _, p := range pkgs {
		top := topLevel(p.ImportPath)
		if top == "" || exempt[top] {
			continue
		}
		for _, d := range p.Deps {
			if dt := topLevel(d); dt != "" && dt != top && !exempt[dt] {
				out = append(out, Violation{p.ImportPath, d, "a top-level package must not import another (declare an interface instead)"})
			}
			if strings.HasPrefix(d, pgxPrefix) && !isAdapter(p.ImportPath) {
				out = append(out, Violation{p.ImportPath, d, "only a …pg adapter may depend on pgx"})
			}
		}
		for _, d := range p.Deps {
			if d == Module+"/internal/pgtest" {
				out = append(out, Violation{p.ImportPath, d, "internal/pgtest is for tests only"})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Package != out[j].Package {
			return out[i].Package < out[j].Package
		}
		return out[i].Dep < out[j].Dep
	})
	return out
}
