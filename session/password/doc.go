// Package password is password policy and password hashing for
// §164.312(d) (person or entity authentication).
//
// # Policy
//
// A [Policy] checks a new password and returns every rule it breaks as a
// [Violation] with a stable [Code] ("too_short", "blocklisted", …) for the
// user interface to translate. Lengths are counted in characters (Unicode
// code points after NFKC normalisation, [Length]), never bytes. The
// presets are documented against their sources:
//
//   - [NIST]: NIST SP 800-63B-4 §3.1.1.2 for a password that is the only
//     factor: at least 15 characters, no composition rules, no expiry, a
//     blocklist of common and expected passwords.
//   - [NISTWithMFA]: the same for a password always used with a second
//     factor (session/mfa): at least 8 characters.
//   - [Reference] and [ReferenceWithExpiry]: the policy of the gap
//     analysis this module answers (gap 5.3): at least 12 characters, all
//     four character classes, no common passwords, optionally a 90-day
//     expiry. Both deviate from SP 800-63B-4.
//   - custom: any Policy value, often a preset with fields changed.
//
// [Policy.Deviations] and [Policy.DeviationReport] say how any policy
// departs from SP 800-63B-4, with the section, for an auditor.
//
// The shipped blocklist ([DefaultBlocklist]) is the 10,000 most common
// passwords of the zxcvbn 4.4.2 frequency list (MIT licence, © Dan
// Wheeler and Dropbox, Inc.), drawn from Mark Burnett's 10-million-password
// breach corpus; data/README.md and data/LICENSE-zxcvbn.txt give source
// and licence. A larger corpus is better consulted through a
// [BreachChecker] the application wires; [RangeChecker] speaks the
// k-anonymity range protocol of the Pwned Passwords service, given a
// function that fetches a range. The policy can be told to fail closed
// when that service is down.
//
// # Hashing
//
// A [Hasher] stores passwords as argon2id PHC strings with parameters
// documented against the OWASP Password Storage Cheat Sheet
// ([DefaultParams]: m=19 MiB, t=2, p=1), compares in constant time, and
// tells when a stored hash should be upgraded ([Hasher.NeedsRehash]) after
// the parameters are raised. It also verifies bcrypt hashes, so accounts
// migrated from another system can sign in and be rehashed.
//
// # What it does not do
//
// It keeps no state: password history and the time of the last change
// belong to the application's account table ([Policy.Expired] takes that
// time). It does not throttle guessing (the lockout package does) and
// does not decide what counts as evidence of compromise, on which
// SP 800-63B-4 requires a forced change.
package password
