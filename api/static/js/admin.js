// Admin screens: upload knowledge files, run a sync and watch it, list documents, and edit the
// system prompt with its version history and rollback. Shown only to admins (GET /me).

import { api } from "./api.js";
import { openSource } from "./sources.js";
import { announce, confirmDialog, el, formatBytes, icon, relativeTime, toast } from "./ui.js";

const POLL_MS = 700;

const unavailable = (err, what) =>
  err.routeMissing ? `${what} isn't available on this server yet.` : `${what} failed: ${err.message}`;

export class AdminView {
  constructor(root) {
    this.root = root;
    this.built = false;
    this.pollTimer = 0;
    this.docsCursor = null;
  }

  /** Build once, then refresh the lists each time the page is shown. */
  show() {
    if (!this.built) this.#build();
    this.loadDocuments(true);
    this.loadPrompt();
  }

  hide() {
    window.clearTimeout(this.pollTimer);
  }

  #build() {
    this.built = true;
    // Knowledge: upload + sync
    this.fileInput = el("input", { type: "file", id: "kb-files", class: "visually-hidden", multiple: true,
      accept: ".pdf,.md,.markdown,.txt,.rst,.html,.png,.jpg,.jpeg,.webp,.gif,.tif,.tiff,.py,.js,.ts,.go,.java,.rs,.sql,.sh,.json,.yaml,.yml,.toml,.csv" });
    this.uploadList = el("ul", { class: "upload-list", "aria-label": "Uploads" });
    const drop = el("div", { class: "dropzone" },
      icon("file", "icon big"),
      el("p", {}, el("label", { for: "kb-files", class: "link-like", text: "Choose files" }), " or drop them here"),
      el("p", { class: "muted small", text: "PDFs, images (OCR), Markdown, text and code. Uploads are ingested right away; Sync re-reads the whole knowledge folder." }),
      this.fileInput);
    drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("dragging"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("dragging"));
    drop.addEventListener("drop", (ev) => {
      ev.preventDefault();
      drop.classList.remove("dragging");
      this.upload([...(ev.dataTransfer?.files || [])]);
    });
    this.fileInput.addEventListener("change", () => { this.upload([...this.fileInput.files]); this.fileInput.value = ""; });

    this.syncBtn = el("button", { type: "button", class: "btn primary", id: "sync-btn", onclick: () => this.sync() }, "Sync knowledge");
    this.progress = el("progress", { id: "sync-progress", class: "progress", max: "100", value: "0", hidden: true, "aria-label": "Sync progress" });
    this.syncText = el("span", { id: "sync-text", class: "sync-text", role: "status" });
    this.syncResults = el("div", { id: "sync-results", class: "sync-results" });

    // Documents
    this.docsBody = el("tbody");
    this.docsStatus = el("p", { class: "muted", role: "status" });
    this.docsMore = el("button", { type: "button", class: "btn small", hidden: true, onclick: () => this.loadDocuments(false) }, "Load more");

    // System prompt
    this.promptText = el("textarea", { id: "prompt-text", class: "input mono prompt-editor", rows: "16", spellcheck: "false", maxlength: "50000" });
    this.promptNote = el("input", { id: "prompt-note", class: "input", type: "text", maxlength: "200", placeholder: "What changed (optional)" });
    this.promptMeta = el("p", { class: "muted small", role: "status" });
    this.versions = el("ol", { class: "versions", "aria-label": "Prompt versions" });
    const promptForm = el("form", { class: "prompt-form" },
      el("label", { for: "prompt-text", class: "field-label", text: "Active system prompt" }),
      this.promptText,
      el("div", { class: "prompt-actions" },
        el("label", { for: "prompt-note", class: "visually-hidden", text: "Change note" }),
        this.promptNote,
        el("button", { type: "submit", class: "btn primary", text: "Save as new version" })),
      this.promptMeta);
    promptForm.addEventListener("submit", (ev) => { ev.preventDefault(); this.savePrompt(); });
    this.promptCount = el("span", { class: "muted small prompt-count", "aria-live": "off" });
    promptForm.append(this.promptCount);
    this.promptText.addEventListener("input", () => this.#count());

    this.root.replaceChildren(el("div", { class: "admin-inner" },
      el("h1", { class: "admin-title", text: "Admin" }),
      el("section", { class: "card", "aria-labelledby": "kb-h" },
        el("h2", { id: "kb-h", text: "Knowledge files" }),
        drop, this.uploadList,
        el("div", { class: "sync-row" }, this.syncBtn, this.progress, this.syncText),
        this.syncResults),
      el("section", { class: "card", "aria-labelledby": "docs-h" },
        el("div", { class: "card-head" },
          el("h2", { id: "docs-h", text: "Documents" }),
          el("button", { type: "button", class: "btn small", onclick: () => this.loadDocuments(true) }, "Refresh")),
        el("div", { class: "table-wrap" },
          el("table", { class: "docs-table" },
            el("thead", {}, el("tr", {}, ["Document", "Status", "Pages", "Chunks", "Updated", ""].map((h) => el("th", { scope: "col", text: h })))),
            this.docsBody)),
        this.docsStatus, this.docsMore),
      el("section", { class: "card", "aria-labelledby": "prompt-h" },
        el("h2", { id: "prompt-h", text: "System prompt" }),
        promptForm,
        el("h3", { class: "versions-title", text: "History" }),
        this.versions)));
  }

  // --- upload and sync ---------------------------------------------------------------------

  /** POST /admin/knowledge/files, one file per request: the server stores and ingests it at once. */
  async upload(files) {
    for (const file of files) {
      const state = el("span", { class: "upload-state", text: "uploading and ingesting…" });
      const row = el("li", { class: "upload-item" }, icon("file"), el("span", { class: "upload-name", text: file.name }),
        el("span", { class: "muted small", text: formatBytes(file.size) }), state);
      this.uploadList.append(row);
      const form = new FormData();
      form.append("file", file, file.name);
      try {
        const doc = await api.upload("/admin/knowledge/files", form);
        if (doc.status === "error" || doc.error) {
          state.textContent = doc.error || "could not be ingested";
          row.classList.add("failed");
        } else {
          state.textContent = `ingested · ${doc.chunk_count} passages${doc.pages ? ` · ${doc.pages} pages` : ""}`;
          row.classList.add("done");
        }
      } catch (err) {
        state.textContent = unavailable(err, "Upload");
        row.classList.add("failed");
      }
    }
    this.loadDocuments(true);
    announce("Uploads finished.");
  }

  async sync() {
    this.syncBtn.disabled = true;
    this.progress.hidden = false;
    this.progress.removeAttribute("value"); // indeterminate until the first report
    this.syncText.textContent = "Starting…";
    this.syncResults.replaceChildren();
    try {
      const started = await api.post("/admin/sync_knowledge", {});
      if (started.already_running) this.syncText.textContent = "A sync is already running; following it.";
      this.#poll(started.job_id);
    } catch (err) {
      this.syncBtn.disabled = false;
      this.progress.hidden = true;
      this.syncText.textContent = unavailable(err, "Sync");
    }
  }

  #poll(jobId) {
    window.clearTimeout(this.pollTimer);
    this.pollTimer = window.setTimeout(async () => {
      let job;
      try {
        job = await api.get(`/admin/sync_knowledge/${encodeURIComponent(jobId)}`);
      } catch (err) {
        this.syncBtn.disabled = false;
        this.syncText.textContent = unavailable(err, "Sync status");
        return;
      }
      this.#showJob(job);
      if (["done", "failed", "error", "cancelled"].includes(job.status)) {
        this.syncBtn.disabled = false;
        this.loadDocuments(true);
        announce(job.status === "done" ? "Sync finished." : "Sync failed.");
      } else {
        this.#poll(jobId);
      }
    }, POLL_MS);
  }

  #showJob(job) {
    const p = job.progress || {};
    const results = job.results || [];
    const total = Number(p.total) || 0;
    const done = Math.min(Number(p.done) || 0, total);
    if (total) {
      this.progress.max = total;
      this.progress.value = done;
    } else if (job.status === "done" || job.status === "failed") {
      this.progress.max = 1;
      this.progress.value = 1;
    }
    let text;
    if (job.status === "queued") text = "Queued…";
    else if (job.status === "running") {
      text = total ? `Syncing… ${done} of ${total} files` : "Scanning the knowledge folder…";
      if (p.current) text += ` · ${p.current}`;
    } else if (job.status === "done") {
      const failed = Number(p.errors) || 0;
      text = `Done: ${p.summary || `${done} files`}`;
      if (failed) text += ` · ${failed} failed (see below)`;
    } else text = `Sync failed${job.error ? `: ${job.error}` : ""}`;
    this.syncText.textContent = text;
    // Unchanged files are not news; what was ingested, removed or failed is.
    const shown = results.filter((r) => r.status !== "unchanged");
    if (!shown.length) { this.syncResults.replaceChildren(); return; }
    const rows = shown.map((r) => el("tr", { class: isFailure(r) ? "failed" : "" },
      el("td", { class: "mono", text: r.path || "" }),
      el("td", {}, el("span", { class: `pill pill-${pillKind(r.status)}`, text: r.status || "?" })),
      el("td", { text: errorText(r) })));
    this.syncResults.replaceChildren(el("div", { class: "table-wrap" },
      el("table", { class: "results-table" },
        el("thead", {}, el("tr", {}, ["File", "Result", "Details"].map((h) => el("th", { scope: "col", text: h })))),
        el("tbody", {}, rows))));
  }

  // --- documents -------------------------------------------------------------------------------

  async loadDocuments(first) {
    if (first) this.docsCursor = null;
    const params = new URLSearchParams();
    if (!first && this.docsCursor) params.set("cursor", this.docsCursor);
    try {
      const page = await api.get(`/knowledge/documents${params.size ? `?${params}` : ""}`);
      const items = page.items || page.documents || [];
      const rows = items.map((d) => this.#docRow(d));
      if (first) this.docsBody.replaceChildren(...rows);
      else this.docsBody.append(...rows);
      this.docsCursor = page.next_cursor || null;
      this.docsMore.hidden = !this.docsCursor;
      this.docsStatus.textContent = this.docsBody.childElementCount ? "" : "No documents yet. Upload files and sync.";
    } catch (err) {
      this.docsStatus.textContent = unavailable(err, "Listing documents");
      this.docsMore.hidden = true;
    }
  }

  #docRow(d) {
    const id = d.document_id || d.id;
    const title = d.title || d.path || "Untitled";
    const openBtn = el("button", { type: "button", class: "link-like doc-open",
      onclick: () => openSource({ document_id: id, title, file: d.path || d.file, page: null }) }, title);
    const delBtn = el("button", { type: "button", class: "btn small danger-text", "aria-label": `Remove ${title}` }, "Remove");
    delBtn.addEventListener("click", async () => {
      const ok = await confirmDialog({ title: "Remove document?", message: `“${title}” and its passages will be removed from the knowledge base.`, confirmLabel: "Remove", danger: true });
      if (!ok) return;
      try {
        await api.del(`/admin/knowledge/documents/${encodeURIComponent(id)}`);
        row.remove();
        toast("Document removed.");
      } catch (err) {
        toast(unavailable(err, "Removing"), { kind: "error" });
      }
    });
    const row = el("tr", { dataset: { documentId: id } },
      el("td", {}, openBtn, d.path && d.path !== title ? el("div", { class: "muted small mono", text: d.path }) : null,
        d.error ? el("div", { class: "doc-error", text: d.error }) : null),
      el("td", {}, el("span", { class: `pill pill-${pillKind(d.status)}`, text: d.status || "?" }),
        d.restricted ? el("span", { class: "pill", title: "Only some users may see it", text: "restricted" }) : null),
      el("td", { text: d.pages ?? "" }),
      el("td", { text: d.chunk_count ?? "" }),
      el("td", {}, el("time", { datetime: d.updated_at || "", text: relativeTime(d.updated_at || d.ingested_at) })),
      el("td", {}, delBtn));
    return row;
  }

  // --- system prompt ----------------------------------------------------------------------------

  async loadPrompt() {
    try {
      const data = await api.get("/admin/system-prompt");
      this.#showPrompt(data);
    } catch (err) {
      this.promptMeta.textContent = unavailable(err, "Loading the system prompt");
    }
  }

  #showPrompt(state) {
    this.promptText.value = state.text || "";
    this.maxChars = state.max_chars || 0;
    const active = (state.versions || []).find((v) => v.active);
    const where = active && active.source === "file" ? "the file prompts/system.md" : `version ${state.active_version}`;
    this.promptMeta.textContent = `Active: ${where}`;
    this.#count();
    const versions = state.versions || [];
    this.versions.replaceChildren(...versions.map((v) => this.#versionItem(v, state.active_version)));
  }

  #count() {
    const n = this.promptText.value.length;
    this.promptCount.textContent = this.maxChars ? `${n.toLocaleString()} / ${this.maxChars.toLocaleString()} characters` : "";
    this.promptCount.classList.toggle("over", Boolean(this.maxChars) && n > this.maxChars);
  }

  #versionItem(v, activeVersion) {
    const isActive = v.active || v.version === activeVersion;
    const label = v.source === "file" ? "v0 · file" : `v${v.version}`;
    const action = isActive ? el("span", { class: "pill pill-ok", text: "active" })
      : el("button", { type: "button", class: "btn small", onclick: () => this.rollback(v.version) },
        v.source === "file" ? "Roll back to the file" : `Roll back to v${v.version}`);
    const meta = [v.created_at ? relativeTime(v.created_at) : null, v.author, `${v.chars} characters`].filter(Boolean).join(" · ");
    return el("li", { class: `version${isActive ? " active" : ""}`, dataset: { version: String(v.version) } },
      el("div", { class: "version-head" },
        el("strong", { text: label }),
        v.note ? el("span", { class: "version-note", text: v.note }) : null,
        el("span", { class: "muted small", text: meta }),
        el("span", { class: "version-actions" }, action)));
  }

  async savePrompt() {
    const text = this.promptText.value.trim();
    if (!text) { toast("The system prompt cannot be empty."); return; }
    try {
      const note = this.promptNote.value.trim();
      const state = await api.put("/admin/system-prompt", note ? { text, note } : { text });
      this.promptNote.value = "";
      this.#showPrompt(state);
      toast(`Saved as version ${state.active_version}. The next answer uses it.`);
    } catch (err) {
      toast(unavailable(err, "Saving the prompt"), { kind: "error" });
    }
  }

  async rollback(version) {
    const ok = await confirmDialog({ title: `Roll back to v${version}?`, message: "That version becomes the active system prompt (a rollback can itself be undone).", confirmLabel: "Roll back" });
    if (!ok) return;
    try {
      const state = await api.post("/admin/system-prompt/rollback", { version });
      this.#showPrompt(state);
      toast(`Version ${version} is active again.`);
    } catch (err) {
      toast(unavailable(err, "Rollback"), { kind: "error" });
    }
  }
}

function isFailure(r) {
  return Boolean(r.error) || ["error", "failed", "rejected"].includes(r.status);
}

function errorText(r) {
  if (r.error) return r.error;
  if (r.status === "removed") return "no longer in the folder";
  return r.chunks ? `${r.chunks} passages` : "";
}

function pillKind(status) {
  if (["ready", "ingested"].includes(status)) return "ok";
  if (["error", "failed"].includes(status)) return "error";
  if (["unchanged", "removed"].includes(status)) return "neutral";
  return "pending";
}
