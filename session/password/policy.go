package password

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Errors returned by the package.
var (
	// ErrInvalidPolicy means a Policy field is out of range; the message
	// names the field.
	ErrInvalidPolicy = errors.New("password: invalid policy")
	// ErrMismatch means the password does not match the hash.
	ErrMismatch = errors.New("password: mismatch")
	// ErrMalformedHash means a stored hash is not in a format the package
	// reads, or its parameters are out of the accepted range.
	ErrMalformedHash = errors.New("password: malformed hash")
	// ErrTooLong means a password is longer than [MaxBytes].
	ErrTooLong = errors.New("password: too long")
	// ErrInvalidParams means argon2id parameters are out of range; the
	// message names the parameter.
	ErrInvalidParams = errors.New("password: invalid argon2id parameters")
)

// MaxBytes is the longest password, in bytes after normalisation, that
// the package checks or hashes: far above any policy's maximum, low enough
// that a megabyte-long "password" costs nothing.
const MaxBytes = 4096

// Normalize returns the password as the package checks and hashes it:
// Unicode NFKC, so that one password typed on two keyboards (a composed
// "é" or an "e" with a combining accent, a full-width digit) is one
// password. SP 800-63B-4 §3.1.1.2 recommends NFKC or NFKD before hashing.
// Invalid UTF-8 is left as it is (Check rejects it).
func Normalize(pw string) string {
	if !utf8.ValidString(pw) {
		return pw
	}
	return norm.NFKC.String(pw)
}

// Length returns the password's length in characters, the unit of every
// length rule: Unicode code points after [Normalize], as SP 800-63B-4
// §3.1.1.2 counts them. "pässwörd" is 8 characters (10 bytes).
func Length(pw string) int { return utf8.RuneCountInString(Normalize(pw)) }

// Class is a character class for composition rules.
type Class string

// The character classes. A character is in exactly one: a letter with
// case is lower or upper, a decimal digit is a digit, anything else that
// is not a caseless letter (punctuation, symbols, spaces) is a symbol.
// Letters without case (CJK, Arabic, …) are in none.
const (
	Lower  Class = "lowercase"
	Upper  Class = "uppercase"
	Digit  Class = "digit"
	Symbol Class = "symbol"
)

// AllClasses is every class, for a policy that requires all four.
var AllClasses = []Class{Lower, Upper, Digit, Symbol}

func classOf(r rune) (Class, bool) {
	switch {
	case unicode.IsLower(r):
		return Lower, true
	case unicode.IsUpper(r) || unicode.IsTitle(r):
		return Upper, true
	case unicode.IsDigit(r):
		return Digit, true
	case unicode.IsLetter(r) || unicode.IsMark(r):
		return "", false
	}
	return Symbol, true
}

// Code is a stable machine-readable violation code. Codes never change
// meaning; new ones may be added.
type Code string

// The violation codes.
const (
	// CodeInvalidEncoding: the password is not valid UTF-8 or contains a
	// NUL character.
	CodeInvalidEncoding Code = "invalid_encoding"
	// CodeTooShort: fewer characters than MinLength (Violation.Limit).
	CodeTooShort Code = "too_short"
	// CodeTooLong: more characters than MaxLength (Violation.Limit), or
	// more than MaxBytes bytes.
	CodeTooLong Code = "too_long"
	// CodeMissingLower, CodeMissingUpper, CodeMissingDigit and
	// CodeMissingSymbol: a required character class is absent.
	CodeMissingLower  Code = "missing_lowercase"
	CodeMissingUpper  Code = "missing_uppercase"
	CodeMissingDigit  Code = "missing_digit"
	CodeMissingSymbol Code = "missing_symbol"
	// CodeBlocklisted: the password is on the blocklist of common
	// passwords (compared case-insensitively).
	CodeBlocklisted Code = "blocklisted"
	// CodeContextWord: the password contains one of the context words
	// (user name, service name, …).
	CodeContextWord Code = "context_word"
	// CodeBreached: the breach check found the password in a breach.
	CodeBreached Code = "breached"
	// CodeBreachCheckUnavailable: the breach check failed and the policy
	// fails closed; the user may try again later.
	CodeBreachCheckUnavailable Code = "breach_check_unavailable"
)

var missingCode = map[Class]Code{Lower: CodeMissingLower, Upper: CodeMissingUpper, Digit: CodeMissingDigit, Symbol: CodeMissingSymbol}

// Violation is one broken rule. Its message never contains the password.
type Violation struct {
	// Code is the stable machine-readable code.
	Code Code
	// Limit is the length bound for CodeTooShort and CodeTooLong.
	Limit int
	// Message is a short English explanation for logs and defaults.
	Message string
}

// BreachChecker asks an external service whether a password appeared in
// a breach, for example the k-anonymity range API of a breach corpus
// (which sees only a hash prefix). The application implements it;
// implementations must be safe for concurrent use and honour ctx.
type BreachChecker interface {
	Breached(ctx context.Context, password string) (bool, error)
}

// BreachCheckerFunc adapts a function to BreachChecker.
type BreachCheckerFunc func(ctx context.Context, password string) (bool, error)

// Breached implements BreachChecker.
func (f BreachCheckerFunc) Breached(ctx context.Context, password string) (bool, error) {
	return f(ctx, password)
}

// Policy is a password policy. Use a preset ([NIST], [NISTWithMFA],
// [Reference], [ReferenceWithExpiry]) or build a custom one, from a
// preset or from scratch; [Policy.Deviations] tells how any policy
// departs from SP 800-63B-4. A Policy is safe for concurrent use once
// built; do not change it while Check runs.
type Policy struct {
	// Name identifies the policy in reports.
	Name string
	// MultiFactor states that the password is only ever used together
	// with a second factor, which lets SP 800-63B-4 accept 8 characters
	// instead of 15. It changes no check, only Deviations.
	MultiFactor bool
	// MinLength is the minimum length in characters ([Length]).
	MinLength int
	// MaxLength is the maximum length in characters; zero means no limit
	// but MaxBytes.
	MaxLength int
	// RequiredClasses are character classes that must each appear at
	// least once. SP 800-63B-4 forbids such rules; the reference policy
	// has them.
	RequiredClasses []Class
	// Blocklist rejects common passwords. Nil means no blocklist;
	// [DefaultBlocklist] is the shipped one.
	Blocklist *Blocklist
	// RejectContextWords rejects passwords containing a context word of at
	// least four characters given to Check (case-insensitive).
	RejectContextWords bool
	// BreachCheck, when not nil, is asked about every password that
	// passes the other rules.
	BreachCheck BreachChecker
	// FailClosed rejects the password (CodeBreachCheckUnavailable) when
	// the breach check returns an error; otherwise the error is passed to
	// OnBreachCheckError and the password is judged without it.
	FailClosed bool
	// OnBreachCheckError, when not nil, is told of every breach check
	// error. It must not log the password (it is not given it).
	OnBreachCheckError func(error)
	// MaxAge is how long a password stays valid after it was set; zero
	// means it does not expire. See [Policy.Expired].
	MaxAge time.Duration
}

// Preset names.
const (
	NameNIST                = "nist-800-63b-4"
	NameNISTWithMFA         = "nist-800-63b-4-mfa"
	NameReference           = "reference"
	NameReferenceWithExpiry = "reference-expiry"
)

// ReferenceMaxAge is the reference policy's optional password expiry.
const ReferenceMaxAge = 90 * 24 * time.Hour

// NIST returns the policy of NIST SP 800-63B-4 §3.1.1.2 for a password
// that is the only factor: at least 15 characters (SHALL), at most 128
// (at least 64 SHOULD be permitted), every character accepted and counted
// as one code point, no composition rules (SHALL NOT), no periodic
// expiry (SHALL NOT), and a blocklist of common and expected passwords
// (SHALL): the shipped list plus the context words given to Check.
func NIST() Policy {
	return Policy{
		Name:               NameNIST,
		MinLength:          15,
		MaxLength:          128,
		Blocklist:          DefaultBlocklist(),
		RejectContextWords: true,
	}
}

// NISTWithMFA is [NIST] for a password only used with a second factor:
// SP 800-63B-4 §3.1.1.2 then allows a minimum of 8 characters.
func NISTWithMFA() Policy {
	p := NIST()
	p.Name, p.MultiFactor, p.MinLength = NameNISTWithMFA, true, 8
	return p
}

// Reference returns the policy of the gap analysis this module answers
// (gap 5.3): at least 12 characters, upper and lower case letters, digits
// and symbols, and no common passwords. It deviates from SP 800-63B-4;
// see [Policy.Deviations].
func Reference() Policy {
	return Policy{
		Name:               NameReference,
		MinLength:          12,
		MaxLength:          128,
		RequiredClasses:    AllClasses,
		Blocklist:          DefaultBlocklist(),
		RejectContextWords: true,
	}
}

// ReferenceWithExpiry is [Reference] with the reference's optional 90-day
// expiry ([ReferenceMaxAge]).
func ReferenceWithExpiry() Policy {
	p := Reference()
	p.Name, p.MaxAge = NameReferenceWithExpiry, ReferenceMaxAge
	return p
}

// Validate reports whether the policy's fields are consistent.
func (p Policy) Validate() error {
	switch {
	case p.MinLength < 1:
		return fmt.Errorf("%w: MinLength must be at least 1", ErrInvalidPolicy)
	case p.MaxLength < 0 || p.MaxLength > 0 && p.MaxLength < p.MinLength:
		return fmt.Errorf("%w: MaxLength must be zero or at least MinLength", ErrInvalidPolicy)
	case p.MaxAge < 0:
		return fmt.Errorf("%w: MaxAge must not be negative", ErrInvalidPolicy)
	}
	for _, c := range p.RequiredClasses {
		if _, ok := missingCode[c]; !ok {
			return fmt.Errorf("%w: RequiredClasses: unknown class %q", ErrInvalidPolicy, string(c))
		}
	}
	return nil
}

// Candidate is a password to check, with the words it must not contain.
type Candidate struct {
	// Password is the proposed password, as the user typed it.
	Password string
	// ContextWords are words specific to the account or service, such as
	// the user name, e-mail local part, or service name.
	ContextWords []string
}

// String describes the Candidate without its password, so one that
// reaches a log gives nothing away. The fields are unchanged.
func (c Candidate) String() string {
	return fmt.Sprintf("password.Candidate(password redacted, %d context words)", len(c.ContextWords))
}

// GoString is String, for the %#v verb.
func (c Candidate) GoString() string { return c.String() }

// LogValue implements [slog.LogValuer]: how many context words, nothing of
// the password.
func (c Candidate) LogValue() slog.Value {
	return slog.GroupValue(slog.Int("context_words", len(c.ContextWords)))
}

// Check returns every rule the candidate breaks, in a fixed order, or
// nil if it passes. The breach check runs only when the other rules pass.
// The error is non-nil only for an invalid policy.
func (p Policy) Check(ctx context.Context, c Candidate) ([]Violation, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if !utf8.ValidString(c.Password) || strings.ContainsRune(c.Password, 0) {
		return []Violation{{Code: CodeInvalidEncoding, Message: "password is not valid UTF-8 text"}}, nil
	}
	pw := Normalize(c.Password)
	if len(pw) > MaxBytes {
		return []Violation{{Code: CodeTooLong, Limit: p.MaxLength, Message: "password is far too long"}}, nil
	}

	var out []Violation
	n := utf8.RuneCountInString(pw)
	if n < p.MinLength {
		out = append(out, Violation{Code: CodeTooShort, Limit: p.MinLength, Message: fmt.Sprintf("password must have at least %d characters", p.MinLength)})
	}
	if p.MaxLength > 0 && n > p.MaxLength {
		out = append(out, Violation{Code: CodeTooLong, Limit: p.MaxLength, Message: fmt.Sprintf("password must have at most %d characters", p.MaxLength)})
	}

	if len(p.RequiredClasses) > 0 {
		have := map[Class]bool{}
		for _, r := range pw {
			if cl, ok := classOf(r); ok {
				have[cl] = true
			}
		}
		for _, cl := range p.RequiredClasses {
			if !have[cl] {
				out = append(out, Violation{Code: missingCode[cl], Message: "password must contain a " + string(cl) + " character"})
			}
		}
	}

	folded := strings.ToLower(pw)
	if p.Blocklist != nil && p.Blocklist.Contains(folded) {
		out = append(out, Violation{Code: CodeBlocklisted, Message: "password is too common"})
	}
	if p.RejectContextWords && containsContextWord(folded, c.ContextWords) {
		out = append(out, Violation{Code: CodeContextWord, Message: "password contains a word tied to the account or service"})
	}

	if len(out) > 0 || p.BreachCheck == nil {
		return out, nil
	}
	breached, err := p.BreachCheck.Breached(ctx, pw)
	switch {
	case err != nil:
		if p.OnBreachCheckError != nil {
			p.OnBreachCheckError(err)
		}
		if p.FailClosed {
			out = append(out, Violation{Code: CodeBreachCheckUnavailable, Message: "password could not be checked against known breaches; try again later"})
		}
	case breached:
		out = append(out, Violation{Code: CodeBreached, Message: "password appears in a known data breach"})
	}
	return out, nil
}

// minContextWord is the shortest context word that is looked for: shorter
// ones ("al", "ed") would reject too many good passwords.
const minContextWord = 4

func containsContextWord(folded string, words []string) bool {
	for _, w := range words {
		w = strings.ToLower(Normalize(w))
		if utf8.RuneCountInString(w) >= minContextWord && strings.Contains(folded, w) {
			return true
		}
	}
	return false
}

// Expired reports whether a password set at changedAt has expired at now
// under the policy's MaxAge. It is always false when MaxAge is zero.
// SP 800-63B-4 §3.1.1.2 instead requires a change on evidence of
// compromise, which is the application's to detect.
func (p Policy) Expired(changedAt, now time.Time) bool {
	return p.MaxAge > 0 && !now.Before(changedAt.Add(p.MaxAge))
}
