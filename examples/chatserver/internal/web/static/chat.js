// The chat view: channels opened in this tab, their messages, the
// composer. Message text is shown with textContent only.
//
// The view reads messages when a channel opens, after a send and on
// Reload; it does not poll, so an unattended tab stays idle and the
// server's automatic logoff can end its session.

import { call } from "./api.js";
import { $, el, setText, time, short, busy } from "./dom.js";

const channels = new Map(); // id -> label
let current = "";
let me = { id: "" };
let enrolmentRequired = () => {};

/** onEnrolmentRequired sets what to do when the server insists on MFA. */
export function onEnrolmentRequired(fn) {
  enrolmentRequired = fn;
}

/** reset forgets the channels and messages (at sign-out). */
export function reset() {
  channels.clear();
  current = "";
  $("messages").replaceChildren();
  $("channel-list").replaceChildren();
  setText("channel-title", "Pick or create a channel");
  setText("channel-id-shown", "");
  setText("chat-error", "");
  for (const id of ["channel-create", "channel-open", "message-form", "member-form"]) $(id).reset();
  if ($("my-id")) $("my-id").remove();
  enable(false);
}

/** open shows the view for the signed-in user. */
export function open(who) {
  me = who;
  renderChannels();
  setText("chat-error", "");
  if (!$("my-id")) {
    $("channel-empty").after(el("p", { class: "hint", id: "my-id" }));
  }
  $("my-id").replaceChildren("Your user id: ", el("code", { text: me.id }));
}

function enable(on) {
  for (const id of ["message-text", "message-send", "messages-reload", "member-id", "member-add"]) $(id).disabled = !on;
}

function failed(e) {
  if (e.code === "mfa_enrolment_required") {
    enrolmentRequired();
    return;
  }
  const words = {
    forbidden: "You are not a member of this channel.",
    not_found: "There is no such channel.",
    mfa_required: "Sign in again with your one-time code.",
  };
  setText("chat-error", words[e.code] || e.message);
}

function renderChannels() {
  const list = $("channel-list");
  list.replaceChildren(
    ...[...channels].map(([id, label]) =>
      el("li", {}, el("button", { type: "button", class: id === current ? "channel active" : "channel", "data-id": id, onclick: () => select(id) }, label)),
    ),
  );
  $("channel-empty").hidden = channels.size > 0;
}

async function select(id) {
  current = id;
  renderChannels();
  setText("channel-title", channels.get(id));
  setText("channel-id-shown", id);
  setText("chat-error", "");
  enable(true);
  await load();
}

// loads counts the reads of messages: only the latest one's answer shows.
let loads = 0;

async function load() {
  if (!current) return;
  const mine = ++loads;
  try {
    const r = await call("GET", "/v1/channels/" + encodeURIComponent(current) + "/messages");
    if (mine === loads) render(r.messages || []);
  } catch (e) {
    if (mine !== loads) return;
    $("messages").replaceChildren();
    failed(e);
  }
}

function render(messages) {
  const list = $("messages");
  if (messages.length === 0) {
    list.replaceChildren(el("li", { class: "empty", text: "No messages yet." }));
    return;
  }
  list.replaceChildren(
    ...messages.map((m) => {
      const mine = m.user_id === me.id;
      const head = el("div", { class: "meta" }, el("span", { class: "author", text: mine ? "You" : "User " + short(m.user_id), title: m.user_id }), el("time", { datetime: m.created_at, text: time(m.created_at) + " UTC" }));
      const body =
        m.integrity === "ok"
          ? el("p", { class: "text", text: m.text })
          : el("p", { class: "text failed", text: "This message failed its integrity check and is not shown. The failure is in the audit log." });
      return el("li", { class: mine ? "message mine" : "message", "data-id": m.id }, head, body);
    }),
  );
  list.scrollTop = list.scrollHeight;
}

$("channel-create").addEventListener("submit", (ev) => {
  ev.preventDefault();
  busy(ev.currentTarget, async () => {
    const name = $("channel-name").value.trim();
    if (!name) return;
    try {
      const c = await call("POST", "/v1/channels", { name });
      channels.set(c.id, name);
      $("channel-name").value = "";
      await select(c.id);
    } catch (e) {
      failed(e);
    }
  });
});

$("channel-open").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const id = $("channel-id").value.trim();
  if (!id) return;
  if (!channels.has(id)) channels.set(id, "Channel " + short(id));
  $("channel-id").value = "";
  select(id);
});

$("message-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  busy(ev.currentTarget, async () => {
    const text = $("message-text").value;
    if (!text.trim() || !current) return;
    try {
      await call("POST", "/v1/channels/" + encodeURIComponent(current) + "/messages", { text });
      $("message-text").value = "";
      await load();
    } catch (e) {
      failed(e);
    }
  });
});

$("message-text").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey) {
    ev.preventDefault();
    $("message-form").requestSubmit();
  }
});

$("messages-reload").addEventListener("click", () => load());

$("member-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  busy(ev.currentTarget, async () => {
    const user = $("member-id").value.trim();
    if (!user || !current) return;
    try {
      await call("POST", "/v1/channels/" + encodeURIComponent(current) + "/members", { user_id: user });
      $("member-id").value = "";
      setText("chat-error", "");
    } catch (e) {
      failed(e);
    }
  });
});
