// Helpers that build the page's elements. Text from the API only ever
// becomes a text node or textContent: nothing here parses HTML.

/** $ returns the element with this id. */
export const $ = (id) => document.getElementById(id);

/**
 * el makes an element. props sets attributes by name ("class", "text" for
 * textContent, "on<event>" for listeners); string children become text
 * nodes.
 */
export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = String(v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return e;
}

/** setText sets the text of the element with this id. */
export function setText(id, text) {
  $(id).textContent = text;
}

/** time formats an RFC 3339 time as "YYYY-MM-DD HH:MM:SS" in UTC. */
export function time(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toISOString().slice(0, 19).replace("T", " ");
}

/** short shortens a long identifier for display. */
export function short(id) {
  const s = String(id || "");
  return s.length > 12 ? s.slice(0, 8) + "…" : s;
}

/** busy disables a form's buttons while fn runs. */
export async function busy(form, fn) {
  const buttons = form.querySelectorAll("button");
  buttons.forEach((b) => (b.disabled = true));
  try {
    return await fn();
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}
