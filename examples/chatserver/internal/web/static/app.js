// The pages' entry point: a router over the views of index.html, sign-up,
// sign-in with its TOTP step, TOTP enrolment and logout.

import { call, publicCall, setTokens, clearTokens, signedIn, onSessionEnded, setIdleTimeout, subject, logoutOnUnload } from "./api.js";
import { $, el, setText, busy } from "./dom.js";
import * as chat from "./chat.js";
import * as admin from "./admin.js";

const views = ["signin", "signup", "security", "chat", "admin"];
const needsSession = new Set(["security", "chat", "admin"]);
const titles = { signin: "Sign in", signup: "Sign up", security: "Two-step sign-in", chat: "Chat", admin: "Admin console" };

/** me is who is signed in, for display. */
const me = { app: "", username: "", id: "" };

let noticeView = "";

// notice shows a message above the view it belongs to; it goes away when
// the user moves to another view.
function notice(text, kind, view) {
  const n = $("notice");
  n.textContent = text || "";
  n.className = "notice" + (kind ? " " + kind : "");
  n.hidden = !text;
  noticeView = view || "";
}

function go(view) {
  if (location.hash === "#/" + view) route();
  else location.hash = "#/" + view;
}

function route() {
  let view = location.hash.replace(/^#\//, "");
  if (!views.includes(view)) view = signedIn() ? "chat" : "signin";
  if (needsSession.has(view) && !signedIn()) view = "signin";
  if (!needsSession.has(view) && signedIn()) view = "chat";
  if (noticeView && noticeView !== view) notice("");
  for (const v of views) $("view-" + v).hidden = v !== view;
  $("nav").hidden = !signedIn();
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.dataset.view === view);
  }
  document.title = titles[view] + " · Compliance Chat";
  if (view === "chat") chat.open(me);
  if (view === "admin") admin.open();
  if (view === "security") resetEnrol();
  if (view === "signin" || view === "signup") {
    const first = [...$("view-" + view).querySelectorAll("input")].find((i) => !i.value);
    if (first) first.focus();
  }
}

function signedInAs(app, username) {
  me.app = app;
  me.username = username;
  me.id = subject();
  setText("whoami", username + " · " + app);
}

// signOutLocally forgets the tokens and everything the session showed or
// was typed into it: messages, drafts, the console's panels, the TOTP key
// and the recovery codes. Only the app and user name stay, to sign in
// again.
function signOutLocally() {
  clearTokens();
  chat.reset();
  admin.reset();
  resetEnrol();
  $("enrol-form").reset();
  $("enrol-qr").removeAttribute("src");
  setText("totp-secret", "");
  $("recovery-codes").replaceChildren();
  $("signin-password").value = "";
  $("signin-otp").value = "";
  $("signin-otp-row").hidden = true;
  setText("whoami", "");
  me.id = "";
}

// Sign in: password first; the server answers mfa_required when the
// account has a second factor, and the form then asks for the code.
$("signin-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const form = ev.currentTarget;
  busy(form, async () => {
    const app = $("signin-app").value.trim();
    const username = $("signin-username").value;
    const body = { username, password: $("signin-password").value };
    const otp = $("signin-otp").value.trim();
    if (!$("signin-otp-row").hidden && otp) body.otp = otp;
    setText("signin-error", "");
    try {
      const t = await publicCall("POST", "/v1/apps/" + encodeURIComponent(app) + "/login", body);
      setTokens(t);
      $("signin-password").value = "";
      $("signin-otp").value = "";
      $("signin-otp-row").hidden = true;
      signedInAs(app, username);
      notice("");
      go("chat");
    } catch (e) {
      if (e.code === "mfa_required") {
        $("signin-otp-row").hidden = false;
        $("signin-otp").focus();
        if (otp) setText("signin-error", "Enter the code your app shows now.");
      } else if (e.code === "locked") {
        setText("signin-error", "Too many failed attempts. The account is locked for a while; an admin can unlock it.");
      } else if (e.code === "invalid_credentials") {
        setText("signin-error", body.otp ? "That code is not right. Try the next one." : "Wrong user name or password.");
      } else {
        setText("signin-error", e.message);
      }
    }
  });
});

$("signup-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const form = ev.currentTarget;
  busy(form, async () => {
    const app = $("signup-app").value.trim();
    const username = $("signup-username").value;
    const password = $("signup-password").value;
    setText("signup-error", "");
    try {
      const u = await publicCall("POST", "/v1/apps/" + encodeURIComponent(app) + "/users", { username, password });
      const t = await publicCall("POST", "/v1/apps/" + encodeURIComponent(app) + "/login", { username, password });
      setTokens(t);
      $("signup-password").value = "";
      signedInAs(app, username);
      notice(u.role === "owner" ? "Welcome. You are the owner of " + app + ": set up two-step sign-in now." : "Welcome. Set up two-step sign-in now.", "ok", "security");
      go("security");
    } catch (e) {
      if (e.code === "weak_password") {
        const words = { too_short: "at least 15 characters", too_long: "at most 128 characters", blocklisted: "not a common password", breached: "not a password seen in a breach", context_word: "not containing your name or the app's" };
        setText("signup-error", "Choose another password: " + e.violations.map((v) => words[v] || v).join("; ") + ".");
      } else if (e.code === "exists") {
        setText("signup-error", "That user name is taken in this app.");
      } else {
        setText("signup-error", e.message);
      }
    }
  });
});

// TOTP enrolment: the server makes the secret and its QR code (a data:
// URL, which the Content-Security-Policy admits as an image only).
function resetEnrol() {
  $("enrol-start").hidden = false;
  $("enrol-scan").hidden = true;
  $("enrol-done").hidden = true;
  setText("enrol-error", "");
}

$("enrol-begin").addEventListener("click", async () => {
  setText("enrol-error", "");
  try {
    const s = await call("POST", "/v1/mfa/totp");
    if (typeof s.qr_png === "string" && s.qr_png.startsWith("data:image/png;base64,")) $("enrol-qr").src = s.qr_png;
    setText("totp-secret", s.secret);
    $("enrol-start").hidden = true;
    $("enrol-scan").hidden = false;
    $("enrol-code").focus();
  } catch (e) {
    setText("enrol-error", e.code === "exists" ? "Two-step sign-in is on for this account already." : e.message);
  }
});

$("enrol-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  busy(ev.currentTarget, async () => {
    setText("enrol-error", "");
    try {
      const c = await call("POST", "/v1/mfa/totp/confirm", { code: $("enrol-code").value.trim() });
      setTokens(c);
      $("enrol-code").value = "";
      $("enrol-qr").removeAttribute("src");
      setText("totp-secret", "");
      $("recovery-codes").replaceChildren(...(c.recovery_codes || []).map((code) => el("li", { text: code })));
      $("enrol-scan").hidden = true;
      $("enrol-done").hidden = false;
      notice("");
    } catch (e) {
      setText("enrol-error", e.code === "invalid_code" ? "That code is not right. Check the phone's clock and try the next one." : e.message);
    }
  });
});

$("logout").addEventListener("click", async () => {
  try {
    await call("POST", "/v1/auth/logout");
  } catch {
    // The session is gone either way once the tokens are.
  }
  signOutLocally();
  notice("You have logged out.", "ok", "signin");
  go("signin");
});

onSessionEnded((why) => {
  signOutLocally();
  $("signin-app").value = me.app || $("signin-app").value;
  $("signin-username").value = me.username || "";
  notice(why === "idle" ? "You were logged off after a period without activity. Sign in again to continue." : "Your session has ended. Sign in again to continue.", "warn", "signin");
  go("signin");
});

// An account past its MFA grace period may do nothing but enrol.
chat.onEnrolmentRequired(() => {
  notice("This app requires two-step sign-in. Set it up to continue.", "warn", "security");
  go("security");
});

// Leaving the page ends its session: the server revokes it, and the page
// forgets what it showed, because the back button may bring this very
// page back from memory (the back/forward cache) rather than load it anew.
window.addEventListener("pagehide", () => {
  if (!signedIn()) return;
  logoutOnUnload();
  signOutLocally();
  notice("You were signed out when you left the page.", "ok", "signin");
  route();
});

window.addEventListener("hashchange", route);
setIdleTimeout(Number(document.querySelector('meta[name="idle-timeout"]').content) || 0);
route();
