// The conversation: stored turns, streamed answers (token → message → turn_complete), code runs,
// attachments, interrupt, voice transcripts, and resume after a reload.

import { api, getToken } from "./api.js";
import { AnswerView } from "./answer.js";
import { codeBlock } from "./code.js";
import { renderMarkdown } from "./markdown.js";
import { ChatSocket } from "./ws.js";
import { announce, el, formatBytes, icon, toast } from "./ui.js";

/** Play a voice turn's stored recording (fetched with the bearer, so a plain <audio src> won't do). */
async function playRecording(turnId) {
  try {
    const { blob } = await api.blob(`/chat/turns/${encodeURIComponent(turnId)}/audio`);
    const url = URL.createObjectURL(blob);
    const audio = new Audio(url);
    audio.addEventListener("ended", () => URL.revokeObjectURL(url), { once: true });
    await audio.play();
  } catch (err) {
    toast(`Could not play the recording: ${err.message || err}`, { kind: "error" });
  }
}

const OPEN_CHAT_KEY = "allin.chat";
const MAX_ATTACHMENTS = 5;

export class ChatView extends EventTarget {
  /**
   * @param {{messages: HTMLElement, scroller: HTMLElement, empty: HTMLElement, title: HTMLElement,
   *          form: HTMLFormElement, input: HTMLTextAreaElement, sendBtn: HTMLElement, stopBtn: HTMLElement,
   *          attachBtn: HTMLElement, attachInput: HTMLInputElement, attachList: HTMLElement,
   *          connStatus: HTMLElement}} els
   * Events: "chat" ({chatId, created}), "turn" ({chatId}), "unauthorized".
   */
  constructor(els) {
    super();
    this.els = els;
    this.chatId = null;
    this.socket = null;
    this.pending = new Map();     // client frame id → AnswerView
    this.byTurn = new Map();      // turn id → AnswerView
    this.active = null;           // the answer being streamed
    this.busy = false;
    this.attachments = [];        // {file, id?, node, status}
    this.voiceUser = null;        // the user bubble a live transcript is filling
    this.voice = null;            // set by app.js (voice.js)
    this.lastTurnId = null;
    this.pollTimer = 0;
    this.#wireComposer();
  }

  // --- chats -------------------------------------------------------------------------------

  /** Start over with an empty conversation; the chat is created on the first message. */
  newChat() {
    this.#closeSocket();
    this.chatId = null;
    window.localStorage.removeItem(OPEN_CHAT_KEY);
    this.#reset();
    this.#setTitle("New chat");
    // Not on a phone: focusing would pop the keyboard over the welcome screen.
    if (!window.matchMedia("(max-width: 820px)").matches) this.els.input.focus();
    this.dispatchEvent(new CustomEvent("chat", { detail: { chatId: null } }));
  }

  /** Open a stored chat: resume it, render its turns, reconnect /ws to it. */
  async openChat(chatId, { highlightTurnId = null } = {}) {
    if (!chatId) { this.newChat(); return; }
    const same = chatId === this.chatId && this.socket;
    if (!same) {
      this.#closeSocket();
      this.chatId = chatId;
      window.localStorage.setItem(OPEN_CHAT_KEY, chatId);
      this.#reset();
      this.els.messages.setAttribute("aria-busy", "true");
      this.dispatchEvent(new CustomEvent("chat", { detail: { chatId } }));
      const ok = await this.#loadHistory(chatId);
      this.els.messages.removeAttribute("aria-busy");
      if (!ok) return;
      this.#ensureSocket();
    }
    if (highlightTurnId) this.highlightTurn(highlightTurnId);
    else this.scrollToBottom();
  }

  /** The chat to reopen after a reload (remembered in localStorage). */
  static rememberedChat() {
    return window.localStorage.getItem(OPEN_CHAT_KEY);
  }

  async #loadHistory(chatId) {
    let resumed = null;
    try {
      resumed = await api.post(`/chat/history/${encodeURIComponent(chatId)}/resume`, {});
    } catch (err) {
      if (!this.#handleChatError(err)) return false;
    }
    let history = null;
    try {
      history = await api.get(`/chat/history/${encodeURIComponent(chatId)}`);
    } catch (err) {
      if (!this.#handleChatError(err)) return false;
    }
    if (chatId !== this.chatId) return false; // another chat was opened meanwhile
    const chat = (history && history.chat) || (resumed && resumed.chat) || null;
    const turns = (history && history.turns) || (resumed && resumed.recent_turns) || [];
    this.#setTitle(chat && chat.title ? chat.title : "Chat");
    if (!history && !resumed) {
      this.#note("Stored messages can't be shown: this server has no chat history routes yet. New messages still work.");
    } else if (!history && resumed) {
      this.#note("Showing the most recent messages only (the full history route is not available).");
    }
    this.#renderTurns(turns);
    return true;
  }

  /** false when the chat is gone (a new chat was started instead); true to carry on. */
  #handleChatError(err) {
    if (err.routeMissing) return true;
    if (err.status === 404) {
      toast("That chat no longer exists; starting a new one.");
      this.newChat();
      return false;
    }
    if (err.status === 401) return false;
    toast(`Could not load the chat: ${err.message}`, { kind: "error" });
    return true;
  }

  #renderTurns(turns) {
    const feedbackOf = (t) => t.feedback || null;
    for (const turn of turns) {
      const id = turn.id || turn.turn_id;
      if (turn.role === "user") {
        this.#addUser(turn.content, { turnId: id, attachments: turn.attachments, voice: turn.modality === "voice",
          recorded: Boolean(turn.has_audio) });
      } else {
        const view = new AnswerView(this);
        this.els.messages.append(view.node);
        view.setTurnId(id);
        for (const run of turn.code || []) view.addCode(run);
        view.setFinal(turn.content || "", turn.citations || []);
        view.complete({ turnId: id, status: turn.status === "complete" ? undefined : turn.status, error: turn.error ? `The answer failed (${turn.error}).` : undefined, feedback: feedbackOf(turn) });
      }
      if (id) this.lastTurnId = id;
    }
    this.#toggleEmpty();
  }

  highlightTurn(turnId) {
    const node = this.els.messages.querySelector(`[data-turn-id="${CSS.escape(turnId)}"]`);
    if (!node) { this.scrollToBottom(); return false; }
    for (const old of this.els.messages.querySelectorAll(".highlight")) old.classList.remove("highlight");
    node.classList.add("highlight");
    node.scrollIntoView({ block: "center" });
    node.setAttribute("tabindex", "-1");
    node.focus({ preventScroll: true });
    return true;
  }

  // --- sending ------------------------------------------------------------------------------

  async send() {
    const text = this.els.input.value.trim();
    if (!text) return;
    if (this.busy) { toast("Allin is still answering. Wait, or press Esc to stop it."); return; }
    if (this.attachments.some((a) => a.status === "uploading")) { toast("Wait for the attachments to finish uploading."); return; }
    const attached = this.attachments.filter((a) => a.id);
    const socket = this.#ensureSocket();
    const frame = { type: "text", text };
    if (attached.length) frame.attachments = attached.map((a) => a.id);
    // Sent now, or queued until the socket is ready (then it goes out on that connection).
    const queued = !socket.isOpen;
    const id = socket.send(frame);
    this.#addUser(text, { attachments: attached.map((a) => ({ filename: a.file.name, id: a.id })), clientId: id });
    const view = this.#startAnswer();
    view.queued = queued;
    this.pending.set(id, view);
    this.els.input.value = "";
    this.#autosize();
    this.#clearAttachments();
  }

  /** Stop the answer: its generation and its speech. `speaking` says audio was just playing. */
  interrupt({ speaking = false } = {}) {
    const wasSpeaking = speaking || Boolean(this.voice?.playing);
    this.voice?.stopPlayback();
    if (!this.socket || !(this.busy || wasSpeaking)) return;
    const id = this.socket.send({ type: "interrupt" });
    this.interruptId = id;
    // Audio already on its way must not play; the server's acknowledgement ends it.
    if (this.voice) this.voice.discarding = true;
    if (this.active) this.pending.set(id, this.active);
    announce("Stopping the answer.");
  }

  #interruptAnswered(frame) {
    if (!frame.reply_to || frame.reply_to !== this.interruptId) return;
    this.interruptId = null;
    if (this.voice) this.voice.discarding = false;
  }

  #startAnswer() {
    const view = new AnswerView(this);
    view.node.classList.add("streaming");
    view.node.setAttribute("aria-busy", "true");
    this.els.messages.append(view.node);
    this.active = view;
    this.#setBusy(true);
    this.#toggleEmpty();
    this.scrollToBottom();
    return view;
  }

  #addUser(text, { turnId = null, attachments = [], voice = false, clientId = null, recorded = false } = {}) {
    const body = el("div", { class: "msg-body markdown" }, renderMarkdown(text, { codeBlock }));
    const play = recorded && turnId
      ? el("button", { type: "button", class: "msg-play", text: "▶ play", "aria-label": "Play your recording",
          onclick: () => playRecording(turnId) })
      : null;
    const files = (attachments || []).map((a) => (typeof a === "string" ? { id: a } : a));
    const node = el("article", { class: `msg msg-user${voice ? " voice" : ""}`, "aria-label": "Your message", dataset: turnId ? { turnId } : {} },
      el("div", { class: "msg-main" },
        voice ? el("span", { class: "msg-badge", text: "voice" }) : null,
        play,
        body,
        files.length ? el("ul", { class: "msg-files", "aria-label": "Attachments" }, files.map((f) =>
          el("li", { class: "file-chip" }, icon("file"), el("span", { text: f.filename || f.name || "attached file" })))) : null));
    if (clientId) node.dataset.clientId = clientId;
    this.els.messages.append(node);
    this.#toggleEmpty();
    this.scrollToBottom();
    return {
      node,
      setText: (t, final) => {
        body.replaceChildren(renderMarkdown(t, { codeBlock }));
        node.classList.toggle("partial", !final);
      },
    };
  }

  // --- socket -------------------------------------------------------------------------------

  #ensureSocket() {
    if (this.socket) return this.socket;
    const socket = new ChatSocket({ token: getToken(), chatId: this.chatId });
    socket.stayOpen = () => this.busy || Boolean(this.voice && (this.voice.recording || this.voice.playing));
    this.socket = socket;
    socket.addEventListener("ready", (ev) => this.#onReady(socket, ev.detail));
    socket.addEventListener("frame", (ev) => this.#onFrame(ev.detail));
    socket.addEventListener("binary", (ev) => this.voice?.enqueuePcm(ev.detail));
    socket.addEventListener("status", (ev) => this.#onStatus(ev.detail));
    socket.addEventListener("fatal", (ev) => this.#onFatal(ev.detail));
    socket.connect().catch(() => { /* reported through "fatal"/"status" */ });
    return socket;
  }

  /** For voice: a connected socket (creating the chat if there is none yet). */
  async connectedSocket() {
    const socket = this.#ensureSocket();
    return socket.whenReady().then(() => socket);
  }

  #closeSocket() {
    if (this.socket) this.socket.close();
    this.socket = null;
    window.clearTimeout(this.pollTimer);
    this.voice?.stopAll();
    this.pending.clear();
    this.active = null;
    this.#setBusy(false);
  }

  #onReady(socket, frame) {
    if (socket !== this.socket) return;
    const created = !this.chatId;
    this.chatId = frame.chat_id;
    window.localStorage.setItem(OPEN_CHAT_KEY, frame.chat_id);
    if (created) this.dispatchEvent(new CustomEvent("chat", { detail: { chatId: frame.chat_id, created: true } }));
    if (this.voice) this.voice.discarding = false;
    const queued = Boolean(this.active && this.active.queued);
    if (this.active) this.active.queued = false; // from now on, a drop loses this answer's frames
    if (!frame.resumed || created || queued) return;
    if (this.busy) {
      // The socket dropped mid-answer: the rest went to the old socket. Show it once it is stored.
      this.active?.showStatus("Reconnected; the rest of this answer will appear when it is done…", "info");
      this.#pollUntilDone(0);
    } else if (frame.turn_running) {
      // A turn started on an earlier connection (or another tab) is still running.
      const view = this.#startAnswer();
      view.showStatus("Still answering (started before the reconnect)…", "info");
      this.#pollUntilDone(0);
    } else if (frame.last_turn_id && frame.last_turn_id !== this.lastTurnId) {
      this.#reloadQuietly(); // turns were stored while we were away
    }
  }

  async #reloadQuietly() {
    const chatId = this.chatId;
    try {
      const history = await api.get(`/chat/history/${encodeURIComponent(chatId)}`);
      if (chatId !== this.chatId || this.busy) return;
      this.#reset();
      this.#renderTurns(history.turns || []);
      this.scrollToBottom();
    } catch { /* keep what is shown */ }
  }

  #pollUntilDone(tries) {
    window.clearTimeout(this.pollTimer);
    this.pollTimer = window.setTimeout(async () => {
      const chatId = this.chatId;
      if (!this.busy) return; // the stream finished on its own meanwhile
      try {
        const history = await api.get(`/chat/history/${encodeURIComponent(chatId)}`);
        const turns = history.turns || [];
        const last = turns[turns.length - 1];
        // Done when every question shown here is stored and the last turn is an answer.
        const asked = this.els.messages.querySelectorAll(".msg-user").length;
        const stored = turns.filter((t) => t.role === "user").length;
        if (chatId === this.chatId && this.busy && last && last.role === "assistant" && stored >= asked) {
          this.active = null;
          this.#setBusy(false);
          this.#reset();
          this.#renderTurns(turns);
          this.scrollToBottom();
          return;
        }
      } catch { /* try again */ }
      if (tries < 60) this.#pollUntilDone(tries + 1);
    }, tries === 0 ? 500 : 2000);
  }

  #onStatus({ state, attempt }) {
    const labels = {
      connecting: "Connecting…",
      open: "Connected",
      reconnecting: `Reconnecting${attempt ? ` (try ${attempt})` : ""}…`,
      offline: "Offline",
      idle: "",
      closed: "",
    };
    const status = this.els.connStatus;
    status.dataset.state = state;
    status.querySelector(".conn-text").textContent = labels[state] ?? "";
    status.querySelector(".conn-retry").hidden = state !== "offline";
    if (state === "offline" && this.busy) {
      this.active?.fail("The connection was lost. The answer is still stored when it finishes; reopen the chat to see it.");
      this.active = null;
      this.#setBusy(false);
    }
  }

  retryConnection() {
    this.socket?.retry();
  }

  #onFatal({ code }) {
    if (code === "unauthorized") {
      this.dispatchEvent(new CustomEvent("unauthorized"));
    } else if (code === "chat_not_found") {
      toast("That chat no longer exists; starting a new one.");
      this.newChat();
    } else {
      toast("This page's address is not allowed to connect to the server.", { kind: "error" });
    }
  }

  #viewFor(frame, { create = true } = {}) {
    let view = null;
    if (frame.reply_to && this.pending.has(frame.reply_to)) view = this.pending.get(frame.reply_to);
    else if (frame.turn_id && this.byTurn.has(frame.turn_id)) view = this.byTurn.get(frame.turn_id);
    else if (this.active) view = this.active;
    else if (create) view = this.#startAnswer(); // a turn not started from this composer (voice)
    if (view && frame.turn_id && frame.type !== "turn_complete") view.setTurnId(frame.turn_id);
    return view;
  }

  #onFrame(frame) {
    switch (frame.type) {
      case "token":
        this.#viewFor(frame).appendToken(frame.text || "");
        break;
      case "message":
        if (frame.role && frame.role !== "assistant") break;
        this.#viewFor(frame).setFinal(frame.content, frame.citations);
        break;
      case "code":
        this.#viewFor(frame).addCode(frame);
        break;
      case "turn_complete": {
        this.#interruptAnswered(frame);
        const view = this.#viewFor(frame, { create: false });
        if (view) view.complete({ turnId: frame.turn_id || view.turnId, status: frame.status });
        if (frame.user_turn_id) this.#tagUserTurn(frame);
        if (frame.turn_id) this.lastTurnId = frame.turn_id;
        this.#finishTurn(frame.status === "interrupted" ? "Answer stopped." : "Answer complete.");
        this.dispatchEvent(new CustomEvent("turn", { detail: { chatId: this.chatId } }));
        break;
      }
      case "chat":  // named from its first questions, just after the answer: show it and refresh the list
        if (frame.chat_id === this.chatId && frame.title) this.#setTitle(frame.title);
        this.dispatchEvent(new CustomEvent("turn", { detail: { chatId: this.chatId } }));
        break;
      case "error":
        this.#onError(frame);
        break;
      case "transcript":
        this.#onTranscript(frame);
        break;
      case "audio_format":
        this.voice?.setFormat(frame.rate);
        break;
      case "audio":
        if (frame.data) this.voice?.enqueueBase64(frame.data);
        break;
      default:
        break;
    }
  }

  #tagUserTurn(frame) {
    const view = this.#viewFor(frame, { create: false });
    // The user message just before this answer gets its stored id (for search highlights).
    let node = view ? view.node.previousElementSibling : null;
    while (node && !node.classList.contains("msg-user")) node = node.previousElementSibling;
    if (node && !node.dataset.turnId) node.dataset.turnId = frame.user_turn_id;
  }

  #onError(frame) {
    const turnError = frame.turn_id || (frame.reply_to && this.pending.has(frame.reply_to));
    switch (frame.code) {
      case "no_turn":
        this.#interruptAnswered(frame);
        this.#finishTurn("");
        return;
      case "voice_unavailable":
        // Either no speech recognition (stop the mic) or no speech output (the answer comes as text).
        if (/recogni/i.test(frame.message || "")) this.voice?.stopAll();
        toast(frame.message || "Voice is not available on this server.", { kind: "error" });
        return;
      case "no_speech":
      case "bad_audio":
      case "utterance_too_long":
      case "voice_error":
        // The utterance went nowhere: drop its unfinished transcript.
        if (this.voiceUser) { this.voiceUser.node.remove(); this.voiceUser = null; this.#toggleEmpty(); }
        toast(frame.message || "The recording could not be used.", { kind: "error" });
        return;
      case "idle_timeout":
        return; // the socket reconnects by itself
      default:
        break;
    }
    if (turnError) {
      const view = this.#viewFor(frame, { create: false });
      const message = frame.code === "turn_in_progress"
        ? "Allin is still answering the previous question. Wait, or stop it with Esc."
        : frame.code === "rate_limited" ? `Slow down a little: ${frame.message}` : frame.message || "The answer failed.";
      if (view) {
        if (frame.turn_id) view.setTurnId(frame.turn_id);
        view.fail(message);
      } else {
        toast(message, { kind: "error" });
      }
      this.#finishTurn("The answer failed.");
      return;
    }
    toast(frame.message || frame.code, { kind: "error" });
  }

  #onTranscript(frame) {
    if (frame.role === "user") {
      if (!this.voiceUser) this.voiceUser = this.#addUser("", { voice: true });
      this.voiceUser.setText(frame.text || "", Boolean(frame.final));
      if (frame.final) {
        if (frame.turn_id) this.voiceUser.node.dataset.turnId = frame.turn_id;
        this.voiceUser = null;
      }
      return;
    }
    const view = this.#viewFor(frame);
    // The offline voice path also streams tokens for the same answer: show those, not both.
    if (!view.hasTokens) view.setTranscript(frame.text || "", Boolean(frame.final));
  }

  #finishTurn(message) {
    this.active = null;
    this.pending.clear();
    this.#setBusy(false);
    if (message) announce(message);
  }

  // --- composer -----------------------------------------------------------------------------

  #wireComposer() {
    const { form, input, stopBtn, attachBtn, attachInput } = this.els;
    form.addEventListener("submit", (ev) => { ev.preventDefault(); this.send(); });
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        this.send();
      }
    });
    input.addEventListener("input", () => this.#autosize());
    input.addEventListener("paste", (ev) => {
      const files = [...(ev.clipboardData?.files || [])];
      if (files.length) { ev.preventDefault(); this.attach(files); }
    });
    stopBtn.addEventListener("click", () => this.interrupt());
    attachBtn.addEventListener("click", () => attachInput.click());
    attachInput.addEventListener("change", () => {
      this.attach([...attachInput.files]);
      attachInput.value = "";
    });
    form.addEventListener("dragover", (ev) => { ev.preventDefault(); form.classList.add("dragging"); });
    form.addEventListener("dragleave", () => form.classList.remove("dragging"));
    form.addEventListener("drop", (ev) => {
      ev.preventDefault();
      form.classList.remove("dragging");
      this.attach([...(ev.dataTransfer?.files || [])]);
    });
  }

  #autosize() {
    const input = this.els.input;
    input.style.height = "auto"; // CSSOM, not an attribute: allowed by the CSP
    // Empty: one row (the placeholder may wrap on a phone, and would otherwise count).
    if (input.value) input.style.height = `${Math.min(input.scrollHeight, 240)}px`;
  }

  /** Upload files to POST /chat/attachments; their ids go with the next question. */
  attach(files) {
    for (const file of files) {
      if (this.attachments.length >= MAX_ATTACHMENTS) { toast(`At most ${MAX_ATTACHMENTS} attachments per question.`); break; }
      const entry = { file, id: null, status: "uploading" };
      const remove = el("button", { type: "button", class: "icon-btn chip-remove", "aria-label": `Remove ${file.name}` }, icon("close"));
      const state = el("span", { class: "chip-state", text: "uploading…" });
      entry.node = el("li", { class: "file-chip uploading" }, icon("file"), el("span", { class: "chip-name", text: file.name }), state, remove);
      remove.addEventListener("click", () => {
        this.attachments = this.attachments.filter((a) => a !== entry);
        entry.node.remove();
        this.els.attachList.hidden = this.attachments.length === 0;
      });
      this.attachments.push(entry);
      this.els.attachList.append(entry.node);
      this.els.attachList.hidden = false;
      const form = new FormData();
      form.append("file", file, file.name);
      if (this.chatId) form.append("chat_id", this.chatId);
      api.upload("/chat/attachments", form).then((res) => {
        entry.id = res.id;
        entry.status = "ready";
        entry.node.classList.remove("uploading");
        state.textContent = formatBytes(file.size);
        if (res.status === "error") {
          // Stored with the question, but its text could not be read, so Allin will not see it.
          entry.node.classList.add("unreadable");
          state.textContent = "unreadable";
          entry.node.title = res.error || "";
          toast(`${file.name}: its text could not be read${res.error ? ` (${res.error})` : ""}.`, { kind: "error" });
        }
      }).catch((err) => {
        entry.status = "error";
        this.attachments = this.attachments.filter((a) => a !== entry);
        entry.node.remove();
        this.els.attachList.hidden = this.attachments.length === 0;
        toast(err.routeMissing ? "Attachments aren't available on this server yet." : `${file.name}: ${err.message}`, { kind: "error" });
      });
    }
  }

  #clearAttachments() {
    this.attachments = [];
    this.els.attachList.replaceChildren();
    this.els.attachList.hidden = true;
  }

  // --- view state ----------------------------------------------------------------------------

  #setBusy(busy) {
    this.busy = busy;
    this.els.sendBtn.hidden = busy;
    this.els.stopBtn.hidden = !busy;
    this.els.messages.classList.toggle("is-busy", busy);
    if (busy) announce("Allin is answering…");
  }

  #reset() {
    this.els.messages.replaceChildren();
    this.byTurn.clear();
    this.pending.clear();
    this.active = null;
    this.voiceUser = null;
    this.lastTurnId = null;
    this.#setBusy(false);
    this.#toggleEmpty();
  }

  #note(text) {
    this.els.messages.append(el("p", { class: "chat-note", role: "note", text }));
  }

  #toggleEmpty() {
    this.els.empty.hidden = this.els.messages.querySelector(".msg") !== null;
  }

  #setTitle(title) {
    this.els.title.textContent = title;
  }

  setTitle(title) {
    this.#setTitle(title);
  }

  isNearBottom() {
    const s = this.els.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 120;
  }

  stickToBottom() {
    if (this.isNearBottom() || (this.active && this.active.raw.length < 40)) this.scrollToBottom();
  }

  scrollToBottom() {
    const s = this.els.scroller;
    s.scrollTop = s.scrollHeight;
  }
}
