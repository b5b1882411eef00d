// One assistant answer: tokens rendered as Markdown as they stream, then the final message with its
// citations, code runs, an interrupted/error status, and the copy / feedback actions.

import { api } from "./api.js";
import { codeBlock, codeRun } from "./code.js";
import { renderMarkdown } from "./markdown.js";
import { citationChip, pendingChip, sourcesList } from "./sources.js";
import { announce, copyText, el, icon, toast } from "./ui.js";

// An answer that ends with its own "Sources:" list gets no second one from us.
const OWN_SOURCES = /^\s*(?:#+\s*|\*\*)?sources?:?(?:\*\*)?:?\s*$/im;

/** `chat` is the ChatView (turn-id registry and scrolling). */
export class AnswerView {
  constructor(chat) {
    this.chat = chat;
    this.turnId = null;
    this.raw = "";
    this.citations = null; // null until the message frame (or a stored turn) gives them
    this.hasTokens = false;
    this.done = false;
    this.frame = 0;
    this.codeRuns = el("div", { class: "code-runs" });
    this.body = el("div", { class: "msg-body markdown" });
    this.typing = el("div", { class: "typing", "aria-hidden": "true" }, el("span"), el("span"), el("span"));
    this.sources = el("div", { class: "sources-slot" });
    this.status = el("p", { class: "msg-status", hidden: true });
    this.actions = el("div", { class: "msg-actions", hidden: true });
    this.queued = false;  // its question waits in the socket's queue (not yet sent)
    this.node = el("article", { class: "msg msg-assistant", "aria-label": "Allin's answer", dataset: { state: "streaming" } },
      el("div", { class: "avatar", "aria-hidden": "true", text: "A" }),
      el("div", { class: "msg-main" },
        el("div", { class: "msg-meta" }, el("span", { class: "msg-author", text: "Allin" })),
        this.codeRuns, this.typing, this.body, this.sources, this.status, this.actions));
  }

  setTurnId(id) {
    if (!id || this.turnId === id) return;
    this.turnId = id;
    this.node.dataset.turnId = id;
    this.chat.byTurn.set(id, this);
  }

  appendToken(text) {
    this.hasTokens = true;
    this.raw += text;
    this.schedule();
  }

  setTranscript(text, final) {
    this.raw = text;
    this.node.classList.toggle("partial", !final);
    this.schedule();
  }

  setFinal(content, citations) {
    if (typeof content === "string") this.raw = content;
    this.citations = Array.isArray(citations) ? citations : [];
    this.renderNow();
  }

  addCode(run) {
    this.codeRuns.append(codeRun(run));
    this.typing.hidden = true;
    this.chat.stickToBottom();
  }

  schedule() {
    if (this.frame) return;
    this.frame = window.requestAnimationFrame(() => { this.frame = 0; this.renderNow(); });
  }

  renderNow() {
    if (this.frame) { window.cancelAnimationFrame(this.frame); this.frame = 0; }
    const byN = new Map((this.citations || []).map((c) => [Number(c.n), c]));
    const known = this.citations !== null;
    const fragment = renderMarkdown(this.raw, {
      codeBlock,
      citation: (n) => (byN.has(n) ? citationChip(byN.get(n)) : known ? null : pendingChip(n)),
    });
    this.body.replaceChildren(fragment);
    this.typing.hidden = this.raw.length > 0 || this.done || this.codeRuns.childElementCount > 0;
    if (known && !OWN_SOURCES.test(this.raw)) {
      const cited = (this.citations || []).filter((c) => this.raw.includes(`[${c.n}]`) || this.raw.match(new RegExp(`\\[[\\d,\\s]*\\b${c.n}\\b[\\d,\\s]*\\]`)));
      this.sources.replaceChildren(sourcesList(cited.length ? cited : this.citations) || "");
    }
    this.chat.stickToBottom();
  }

  complete({ turnId, status, error, feedback } = {}) {
    this.done = true;
    this.node.dataset.state = status === "interrupted" || status === "error" ? status : "done";
    this.node.classList.remove("streaming", "partial");
    this.node.removeAttribute("aria-busy");
    if (turnId) this.setTurnId(turnId);
    if (this.citations === null) this.citations = [];
    this.renderNow();
    this.typing.hidden = true;
    if (status === "interrupted") this.showStatus("Stopped. The partial answer is kept.", "interrupted");
    else if (status === "error") this.showStatus(error || "Something went wrong with this answer.", "error");
    if (this.turnId) this.showActions(feedback);
  }

  showStatus(text, kind) {
    this.status.textContent = text;
    this.status.className = `msg-status status-${kind}`;
    this.status.hidden = false;
  }

  fail(message) {
    this.complete({ status: "error", error: message });
  }

  showActions(feedback) {
    const rating = feedback ? Number(feedback.rating) : 0;
    const copyBtn = el("button", { type: "button", class: "icon-btn act", "aria-label": "Copy answer" }, icon("copy"));
    copyBtn.addEventListener("click", async () => {
      const ok = await copyText(this.raw);
      toast(ok ? "Answer copied." : "Could not copy.");
    });
    const up = el("button", { type: "button", class: "icon-btn act thumb", "aria-label": "Helpful", "aria-pressed": String(rating === 1), dataset: { rating: "1" } }, icon("up"));
    const down = el("button", { type: "button", class: "icon-btn act thumb", "aria-label": "Not helpful", "aria-pressed": String(rating === -1), dataset: { rating: "-1" } }, icon("down"));
    const commentId = `fb-${this.turnId}`;
    const comment = el("input", { id: commentId, class: "input", type: "text", maxlength: 2000, placeholder: "What was good or missing? (optional)" });
    if (feedback && feedback.comment) comment.value = feedback.comment;
    const form = el("form", { class: "feedback-form", hidden: true },
      el("label", { for: commentId, class: "visually-hidden", text: "Feedback comment" }),
      comment,
      el("button", { type: "submit", class: "btn small primary", text: "Send" }),
      el("button", { type: "button", class: "btn small", text: "Close", onclick: () => { form.hidden = true; } }));
    let current = rating;
    const send = async (value, note) => {
      try {
        await api.post(`/chat/turns/${encodeURIComponent(this.turnId)}/feedback`, note ? { rating: value, comment: note } : { rating: value });
        current = value;
        up.setAttribute("aria-pressed", String(value === 1));
        down.setAttribute("aria-pressed", String(value === -1));
        return true;
      } catch (err) {
        toast(err.routeMissing ? "Feedback isn't available on this server yet." : `Feedback not saved: ${err.message}`, { kind: "error" });
        return false;
      }
    };
    for (const btn of [up, down]) {
      btn.addEventListener("click", async () => {
        const value = Number(btn.dataset.rating);
        if (await send(value, comment.value.trim())) {
          form.hidden = false;
          announce(value === 1 ? "Marked helpful." : "Marked not helpful.");
          comment.focus();
        }
      });
    }
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (!current) { toast("Pick thumbs up or down first."); return; }
      if (await send(current, comment.value.trim())) {
        form.hidden = true;
        toast("Thanks for the feedback.");
      }
    });
    this.actions.replaceChildren(copyBtn, up, down);
    this.actions.hidden = false;
    this.actions.after(form);
  }
}
