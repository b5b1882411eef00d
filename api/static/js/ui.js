// DOM helpers. Every string goes in as text (textContent / attributes), never as HTML:
// answers, documents and chat titles are untrusted, and the CSP forbids inline script anyway.

const SVG_NS = "http://www.w3.org/2000/svg";

/** el("button", {class: "x", onclick: fn, "aria-label": "…"}, child, "text", …) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "hidden") node.hidden = Boolean(value);
    else if (key === "disabled") node.disabled = Boolean(value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// 24×24 stroke icons (paths drawn for this app). Built with createElementNS: no markup strings.
const ICONS = {
  plus: ["M12 5v14", "M5 12h14"],
  send: ["M5 12h13", "M13 6l6 6-6 6"],
  stop: ["M7 7h10v10H7z"],
  mic: ["M12 3a3 3 0 0 0-3 3v6a3 3 0 0 0 6 0V6a3 3 0 0 0-3-3z", "M5 11a7 7 0 0 0 14 0", "M12 18v3"],
  clip: ["M20 11.5l-8 8a5 5 0 0 1-7-7l8.5-8.5a3.5 3.5 0 0 1 5 5L10 17.5a2 2 0 0 1-3-3l7.5-7.5"],
  copy: ["M9 9h10v11H9z", "M5 15V4h10"],
  check: ["M5 12l5 5 9-10"],
  up: ["M7 11v9H4v-9z", "M7 11l4-7a2 2 0 0 1 3 2l-1 4h5a2 2 0 0 1 2 2.3l-1.2 6A2 2 0 0 1 16.8 20H7"],
  down: ["M7 13V4H4v9z", "M7 13l4 7a2 2 0 0 0 3-2l-1-4h5a2 2 0 0 0 2-2.3l-1.2-6A2 2 0 0 0 16.8 4H7"],
  more: ["M5 12h.01", "M12 12h.01", "M19 12h.01"],
  menu: ["M4 7h16", "M4 12h16", "M4 17h16"],
  close: ["M6 6l12 12", "M18 6L6 18"],
  search: ["M11 4a7 7 0 1 0 0 14 7 7 0 0 0 0-14z", "M20 20l-4-4"],
  file: ["M6 3h8l4 4v14H6z", "M14 3v4h4"],
  play: ["M8 5l11 7-11 7z"],
  external: ["M14 4h6v6", "M20 4l-9 9", "M18 14v6H4V6h6"],
};

export function icon(name, cls = "icon") {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", cls);
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  for (const d of ICONS[name] || []) {
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

/** Replace the icon inside a static button (index.html holds `<span data-icon="…">`). */
export function hydrateIcons(root = document) {
  for (const slot of root.querySelectorAll("[data-icon]")) {
    slot.replaceChildren(icon(slot.dataset.icon));
  }
}

// --- announcements and toasts --------------------------------------------------------------

export function announce(text) {
  const live = document.getElementById("live");
  if (!live) return;
  // Clearing first makes screen readers repeat an identical message.
  live.textContent = "";
  window.setTimeout(() => { live.textContent = text; }, 30);
}

export function toast(message, { kind = "info", timeout = 6000 } = {}) {
  const box = document.getElementById("toasts");
  if (!box) return;
  const item = el("div", { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status" },
    el("span", { class: "toast-text", text: message }),
    el("button", { class: "icon-btn toast-close", type: "button", "aria-label": "Dismiss", onclick: () => item.remove() },
      icon("close")));
  box.append(item);
  if (timeout) window.setTimeout(() => item.remove(), timeout);
}

// --- dialogs (one <dialog id="dialog"> in the page) ------------------------------------------

function openDialog(build) {
  const dialog = document.getElementById("dialog");
  return new Promise((resolve) => {
    const form = el("form", { method: "dialog", class: "dialog-form" });
    const onCancel = () => resolve(null);  // Esc
    const done = (value) => {
      dialog.removeEventListener("cancel", onCancel);
      dialog.close();
      resolve(value);
    };
    build(form, done);
    dialog.replaceChildren(form);
    dialog.addEventListener("cancel", onCancel, { once: true });
    dialog.showModal();
    const first = form.querySelector("[autofocus], input, textarea, button.primary");
    if (first) first.focus();
  });
}

export function confirmDialog({ title, message, confirmLabel = "OK", danger = false }) {
  return openDialog((form, done) => {
    form.append(
      el("h2", { class: "dialog-title", text: title }),
      el("p", { class: "dialog-text", text: message }),
      el("div", { class: "dialog-actions" },
        el("button", { type: "button", class: "btn", text: "Cancel", onclick: () => done(false) }),
        el("button", { type: "submit", class: danger ? "btn danger primary" : "btn primary", text: confirmLabel })),
    );
    form.addEventListener("submit", (ev) => { ev.preventDefault(); done(true); });
  });
}

export function promptDialog({ title, label, value = "", confirmLabel = "Save", multiline = false, maxLength = 200 }) {
  return openDialog((form, done) => {
    const id = `dlg-${Math.random().toString(36).slice(2)}`;
    const input = multiline
      ? el("textarea", { id, class: "input", rows: 3, maxlength: maxLength })
      : el("input", { id, class: "input", type: "text", maxlength: maxLength, autocomplete: "off" });
    input.value = value;
    form.append(
      el("h2", { class: "dialog-title", text: title }),
      el("label", { for: id, class: "field-label", text: label }),
      input,
      el("div", { class: "dialog-actions" },
        el("button", { type: "button", class: "btn", text: "Cancel", onclick: () => done(null) }),
        el("button", { type: "submit", class: "btn primary", text: confirmLabel })),
    );
    form.addEventListener("submit", (ev) => { ev.preventDefault(); done(input.value); });
    window.setTimeout(() => { input.focus(); input.select?.(); }, 0);
  });
}

// --- formatting ---------------------------------------------------------------------------------

const RELATIVE = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

export function relativeTime(iso) {
  if (!iso) return "";
  const then = new Date(iso);
  const seconds = (then.getTime() - Date.now()) / 1000;
  const abs = Math.abs(seconds);
  if (abs < 60) return "just now";
  if (abs < 3600) return RELATIVE.format(Math.round(seconds / 60), "minute");
  if (abs < 86400) return RELATIVE.format(Math.round(seconds / 3600), "hour");
  if (abs < 7 * 86400) return RELATIVE.format(Math.round(seconds / 86400), "day");
  return then.toLocaleDateString();
}

export function formatBytes(n) {
  if (!Number.isFinite(n)) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} kB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** Copy text; navigator.clipboard needs a secure context, so fall back to a hidden textarea. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = el("textarea", { class: "offscreen", "aria-hidden": "true" });
    area.value = text;
    document.body.append(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch { ok = false; }
    area.remove();
    return ok;
  }
}

export function debounce(fn, ms) {
  let timer = 0;
  return (...args) => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => fn(...args), ms);
  };
}
