package password_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatsdk/compliance/session/password"
)

func codes(vs []password.Violation) []password.Code {
	var out []password.Code
	for _, v := range vs {
		out = append(out, v.Code)
	}
	return out
}

type policyCase struct {
	name    string
	pw      string
	context []string
	want    []password.Code
}

func runPolicy(t *testing.T, p password.Policy, cases []policyCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			vs, err := p.Check(context.Background(), password.Candidate{Password: c.pw, ContextWords: c.context})
			if err != nil {
				t.Fatal(err)
			}
			if got := codes(vs); !slices.Equal(got, c.want) {
				t.Errorf("Check(%q) = %v, want %v", c.pw, got, c.want)
			}
			for _, v := range vs {
				if len(c.pw) >= 10 && strings.Contains(v.Message, c.pw) {
					t.Errorf("violation message %q contains the password", v.Message)
				}
			}
		})
	}
}

func TestPresetNIST(t *testing.T) {
	runPolicy(t, password.NIST(), []policyCase{
		{"15 lower-case letters", "correcthorsebat", nil, nil},
		{"14 characters", "correcthorseba", nil, []password.Code{password.CodeTooShort}},
		{"no composition rules", "aaaaaaaaaaaaaaab", nil, nil},
		{"spaces and symbols accepted", "correct horse battery staple!", nil, nil},
		{"128 characters", strings.Repeat("ab", 64), nil, nil},
		{"129 characters", strings.Repeat("ab", 64) + "c", nil, []password.Code{password.CodeTooLong}},
		{"blocklisted and short", "password", nil, []password.Code{password.CodeTooShort, password.CodeBlocklisted}},
		{"blocklisted long entry", "1qaz2wsx3edc4rfv", nil, []password.Code{password.CodeBlocklisted}},
		{"long keyboard walk not on the list", "1q2w3e4r5t6y7u8i9o0p", nil, nil},
		{"context word", "alice-in-wonderland-2026", []string{"alice"}, []password.Code{password.CodeContextWord}},
		{"context word case-insensitive", "MyChatHealthPassphrase", []string{"chathealth"}, []password.Code{password.CodeContextWord}},
		{"short context words ignored", "bob is my uncle, says bob", []string{"bob"}, nil},
		{"invalid UTF-8", "correcthorse\xffbattery", nil, []password.Code{password.CodeInvalidEncoding}},
		{"NUL", "correcthorse\x00battery", nil, []password.Code{password.CodeInvalidEncoding}},
		{"empty", "", nil, []password.Code{password.CodeTooShort}},
	})
}

func TestPresetNISTWithMFA(t *testing.T) {
	runPolicy(t, password.NISTWithMFA(), []policyCase{
		{"8 characters", "zq8vbn3w", nil, nil},
		{"7 characters", "zq8vbn3", nil, []password.Code{password.CodeTooShort}},
		{"blocklisted", "baseball", nil, []password.Code{password.CodeBlocklisted}},
		{"blocklisted in upper case", "BaseBall", nil, []password.Code{password.CodeBlocklisted}},
		{"blocklisted with full-width letters", "ｂａｓｅｂａｌｌ", nil, []password.Code{password.CodeBlocklisted}},
	})
}

func TestPresetReference(t *testing.T) {
	for _, p := range []password.Policy{password.Reference(), password.ReferenceWithExpiry()} {
		t.Run(p.Name, func(t *testing.T) {
			runPolicy(t, p, []policyCase{
				{"all four classes, 12 characters", "Zebra-Cart9x", nil, nil},
				{"11 characters", "Zebra-Cart9", nil, []password.Code{password.CodeTooShort}},
				{"no upper case", "zebra-cart9x", nil, []password.Code{password.CodeMissingUpper}},
				{"no lower case", "ZEBRA-CART9X", nil, []password.Code{password.CodeMissingLower}},
				{"no digit", "Zebra-Cartxx", nil, []password.Code{password.CodeMissingDigit}},
				{"no symbol", "ZebraCart9xx", nil, []password.Code{password.CodeMissingSymbol}},
				{"space counts as a symbol", "Zebra Cart9x", nil, nil},
				{"every rule at once", "abc", nil, []password.Code{password.CodeTooShort, password.CodeMissingUpper, password.CodeMissingDigit, password.CodeMissingSymbol}},
				{"non-ASCII letters have case", "Ärger-über9x", nil, nil},
			})
		})
	}
}

func TestPresetCustom(t *testing.T) {
	bl, err := password.NewBlocklist(strings.NewReader("# ours\nhospital123\n\nClinicName\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := password.Policy{Name: "custom", MinLength: 10, MaxLength: 20, RequiredClasses: []password.Class{password.Digit}, Blocklist: bl}
	runPolicy(t, p, []policyCase{
		{"passes", "quietriver7", nil, nil},
		{"own blocklist", "Hospital123", nil, []password.Code{password.CodeBlocklisted}},
		{"own blocklist, case folded", "clinicname", nil, []password.Code{password.CodeMissingDigit, password.CodeBlocklisted}},
		{"default list not included", "qwertyuiop1", nil, nil},
		{"context words off", "aliceliddell7", []string{"alice"}, nil},
		{"too long", "quietriver7quietriver", nil, []password.Code{password.CodeTooLong}},
	})
	if bl.Len() != 2 {
		t.Fatalf("blocklist Len = %d, want 2", bl.Len())
	}
}

func TestInvalidPolicy(t *testing.T) {
	for name, p := range map[string]password.Policy{
		"min length zero": {MinLength: 0},
		"max below min":   {MinLength: 10, MaxLength: 5},
		"negative age":    {MinLength: 8, MaxAge: -time.Hour},
		"unknown class":   {MinLength: 8, RequiredClasses: []password.Class{"emoji"}},
	} {
		if _, err := p.Check(context.Background(), password.Candidate{Password: "x"}); !errors.Is(err, password.ErrInvalidPolicy) {
			t.Errorf("%s: err = %v, want ErrInvalidPolicy", name, err)
		}
	}
}

// TestLengthInCharacters checks that every length rule counts Unicode
// code points after NFKC, never bytes.
func TestLengthInCharacters(t *testing.T) {
	cases := []struct {
		pw    string
		bytes int
		chars int
	}{
		{"pässwörd", 10, 8},
		{"пароль", 12, 6},
		{"密码", 6, 2},
		{"🔒🔑", 8, 2},
		{"cafe\u0301", 6, 4}, // e + combining acute composes to é
		{"ﬁ", 3, 2},          // the ligature decomposes to f, i
	}
	for _, c := range cases {
		if len(c.pw) != c.bytes {
			t.Fatalf("%q: test expects %d bytes, has %d", c.pw, c.bytes, len(c.pw))
		}
		if got := password.Length(c.pw); got != c.chars {
			t.Errorf("Length(%q) = %d, want %d", c.pw, got, c.chars)
		}
	}

	// Eight Cyrillic letters are 16 bytes: enough bytes for 15, but only 8
	// characters.
	pw := "щзфкжбюэ"
	vs, _ := password.NIST().Check(context.Background(), password.Candidate{Password: pw})
	if got := codes(vs); !slices.Equal(got, []password.Code{password.CodeTooShort}) {
		t.Errorf("NIST: 8 Cyrillic characters (16 bytes): %v, want too_short", got)
	}
	vs, _ = password.NISTWithMFA().Check(context.Background(), password.Candidate{Password: pw})
	if len(vs) != 0 {
		t.Errorf("NISTWithMFA: 8 Cyrillic characters: %v, want none", codes(vs))
	}
	// Fifteen emoji are 60 bytes and 15 characters.
	vs, _ = password.NIST().Check(context.Background(), password.Candidate{Password: strings.Repeat("🦜", 15)})
	if len(vs) != 0 {
		t.Errorf("NIST: 15 emoji: %v, want none", codes(vs))
	}
	p := password.Policy{MinLength: 1, MaxLength: 4}
	vs, _ = p.Check(context.Background(), password.Candidate{Password: "ñöüß"})
	if len(vs) != 0 {
		t.Errorf("MaxLength 4 with 4 two-byte characters: %v, want none", codes(vs))
	}
}

func TestDefaultBlocklist(t *testing.T) {
	bl := password.DefaultBlocklist()
	if bl.Len() != 10000 {
		t.Fatalf("Len = %d, want 10000", bl.Len())
	}
	for _, pw := range []string{"123456", "password", "PASSWORD", "qwerty", "iloveyou", "trustno1"} {
		if !bl.Contains(pw) {
			t.Errorf("blocklist lacks %q", pw)
		}
	}
	if bl.Contains("correct horse battery staple zq8") {
		t.Error("blocklist holds a random passphrase")
	}
}

type breachStub struct {
	breached bool
	err      error
	calls    int
}

func (b *breachStub) Breached(context.Context, string) (bool, error) {
	b.calls++
	return b.breached, b.err
}

func TestBreachCheck(t *testing.T) {
	ctx := context.Background()
	down := errors.New("breach service unreachable")
	cases := []struct {
		name       string
		stub       breachStub
		failClosed bool
		want       []password.Code
		reported   bool
	}{
		{"clean", breachStub{}, false, nil, false},
		{"breached", breachStub{breached: true}, false, []password.Code{password.CodeBreached}, false},
		{"down, fail open", breachStub{err: down}, false, nil, true},
		{"down, fail closed", breachStub{err: down}, true, []password.Code{password.CodeBreachCheckUnavailable}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var reported error
			p := password.NIST()
			p.BreachCheck, p.FailClosed = &c.stub, c.failClosed
			p.OnBreachCheckError = func(err error) { reported = err }
			vs, err := p.Check(ctx, password.Candidate{Password: "a perfectly fine passphrase"})
			if err != nil {
				t.Fatal(err)
			}
			if got := codes(vs); !slices.Equal(got, c.want) {
				t.Errorf("codes = %v, want %v", got, c.want)
			}
			if (reported != nil) != c.reported || c.reported && !errors.Is(reported, down) {
				t.Errorf("reported error = %v, want reported: %v", reported, c.reported)
			}
		})
	}

	// The breach check is not asked about a password that already fails.
	stub := &breachStub{breached: true}
	p := password.NIST()
	p.BreachCheck = stub
	if _, err := p.Check(ctx, password.Candidate{Password: "short"}); err != nil || stub.calls != 0 {
		t.Fatalf("breach check called %d times for a password that failed locally", stub.calls)
	}
}

func TestExpiry(t *testing.T) {
	set := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := password.ReferenceWithExpiry()
	if p.Expired(set, set.Add(password.ReferenceMaxAge-time.Second)) {
		t.Error("expired a second early")
	}
	if !p.Expired(set, set.Add(password.ReferenceMaxAge)) {
		t.Error("not expired at 90 days")
	}
	if password.NIST().Expired(set, set.Add(10*365*24*time.Hour)) || password.Reference().Expired(set, set.Add(365*24*time.Hour)) {
		t.Error("a policy without MaxAge expired a password")
	}
}

func TestDeviations(t *testing.T) {
	rules := func(p password.Policy) []string {
		var out []string
		for _, d := range p.Deviations() {
			out = append(out, d.Rule)
			if !strings.Contains(d.Requirement, "§3.1.1.2") {
				t.Errorf("%s: deviation %s cites no section", p.Name, d.Rule)
			}
		}
		return out
	}
	cases := []struct {
		p    password.Policy
		want []string
	}{
		{password.NIST(), nil},
		{password.NISTWithMFA(), nil},
		{password.Reference(), []string{"min-length", "composition"}},
		{password.ReferenceWithExpiry(), []string{"min-length", "composition", "periodic-change"}},
		{password.Policy{MinLength: 8, MaxLength: 32}, []string{"min-length", "max-length", "blocklist", "context-words"}},
		{password.Policy{MinLength: 8, MultiFactor: true, Blocklist: password.DefaultBlocklist(), RejectContextWords: true}, nil},
	}
	for _, c := range cases {
		if got := rules(c.p); !slices.Equal(got, c.want) {
			t.Errorf("%s: deviations %v, want %v", c.p.Name, got, c.want)
		}
	}
	if !strings.Contains(password.NIST().DeviationReport(), "no deviations") {
		t.Error("NIST report does not say it has no deviations")
	}
}

// TestCodesAreStable pins every violation code's spelling: clients branch
// on them, so a rename must fail a test.
func TestCodesAreStable(t *testing.T) {
	want := map[password.Code]string{
		password.CodeInvalidEncoding:        "invalid_encoding",
		password.CodeTooShort:               "too_short",
		password.CodeTooLong:                "too_long",
		password.CodeMissingLower:           "missing_lowercase",
		password.CodeMissingUpper:           "missing_uppercase",
		password.CodeMissingDigit:           "missing_digit",
		password.CodeMissingSymbol:          "missing_symbol",
		password.CodeBlocklisted:            "blocklisted",
		password.CodeContextWord:            "context_word",
		password.CodeBreached:               "breached",
		password.CodeBreachCheckUnavailable: "breach_check_unavailable",
	}
	for c, s := range want {
		if string(c) != s {
			t.Errorf("code %q, want %q", c, s)
		}
	}
}
