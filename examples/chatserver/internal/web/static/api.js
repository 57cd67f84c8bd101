// The HTTP API client of the pages. The tokens live in this module's
// variables and nowhere else: not in localStorage, sessionStorage or a
// cookie, so no other script or later page load can read them. A reload
// forgets them (the user signs in again).

let accessToken = "";
let refreshToken = "";
let refreshing = null;
let ended = () => {};
let idleMs = 0;
let idleAt = 0;
let idleTimer = 0;

/** APIError is an error answer of the API: its status, code and message. */
export class APIError extends Error {
  constructor(status, code, message, violations) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.violations = violations || [];
  }
}

/** setTokens keeps the tokens of a login, refresh or step-up answer. */
export function setTokens(t) {
  if (t.access_token) accessToken = t.access_token;
  if (t.refresh_token) refreshToken = t.refresh_token;
  active();
}

/** clearTokens forgets both tokens. */
export function clearTokens() {
  accessToken = "";
  refreshToken = "";
  clearTimeout(idleTimer);
}

/**
 * setIdleTimeout sets the server's idle timeout in seconds. When it is
 * positive the page does not wait for its next request to learn that the
 * session is over: that long after its last request, when the server
 * ends the session too, it calls the onSessionEnded function with "idle",
 * so an unattended screen stops showing what it showed.
 */
export function setIdleTimeout(seconds) {
  idleMs = seconds > 0 ? seconds * 1000 : 0;
}

// active restarts the idle timer: the server counts a session's idle time
// from its last request, so the page does too.
function active() {
  clearTimeout(idleTimer);
  if (!idleMs || !accessToken) return;
  idleAt = Date.now() + idleMs;
  idleTimer = setTimeout(checkIdle, idleMs);
}

// checkIdle ends the session when its idle time is up. It also runs when
// the tab becomes visible, as a hidden tab's timers may fire late.
function checkIdle() {
  if (idleMs && accessToken && Date.now() >= idleAt) endSession("session_idle");
}

document.addEventListener("visibilitychange", checkIdle);

/** signedIn reports whether the page holds an access token. */
export function signedIn() {
  return accessToken !== "";
}

/**
 * onSessionEnded sets the function called, with "idle" or "expired", when
 * the server ends the session (idle logoff, expiry, revocation).
 */
export function onSessionEnded(fn) {
  ended = fn;
}

/**
 * subject is the user id in the access token. For display only: the
 * server decides what the token allows.
 */
export function subject() {
  try {
    const part = accessToken.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part)).sub || "";
  } catch {
    return "";
  }
}

async function send(method, path, body, token) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) {
    headers.Authorization = "Bearer " + token;
    active();
  }
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
    redirect: "error",
  });
  let data = null;
  if (res.status !== 204) {
    try {
      data = await res.json();
    } catch {
      data = null;
    }
  }
  return { res, data };
}

function failure(res, data) {
  return new APIError(res.status, (data && data.error) || "http_" + res.status, (data && data.message) || res.statusText, data && data.violations);
}

/** publicCall calls a route that takes no token (sign-up, login). */
export async function publicCall(method, path, body) {
  const { res, data } = await send(method, path, body, "");
  if (!res.ok) throw failure(res, data);
  return data;
}

// refreshOnce rotates the refresh token, once for all the requests that
// found the access token expired at the same time: two rotations of one
// refresh token would look like a stolen token and end the session. It
// keeps the new tokens before it lets another refresh start, so that a
// request whose 401 arrives just after this one ends sees them and
// retries instead of rotating the old refresh token again.
function refreshOnce() {
  if (!refreshing) {
    refreshing = send("POST", "/v1/auth/refresh", { refresh_token: refreshToken })
      .then((r) => {
        if (r.res.ok && r.data) setTokens(r.data);
        return r;
      })
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}

function endSession(code) {
  clearTokens();
  ended(code === "session_idle" ? "idle" : "expired");
}

/**
 * call calls a route with the access token, refreshing it once when it
 * has expired. When the session is over it calls the onSessionEnded
 * function and throws.
 */
export async function call(method, path, body) {
  if (!accessToken) throw new APIError(401, "signed_out", "You are signed out.");
  let used = accessToken;
  let { res, data } = await send(method, path, body, used);
  if (res.status === 401 && data && data.error === "invalid_token" && refreshToken) {
    if (accessToken === used) {
      const r = await refreshOnce();
      if (!(r.res.ok && r.data) && accessToken === used) {
        endSession(r.data && r.data.error);
        throw failure(r.res, r.data);
      }
    }
    if (!accessToken) throw new APIError(401, "signed_out", "You are signed out.");
    used = accessToken;
    ({ res, data } = await send(method, path, body, used));
  }
  if (res.status === 401 && data && (data.error === "session_idle" || data.error === "invalid_token")) {
    if (accessToken === used) endSession(data.error);
    throw failure(res, data);
  }
  if (!res.ok) throw failure(res, data);
  return data;
}

/**
 * logoutOnUnload revokes the session when the page goes away: its tokens
 * die with the page, so the session need not outlive it.
 */
export function logoutOnUnload() {
  // TODO: when the access token has expired this logout is refused (the
  // route takes no refresh token and an unloading page cannot wait for a
  // refresh), and the session, its tokens forgotten, lives on until the
  // server's idle logoff.
  if (!accessToken) return;
  fetch("/v1/auth/logout", { method: "POST", keepalive: true, credentials: "omit", headers: { Authorization: "Bearer " + accessToken } }).catch(() => {});
  clearTokens();
}
