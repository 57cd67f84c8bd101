// Package mfa is a second authentication factor for §164.312(d) (person
// or entity authentication): TOTP (RFC 6238) enrolment and verification,
// single-use recovery codes, and a per-tenant policy that says when an
// account must use MFA.
//
// # What it protects against
//
//   - Replay. A TOTP code is accepted only if its time step is later than
//     every step the account used before; the Store advances the last used
//     step atomically, so two requests racing with one code cannot both
//     pass, also across app instances sharing one Postgres database. The
//     code that confirms an enrolment counts as used.
//   - Clock drift. A code of the current step or of one step either side
//     is accepted (RFC 6238 §5.2 recommends at most one step of network
//     delay); nothing wider.
//   - Secret theft from the database. TOTP secrets (160 bits by default)
//     reach the Store only sealed by a [Sealer] the application wires (to
//     fieldcrypt in the example server, or an [AEADSealer] over a Tink
//     AEAD). A sealed secret is bound to its tenant, account and enrolment
//     ([Binding]), so copying it to another row does not make it usable.
//   - Recovery code theft from the database. Codes carry 80 random bits
//     and are stored as SHA-256 hashes bound to the account
//     ([HashRecoveryCode]); each passes once, atomically.
//
// # What it does not do
//
// It does not throttle: six digits are guessable by a patient attacker,
// so failed verifications must be rate-limited per account by the
// application (the lockout package). It does not send SMS or e-mail codes
// (the gap analysis lists them; they are weaker than TOTP and need a
// business associate for the messaging provider). It does not issue
// sessions: it states the method used in RFC 8176 terms ([Result.AMR],
// [CombineAMR]) and the application raises the session's amr claim, for
// example through the session package's step-up.
//
// # Enforcement
//
// [Authenticator.Requirement] answers, for an account at the
// Authenticator's clock, whether it must verify ([ActionVerify]), may still
// sign in on its password because it is inside its enrolment grace period
// ([ActionEnrolSoon], with [Decision.GraceEnds]), or must enrol before
// anything else ([ActionEnrolNow]). Tenants without a policy of their own
// get [DefaultPolicy]: MFA required, 7 days of grace from account creation.
//
// # Wiring
//
//	auth, err := mfa.New(mfa.Config{
//		Store:    mfapg.New(pool, mfapg.Options{}), // or mfa.NewMemoryStore()
//		Policies: store,                             // optional
//		Sealer:   sealer,                            // fieldcrypt, or mfa.AEADSealer{AEAD: tinkAEAD}
//		Issuer:   "Chat Health",
//	})
//
// Enrol shows the user a [Setup] (otpauth URL, QR code PNG, secret) once;
// Confirm with the first code activates the enrolment and returns the
// recovery codes, also shown once; Verify and VerifyRecoveryCode sign in.
package mfa
