package session

import "slices"

// Authentication method references (RFC 8176) that sessions and access
// tokens carry in their amr claim. Any other RFC 8176 value may be used as
// well; these are the ones the module's packages produce.
const (
	// AMRPassword is a password (something you know).
	AMRPassword = "pwd"
	// AMRPIN is a PIN (something you know).
	AMRPIN = "pin"
	// AMROTP is a one-time password such as TOTP (something you have).
	AMROTP = "otp"
	// AMRHardwareKey is a proof of possession of a hardware-protected key.
	AMRHardwareKey = "hwk"
	// AMRSoftwareKey is a proof of possession of a software-protected key.
	AMRSoftwareKey = "swk"
	// AMRSMS is a confirmation sent by text message.
	AMRSMS = "sms"
	// AMRFingerprint is a fingerprint (something you are).
	AMRFingerprint = "fpt"
	// AMRFace is facial recognition (something you are).
	AMRFace = "face"
	// AMRMultiFactor means more than one factor was used. The package adds
	// it by itself once a session's methods span two factor classes.
	AMRMultiFactor = "mfa"
)

// factorClass sorts the RFC 8176 methods into knowledge (1), possession
// (2) and inherence (3), as session/mfa's CombineAMR does, so both agree
// on what earns "mfa"; other methods (geo, rba, …) count for no class.
func factorClass(m string) int {
	switch m {
	case AMRPassword, AMRPIN, "kba":
		return 1
	case AMROTP, AMRHardwareKey, AMRSoftwareKey, AMRSMS, "tel", "sc":
		return 2
	case AMRFingerprint, AMRFace, "iris", "retina", "vbm":
		return 3
	}
	return 0
}

// normalizeAMR returns the sorted, de-duplicated union of the given
// methods, with AMRMultiFactor added when they span two factor classes.
func normalizeAMR(sets ...[]string) []string {
	var out []string
	for _, s := range sets {
		for _, m := range s {
			if m != "" {
				out = append(out, m)
			}
		}
	}
	classes := map[int]bool{}
	for _, m := range out {
		if c := factorClass(m); c != 0 {
			classes[c] = true
		}
	}
	if len(classes) >= 2 {
		out = append(out, AMRMultiFactor)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// hasAll reports whether have contains every method of want.
func hasAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}
