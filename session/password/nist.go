package password

import (
	"fmt"
	"strings"
)

// Citation is the document the deviations are measured against.
const Citation = "NIST SP 800-63B-4 (August 2025)"

// Deviation is one way a policy departs from SP 800-63B-4.
type Deviation struct {
	// Rule is a stable identifier of the requirement.
	Rule string
	// Requirement states what SP 800-63B-4 asks, with its strength
	// (SHALL, SHOULD) and section.
	Requirement string
	// Policy states what the policy does instead.
	Policy string
}

// Deviations returns how the policy departs from SP 800-63B-4's password
// requirements (§3.1.1.2), in a fixed order; nil for a conforming policy.
// It judges the policy's fields, not its name, so a custom policy is
// judged the same way as a preset.
func (p Policy) Deviations() []Deviation {
	var out []Deviation
	min, factor := 15, "as the only factor"
	if p.MultiFactor {
		min, factor = 8, "with a second factor"
	}
	if p.MinLength < min {
		out = append(out, Deviation{
			Rule:        "min-length",
			Requirement: fmt.Sprintf("SHALL require at least %d characters for a password used %s (§3.1.1.2)", min, factor),
			Policy:      fmt.Sprintf("requires %d", p.MinLength),
		})
	}
	if p.MaxLength > 0 && p.MaxLength < 64 {
		out = append(out, Deviation{
			Rule:        "max-length",
			Requirement: "SHOULD permit passwords of at least 64 characters (§3.1.1.2)",
			Policy:      fmt.Sprintf("permits at most %d", p.MaxLength),
		})
	}
	if len(p.RequiredClasses) > 0 {
		names := make([]string, len(p.RequiredClasses))
		for i, c := range p.RequiredClasses {
			names[i] = string(c)
		}
		out = append(out, Deviation{
			Rule:        "composition",
			Requirement: "SHALL NOT impose composition rules such as mixtures of character types (§3.1.1.2)",
			Policy:      "requires " + strings.Join(names, ", ") + " characters",
		})
	}
	if p.MaxAge > 0 {
		out = append(out, Deviation{
			Rule:        "periodic-change",
			Requirement: "SHALL NOT require periodic password changes; SHALL force a change on evidence of compromise (§3.1.1.2)",
			Policy:      fmt.Sprintf("expires passwords after %d days", int(p.MaxAge.Hours()/24)),
		})
	}
	if p.Blocklist == nil && p.BreachCheck == nil {
		out = append(out, Deviation{
			Rule:        "blocklist",
			Requirement: "SHALL compare new passwords against a blocklist of commonly used, expected or compromised values (§3.1.1.2)",
			Policy:      "has no blocklist and no breach check",
		})
	}
	if !p.RejectContextWords {
		out = append(out, Deviation{
			Rule:        "context-words",
			Requirement: "the blocklist SHALL include expected values, such as the service name and the user name (§3.1.1.2)",
			Policy:      "does not reject context words",
		})
	}
	return out
}

// DeviationReport returns the deviations as text, one per line, for an
// auditor: the policy's name, the document, then each rule.
func (p Policy) DeviationReport() string {
	var b strings.Builder
	devs := p.Deviations()
	name := p.Name
	if name == "" {
		name = "custom"
	}
	if len(devs) == 0 {
		fmt.Fprintf(&b, "policy %s: no deviations from %s password rules\n", name, Citation)
		return b.String()
	}
	fmt.Fprintf(&b, "policy %s: %d deviations from %s password rules\n", name, len(devs), Citation)
	for _, d := range devs {
		fmt.Fprintf(&b, "- %s: %s; this policy %s\n", d.Rule, d.Requirement, d.Policy)
	}
	return b.String()
}
