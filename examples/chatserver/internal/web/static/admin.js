// The admin console: the audit log with filters and cursor paging, the
// chain's verification and latest checkpoint, retention, legal holds,
// locked accounts and emergency grants. Every value from the API is set
// as text.

import { call } from "./api.js";
import { $, el, setText, time, short, busy } from "./dom.js";

let cursors = [""]; // cursors[i] opens page i of the current search
let page = 0;
let filters = {};

/** reset clears the console's panels and forms (at sign-out). */
export function reset() {
  for (const id of ["audit-rows", "holds", "locked", "grants", "retention-channels"]) $(id).replaceChildren();
  for (const id of ["verify-checked", "verify-head", "checkpoint", "retention-days", "retention-minimum", "retention-version"]) setText(id, "–");
  setText("verify-status", "not checked");
  $("verify-status").className = "";
  setText("audit-page", "");
  setText("admin-error", "");
  for (const id of ["audit-filter", "retention-form", "hold-form"]) $(id).reset();
  cursors = [""];
  page = 0;
  filters = {};
}

/** open loads every panel. */
export async function open() {
  setText("admin-error", "");
  await Promise.all([loadVerify(), loadCheckpoint(), loadRetention(), loadHolds(), loadLocked(), loadGrants(), search()]);
}

function failed(e) {
  if (e.code === "forbidden") setText("admin-error", "The admin console needs the owner or an admin of this app.");
  else if (e.code !== "signed_out") setText("admin-error", e.message);
}

async function get(path) {
  try {
    return await call("GET", path);
  } catch (e) {
    failed(e);
    return null;
  }
}

async function loadVerify() {
  setText("verify-status", "checking…");
  const v = await get("/v1/admin/audit/verify");
  const s = $("verify-status");
  if (!v) {
    s.textContent = "unknown";
    s.className = "";
    return;
  }
  s.textContent = v.ok ? "intact" : "BROKEN at entry " + v.failure.seq + " (" + v.failure.kind + ")";
  s.className = v.ok ? "good" : "bad";
  setText("verify-checked", String(v.checked));
  setText("verify-head", "entry " + v.head_seq);
}

async function loadCheckpoint() {
  const r = await get("/v1/admin/audit/checkpoint");
  if (!r) return;
  const c = r.checkpoint;
  const dd = $("checkpoint");
  if (!c) {
    dd.textContent = "none yet";
    return;
  }
  dd.replaceChildren("entry " + c.seq + ", " + time(c.time) + " UTC, ", el("code", { text: c.head.slice(0, 16) + "…", title: c.head }), c.kind === "head" ? "" : " (" + c.kind + ")");
}

async function loadRetention() {
  const r = await get("/v1/admin/retention");
  if (!r) return;
  setText("retention-days", r.days + " days");
  setText("retention-minimum", r.minimum_days ? r.minimum_days + " days" : "none");
  setText("retention-version", r.version ? String(r.version) : "default");
  $("retention-channels").replaceChildren(...Object.entries(r.channels || {}).map(([ch, d]) => el("li", {}, "Channel ", el("code", { text: short(ch), title: ch }), ": " + d + " days")));
}

async function loadHolds() {
  const r = await get("/v1/admin/holds");
  if (!r) return;
  $("holds").replaceChildren(
    ...r.holds.map((h) =>
      el(
        "tr",
        {},
        el("td", { text: h.scope === "tenant" ? "whole app" : h.scope + " " + short(h.scope_id), title: h.scope_id || "" }),
        el("td", { text: h.reason }),
        el("td", { text: short(h.author), title: h.author }),
        el("td", { text: time(h.created_at) }),
        el("td", {}, el("button", { type: "button", class: "secondary small", onclick: () => release(h.id) }, "Release")),
      ),
    ),
  );
  $("holds-empty").hidden = r.holds.length > 0;
}

async function release(id) {
  try {
    await call("DELETE", "/v1/admin/holds/" + encodeURIComponent(id));
  } catch (e) {
    failed(e);
  }
  await Promise.all([loadHolds(), search()]);
}

async function loadLocked() {
  const r = await get("/v1/admin/locked");
  if (!r) return;
  $("locked").replaceChildren(
    ...r.locked.map((l) => {
      const reason = el("input", { placeholder: "reason", "aria-label": "Reason to unlock " + (l.username || l.account) });
      const unlock = el("button", { type: "button", class: "secondary small" }, "Unlock");
      unlock.addEventListener("click", async () => {
        if (!reason.value.trim()) {
          reason.focus();
          return;
        }
        try {
          await call("POST", "/v1/admin/users/" + encodeURIComponent(l.user_id) + "/unlock", { reason: reason.value.trim() });
        } catch (e) {
          failed(e);
        }
        await Promise.all([loadLocked(), search()]);
      });
      return el(
        "tr",
        { "data-user": l.user_id || "" },
        el("td", { text: l.username || l.account }),
        el("td", { text: l.factor }),
        el("td", { text: l.hard ? "until an admin unlocks it" : time(l.until) }),
        el("td", { class: "actions" }, l.user_id ? reason : null, l.user_id ? unlock : el("span", { class: "muted", text: "no such user" })),
      );
    }),
  );
  $("locked-empty").hidden = r.locked.length > 0;
}

async function loadGrants() {
  const r = await get("/v1/admin/break-glass");
  if (!r) return;
  $("grants").replaceChildren(...r.grants.map((g) => el("tr", {}, el("td", { text: short(g.user_id), title: g.user_id }), el("td", { text: g.reason }), el("td", { text: time(g.expires_at) }))));
  $("grants-empty").hidden = r.grants.length > 0;
}

function readFilters() {
  const f = {};
  for (const [name, id] of [["actor", "audit-actor"], ["type", "audit-type"], ["resource_type", "audit-resource-type"], ["resource_id", "audit-resource-id"]]) {
    const v = $(id).value.trim();
    if (v) f[name] = v;
  }
  for (const [name, id] of [["since", "audit-since"], ["until", "audit-until"]]) {
    const v = $(id).value;
    if (v) f[name] = new Date(v).toISOString();
  }
  f.limit = $("audit-limit").value;
  return f;
}

// searches counts the audit searches, so that only the answer of the
// latest one is shown when an earlier one answers after it.
let searches = 0;

async function search() {
  const mine = ++searches;
  const q = new URLSearchParams(filters);
  if (cursors[page]) q.set("cursor", cursors[page]);
  const r = await get("/v1/admin/audit?" + q.toString());
  if (!r || mine !== searches) return;
  $("audit-rows").replaceChildren(...r.events.map(row));
  if (r.events.length === 0) $("audit-rows").append(el("tr", {}, el("td", { colspan: "7", class: "muted", text: "No entries match." })));
  cursors.length = page + 1;
  if (r.next_cursor) cursors.push(r.next_cursor);
  $("audit-next").disabled = !r.next_cursor;
  $("audit-first").disabled = page === 0;
  setText("audit-page", "Page " + (page + 1));
}

function row(e) {
  const details = [];
  if (e.ip) details.push("ip " + e.ip);
  for (const [k, v] of Object.entries(e.metadata || {})) details.push(k + "=" + v);
  return el(
    "tr",
    { class: e.success ? "" : "failure" },
    el("td", { text: String(e.seq) }),
    el("td", { text: time(e.time) }),
    el("td", { text: e.type }),
    el("td", { text: short(e.actor), title: e.actor || "" }),
    el("td", { text: e.resource_type ? e.resource_type + (e.resource_id ? " " + short(e.resource_id) : "") : "", title: e.resource_id || "" }),
    el("td", { class: e.success ? "good" : "bad", text: e.success ? "ok" : "failed" + (e.failure_reason ? ": " + e.failure_reason : "") }),
    el("td", { class: "details", text: details.join(", ") }),
  );
}

$("audit-filter").addEventListener("submit", (ev) => {
  ev.preventDefault();
  filters = readFilters();
  cursors = [""];
  page = 0;
  busy(ev.currentTarget, search);
});

$("audit-next").addEventListener("click", () => {
  if (cursors[page + 1] === undefined) return;
  page++;
  search();
});

$("audit-first").addEventListener("click", () => {
  page = 0;
  search();
});

$("verify-run").addEventListener("click", () => Promise.all([loadVerify(), loadCheckpoint()]));

$("retention-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  busy(ev.currentTarget, async () => {
    const days = Number($("retention-input").value);
    try {
      const r = await call("PUT", "/v1/admin/retention", { days });
      setText("admin-error", "");
      $("retention-input").value = "";
      if (r.effective_at) setText("retention-version", "new version " + r.version + " applies from " + time(r.effective_at) + " UTC");
      else await loadRetention();
    } catch (e) {
      failed(e);
    }
  });
});

$("hold-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  busy(ev.currentTarget, async () => {
    try {
      await call("POST", "/v1/admin/holds", { scope: $("hold-scope").value, id: $("hold-id").value.trim(), reason: $("hold-reason").value.trim() });
      $("hold-id").value = "";
      $("hold-reason").value = "";
      await Promise.all([loadHolds(), search()]);
    } catch (e) {
      failed(e);
    }
  });
});
