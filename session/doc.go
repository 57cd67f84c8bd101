// Package session issues and checks the credentials of a logged-in user:
// short-lived access tokens, rotating refresh tokens, and the server-side
// session behind them, with idle logoff, revocation and audited emergency
// access. It answers HIPAA §164.312(a)(1) access control, (a)(2)(iii)
// automatic logoff and (a)(2)(ii) emergency access.
//
// # Tokens
//
// An access token is a JWT (golang-jwt/jwt/v5) of type at+jwt (RFC 9068),
// signed with EdDSA by default or HS256 as an option, and valid for 15
// minutes. It carries iss, sub (the user), aud, exp, iat, jti, tid (the
// tenant), sid (the session), amr (the authentication methods, RFC 8176)
// and, under a break-glass grant, emg. Verification pins the algorithms to
// those of the [KeyRing], picks the key by kid and refuses a token whose
// algorithm is not its key's, so neither "alg: none" nor an HS256 token
// keyed with an EdDSA public key can pass. exp, iat, iss and aud are
// required, with a leeway of 5 seconds (at most a minute), and only the
// shape this package issues is accepted (integer times, aud as an array).
// A token that
// passed verification is remembered by its exact text until it expires, so
// the same token on the next request skips the signature check
// (Config.VerifyCacheSize).
//
// A refresh token is 256 random bits; the store keeps only a hash of it.
// All of a session's refresh tokens form one family. Each refresh replaces
// the presented token in one conditional store operation, so of concurrent
// refreshes exactly one wins; presenting a token that was already replaced
// is taken as theft: the whole family is revoked and the RefreshReused hook
// fires. A family ends with its session's absolute lifetime (24 hours by
// default), which never slides. Config.RefreshGrace (off by default, at
// most 10 seconds) lets a just-rotated token be rotated again, for clients
// that refresh from several tabs at once; it weakens reuse detection.
//
// # Sessions
//
// A session ends when it is revoked, when its absolute lifetime passes, or
// when no activity was recorded for the idle timeout (15 minutes by
// default). Requests through [Manager.Middleware] are activity, recorded at
// most once a minute per session so a busy client does not write on every
// request; a refresh is not activity, so a client that refreshes in the
// background cannot keep an unattended screen logged in.
//
// [Manager.Revoke] logs one session out and [Manager.RevokeUser] all of a
// user's (on logout everywhere, a password change or an account disabled).
// Refresh tokens stop at once; an instance that has the session's state
// cached sees the revocation within Config.StateCacheTTL (10 seconds by
// default), the instance that revoked at once.
//
// # Emergency access
//
// [Manager.GrantEmergency] opens a time-boxed session with a mandatory
// reason. Its tokens are marked, the EmergencyIssued hook fires when it is
// granted and EmergencyUsed on every use, and [Manager.EmergencyGrants]
// lists grants for review. Who may break the glass is the application's
// decision.
//
// # Wiring
//
// Hooks carry identifiers, never tokens: wire them to the audit log. The
// [Identity] in the request context has accessors (UserID, Tenant,
// SessionID, AMR, Emergency) to hand to an audit middleware. After a second
// factor, [Manager.StepUp] raises a session's methods; [RequireAMR] and
// [RequireMFA] guard routes, answering 401 without an identity and 403
// when the methods fall short.
//
// # Storage
//
// [Store] is the storage contract; [MemoryStore] implements it in memory and
// package sessionpg in Postgres. Both pass the conformance suite in
// package sessiontest.
//
// # What it does not do
//
// It does not authenticate users (see session/password and session/mfa),
// decide who may see what, or keep access tokens from being used until
// they expire on a service that only calls [Manager.Verify]: only
// [Manager.Authenticate] consults the session.
package session
