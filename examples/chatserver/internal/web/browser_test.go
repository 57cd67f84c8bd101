package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/chatsdk/compliance/internal/pgtest"
)

// tabTimeout bounds one browser test, so a hung browser fails the test
// instead of stalling CI. It is generous: the subtests share a loaded
// 2-core machine and run under the race detector.
const tabTimeout = 3 * time.Minute

// waitTimeout bounds one wait for a condition of the page.
const waitTimeout = 20 * time.Second

const pass = "velvet lantern harbor quietly"

// findChromium is $CHROMIUM_PATH or the first Chromium on $PATH.
func findChromium() string {
	if p := os.Getenv("CHROMIUM_PATH"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// newBrowser starts one headless Chromium for a test and its subtests.
// Without one the test skips, or fails when CI is set.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := findChromium()
	if path == "" {
		if os.Getenv(pgtest.EnvCI) != "" {
			t.Fatal("CI is set and no Chromium was found: install Debian's chromium package or set CHROMIUM_PATH")
		}
		t.Skip("no Chromium found (set CHROMIUM_PATH or install chromium); skipping the browser tests")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Flag("headless", "new"),
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to sandbox as root
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(browser) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start %s: %v", path, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not start within 30s", path)
	}
	return browser
}

// artifacts is the directory of the screenshots: $TEST_ARTIFACTS/web, or
// a temporary directory.
func artifacts(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("TEST_ARTIFACTS"); d != "" {
		dir := filepath.Join(d, "web")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

// tab is one browser tab on a test server. It records the page's
// uncaught exceptions and console errors (which include
// Content-Security-Policy violations), and the bearer tokens its
// requests carried.
type tab struct {
	t      *testing.T
	ctx    context.Context
	srv    *testServer
	shots  string
	prefix string

	mu       sync.Mutex
	problems []string
	tokens   map[string]bool
}

func newTab(t *testing.T, browser context.Context, srv *testServer, prefix string) *tab {
	t.Helper()
	ctx, cancelTimeout := context.WithTimeout(browser, tabTimeout)
	ctx, cancelTab := chromedp.NewContext(ctx)
	t.Cleanup(func() {
		cancelTab()
		cancelTimeout()
	})
	p := &tab{t: t, ctx: ctx, srv: srv, shots: artifacts(t), prefix: prefix, tokens: map[string]bool{}}
	if err := chromedp.Listen(ctx, p.event); err != nil {
		t.Fatalf("listen: %v", err)
	}
	return p
}

func (p *tab) event(ev any) {
	var text string
	switch e := ev.(type) {
	case *runtime.EventExceptionThrown:
		text = "exception: " + e.ExceptionDetails.Text
		if e.ExceptionDetails.Exception != nil {
			text += " " + e.ExceptionDetails.Exception.Description
		}
	case *cdplog.EventEntryAdded:
		if e.Entry.Level == cdplog.EntryLevelError {
			text = "console " + string(e.Entry.Source) + ": " + e.Entry.Text
		}
	case *network.EventRequestWillBeSent:
		if auth, _ := e.Request.Headers["Authorization"].(string); strings.HasPrefix(auth, "Bearer ") {
			p.mu.Lock()
			p.tokens[strings.TrimPrefix(auth, "Bearer ")] = true
			p.mu.Unlock()
		}
	}
	if text != "" {
		p.mu.Lock()
		p.problems = append(p.problems, text)
		p.mu.Unlock()
	}
}

// tokensRefused fails the test unless the API refuses every bearer token
// the page has sent so far: its sessions are over on the server, not only
// forgotten by the page.
func (p *tab) tokensRefused(when string) {
	p.t.Helper()
	p.mu.Lock()
	tokens := make([]string, 0, len(p.tokens))
	for tok := range p.tokens {
		tokens = append(tokens, tok)
	}
	p.mu.Unlock()
	if len(tokens) == 0 {
		p.t.Fatalf("%s: the page sent no bearer token", when)
	}
	for i, tok := range tokens {
		if st, body := p.srv.api(p.t, "POST", "/v1/auth/logout", tok, nil); st != http.StatusUnauthorized {
			p.t.Errorf("%s: token %d of %d the page sent still works: %d %v", when, i+1, len(tokens), st, body)
		}
	}
}

// waitProblem waits until the page has reported a problem containing one
// of the texts, and forgets what it reported.
func (p *tab) waitProblem(what string, texts ...string) {
	p.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	var seen []string
	for {
		seen = append(seen, p.takeProblems()...)
		for _, pr := range seen {
			for _, text := range texts {
				if strings.Contains(pr, text) {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: the page reported %q, none containing %q", what, seen, texts)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// takeProblems returns and forgets what the page reported.
func (p *tab) takeProblems() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.problems
	p.problems = nil
	return out
}

// clean fails the test if the page reported an exception or an error,
// ignoring the API's own error answers that the page expects (the
// browser logs every 4xx fetch).
func (p *tab) clean() {
	p.t.Helper()
	for _, pr := range p.takeProblems() {
		if strings.Contains(pr, "Failed to load resource: the server responded with a status of 4") {
			continue
		}
		p.t.Errorf("page reported: %s", pr)
	}
}

func (p *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.shot("failed")
		p.t.Fatalf("%s: %v", what, err)
	}
}

func (p *tab) text(sel string) string {
	p.t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		p.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func evaluate[T any](p *tab, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor evaluates a JavaScript condition every 25ms until it holds, for
// up to waitTimeout. (chromedp.Poll builds its predicate with new
// Function, which the pages' Content-Security-Policy refuses.)
func (p *tab) waitFor(what, cond string) {
	p.t.Helper()
	p.waitWithin(waitTimeout, what, cond)
}

// waitWithin is waitFor with a deadline of its own.
func (p *tab) waitWithin(d time.Duration, what, cond string) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool]("Boolean("+cond+")", chromedp.EvalAwaitPromise))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) || p.ctx.Err() != nil {
			p.shot("failed")
			p.t.Fatalf("%s: %s did not hold (last error %v)", what, cond, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// setValue sets a form control's value from script, as a user's edit
// would, with input and change events. (chromedp.SetValue refuses the
// empty string.)
func setValue(sel, value string) chromedp.Action[chromedp.Void] {
	js := fmt.Sprintf(`(e => { e.value = %s; e.dispatchEvent(new Event("input", {bubbles: true})); e.dispatchEvent(new Event("change", {bubbles: true})); return true; })(document.querySelector(%s))`, jsString(value), jsString(sel))
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](js)(ctx, t)
		return err
	})
}

func jsString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// fill replaces an input's value by typing.
func (p *tab) fill(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(setValue(sel, ""), chromedp.SendKeys(chromedp.CSS(sel), value))
}

// shot saves a screenshot of the whole page as <prefix>-<name>.png.
func (p *tab) shot(name string) {
	p.t.Helper()
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(p.shots, p.prefix+"-"+name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: %s", path)
}

// signUp creates an account through the sign-up page and lands on the
// enrolment view.
func (p *tab) signUp(app, user string) {
	p.t.Helper()
	p.do("open sign-up", chromedp.Navigate(p.srv.URL+"/#/signup"), chromedp.WaitVisible(chromedp.CSS("#view-signup")))
	p.do("fill sign-up",
		p.fill("#signup-app", app),
		chromedp.SendKeys(chromedp.CSS("#signup-username"), user),
		chromedp.SendKeys(chromedp.CSS("#signup-password"), pass),
	)
}

func (p *tab) submitSignUp() {
	p.t.Helper()
	p.do("sign up", chromedp.Click(chromedp.CSS("#signup-submit")), chromedp.WaitVisible(chromedp.CSS("#view-security")))
}

// createChannel goes to the chat and creates a channel.
func (p *tab) createChannel(name string) {
	p.t.Helper()
	p.do("open chat", chromedp.Click(chromedp.CSS(`#nav a[data-view="chat"]`)), chromedp.WaitVisible(chromedp.CSS("#view-chat")))
	p.do("create channel",
		chromedp.SendKeys(chromedp.CSS("#channel-name"), name),
		chromedp.Click(chromedp.CSS(`#channel-create button[type="submit"]`)),
		chromedp.WaitEnabled(chromedp.CSS("#message-text")),
	)
}

func (p *tab) send(text string) {
	p.t.Helper()
	before := evaluate[int](p, `document.querySelectorAll("#messages .message").length`)
	p.do("send", setValue("#message-text", text), chromedp.Click(chromedp.CSS("#message-send")))
	p.waitFor("the message shows", fmt.Sprintf(`document.querySelectorAll("#messages .message").length > %d`, before))
}

// TestBrowser drives the pages in headless Chromium. One browser serves
// every subtest, each in a tab of its own.
func TestBrowser(t *testing.T) {
	browser := newBrowser(t)
	for _, backend := range []string{"memory", "postgres"} {
		t.Run("flow/"+backend, func(t *testing.T) {
			t.Parallel()
			testFlow(t, browser, backend)
		})
	}
	for _, sub := range []struct {
		name string
		fn   func(*testing.T, context.Context)
	}{
		{"markup", testMarkup},
		{"csp", testCSP},
		{"idle", testIdle},
		{"idle-timer", testIdleTimer},
		{"back", testBack},
		{"refresh", testRefresh},
		{"refresh-race", testRefreshRace},
	} {
		t.Run(sub.name, func(t *testing.T) {
			t.Parallel()
			sub.fn(t, browser)
		})
	}
}

// testFlow: sign up, enrol TOTP from the QR code's secret, log out, sign
// in with password and code, chat, and as the app's owner read the admin
// console: audit log with a filter and paging, verification, a locked
// account unlocked.
func testFlow(t *testing.T, browser context.Context, backend string) {
	srv := newServer(t, serverOptions{backend: backend})
	p := newTab(t, browser, srv, backend)

	// Sign up: the first user of the app is its owner.
	p.signUp("clinic", "alice")
	p.shot("01-signup")
	p.submitSignUp()

	// Enrol: the page shows the QR code and the secret; the test is the
	// authenticator app.
	p.do("begin enrolment", chromedp.Click(chromedp.CSS("#enrol-begin")), chromedp.WaitVisible(chromedp.CSS("#enrol-scan")))
	p.waitFor("QR code decoded", `document.getElementById("enrol-qr").complete && document.getElementById("enrol-qr").naturalWidth > 0`)
	secret := strings.TrimSpace(p.text("#totp-secret"))
	if len(secret) < 16 {
		t.Fatalf("secret shown = %q", secret)
	}
	p.shot("02-enrol-qr")
	code, err := totp.GenerateCode(secret, srv.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	p.do("confirm enrolment", chromedp.SendKeys(chromedp.CSS("#enrol-code"), code), chromedp.Click(chromedp.CSS("#enrol-submit")), chromedp.WaitVisible(chromedp.CSS("#enrol-done")))
	if n := evaluate[int](p, `document.querySelectorAll("#recovery-codes li").length`); n == 0 {
		t.Error("no recovery codes shown")
	}
	p.shot("03-enrol-done")

	// Tokens stay in script memory: nothing in storage or cookies.
	if !evaluate[bool](p, `localStorage.length === 0 && sessionStorage.length === 0 && document.cookie === ""`) {
		t.Error("the page put something in web storage or a cookie")
	}

	// Log out, then sign in again: the password alone now asks for a code.
	p.do("log out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#view-signin")))
	if got := p.text("#notice"); !strings.Contains(got, "logged out") {
		t.Errorf("notice after logout = %q", got)
	}
	p.tokensRefused("after logout")
	if left := evaluate[string](p, `document.getElementById("totp-secret").textContent + document.getElementById("whoami").textContent +
		[...document.querySelectorAll("#recovery-codes li")].map(e => e.textContent).join(",") + (document.getElementById("enrol-qr").getAttribute("src") || "")`); left != "" {
		t.Errorf("the page kept the session's secrets after logout: %q", left)
	}
	p.do("sign in with password", p.fill("#signin-app", "clinic"), p.fill("#signin-username", "alice"), chromedp.SendKeys(chromedp.CSS("#signin-password"), pass),
		chromedp.Click(chromedp.CSS("#signin-submit")), chromedp.WaitVisible(chromedp.CSS("#signin-otp-row")))
	srv.clock.Advance(30 * time.Second) // the next TOTP step: a code is good once
	if code, err = totp.GenerateCode(secret, srv.clock.Now()); err != nil {
		t.Fatal(err)
	}
	p.do("type the code", chromedp.SendKeys(chromedp.CSS("#signin-otp"), code))
	p.shot("04-signin-totp")
	p.do("sign in with code", chromedp.Click(chromedp.CSS("#signin-submit")), chromedp.WaitVisible(chromedp.CSS("#view-chat")))

	// Chat: a channel, two messages, read back.
	p.createChannel("Ward 3 handover")
	p.send("Bed 12: BP 128/82 at 14:00, stable.")
	p.send("Bed 14 to radiology at 15:30.\nPorter booked.")
	texts := evaluate[[]string](p, `[...document.querySelectorAll("#messages .message .text")].map(e => e.textContent)`)
	if len(texts) != 2 || texts[0] != "Bed 12: BP 128/82 at 14:00, stable." || texts[1] != "Bed 14 to radiology at 15:30.\nPorter booked." {
		t.Errorf("messages shown = %q", texts)
	}
	p.shot("05-chat")

	// Another user locks their account with wrong passwords.
	if st, _ := srv.api(t, "POST", "/v1/apps/clinic/users", "", map[string]string{"username": "bob", "password": "copper meadow whistle tide"}); st != http.StatusCreated {
		t.Fatalf("bob's sign-up: %d", st)
	}
	for range 5 {
		srv.api(t, "POST", "/v1/apps/clinic/login", "", map[string]string{"username": "bob", "password": "wrong guess of a password"})
	}
	if st, _ := srv.api(t, "POST", "/v1/apps/clinic/login", "", map[string]string{"username": "bob", "password": "copper meadow whistle tide"}); st != http.StatusTooManyRequests {
		t.Fatalf("bob after five failures: %d, want 429", st)
	}

	// Admin console.
	p.do("open admin", chromedp.Click(chromedp.CSS(`#nav a[data-view="admin"]`)), chromedp.WaitVisible(chromedp.CSS("#view-admin")))
	p.waitFor("verification and audit rows", `document.getElementById("verify-status").textContent === "intact" && document.querySelectorAll("#audit-rows tr").length > 10`)
	p.waitFor("bob listed as locked", `[...document.querySelectorAll("#locked tr td:first-child")].some(td => td.textContent === "bob")`)
	p.waitFor("the latest checkpoint loaded", `document.getElementById("checkpoint").textContent !== "–"`)
	types := evaluate[[]string](p, `[...document.querySelectorAll("#audit-rows tr td:nth-child(3)")].map(e => e.textContent)`)
	if !contains(types, "auth.login") || !contains(types, "security.account_locked") && !contains(types, "auth.account_locked") {
		t.Errorf("audit types shown = %q", types)
	}

	// A legal hold, placed from the console.
	p.do("place a hold", chromedp.SendKeys(chromedp.CSS("#hold-reason"), "Complaint 2026-114: keep ward 3 records"), chromedp.Click(chromedp.CSS(`#hold-form button[type="submit"]`)))
	p.waitFor("the hold listed", `[...document.querySelectorAll("#holds tr td:nth-child(2)")].some(td => td.textContent === "Complaint 2026-114: keep ward 3 records")`)
	p.shot("06-admin")

	// Filter by type.
	p.do("filter", p.fill("#audit-type", "auth.login"), chromedp.Click(chromedp.CSS(`#audit-filter button[type="submit"]`)))
	p.waitFor("only logins", `(() => { const t = [...document.querySelectorAll("#audit-rows tr td:nth-child(3)")].map(e => e.textContent); return t.length > 0 && t.every(x => x === "auth.login"); })()`)

	// Page through everything, 25 at a time.
	p.do("clear filter", setValue("#audit-type", ""), setValue("#audit-limit", "25"), chromedp.Click(chromedp.CSS(`#audit-filter button[type="submit"]`)))
	p.waitFor("a full first page", `document.querySelectorAll("#audit-rows tr").length === 25 && !document.getElementById("audit-next").disabled`)
	first := evaluate[[]string](p, `[...document.querySelectorAll("#audit-rows tr td:first-child")].map(e => e.textContent)`)
	p.do("next page", chromedp.Click(chromedp.CSS("#audit-next")))
	p.waitFor("page 2", `document.getElementById("audit-page").textContent === "Page 2" && !document.getElementById("audit-first").disabled`)
	second := evaluate[[]string](p, `[...document.querySelectorAll("#audit-rows tr td:first-child")].map(e => e.textContent)`)
	if len(second) == 0 || contains(first, second[0]) {
		t.Errorf("page 2 %q overlaps page 1 %q", second, first)
	}

	// Unlock bob.
	p.do("unlock bob", chromedp.SendKeys(chromedp.CSS(`#locked tr td.actions input`), "verified by phone"), chromedp.Click(chromedp.CSS(`#locked tr td.actions button`)))
	p.waitFor("no locked account", `document.querySelectorAll("#locked tr").length === 0 && !document.getElementById("locked-empty").hidden`)
	if st, _ := srv.api(t, "POST", "/v1/apps/clinic/login", "", map[string]string{"username": "bob", "password": "copper meadow whistle tide"}); st != http.StatusOK {
		t.Errorf("bob after the unlock: %d, want 200", st)
	}
	p.clean()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// testMarkup: markup in a message, a channel name, a user name typed at
// the sign-in (listed by the console as a locked account and in the audit
// log), a hold reason and a break-glass reason is shown as text; no
// element is made from it and no script runs. Then a reload signs out.
func testMarkup(t *testing.T, browser context.Context) {
	srv := newServer(t, serverOptions{})
	p := newTab(t, browser, srv, "markup")
	p.signUp("xss", "mallory")
	p.submitSignUp()
	p.createChannel(`<i>care</i><img src=x onerror="window.__pwned='name'">`)
	payload := `<img src=x onerror="window.__pwned='img'"><script>window.__pwned='script'</script><b>bold</b> & "quotes"`
	p.send(payload)
	if got := p.text("#messages .message .text"); got != payload {
		t.Errorf("message shown as %q, want the literal %q", got, payload)
	}
	if got := p.text("#channel-title"); got != `<i>care</i><img src=x onerror="window.__pwned='name'">` {
		t.Errorf("channel title shown as %q", got)
	}
	if n := evaluate[int](p, `document.querySelectorAll("#view-chat img, #view-chat script, #view-chat b, #view-chat i").length`); n != 0 {
		t.Errorf("%d elements were made from the markup", n)
	}
	if got := evaluate[string](p, `String(window.__pwned)`); got != "undefined" {
		t.Errorf("injected script ran: window.__pwned = %s", got)
	}
	p.shot("07-markup")

	// Markup reaches the admin console from strangers (a name typed at the
	// sign-in) and from admins (reasons).
	typed := `<img src=x onerror="window.__pwned='user'">`
	for range 5 {
		srv.api(t, "POST", "/v1/apps/xss/login", "", map[string]string{"username": typed, "password": "no such user, no such password"})
	}
	_, tok := srv.api(t, "POST", "/v1/apps/xss/login", "", map[string]string{"username": "mallory", "password": pass})
	owner, _ := tok["access_token"].(string)
	reason := `<b onmouseover="window.__pwned='reason'">hold</b>`
	if st, body := srv.api(t, "POST", "/v1/admin/holds", owner, map[string]string{"scope": "tenant", "reason": reason}); st != http.StatusCreated {
		t.Fatalf("hold: %d %v", st, body)
	}
	if st, body := srv.api(t, "POST", "/v1/admin/break-glass", owner, map[string]string{"reason": reason}); st != http.StatusOK {
		t.Fatalf("break-glass: %d %v", st, body)
	}
	p.do("open admin", chromedp.Click(chromedp.CSS(`#nav a[data-view="admin"]`)), chromedp.WaitVisible(chromedp.CSS("#view-admin")))
	p.waitFor("the typed name listed as locked", fmt.Sprintf(`[...document.querySelectorAll("#locked td")].some(td => td.textContent === %s)`, jsString(typed)))
	p.waitFor("the hold and grant reasons shown", fmt.Sprintf(`document.querySelector("#holds td:nth-child(2)")?.textContent === %[1]s && document.querySelector("#grants td:nth-child(2)")?.textContent === %[1]s`, jsString(reason)))
	p.waitFor("the audit rows loaded", `document.querySelectorAll("#audit-rows tr").length > 5`)
	if !evaluate[bool](p, fmt.Sprintf(`document.getElementById("audit-rows").textContent.includes(%s)`, jsString(`reason=`+reason))) {
		t.Error("the hold's reason is not shown, as text, in the audit log's details")
	}
	if n := evaluate[int](p, `document.querySelectorAll("#view-admin img, #view-admin b, #view-admin script").length`); n != 0 {
		t.Errorf("%d elements were made from markup in the console", n)
	}
	if got := evaluate[string](p, `String(window.__pwned)`); got != "undefined" {
		t.Errorf("injected script ran in the console: window.__pwned = %s", got)
	}
	p.shot("07-markup-admin")
	p.clean()

	// A reload forgets the tokens, and the page revokes its session on the
	// way out.
	p.do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#view-signin")))
	if !evaluate[bool](p, `document.getElementById("nav").hidden`) {
		t.Error("still signed in after a reload")
	}
	deadline := time.Now().Add(waitTimeout)
	for !strings.Contains(srv.logs.String(), `"route":"POST /v1/auth/logout","status":204`) {
		if time.Now().After(deadline) {
			t.Fatal("the page did not log out as it unloaded")
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.tokensRefused("after a reload")
}

// testCSP: the page carries the policy, has no inline script or style,
// and the browser enforces the policy: a script the page did not load
// from the server does not run.
func testCSP(t *testing.T, browser context.Context) {
	srv := newServer(t, serverOptions{})
	p := newTab(t, browser, srv, "csp")
	res, err := chromedp.Run(p.ctx, chromedp.NavigateResponse(srv.URL+"/"))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Headers["Content-Security-Policy"]; got != wantCSP {
		t.Errorf("Content-Security-Policy = %v, want %q", got, wantCSP)
	}
	p.do("page ready", chromedp.WaitVisible(chromedp.CSS("#view-signin")))
	if n := evaluate[int](p, `document.querySelectorAll("script:not([src]), [style], style").length`); n != 0 {
		t.Errorf("%d inline scripts or styles in the page", n)
	}
	p.clean()

	// An injected inline script does not run, and under Trusted Types no
	// string becomes HTML or an event handler.
	got := evaluate[string](p, `(() => {
		const s = document.createElement("script"); s.append("window.__inline = 1"); document.body.append(s);
		const sinks = {
			innerHTML: (e) => { e.innerHTML = "<b class=tt>x</b>"; },
			insertAdjacentHTML: (e) => e.insertAdjacentHTML("beforeend", "<b class=tt>x</b>"),
			"an onclick attribute": (e) => e.setAttribute("onclick", "window.__handler = 1"),
		};
		for (const [name, sink] of Object.entries(sinks)) {
			try { sink(document.getElementById("notice")); return name + " took a string"; } catch (e) { if (!(e instanceof TypeError)) return name + " threw " + e; }
		}
		return document.querySelectorAll(".tt").length === 0 ? "refused" : "an element was made";
	})()`)
	if got != "refused" {
		t.Errorf("strings into the HTML sinks: %s, want each refused", got)
	}
	if got := evaluate[string](p, `String(window.__inline)`); got != "undefined" {
		t.Errorf("an injected inline script ran despite the policy: %s", got)
	}
	p.waitProblem("a violation report", "Content Security Policy", "TrustedScript", "TrustedHTML")
}

// testIdle: after the idle timeout the next request ends the session and
// the page says why.
func testIdle(t *testing.T, browser context.Context) {
	srv := newServer(t, serverOptions{})
	p := newTab(t, browser, srv, "idle")
	p.signUp("ward", "nadia")
	p.submitSignUp()
	p.createChannel("Night shift")
	p.send("Checked bed 4 at 02:00.")
	srv.clock.Advance(16 * time.Minute) // idle timeout 15m
	p.do("reload messages", chromedp.Click(chromedp.CSS("#messages-reload")), chromedp.WaitVisible(chromedp.CSS("#view-signin")))
	if got := p.text("#notice"); !strings.Contains(got, "period without activity") {
		t.Errorf("notice = %q, want the idle-logoff notice", got)
	}
	if got := evaluate[string](p, `document.getElementById("signin-username").value`); got != "nadia" {
		t.Errorf("user name kept for the new sign-in = %q", got)
	}
	if n := evaluate[int](p, `document.querySelectorAll("#messages li").length`); n != 0 {
		t.Errorf("%d messages still in the page after the logoff", n)
	}
	p.shot("08-idle")
	p.clean()
}

// testIdleTimer: with nobody at the keyboard, the page ends the session
// by itself once the server's idle timeout has passed since its last
// request, instead of showing the messages until the next click.
func testIdleTimer(t *testing.T, browser context.Context) {
	const idle = 10 * time.Second
	srv := newServer(t, serverOptions{idleTimeout: idle})
	p := newTab(t, browser, srv, "idletimer")
	p.signUp("night", "nia")
	p.submitSignUp()
	p.createChannel("Night shift")
	p.send("Bed 4: pain score 7 at 03:10.")
	sent := time.Now()
	p.waitWithin(idle+waitTimeout, "the idle logoff without a click", `!document.getElementById("view-signin").hidden`)
	if elapsed := time.Since(sent); elapsed < idle/2 {
		t.Errorf("logged off %v after the last request, well before the idle timeout of %v", elapsed, idle)
	}
	if got := p.text("#notice"); !strings.Contains(got, "period without activity") {
		t.Errorf("notice = %q, want the idle-logoff notice", got)
	}
	if evaluate[bool](p, `document.body.textContent.includes("pain score")`) {
		t.Error("the message is still in the page after the idle logoff")
	}
	p.tokensRefused("after the idle logoff")
	p.shot("09-idle-timer")
	p.clean()
}

// testBack: leaving the page ends its session, and the back button, which
// may bring the page back from the back/forward cache, shows the sign-in
// form, not the messages of the session that ended.
func testBack(t *testing.T, browser context.Context) {
	srv := newServer(t, serverOptions{})
	p := newTab(t, browser, srv, "back")
	p.signUp("ward", "bea")
	p.submitSignUp()
	p.createChannel("Ward 9")
	p.send("Bed 7: allergic to penicillin.")
	p.do("leave the page", chromedp.Navigate(srv.URL+"/healthz"))
	// chromedp.NavigateBack waits for a load event, which a page restored
	// from the back/forward cache does not fire.
	evaluate[bool](p, `(history.back(), true)`)
	p.waitFor("the sign-in form after going back", `location.pathname === "/" && !document.getElementById("view-signin").hidden`)
	if evaluate[bool](p, `document.body.textContent.includes("penicillin") || document.body.textContent.includes("Ward 9") || !document.getElementById("nav").hidden`) {
		t.Error("going back shows the ended session's channel or messages")
	}
	p.tokensRefused("after leaving the page")
	p.shot("10-back")
	p.clean()
}

// testRefresh: the console's requests, sent at once with an expired
// access token, share one refresh. Two rotations of one refresh token
// would look like a stolen token and end the session.
func testRefresh(t *testing.T, browser context.Context) {
	srv := newServer(t, serverOptions{accessTTL: time.Minute})
	p := newTab(t, browser, srv, "refresh")
	p.signUp("shift", "ray")
	p.submitSignUp()
	srv.clock.Advance(2 * time.Minute) // the access token has expired
	p.do("open admin", chromedp.Click(chromedp.CSS(`#nav a[data-view="admin"]`)), chromedp.WaitVisible(chromedp.CSS("#view-admin")))
	p.waitFor("every panel loaded", `document.getElementById("verify-status").textContent === "intact" && document.getElementById("retention-days").textContent !== "–" &&
		document.getElementById("checkpoint").textContent !== "–" && document.querySelectorAll("#audit-rows tr").length > 0`)
	if evaluate[bool](p, `document.getElementById("nav").hidden || document.getElementById("admin-error").textContent !== ""`) {
		t.Errorf("the console did not load on a refreshed token: %q", p.text("#admin-error"))
	}
	logs := srv.logs.String()
	if n := strings.Count(logs, `"route":"POST /v1/auth/refresh"`); n != 1 {
		t.Errorf("%d refreshes for one expired token, want 1", n)
	}
	if !strings.Contains(logs, `"route":"POST /v1/auth/refresh","status":200`) {
		t.Error("the refresh failed")
	}
	p.clean()
}

// refreshRace drives api.js against a stub fetch. Requests A and C carry
// an expired token; A's 401 starts the refresh; C's 401 is answered in the
// same turn as the refresh, a few microtasks later (delay), which is the
// window between the refresh finishing and its tokens being kept. It
// answers how many times the old refresh token was sent, and the token C
// retried with.
const refreshRace = `(async (delay) => {
	const api = await import("/ui/api.js");
	const realFetch = window.fetch;
	let rotations = 0, retriedWith = "";
	let answerRefresh, answerC;
	const json = (status, body) => ({ ok: status < 300, status, statusText: "", json: async () => body });
	window.fetch = (path, init) => {
		const auth = (init.headers && init.headers.Authorization) || "";
		if (path === "/v1/auth/refresh") {
			if (JSON.parse(init.body).refresh_token !== "r1") return Promise.resolve(json(401, { error: "invalid_token" }));
			rotations++;
			if (rotations > 1) return Promise.resolve(json(401, { error: "invalid_token" }));
			return new Promise((ok) => { answerRefresh = () => ok(json(200, { access_token: "a2", refresh_token: "r2" })); });
		}
		if (auth === "Bearer a1" && path === "/c") return new Promise((ok) => { answerC = () => ok(json(401, { error: "invalid_token" })); });
		if (auth === "Bearer a1") return Promise.resolve(json(401, { error: "invalid_token" }));
		if (path === "/c") retriedWith = auth;
		return Promise.resolve(json(200, {}));
	};
	try {
		api.clearTokens();
		api.setTokens({ access_token: "a1", refresh_token: "r1" });
		const a = api.call("GET", "/a").catch(() => {});
		const c = api.call("GET", "/c").catch(() => {});
		while (!answerRefresh || !answerC) await new Promise((r) => setTimeout(r, 1));
		answerRefresh();
		for (let i = 0; i < delay; i++) await Promise.resolve();
		answerC();
		await Promise.all([a, c]);
		return rotations + " " + retriedWith;
	} finally {
		window.fetch = realFetch;
		api.clearTokens();
	}
})`

// testRefreshRace: whenever a request's 401 lands after the shared
// refresh, it retries with the new token and never rotates the old
// refresh token a second time (which the server takes for theft).
func testRefreshRace(t *testing.T, browser context.Context) {
	srv := newServer(t, serverOptions{})
	p := newTab(t, browser, srv, "race")
	p.do("open the page", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#view-signin")))
	for delay := range 12 {
		got, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](fmt.Sprintf("%s(%d)", refreshRace, delay), chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("delay %d: %v", delay, err)
		}
		if got != "1 Bearer a2" {
			t.Errorf("C answered %d microtasks after the refresh: rotations and retry = %q, want \"1 Bearer a2\"", delay, got)
		}
	}
}
