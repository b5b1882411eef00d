// Sources: citation chips (with one floating tooltip), the sources row under an answer, and
// opening a cited document at its page (fetched with the bearer token, shown from a blob URL).

import { api, saveBlob } from "./api.js";
import { el, toast } from "./ui.js";

// Types the page may open from a blob URL in our own origin. Anything else (HTML, SVG, scripts)
// could run in this origin, so it is shown as text or downloaded instead.
const SAFE_INLINE_TYPES = /^(application\/pdf|image\/(png|jpe?g|gif|webp|bmp)|text\/plain)$/;
const TEXTUAL_TYPES = /^(text\/|application\/(json|xml|x-yaml|yaml|toml|x-sh))/;

function locationOf(c) {
  const parts = [];
  if (c.page) parts.push(`page ${c.page}`);
  if (c.section) parts.push(c.section);
  if (!c.page && c.line_start) parts.push(`lines ${c.line_start}–${c.line_end ?? c.line_start}`);
  return parts.join(" · ");
}

function sourceTitle(c) {
  return c.title || c.file || "Untitled document";
}

/** Fetch a source with the bearer and open it in a new tab at `#page=N`. */
export async function openSource(c) {
  if (!c || !c.document_id) { toast("This source has no document to open."); return; }
  // Open the tab inside the click (popup blockers allow that), then point it at the file.
  const tab = window.open("", "_blank");
  if (tab) {
    try { tab.document.title = `Opening ${sourceTitle(c)}…`; } catch { /* not ours yet */ }
  }
  try {
    const { blob, filename } = await api.blob(`/knowledge/documents/${encodeURIComponent(c.document_id)}/file`);
    let type = (blob.type || "").split(";")[0].trim().toLowerCase();
    let data = blob;
    if (!SAFE_INLINE_TYPES.test(type)) {
      if (TEXTUAL_TYPES.test(type) || /\.(md|txt|log|rst|csv|json|ya?ml|toml|py|js|ts|go|rs|java|sql|sh)$/i.test(c.file || "")) {
        type = "text/plain";
        data = new Blob([blob], { type: "text/plain;charset=utf-8" });
      } else {
        tab?.close();
        saveBlob(blob, filename || c.file || "document");
        return;
      }
    } else if (type !== blob.type) {
      data = new Blob([blob], { type });
    }
    const url = URL.createObjectURL(data);
    const target = c.page && type === "application/pdf" ? `${url}#page=${c.page}` : url;
    if (tab && !tab.closed) tab.location.href = target;
    else window.open(target, "_blank");
    // The tab keeps its own copy once loaded; free ours later.
    window.setTimeout(() => URL.revokeObjectURL(url), 5 * 60_000);
  } catch (err) {
    tab?.close();
    if (err.routeMissing) toast("Opening source files isn't available on this server yet.", { kind: "error" });
    else if (err.status === 404) toast("That document is no longer in the knowledge base.", { kind: "error" });
    else toast(`Could not open the source: ${err.message}`, { kind: "error" });
  }
}

// One floating tooltip for all chips: fixed-positioned, so the scrolling conversation never clips it.
let tip = null;

function showTip(anchor, c) {
  if (!tip) {
    tip = el("div", { id: "cite-tip", class: "cite-tip", role: "tooltip", hidden: true });
    document.body.append(tip);
  }
  const loc = locationOf(c);
  tip.replaceChildren(
    el("span", { class: "cite-tip-title", text: sourceTitle(c) }),
    loc ? el("span", { class: "cite-tip-loc", text: loc }) : "",
    c.snippet ? el("span", { class: "cite-tip-snippet", text: c.snippet.length > 220 ? `${c.snippet.slice(0, 220)}…` : c.snippet }) : "",
    el("span", { class: "cite-tip-hint", text: "Click to open the source" }));
  tip.hidden = false;
  const a = anchor.getBoundingClientRect();
  const t = tip.getBoundingClientRect();
  let top = a.top - t.height - 8;
  if (top < 8) top = a.bottom + 8;
  const left = Math.min(Math.max(8, a.left + a.width / 2 - t.width / 2), window.innerWidth - t.width - 8);
  tip.style.top = `${Math.round(top)}px`; // CSSOM, allowed by the CSP
  tip.style.left = `${Math.round(left)}px`;
  anchor.setAttribute("aria-describedby", "cite-tip");
}

function hideTip(anchor) {
  if (tip) tip.hidden = true;
  anchor.removeAttribute("aria-describedby");
}

export function citationChip(c) {
  const loc = locationOf(c);
  const title = sourceTitle(c);
  const chip = el("button", {
    type: "button",
    class: "cite",
    "aria-label": `Source ${c.n}: ${title}${loc ? `, ${loc}` : ""}`,
    dataset: { n: String(c.n) },
    onclick: () => openSource(c),
  }, el("span", { class: "cite-n", text: String(c.n) }));
  chip.addEventListener("mouseenter", () => showTip(chip, c));
  chip.addEventListener("focus", () => showTip(chip, c));
  chip.addEventListener("mouseleave", () => hideTip(chip));
  chip.addEventListener("blur", () => hideTip(chip));
  return chip;
}

export function pendingChip(n) {
  return el("span", { class: "cite pending", "aria-label": `source ${n}` }, el("span", { class: "cite-n", text: String(n) }));
}

export function sourcesList(citations) {
  if (!citations || !citations.length) return null;
  return el("div", { class: "sources" },
    el("span", { class: "sources-label", text: "Sources" }),
    el("ol", { class: "sources-list" }, citations.map((c) => el("li", {},
      el("button", { type: "button", class: "source", onclick: () => openSource(c), title: c.file || "" },
        el("span", { class: "source-n", text: String(c.n) }),
        el("span", { class: "source-title", text: sourceTitle(c) }),
        locationOf(c) ? el("span", { class: "source-loc", text: locationOf(c) }) : null)))));
}
