package mfa_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"image/png"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatsdk/compliance/session/mfa"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
)

func b32(s string) string {
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte(s))
}

// testSealer returns an AEADSealer on a fresh Tink AES-256-GCM keyset.
func testSealer(t testing.TB) mfa.Sealer {
	t.Helper()
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	p, err := aead.New(h)
	if err != nil {
		t.Fatal(err)
	}
	return mfa.AEADSealer{AEAD: p}
}

// clock is a settable fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// start is a time at the very beginning of a 30 s step.
var start = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

type bundle struct {
	a      *mfa.Authenticator
	store  *recordingStore
	sealer mfa.Sealer
	clock  *clock
	secret string
	codes  []string
}

func code(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newAuthenticator returns an Authenticator on a recording memory store at
// a fake clock set to start.
func newAuthenticator(t testing.TB, mutate func(*mfa.Config)) *bundle {
	t.Helper()
	b := &bundle{store: &recordingStore{MemoryStore: mfa.NewMemoryStore()}, clock: &clock{t: start}}
	cfg := mfa.Config{Store: b.store, Policies: b.store, Sealer: testSealer(t), Issuer: "Chat Health", Now: b.clock.Now}
	if mutate != nil {
		mutate(&cfg)
	}
	a, err := mfa.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.a, b.sealer = a, cfg.Sealer
	return b
}

// enrolled is newAuthenticator with tenant-a/alice enrolled and confirmed
// at start.
func enrolled(t testing.TB) *bundle {
	t.Helper()
	ctx := context.Background()
	b := newAuthenticator(t, nil)
	setup, err := b.a.Enrol(ctx, mfa.EnrolParams{TenantID: "tenant-a", AccountID: "alice", Label: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := b.a.Confirm(ctx, mfa.CodeParams{TenantID: "tenant-a", AccountID: "alice", Code: code(t, setup.Secret, start)})
	if err != nil {
		t.Fatal(err)
	}
	b.secret, b.codes = setup.Secret, c.RecoveryCodes
	return b
}

func (b *bundle) verify(code string) (mfa.Result, error) {
	return b.a.Verify(context.Background(), mfa.CodeParams{TenantID: "tenant-a", AccountID: "alice", Code: code})
}

// recordingStore records every enrolment the Authenticator hands the
// store, to check that no plaintext secret reaches it.
type recordingStore struct {
	*mfa.MemoryStore
	mu   sync.Mutex
	seen []mfa.Enrolment
}

func (s *recordingStore) SavePending(ctx context.Context, e mfa.Enrolment) error {
	s.mu.Lock()
	s.seen = append(s.seen, e)
	s.mu.Unlock()
	return s.MemoryStore.SavePending(ctx, e)
}

func TestMemoryStoreConformance(t *testing.T) {
	mfatestRun(t)
}

func TestEnrolmentSetup(t *testing.T) {
	b := newAuthenticator(t, nil)
	setup, err := b.a.Enrol(context.Background(), mfa.EnrolParams{TenantID: "tenant-a", AccountID: "alice", Label: "alice@example.com"})
	if err != nil {
		t.Fatal(err)
	}

	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(setup.Secret)
	if err != nil || len(raw)*8 < 160 {
		t.Fatalf("secret has %d bits (%v), want at least 160", len(raw)*8, err)
	}
	u, err := url.Parse(setup.URL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/Chat Health:alice@example.com" ||
		q.Get("secret") != setup.Secret || q.Get("issuer") != "Chat Health" ||
		q.Get("algorithm") != "SHA1" || q.Get("digits") != "6" || q.Get("period") != "30" {
		t.Errorf("otpauth URL %q has the wrong parts", setup.URL)
	}
	img, err := png.Decode(bytes.NewReader(setup.QRCodePNG))
	if err != nil {
		t.Fatalf("QR code is not a PNG: %v", err)
	}
	if got := img.Bounds().Dx(); got != mfa.DefaultQRSize {
		t.Errorf("QR code width %d, want %d", got, mfa.DefaultQRSize)
	}
	if !setup.ExpiresAt.Equal(start.Add(mfa.DefaultPendingTTL)) {
		t.Errorf("ExpiresAt = %v, want start + %v", setup.ExpiresAt, mfa.DefaultPendingTTL)
	}
}

// TestStoreNeverSeesPlaintextSecret fails if the Authenticator hands the
// store the secret, in raw or base32 form, anywhere in the enrolment.
func TestStoreNeverSeesPlaintextSecret(t *testing.T) {
	b := enrolled(t)
	raw, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(b.secret)
	if len(b.store.seen) != 1 {
		t.Fatalf("store saw %d enrolments, want 1", len(b.store.seen))
	}
	for _, e := range b.store.seen {
		for _, field := range [][]byte{e.SealedSecret, []byte(e.ID), []byte(e.AccountID)} {
			if bytes.Contains(field, raw) || bytes.Contains(field, []byte(b.secret)) {
				t.Fatal("the store was given the plaintext secret")
			}
		}
	}
	stored, err := b.store.Enrolment(context.Background(), "tenant-a", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored.SealedSecret, raw) {
		t.Fatal("the stored enrolment holds the plaintext secret")
	}
}

// TestSealedSecretBoundToAccount moves alice's sealed secret to bob's
// enrolment row: it must not open there.
func TestSealedSecretBoundToAccount(t *testing.T) {
	ctx := context.Background()
	b := enrolled(t)
	if _, err := b.a.Enrol(ctx, mfa.EnrolParams{TenantID: "tenant-a", AccountID: "bob"}); err != nil {
		t.Fatal(err)
	}
	alice, _ := b.store.Enrolment(ctx, "tenant-a", "alice")
	bob, _ := b.store.Enrolment(ctx, "tenant-a", "bob")
	bob.SealedSecret = alice.SealedSecret
	if err := b.store.SavePending(ctx, bob); err != nil {
		t.Fatal(err)
	}
	_, err := b.a.Confirm(ctx, mfa.CodeParams{TenantID: "tenant-a", AccountID: "bob", Code: code(t, b.secret, start)})
	if !errors.Is(err, mfa.ErrUnseal) {
		t.Fatalf("Confirm with alice's secret on bob's row: err = %v, want ErrUnseal", err)
	}
}

func TestConfirmActivatesOnlyWithRightCode(t *testing.T) {
	ctx := context.Background()
	b := newAuthenticator(t, nil)
	p := mfa.CodeParams{TenantID: "tenant-a", AccountID: "alice", Code: "000000"}
	if _, err := b.a.Confirm(ctx, p); !errors.Is(err, mfa.ErrNotEnrolled) {
		t.Fatalf("Confirm before Enrol: err = %v, want ErrNotEnrolled", err)
	}
	setup, err := b.a.Enrol(ctx, mfa.EnrolParams{TenantID: "tenant-a", AccountID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.verify(code(t, setup.Secret, start)); !errors.Is(err, mfa.ErrNotEnrolled) {
		t.Fatalf("Verify of a pending enrolment: err = %v, want ErrNotEnrolled", err)
	}
	p.Code = wrongCode(code(t, setup.Secret, start))
	if _, err := b.a.Confirm(ctx, p); !errors.Is(err, mfa.ErrInvalidCode) {
		t.Fatalf("Confirm with a wrong code: err = %v, want ErrInvalidCode", err)
	}
	if st, _ := b.a.Status(ctx, "tenant-a", "alice"); st.Enrolled || !st.Pending {
		t.Fatalf("status after a wrong code = %+v, want pending", st)
	}

	p.Code = code(t, setup.Secret, start)
	c, err := b.a.Confirm(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.RecoveryCodes) != mfa.DefaultRecoveryCodes || c.Method != mfa.MethodTOTP {
		t.Fatalf("confirmation = %+v, want %d recovery codes", c, mfa.DefaultRecoveryCodes)
	}
	st, _ := b.a.Status(ctx, "tenant-a", "alice")
	if !st.Enrolled || st.RecoveryCodesLeft != mfa.DefaultRecoveryCodes || !st.ActivatedAt.Equal(start) {
		t.Fatalf("status after confirmation = %+v", st)
	}
	if _, err := b.a.Enrol(ctx, mfa.EnrolParams{TenantID: "tenant-a", AccountID: "alice"}); !errors.Is(err, mfa.ErrAlreadyEnrolled) {
		t.Fatalf("Enrol while active: err = %v, want ErrAlreadyEnrolled", err)
	}
}

func TestConfirmAfterPendingTTL(t *testing.T) {
	ctx := context.Background()
	b := newAuthenticator(t, nil)
	setup, err := b.a.Enrol(ctx, mfa.EnrolParams{TenantID: "tenant-a", AccountID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	late := start.Add(mfa.DefaultPendingTTL)
	b.clock.Set(late)
	_, err = b.a.Confirm(ctx, mfa.CodeParams{TenantID: "tenant-a", AccountID: "alice", Code: code(t, setup.Secret, late)})
	if !errors.Is(err, mfa.ErrEnrolmentExpired) {
		t.Fatalf("Confirm at the TTL: err = %v, want ErrEnrolmentExpired", err)
	}
}

// wrongCode returns a code of the same length that differs in every digit.
func wrongCode(c string) string {
	return strings.Map(func(r rune) rune { return '0' + (r-'0'+5)%10 }, c)
}

func TestReplayedCodeRejected(t *testing.T) {
	b := enrolled(t)
	now := start.Add(30 * time.Second)
	b.clock.Set(now)
	c := code(t, b.secret, now)
	r, err := b.verify(c)
	if err != nil {
		t.Fatalf("first use: %v", err)
	}
	if r.Method != mfa.MethodTOTP || !slices.Equal(r.AMR(), []string{"otp"}) || r.Step != now.Unix()/30 {
		t.Fatalf("result = %+v, AMR %v", r, r.AMR())
	}
	_, err = b.verify(c)
	if !errors.Is(err, mfa.ErrReplayed) || !errors.Is(err, mfa.ErrInvalidCode) {
		t.Fatalf("second use: err = %v, want ErrReplayed and ErrInvalidCode", err)
	}

	// The previous step's code is inside the skew window but older than
	// the step just used, so it fails too.
	if _, err := b.verify(code(t, b.secret, start)); !errors.Is(err, mfa.ErrReplayed) {
		t.Fatalf("an older step's code: err = %v, want ErrReplayed", err)
	}
}

func TestReplayRaceOnMemoryStore(t *testing.T) {
	for _, n := range []int{2, 20} {
		b := enrolled(t)
		now := start.Add(60 * time.Second)
		b.clock.Set(now)
		c := code(t, b.secret, now)

		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		gate := make(chan struct{})
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				_, err := b.verify(c)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case !errors.Is(err, mfa.ErrReplayed):
					t.Errorf("losing call: %v", err)
				}
			}()
		}
		close(gate)
		wg.Wait()
		if wins != 1 {
			t.Fatalf("%d of %d concurrent submissions passed, want exactly 1", wins, n)
		}
	}
}

// TestSkewEdges checks the one-step window at both edges: the code of step
// s passes from the first second of step s-1 to the last second of step
// s+1, and fails one second outside on either side.
func TestSkewEdges(t *testing.T) {
	stepStart := start.Add(10 * time.Minute) // step s begins here
	cases := []struct {
		name string
		at   time.Time
		ok   bool
	}{
		{"one second before step s-1", stepStart.Add(-31 * time.Second), false},
		{"first second of step s-1", stepStart.Add(-30 * time.Second), true},
		{"last second of step s-1", stepStart.Add(-1 * time.Second), true},
		{"first second of step s", stepStart, true},
		{"last second of step s+1", stepStart.Add(59 * time.Second), true},
		{"first second of step s+2", stepStart.Add(60 * time.Second), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := enrolled(t)
			b.clock.Set(c.at)
			_, err := b.verify(code(t, b.secret, stepStart))
			if c.ok && err != nil {
				t.Fatalf("err = %v, want success", err)
			}
			if !c.ok && (!errors.Is(err, mfa.ErrInvalidCode) || errors.Is(err, mfa.ErrReplayed)) {
				t.Fatalf("err = %v, want ErrInvalidCode (not a replay)", err)
			}
		})
	}
}

func TestMalformedCodes(t *testing.T) {
	b := enrolled(t)
	b.clock.Set(start.Add(time.Minute))
	for _, c := range []string{"", "12345", "1234567", "12a456", "１２３４５６", "123456\x00"} {
		if _, err := b.verify(c); !errors.Is(err, mfa.ErrInvalidCode) {
			t.Errorf("Verify(%q): err = %v, want ErrInvalidCode", c, err)
		}
	}
	if _, err := b.verify(" " + code(t, b.secret, start.Add(time.Minute))[:3] + " " + code(t, b.secret, start.Add(time.Minute))[3:]); err != nil {
		t.Errorf("a code with spaces: %v", err)
	}
}

func TestRecoveryCodesSingleUse(t *testing.T) {
	ctx := context.Background()
	b := enrolled(t)
	p := mfa.CodeParams{TenantID: "tenant-a", AccountID: "alice", Code: b.codes[3]}
	r, err := b.a.VerifyRecoveryCode(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if r.Method != mfa.MethodRecoveryCode || r.RecoveryCodesLeft != len(b.codes)-1 || !slices.Equal(r.AMR(), []string{"otp"}) {
		t.Fatalf("result = %+v", r)
	}
	if _, err := b.a.VerifyRecoveryCode(ctx, p); !errors.Is(err, mfa.ErrInvalidCode) {
		t.Fatalf("second use: err = %v, want ErrInvalidCode", err)
	}

	// Case, hyphens and spaces do not matter.
	p.Code = strings.ToUpper(strings.ReplaceAll(b.codes[4], "-", " "))
	if _, err := b.a.VerifyRecoveryCode(ctx, p); err != nil {
		t.Fatalf("code in upper case with spaces: %v", err)
	}
	// Another account's code does not pass.
	other := enrolled(t)
	p.Code = other.codes[0]
	if _, err := b.a.VerifyRecoveryCode(ctx, p); !errors.Is(err, mfa.ErrInvalidCode) {
		t.Fatalf("another enrolment's code: err = %v, want ErrInvalidCode", err)
	}
}

func TestRecoveryCodesEntropyAndUniqueness(t *testing.T) {
	b := enrolled(t)
	seen := map[string]bool{}
	for _, c := range b.codes {
		raw := strings.ReplaceAll(c, "-", "")
		if len(raw)*5 < 64 {
			t.Fatalf("code %q carries %d bits, want at least 64", c, len(raw)*5)
		}
		if seen[raw] {
			t.Fatalf("duplicate code %q", c)
		}
		seen[raw] = true
	}
}

func TestRegenerateRecoveryCodes(t *testing.T) {
	ctx := context.Background()
	b := enrolled(t)
	fresh, err := b.a.RegenerateRecoveryCodes(ctx, "tenant-a", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.a.VerifyRecoveryCode(ctx, mfa.CodeParams{TenantID: "tenant-a", AccountID: "alice", Code: b.codes[0]}); !errors.Is(err, mfa.ErrInvalidCode) {
		t.Fatalf("old code after regeneration: err = %v, want ErrInvalidCode", err)
	}
	if _, err := b.a.VerifyRecoveryCode(ctx, mfa.CodeParams{TenantID: "tenant-a", AccountID: "alice", Code: fresh[0]}); err != nil {
		t.Fatalf("new code: %v", err)
	}
	if _, err := b.a.RegenerateRecoveryCodes(ctx, "tenant-a", "nobody"); !errors.Is(err, mfa.ErrNotEnrolled) {
		t.Fatalf("regenerate without enrolment: err = %v, want ErrNotEnrolled", err)
	}
}

func TestDisable(t *testing.T) {
	ctx := context.Background()
	b := enrolled(t)
	if err := b.a.Disable(ctx, "tenant-a", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.verify(code(t, b.secret, start)); !errors.Is(err, mfa.ErrNotEnrolled) {
		t.Fatalf("Verify after Disable: err = %v, want ErrNotEnrolled", err)
	}
	if _, err := b.a.Enrol(ctx, mfa.EnrolParams{TenantID: "tenant-a", AccountID: "alice"}); err != nil {
		t.Fatalf("Enrol after Disable: %v", err)
	}
}

// TestGracePeriod walks an account through its tenant's grace period with
// a fake clock.
func TestGracePeriod(t *testing.T) {
	ctx := context.Background()
	b := newAuthenticator(t, nil)
	created := start
	req := mfa.RequirementParams{TenantID: "tenant-a", AccountID: "alice", AccountCreatedAt: created}
	graceEnds := created.Add(7 * 24 * time.Hour)

	steps := []struct {
		at   time.Time
		want mfa.Action
	}{
		{created, mfa.ActionEnrolSoon},
		{graceEnds.Add(-time.Second), mfa.ActionEnrolSoon},
		{graceEnds, mfa.ActionEnrolNow},
		{graceEnds.Add(30 * 24 * time.Hour), mfa.ActionEnrolNow},
	}
	for _, s := range steps {
		b.clock.Set(s.at)
		d, err := b.a.Requirement(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if d.Action != s.want || !d.Required || d.Enrolled || !d.GraceEnds.Equal(graceEnds) || d.InGrace() != (s.want == mfa.ActionEnrolSoon) {
			t.Errorf("at %v: decision %+v, want %v with grace ending %v", s.at, d, s.want, graceEnds)
		}
		if d.RequiredAMR() != nil {
			t.Errorf("at %v: RequiredAMR = %v, want none before enrolment", s.at, d.RequiredAMR())
		}
	}

	// Once enrolled, the account is always asked for its code.
	setup, err := b.a.Enrol(ctx, mfa.EnrolParams{TenantID: "tenant-a", AccountID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	now := b.clock.Now()
	if _, err := b.a.Confirm(ctx, mfa.CodeParams{TenantID: "tenant-a", AccountID: "alice", Code: code(t, setup.Secret, now)}); err != nil {
		t.Fatal(err)
	}
	d, err := b.a.Requirement(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if d.Action != mfa.ActionVerify || !slices.Equal(d.RequiredAMR(), []string{"otp"}) {
		t.Fatalf("after enrolment: decision %+v", d)
	}
}

func TestPerTenantPolicy(t *testing.T) {
	ctx := context.Background()
	b := newAuthenticator(t, nil)
	if err := b.a.SetPolicy(ctx, "tenant-b", mfa.Policy{Required: false}); err != nil {
		t.Fatal(err)
	}
	if err := b.a.SetPolicy(ctx, "tenant-c", mfa.Policy{Required: true, GracePeriod: 0}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		tenant string
		want   mfa.Action
	}{
		{"tenant-a", mfa.ActionEnrolSoon}, // default policy: required, 7 days
		{"tenant-b", mfa.ActionNone},
		{"tenant-c", mfa.ActionEnrolNow},
	}
	for _, c := range cases {
		d, err := b.a.Requirement(ctx, mfa.RequirementParams{TenantID: c.tenant, AccountID: "alice", AccountCreatedAt: start})
		if err != nil {
			t.Fatal(err)
		}
		if d.Action != c.want {
			t.Errorf("%s: action %v, want %v", c.tenant, d.Action, c.want)
		}
	}
	if err := b.a.SetPolicy(ctx, "tenant-d", mfa.Policy{Required: true, GracePeriod: -time.Hour}); !errors.Is(err, mfa.ErrInvalidInput) {
		t.Fatalf("negative grace: err = %v, want ErrInvalidInput", err)
	}
}

func TestCombineAMR(t *testing.T) {
	cases := []struct {
		in   [][]string
		want []string
	}{
		{[][]string{{"pwd"}}, []string{"pwd"}},
		{[][]string{{"pwd"}, {"otp"}}, []string{"pwd", "otp", "mfa"}},
		{[][]string{{"pwd", "mfa"}, {"otp"}, {"otp"}}, []string{"pwd", "otp", "mfa"}},
		{[][]string{{"pwd"}, {"pin"}}, []string{"pwd", "pin"}},
		{[][]string{{"otp"}, {"otp"}}, []string{"otp"}},
		{[][]string{{"mfa"}}, nil},
	}
	for _, c := range cases {
		if got := mfa.CombineAMR(c.in...); !slices.Equal(got, c.want) {
			t.Errorf("CombineAMR(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	s := mfa.NewMemoryStore()
	ok := mfa.Config{Store: s, Sealer: testSealer(t), Issuer: "x"}
	cases := map[string]func(*mfa.Config){
		"Store":         func(c *mfa.Config) { c.Store = nil },
		"Sealer":        func(c *mfa.Config) { c.Sealer = nil },
		"Issuer":        func(c *mfa.Config) { c.Issuer = "" },
		"Issuer colon":  func(c *mfa.Config) { c.Issuer = "a:b" },
		"Algorithm":     func(c *mfa.Config) { c.Algorithm = "MD5" },
		"Digits":        func(c *mfa.Config) { c.Digits = 7 },
		"Period":        func(c *mfa.Config) { c.Period = 1500 * time.Millisecond },
		"SecretSize":    func(c *mfa.Config) { c.SecretSize = 10 },
		"RecoveryCodes": func(c *mfa.Config) { c.RecoveryCodes = -1 },
		"DefaultPolicy": func(c *mfa.Config) { c.DefaultPolicy = &mfa.Policy{GracePeriod: -1} },
	}
	for name, mutate := range cases {
		cfg := ok
		mutate(&cfg)
		if _, err := mfa.New(cfg); !errors.Is(err, mfa.ErrInvalidConfig) {
			t.Errorf("%s: err = %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := mfa.New(ok); err != nil {
		t.Fatalf("valid config: %v", err)
	}
}

func TestDecisionSatisfied(t *testing.T) {
	cases := []struct {
		action mfa.Action
		amr    []string
		want   bool
	}{
		{mfa.ActionNone, []string{"pwd"}, true},
		{mfa.ActionEnrolSoon, []string{"pwd"}, true},
		{mfa.ActionVerify, []string{"pwd"}, false},
		{mfa.ActionVerify, []string{"pwd", "otp", "mfa"}, true},
		{mfa.ActionVerify, []string{"mfa"}, true},
		{mfa.ActionVerify, nil, false},
		{mfa.ActionEnrolNow, []string{"pwd", "otp", "mfa"}, false},
	}
	for _, c := range cases {
		if got := (mfa.Decision{Action: c.action}).Satisfied(c.amr); got != c.want {
			t.Errorf("%v with amr %v: Satisfied = %v, want %v", c.action, c.amr, got, c.want)
		}
	}
}

func TestRequirementAtGivenTime(t *testing.T) {
	b := newAuthenticator(t, nil)
	p := mfa.RequirementParams{TenantID: "tenant-a", AccountID: "alice", AccountCreatedAt: start, At: start.Add(8 * 24 * time.Hour)}
	d, err := b.a.Requirement(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if d.Action != mfa.ActionEnrolNow {
		t.Fatalf("8 days after creation: %v, want enrol_now (the clock says day 0)", d.Action)
	}
}

// TestReplayOfCodeValidAtTwoSteps submits a code that, for this secret, is
// the code of two adjacent steps inside the skew window. Once accepted it
// must not pass again for the other step: RFC 6238 §5.2 forbids accepting
// an OTP a second time.
func TestReplayOfCodeValidAtTwoSteps(t *testing.T) {
	// Under this secret, steps 59000000 and 59000001 (30 s period) share
	// the code 653584; found by search.
	secret := make([]byte, 20)
	copy(secret, []byte{0, 0, 0, 0, 0, 0x0e, 0xec, 0x93})
	b := newAuthenticator(t, func(c *mfa.Config) {
		c.Rand = io.MultiReader(bytes.NewReader(secret), rand.Reader)
	})
	ctx := context.Background()
	enrolAt := time.Unix(1769999000, 0).UTC()
	b.clock.Set(enrolAt)
	setup, err := b.a.Enrol(ctx, mfa.EnrolParams{TenantID: "tenant-a", AccountID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.a.Confirm(ctx, mfa.CodeParams{TenantID: "tenant-a", AccountID: "alice", Code: code(t, setup.Secret, enrolAt)}); err != nil {
		t.Fatal(err)
	}
	first, second := time.Unix(59000000*30, 0), time.Unix(59000001*30, 0)
	if code(t, setup.Secret, first) != "653584" || code(t, setup.Secret, second) != "653584" {
		t.Fatal("fixture: the two steps do not share a code")
	}

	b.clock.Set(second.Add(5 * time.Second))
	if _, err := b.verify("653584"); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if _, err := b.verify("653584"); !errors.Is(err, mfa.ErrReplayed) {
		t.Fatalf("second use of the same code: err = %v, want ErrReplayed", err)
	}
}

// digitsTamperStore returns the enrolment with its digits changed, as a
// row edited in the database would be.
type digitsTamperStore struct {
	*mfa.MemoryStore
	digits int
}

func (s digitsTamperStore) Enrolment(ctx context.Context, tenantID, accountID string) (mfa.Enrolment, error) {
	e, err := s.MemoryStore.Enrolment(ctx, tenantID, accountID)
	e.Digits = s.digits
	return e, err
}

// TestStoredDigitsOutOfRangeRefused: whoever can edit the enrolment row
// but not open the sealed secret must not be able to shrink the code to
// one digit (a one-in-ten guess). Only the lengths New accepts, 6 and 8,
// are verified.
func TestStoredDigitsOutOfRangeRefused(t *testing.T) {
	b := enrolled(t)
	now := start.Add(5 * time.Minute)
	b.clock.Set(now)
	tampered, err := mfa.New(mfa.Config{Store: digitsTamperStore{b.store.MemoryStore, 1}, Sealer: b.sealer, Issuer: "Chat Health", Now: b.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	one, err := totp.GenerateCodeCustom(b.secret, now, totp.ValidateOpts{Period: 30, Digits: otp.Digits(1), Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tampered.Verify(context.Background(), mfa.CodeParams{TenantID: "tenant-a", AccountID: "alice", Code: one}); err == nil {
		t.Fatal("a one-digit code passed against a row whose digits were set to 1")
	}
}
