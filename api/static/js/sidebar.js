// The chat list (newest first, "load more"), per-chat actions (rename, export, delete) and the
// search over all of the caller's chats.

import { api, saveBlob } from "./api.js";
import { confirmDialog, debounce, el, icon, promptDialog, relativeTime, toast } from "./ui.js";

const PAGE = 30;

const ENTITIES = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function decodeEntities(text) {
  return text.replace(/&(?:#(\d{1,7})|#x([0-9a-f]{1,6})|(amp|lt|gt|quot|apos));/gi, (whole, dec, hex, name) => {
    if (name) return ENTITIES[name.toLowerCase()];
    const code = dec ? parseInt(dec, 10) : parseInt(hex, 16);
    return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
  });
}

/**
 * Search snippets arrive HTML-escaped with <mark> tags. Trust nothing: split on the exact
 * <mark>/</mark> tags, decode the entities of everything else and insert it as text.
 */
export function snippetNodes(snippet) {
  const out = document.createDocumentFragment();
  let marked = false;
  for (const part of String(snippet ?? "").split(/(<mark>|<\/mark>)/i)) {
    if (/^<mark>$/i.test(part)) { marked = true; continue; }
    if (/^<\/mark>$/i.test(part)) { marked = false; continue; }
    if (!part) continue;
    const text = decodeEntities(part);
    out.append(marked ? el("mark", { text }) : document.createTextNode(text));
  }
  return out;
}

const chatIdOf = (c) => c.chat_id || c.id;

function slug(title) {
  return (title || "chat").toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 60) || "chat";
}

/** Events: "open" ({chatId, turnId?}), "renamed" ({chatId, title}), "deleted" ({chatId}). */
export class Sidebar extends EventTarget {
  constructor(els) {
    super();
    this.els = els; // {list, loadMore, search, results, resultsStatus, listStatus}
    this.chats = new Map();
    this.cursor = null;
    this.activeId = null;
    this.query = "";
    this.searchSeq = 0;
    this.openMenu = null;
    els.loadMore.addEventListener("click", () => this.loadMore());
    const run = debounce(() => this.search(els.search.value.trim()), 250);
    els.search.addEventListener("input", run);
    els.search.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape" && els.search.value) {
        ev.stopPropagation();
        els.search.value = "";
        this.search("");
      }
    });
    document.addEventListener("click", (ev) => {
      if (this.openMenu && !this.openMenu.contains(ev.target)) this.#closeMenu();
    });
  }

  async refresh() {
    this.cursor = null;
    await this.#load(true);
  }

  async loadMore() {
    if (!this.cursor) return;
    await this.#load(false);
  }

  async #load(first) {
    const params = new URLSearchParams({ limit: String(PAGE) });
    if (!first && this.cursor) params.set("cursor", this.cursor);
    this.els.loadMore.disabled = true;
    try {
      const page = await api.get(`/chat/history?${params}`);
      const items = page.items || [];
      if (first) this.#replaceFirstPage(items);
      else {
        for (const chat of items) {
          const id = chatIdOf(chat);
          if (this.chats.has(id)) continue;
          this.chats.set(id, chat);
          this.els.list.append(this.#item(chat));
        }
      }
      this.cursor = page.next_cursor || null;
      this.els.listStatus.hidden = this.chats.size > 0;
      this.els.listStatus.textContent = "No chats yet. Ask something to start one.";
    } catch (err) {
      this.cursor = null;
      this.els.listStatus.hidden = false;
      this.els.listStatus.textContent = err.routeMissing
        ? "Chat history isn't available on this server yet."
        : `Could not load your chats: ${err.message}`;
    } finally {
      this.els.loadMore.hidden = !this.cursor;
      this.els.loadMore.disabled = false;
    }
  }

  /**
   * Refresh in place: existing items are updated and kept (an open menu or focus survives a
   * refresh after each answer); nodes only move when the order really changed.
   */
  #replaceFirstPage(items) {
    const existing = new Map([...this.els.list.children].map((node) => [node.dataset.chatId, node]));
    this.chats.clear();
    const nodes = [];
    for (const chat of items) {
      const id = chatIdOf(chat);
      if (this.chats.has(id)) continue;
      this.chats.set(id, chat);
      const node = existing.get(id);
      if (node) this.#fill(node, chat);
      nodes.push(node || this.#item(chat));
    }
    const current = [...this.els.list.children];
    const same = current.length === nodes.length && current.every((node, i) => node === nodes[i]);
    if (!same) this.els.list.replaceChildren(...nodes);
  }

  #fill(node, chat) {
    const title = chat.title || "New chat";
    node.querySelector(".chat-title").textContent = title;
    node.querySelector(".chat-menu-btn").setAttribute("aria-label", `Actions for ${title}`);
    node.querySelector(".menu").setAttribute("aria-label", `Actions for ${title}`);
    const preview = node.querySelector(".chat-preview");
    if (preview) preview.textContent = chat.preview || "";
    else if (chat.preview) node.querySelector(".chat-sub").prepend(el("span", { class: "chat-preview", text: chat.preview }));
    const time = node.querySelector(".chat-time");
    time.setAttribute("datetime", chat.updated_at || chat.created_at || "");
    time.textContent = relativeTime(chat.updated_at || chat.created_at);
  }

  setActive(chatId) {
    this.activeId = chatId;
    for (const node of this.els.list.querySelectorAll(".chat-item")) {
      const open = node.querySelector(".chat-open");
      const active = node.dataset.chatId === chatId;
      node.classList.toggle("active", active);
      if (active) open.setAttribute("aria-current", "true");
      else open.removeAttribute("aria-current");
    }
  }

  titleOf(chatId) {
    const chat = this.chats.get(chatId);
    return chat ? chat.title : null;
  }

  #item(chat) {
    const id = chatIdOf(chat);
    const title = chat.title || "New chat";
    const openBtn = el("button", { type: "button", class: "chat-open", onclick: () => this.#emit("open", { chatId: id }) },
      el("span", { class: "chat-title", text: title }),
      el("span", { class: "chat-sub" },
        chat.preview ? el("span", { class: "chat-preview", text: chat.preview }) : null,
        el("time", { class: "chat-time", datetime: chat.updated_at || chat.created_at || "", text: relativeTime(chat.updated_at || chat.created_at) })));
    const menuBtn = el("button", { type: "button", class: "icon-btn chat-menu-btn", "aria-label": `Actions for ${title}`, "aria-haspopup": "menu", "aria-expanded": "false" }, icon("more"));
    const item = (label, fn, cls = "") => el("button", { type: "button", role: "menuitem", class: `menu-item ${cls}`, text: label, onclick: () => { this.#closeMenu(); fn(); } });
    const menu = el("div", { class: "menu", role: "menu", "aria-label": `Actions for ${title}`, hidden: true },
      item("Rename", () => this.rename(id)),
      item("Export as Markdown", () => this.export(id, "md")),
      item("Export as JSON", () => this.export(id, "json")),
      item("Delete", () => this.remove(id), "danger"));
    menuBtn.addEventListener("click", (ev) => {
      ev.stopPropagation();
      if (this.openMenu === menu) { this.#closeMenu(); return; }
      this.#closeMenu();
      menu.hidden = false;
      menuBtn.setAttribute("aria-expanded", "true");
      this.openMenu = menu;
      this.openMenuBtn = menuBtn;
      menu.querySelector(".menu-item").focus();
    });
    menu.addEventListener("keydown", (ev) => {
      const items = [...menu.querySelectorAll(".menu-item")];
      const at = items.indexOf(document.activeElement);
      if (ev.key === "ArrowDown") { ev.preventDefault(); items[(at + 1) % items.length].focus(); }
      else if (ev.key === "ArrowUp") { ev.preventDefault(); items[(at - 1 + items.length) % items.length].focus(); }
      else if (ev.key === "Escape") { ev.preventDefault(); ev.stopPropagation(); this.#closeMenu(true); }
      else if (ev.key === "Tab") this.#closeMenu();
    });
    const node = el("li", { class: "chat-item", dataset: { chatId: id } }, openBtn, menuBtn, menu);
    if (id === this.activeId) {
      node.classList.add("active");
      openBtn.setAttribute("aria-current", "true");
    }
    return node;
  }

  #closeMenu(focusTrigger = false) {
    if (!this.openMenu) return;
    this.openMenu.hidden = true;
    this.openMenuBtn?.setAttribute("aria-expanded", "false");
    if (focusTrigger) this.openMenuBtn?.focus();
    this.openMenu = null;
  }

  async rename(chatId) {
    const current = this.titleOf(chatId) || "";
    const title = await promptDialog({ title: "Rename chat", label: "Title", value: current, confirmLabel: "Rename", maxLength: 200 });
    if (title === null || !title.trim() || title.trim() === current) return;
    try {
      const updated = await api.patch(`/chat/history/${encodeURIComponent(chatId)}`, { title: title.trim() });
      const newTitle = (updated && (updated.title || updated.chat?.title)) || title.trim();
      const chat = this.chats.get(chatId);
      if (chat) chat.title = newTitle;
      const node = this.#node(chatId);
      if (node) {
        node.querySelector(".chat-title").textContent = newTitle;
        node.querySelector(".chat-menu-btn").setAttribute("aria-label", `Actions for ${newTitle}`);
      }
      this.#emit("renamed", { chatId, title: newTitle });
    } catch (err) {
      toast(err.routeMissing ? "Renaming isn't available on this server yet." : `Could not rename: ${err.message}`, { kind: "error" });
    }
  }

  async remove(chatId) {
    const title = this.titleOf(chatId) || "this chat";
    const ok = await confirmDialog({ title: "Delete chat?", message: `“${title}” and all its messages will be deleted. This cannot be undone.`, confirmLabel: "Delete", danger: true });
    if (!ok) return;
    try {
      await api.del(`/chat/history/${encodeURIComponent(chatId)}`);
      this.chats.delete(chatId);
      this.#node(chatId)?.remove();
      this.els.listStatus.hidden = this.chats.size > 0;
      this.els.listStatus.textContent = "No chats yet. Ask something to start one.";
      toast("Chat deleted.");
      this.#emit("deleted", { chatId });
    } catch (err) {
      toast(err.routeMissing ? "Deleting isn't available on this server yet." : `Could not delete: ${err.message}`, { kind: "error" });
    }
  }

  async export(chatId, format) {
    try {
      const { blob, filename } = await api.blob(`/chat/history/${encodeURIComponent(chatId)}/export?format=${format}`);
      saveBlob(blob, filename || `${slug(this.titleOf(chatId))}.${format}`);
    } catch (err) {
      toast(err.routeMissing ? "Export isn't available on this server yet." : `Could not export: ${err.message}`, { kind: "error" });
    }
  }

  #node(chatId) {
    return this.els.list.querySelector(`.chat-item[data-chat-id="${CSS.escape(chatId)}"]`);
  }

  // --- search -----------------------------------------------------------------------------------

  async search(query) {
    this.query = query;
    const seq = ++this.searchSeq;
    const { results, resultsStatus, list, loadMore, listStatus } = this.els;
    const searching = query.length > 0;
    results.hidden = !searching;
    resultsStatus.hidden = !searching;
    list.hidden = searching;
    listStatus.hidden = searching || this.chats.size > 0;
    loadMore.hidden = searching || !this.cursor;
    if (!searching) { results.replaceChildren(); return; }
    resultsStatus.textContent = "Searching…";
    try {
      const page = await api.get(`/chat/search?${new URLSearchParams({ q: query, limit: "20" })}`);
      if (seq !== this.searchSeq) return;
      const items = page.items || [];
      results.replaceChildren(...items.map((hit) => this.#result(hit)));
      resultsStatus.textContent = items.length
        ? `${items.length} ${items.length === 1 ? "match" : "matches"}`
        : `No messages match “${query}”.`;
    } catch (err) {
      if (seq !== this.searchSeq) return;
      results.replaceChildren();
      resultsStatus.textContent = err.routeMissing ? "Search isn't available on this server yet." : `Search failed: ${err.message}`;
    }
  }

  #result(hit) {
    const title = hit.chat_title || hit.title || this.titleOf(hit.chat_id) || "Chat";
    return el("li", { class: "result-item" },
      el("button", { type: "button", class: "result", dataset: { chatId: hit.chat_id, turnId: hit.turn_id || "" },
        onclick: () => this.#emit("open", { chatId: hit.chat_id, turnId: hit.turn_id }) },
      el("span", { class: "result-head" },
        el("span", { class: "result-title", text: title }),
        el("time", { class: "result-time", datetime: hit.created_at || "", text: relativeTime(hit.created_at) })),
      el("span", { class: "result-snippet" }, el("span", { class: "result-role", text: hit.role === "user" ? "You: " : "Allin: " }), snippetNodes(hit.snippet))));
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
