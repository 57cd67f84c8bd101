// Package lockout throttles authentication attempts and locks accounts
// after repeated failures, correctly under concurrency and across any
// number of app instances that share a store.
//
// # What it protects against
//
//   - Online guessing of one account's password, TOTP code or recovery
//     code: by default five failures within fifteen minutes lock the
//     account's counter for that factor for fifteen minutes (HIPAA gap
//     5.4 of the reference), optionally for growing durations, and 100
//     consecutive failures (NIST SP 800-63B §5.2.2) lock it until an
//     administrator unlocks it. Each factor counts on its own.
//   - The check-then-count race: a Guard reserves an attempt in the store,
//     atomically, before the credential is checked, and settles it
//     afterwards. N concurrent wrong guesses, sent to one instance or
//     spread over many, get at most the allowed number of checks. An
//     attempt whose settlement is lost (a crash) stays counted as a
//     failure.
//   - Password spraying and credential stuffing: a per-source-address
//     limit across all accounts (IPv6 counted per /64).
//   - Lockout as denial of service: with Policy.PerAccountAndIP an
//     attacker's address is locked out of an account before the account
//     itself, which locks only after a larger number of failures.
//   - Account enumeration: the guard counts the identifier that was typed,
//     so an unknown username gets the same counters, the same store work
//     and the same answers as a real one.
//
// It does not check credentials itself (that is the verify function the
// application passes), does not store passwords or codes anywhere (the
// hooks and the history carry identifiers only) and does not make verify
// take the same time for unknown accounts: the application must check a
// dummy hash when the account does not exist.
//
// Counters are keyed by the identifier as submitted (after Normalize), so
// a user who types a password into the username field leaves it in the
// counters and the history, as any login log would; pass a keyed hash of
// the identifier as Attempt.Account if that matters to you.
//
// # Wiring
//
// Create a Guard on a Store (NewMemoryStore for one process, lockoutpg for
// several), then call Check around the credential check of every log-in
// step:
//
//	err := guard.Check(ctx, lockout.Attempt{AppID: app, Account: username, IP: ip}, verify)
//	if lockout.WriteTooManyRequests(w, err) {
//		return // 429 with Retry-After
//	}
//
// Config.OnLock and Config.OnUnlock feed the audit log, Config.Notify
// tells the account's owner (rate-limited by the store, so several
// instances send one message), Guard.Unlock is the administrator's unlock
// with a reason, Guard.History is the attempt history and Guard.Prune
// applies its retention limit.
//
// # Clocks
//
// Every time the package uses comes from the store: MemoryStore's clock
// function, or the database's now() in lockoutpg. Instances whose clocks
// disagree therefore still agree on windows and locks, and tests move
// time by moving the store's clock.
package lockout
